"""sshd's effective configuration for one connection: as `sshd -T -C …` printed it, or parsed with sshd's rules.

The oracle is sshd itself. Where the collection ran as root, the probe asked `sshd -T -C
user=root,addr=…,host=…` for each connection that matters (one from outside the management
networks, one from each declared management source), and those answers are the evidence. Only
where sshd could not answer (not root, no binary, an old sshd without -T) is `sshd_config` parsed,
and then as OpenSSH 9.x's servconf.c reads it:

- two passes: the global pass (lines outside `Match`, plus `Match all`), then the connection's pass
  (only the lines of the `Match` blocks that match it); a value the connection's pass sets replaces
  the global one;
- within a pass the first value wins, except the access lists (`AllowUsers`, `AllowGroups`,
  `DenyUsers`, `DenyGroups`), which accumulate over all their lines;
- `Include` is read in place, wherever its file lives (relative to /etc/ssh), and a `Match` block
  ends at the end of the file it started in;
- `Key=value` is `Key value`; a word starting with `#` ends the line (OpenSSH >= 8.7); quotes group;
- times take units (`5m`, `1h30m`); `prohibit-password` is printed `without-password`, as sshd does.

Nothing here talks to a host: the probe (probes.SshdEffective) collected the files and sshd's answers.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from audit.baseline.source import Line

SSHDIR = "/etc/ssh"
MAIN = "/etc/ssh/sshd_config"
# Options that accumulate over their lines (servconf.c: opt_array_append); the rest: first value wins.
LISTS = frozenset({"allowusers", "denyusers", "allowgroups", "denygroups", "port", "listenaddress", "acceptenv",
                   "hostkey"})
TIMES = frozenset({"clientaliveinterval", "logingracetime"})
# OpenSSH 9.2's defaults, as `sshd -T -f /dev/null` prints them, for the options the checks read.
DEFAULTS: dict[str, tuple[str, ...]] = {
    "permitrootlogin": ("without-password",), "permitemptypasswords": ("no",), "passwordauthentication": ("yes",),
    "kbdinteractiveauthentication": ("yes",), "pubkeyauthentication": ("yes",), "clientaliveinterval": ("0",),
    "clientalivecountmax": ("3",), "port": ("22",), "usepam": ("no",), "maxauthtries": ("6",),
    "logingracetime": ("120",), "allowusers": (), "denyusers": (), "allowgroups": (), "denygroups": (),
}
ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SshdConfigError(ValueError):
    """The configuration cannot be judged by parsing: sshd would refuse it, or a file it reads was not collected."""


@dataclass(frozen=True)
class Connection:
    """What `sshd -T -C` is told about a connection (servconf.c: struct connection_info)."""

    user: str
    address: str
    host: str = ""
    groups: tuple[str, ...] = ()  # the user's groups, for `Match Group` (sshd asks the system)

    def spec(self) -> str:
        return f"user={self.user},addr={self.address},host={self.host or self.address}"


@dataclass(frozen=True)
class Setting:
    """One effective option: its values, and where they came from (a file line, or sshd -T's output)."""

    values: tuple[str, ...]
    line: Line | None = None  # None: sshd's default (parsed) or sshd -T's answer
    answer: str = ""  # sshd -T's output line(s), "key value"

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


@dataclass(frozen=True)
class Effective:
    """sshd's configuration for one connection, and how it was obtained."""

    label: str  # e.g. "from outside (203.0.113.7)", "from management source 198.18.30.0/24"
    connection: Connection
    settings: dict[str, Setting]
    source: str  # "sshd -T" or "parsed"
    files: tuple[str, ...] = field(default=())  # parsed: the files read, in order

    def get(self, key: str) -> Setting:
        key = key.lower()
        found = self.settings.get(key)
        if found is not None:
            return found
        return Setting(DEFAULTS.get(key, ()))

    def cite(self, key: str) -> str:
        """The evidence for one option: sshd's own answer, or the deciding line (or the default) and the context."""
        key = key.lower()
        s = self.get(key)
        if self.source == "sshd -T":
            answer = s.answer or f"{key} {' '.join(s.values)}".rstrip()
            return f"sshd -T -C {self.connection.spec()}: {answer}"
        where = s.line.cite() if s.line else f"{MAIN}: {key} not set (sshd default {' '.join(s.values) or 'none'})"
        return f"{where} (parsed for {self.connection.spec()}; sshd -T could not run)"


# --- sshd -T ------------------------------------------------------------------------------------

def from_answer(label: str, connection: Connection, text: str) -> Effective:
    """`sshd -T`'s output: one `key value` line per option (a list option: one line per entry)."""
    values: dict[str, list[str]] = {}
    for raw in text.splitlines():
        key, _, value = raw.strip().partition(" ")
        if key and re.fullmatch(r"[a-z0-9]+", key):
            values.setdefault(key, []).append(value.strip())
    settings = {}
    for key, vals in values.items():
        flat = tuple(w for v in vals for w in v.split()) if key in LISTS else (vals[0],)
        settings[key] = Setting(flat, answer="; ".join(f"{key} {v}" for v in vals[:8]))
    for key, default in DEFAULTS.items():  # a list option with no entry is not printed
        settings.setdefault(key, Setting(default, answer=f"{key} (none)" if not default else f"{key} {default[0]}"))
    return Effective(label, connection, settings, "sshd -T")


# --- the parser -----------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """A line as sshd splits it: keyword (ending at whitespace or one `=`), then argv_split's arguments:
    quotes group, a backslash escapes, an unquoted word starting with `#` ends the line."""
    text = text.strip()
    m = re.match(r"([^\s=]+)\s*=?\s*(.*)$", text)
    if not m or m.group(1).startswith("#"):
        return []
    out = [m.group(1)]
    rest, i, current, quote, started = m.group(2), 0, "", "", False
    while i < len(rest):
        c = rest[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and i + 1 < len(rest) and rest[i + 1] in (quote, "\\"):
                i += 1
                current += rest[i]
            else:
                current += c
        elif c in " \t":
            if started:
                out.append(current)
                current, started = "", False
        elif c == "#" and not started:
            break
        elif c in "\"'":
            quote, started = c, True
        elif c == "\\" and i + 1 < len(rest):
            i += 1
            current, started = current + rest[i], True
        else:
            current, started = current + c, True
        i += 1
    if quote:
        raise SshdConfigError(f"unterminated quote in: {text[:80]}")
    if started:
        out.append(current)
    return out


def seconds(value: str) -> int:
    """convtime(): `300`, `5m`, `1h30m` (units s, m, h, d, w, either case)."""
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise SshdConfigError(f"invalid time value {value!r}")
    return sum(int(n) * _TIME_UNITS[u.lower()] for n, u in parts)


def _normalise(key: str, args: list[str]) -> tuple[str, ...]:
    if not args:
        raise SshdConfigError(f"{key}: missing argument")
    if key in TIMES:
        return (str(seconds(args[0])),)
    if key == "permitrootlogin":
        value = args[0].lower()
        if value not in ("yes", "no", "prohibit-password", "without-password", "forced-commands-only"):
            raise SshdConfigError(f"unsupported PermitRootLogin value {args[0]!r}")
        return ("without-password" if value == "prohibit-password" else value,)
    if key in LISTS:
        return tuple(args)
    value = args[0]
    return (value.lower() if value.lower() in ("yes", "no") else value,)


def _pattern_list(value: str, patterns: str, lower: bool) -> int:
    """match_pattern_list(): 1 if a pattern matches and no negated one does, -1 if a negated one does, else 0."""
    value = value.lower() if lower else value
    positive = 0
    for p in patterns.split(","):
        negated = p.startswith("!")
        p = p[1:] if negated else p
        if fnmatch.fnmatchcase(value, p.lower() if lower else p):
            if negated:
                return -1
            positive = 1
    return positive


def _address_list(address: str, patterns: str) -> int:
    """addr_match_list(): CIDR or plain addresses (or wildcards), `!` negates; -2 for a malformed entry."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return 0
    positive = 0
    for p in patterns.split(","):
        negated = p.startswith("!")
        p = p[1:] if negated else p
        try:
            net = ipaddress.ip_network(p, strict=True)
            hit = addr.version == net.version and addr in net
        except ValueError:
            if "/" in p or not re.fullmatch(r"[0-9a-fA-F.:*?]+", p):
                return -2
            hit = fnmatch.fnmatchcase(address, p)
        if hit:
            if negated:
                return -1
            positive = 1
    return positive


def matches(args: list[str], conn: Connection | None) -> bool:
    """match_cfg_line(): every criterion must hold; without a connection (the global pass) only `all` does.
    A criterion `sshd -T -C` was not told (LocalAddress, LocalPort, RDomain here) does not match."""
    if not args:
        raise SshdConfigError("Match without criteria")
    if args[0].lower() == "all":
        if len(args) > 1:
            raise SshdConfigError("Match all takes no other criteria")
        return True
    if len(args) % 2:
        raise SshdConfigError(f"Match {args[-1]}: missing argument")
    result = True
    for attr, value in zip(args[::2], args[1::2], strict=True):
        attr = attr.lower()
        if attr not in ("user", "group", "host", "address", "localaddress", "localport", "rdomain"):
            raise SshdConfigError(f"unsupported Match attribute {attr}")
        if conn is None:
            result = False
        elif attr == "user":
            result &= _pattern_list(conn.user, value, False) == 1
        elif attr == "group":
            result &= any(_pattern_list(g, value, False) == 1 for g in conn.groups) and not any(
                _pattern_list(g, value, False) == -1 for g in conn.groups)
        elif attr == "host":
            result &= _pattern_list(conn.host or conn.address, value, True) == 1
        elif attr == "address":
            hit = _address_list(conn.address, value)
            if hit == -2:
                raise SshdConfigError(f"Match Address {value}: invalid address list")
            result &= hit == 1
        else:
            result = False
    return result


Resolver = Callable[[str], list[str]]


def parse(files: dict[str, list[str]], resolve: Resolver, conn: Connection | None, main: str = MAIN,
          ) -> tuple[dict[str, Setting], list[str]]:
    """One pass (the global pass when `conn` is None, else the connection's): {option: Setting} and the files read."""
    out: dict[str, Setting] = {}
    read: list[str] = []

    def walk(path: str, active: bool, never_match: bool, depth: int) -> None:
        if depth > 16:
            raise SshdConfigError(f"{path}: Include nested too deeply")
        if path not in files:
            raise SshdConfigError(f"{path} was not read")
        read.append(path)
        for number, text in enumerate(files[path], start=1):
            w = words(text)
            if not w:
                continue
            key, args = ALIASES.get(w[0].lower(), w[0].lower()), w[1:]
            if key == "match":
                active = False if never_match else matches(args, conn)
                continue
            if key == "include":
                if not args:
                    raise SshdConfigError(f"{path}:{number}: Include without a file")
                for pattern in args:
                    pattern = pattern if pattern.startswith(("/", "~")) else f"{SSHDIR}/{pattern}"
                    for included in resolve(pattern):  # the included file starts in this Match state
                        walk(included, active, never_match if conn is not None else never_match or not active,
                             depth + 1)
                continue  # and it ends there: this file's Match state is back
            if not active:
                continue
            line = Line(path, number, text)
            values = _normalise(key, args)
            if key in LISTS:
                before = out.get(key)
                out[key] = Setting((*(before.values if before else ()), *values), before.line if before else line)
            elif key not in out:
                out[key] = Setting(values, line)

    walk(main, conn is None, False, 0)
    return out, list(dict.fromkeys(read))


def parsed(label: str, files: dict[str, list[str]], resolve: Resolver, conn: Connection, main: str = MAIN,
           ) -> Effective:
    """sshd's configuration for `conn` by parsing: the global pass, then the connection's pass over it."""
    settings, read = parse(files, resolve, None, main)
    matched, _ = parse(files, resolve, conn, main)
    return Effective(label, conn, {**settings, **matched}, "parsed", tuple(read))


def resolver(files: dict[str, list[str]], expanded: set[str] | frozenset[str]) -> Resolver:
    """Files an Include pattern names, in glob(3)'s order. A pattern the host did not expand and no collected
    file matches was never read: judging without it would judge what the probe happened to collect."""
    def resolve(pattern: str) -> list[str]:
        found = sorted(p for p in files if fnmatch.fnmatchcase(p, pattern) and p.count("/") == pattern.count("/"))
        if not found and pattern not in expanded:
            raise SshdConfigError(f"Include {pattern}: the file was not collected")
        return found
    return resolve


# --- who may log in (auth.c: allowed_user) --------------------------------------------------------

def _user_pattern(user: str, address: str, pattern: str) -> bool:
    """match_user(): `user` or `user@host`, the host part an address list or a host pattern."""
    name, at, host = pattern.partition("@")
    if _pattern_list(user, name, False) != 1:
        return False
    if not at:
        return True
    hit = _address_list(address, host)
    return hit == 1 or (hit == -2 and _pattern_list(address, host, True) == 1)  # -2: a host name pattern


def admitted(eff: Effective, user: str, groups: tuple[str, ...]) -> tuple[bool, str]:
    """Whether sshd's access lists let `user` (member of `groups`) in on this connection, and the deciding list."""
    address = eff.connection.address
    deny_users, allow_users = eff.get("denyusers").values, eff.get("allowusers").values
    deny_groups, allow_groups = eff.get("denygroups").values, eff.get("allowgroups").values
    if any(_user_pattern(user, address, p) for p in deny_users):
        return False, "denyusers"
    if allow_users and not any(_user_pattern(user, address, p) for p in allow_users):
        return False, "allowusers"
    if deny_groups and any(_pattern_list(g, p, False) == 1 for g in groups for p in deny_groups):
        return False, "denygroups"
    if allow_groups and not any(_pattern_list(g, p, False) == 1 for g in groups for p in allow_groups):
        return False, "allowgroups"
    return True, ""
