"""The host checks: one definition each, a pure evaluation of collected evidence against parameters.

A check registers with model.check: the kind of target it reads (`linux` here; the device checks
register theirs in the same registry), whether the remediation playbook can fix it, and
`evaluate(evidence, params)` returning a `CheckVerdict`: status, the evidence lines that decided it
(file:line or an output excerpt) and a one-line summary. Thresholds are never written here: they
come from the catalog's parameters as overridden by the profile. Both the fleet path and the
testinfra path call these functions.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from audit.baseline import pam as pam_stack
from audit.baseline import shell
from audit.baseline.evidence import PAM_AUTH, PAM_PASSWORD, PROFILE_FILES, Evidence, Line, logrotate_days
from audit.baseline.model import CheckVerdict, check, failed, needs_evidence, passed
from audit.baseline.pam import PamLine
from audit.baseline.sshd import Effective
from audit.baseline.sshd import admitted as sshd_admitted


def _searched(ev: Evidence, *patterns: str) -> list[str]:
    """Evidence of an absence: which files were read (and found without the setting)."""
    files = [path for pattern in patterns for path in ev.paths(pattern)]
    if files:
        return [f"searched, no match: {', '.join(files)}"]
    return [f"none of these files exists: {', '.join(patterns)}"]


def _procs(ev: Evidence) -> list[str]:
    names = sorted(ev.processes())
    return [f"processes running ({len(names)}): {', '.join(names[:25])}{' …' if len(names) > 25 else ''}"]


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"-?\d+", value.strip()) else None


def _nologin(shell: str, p: dict[str, Any]) -> bool:
    return shell in p["nologin_shells"]


def _interactive(ev: Evidence, p: dict[str, Any]) -> list[tuple[Line, list[str]]]:
    """Accounts people log in with: uid >= UID_MIN, a login shell, a usable password or none set."""
    uid_min = ev.uid_min(p["uid_min"])
    out = []
    for line, f in ev.passwd:
        uid = _int(f[2])
        if uid is None or uid < uid_min or uid == 65534 or _nologin(f[6], p):
            continue
        if ev.shadow.get(f[0], {}).get("status") == "locked":
            continue
        out.append((line, f))
    return out


# --- 8.1.4.1 identification and authentication ---------------------------------------------------

@check("accounts.unique")
def accounts_unique(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    names = Counter(f[0] for _, f in ev.passwd)
    uids = Counter(f[2] for _, f in ev.passwd)
    bad = [line.cite() for line, f in ev.passwd if names[f[0]] > 1 or uids[f[2]] > 1]
    empty = [f"/etc/shadow:{s['line']}: {user}: empty password field" for user, s in sorted(ev.shadow.items())
             if s["status"] == "empty"]
    if not ev.passwd:
        return needs_evidence("/etc/passwd could not be read")
    if bad or empty:
        return failed(f"{len(bad)} accounts share a name or UID, {len(empty)} have no password", bad + empty)
    return passed(f"{len(ev.passwd)} accounts, names and UIDs unique, no empty password")


def _pwquality(ev: Evidence) -> tuple[dict[str, str], list[str]]:
    """libpwquality's settings in the order its source reads them (1.4.5, src/settings.c
    pwquality_read_config(): the `*.conf` files of pwquality.conf.d first, sorted by name with strcmp,
    then pwquality.conf itself), each setting's last line winning: pwquality.conf has the last word."""
    settings: dict[str, tuple[str, Line]] = {}
    for path in (*sorted(ev.paths("/etc/security/pwquality.conf.d/*.conf")), "/etc/security/pwquality.conf"):
        settings.update(ev.conf(path))
    return {k: v for k, (v, _) in settings.items()}, [line.cite() for _, line in settings.values()]


@check("password.complexity", fixable=True, params=("password_min_length", "password_min_classes"))
def password_complexity(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    files = ev.pam_files(PAM_PASSWORD)
    lines = [x for x in ev.pam(*files) if x.type == "password" and x.module in ("pam_pwquality", "pam_cracklib")]
    if not lines:
        return failed(f"no pam_pwquality or pam_cracklib in the password stack ({', '.join(files)})",
                      [f"{f}: present" if ev.has(f) else f"{f}: missing" for f in files])
    module = lines[0]
    conf, cited = _pwquality(ev) if module.module == "pam_pwquality" else ({}, [])
    settings = {**conf, **module.args}  # pam_pwquality.c sets its arguments after reading the files
    default_len = 8 if module.module == "pam_pwquality" else 9  # libpwquality's and cracklib's own defaults
    minlen = _int(settings.get("minlen")) or default_len
    credits = [k for k in ("dcredit", "ucredit", "lcredit", "ocredit") if (_int(settings.get(k)) or 0) < 0]
    classes = max(_int(settings.get("minclass")) or 0, len(credits))
    evidence = [x.line.cite() for x in lines] + cited
    summary = f"{module.module}: minlen {minlen}, {classes} character classes required"
    if minlen < p["password_min_length"] or classes < p["password_min_classes"]:
        needs = f" (needs minlen >= {p['password_min_length']}, >= {p['password_min_classes']} classes)"
        return failed(summary + needs, evidence)
    return passed(summary, evidence)


@check("password.aging", fixable=True, params=("pass_max_days", "pass_min_days", "pass_warn_age"))
def password_aging(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    defs = ev.login_defs()
    problems, evidence = [], []
    for key, limit, worse in (("PASS_MAX_DAYS", p["pass_max_days"], lambda v, lim: v > lim),
                              ("PASS_MIN_DAYS", p["pass_min_days"], lambda v, lim: v < lim),
                              ("PASS_WARN_AGE", p["pass_warn_age"], lambda v, lim: v < lim)):
        line = defs.get(key)
        value = _int(line.text) if line else None
        if line:
            evidence.append(f"{line.path}:{line.number}: {key} {line.text}")
        if value is None or worse(value, limit):
            problems.append(f"{key} {value if value is not None else 'unset'}")
    for _, f in _interactive(ev, p):
        s = ev.shadow.get(f[0])
        if s and s["status"] == "hash" and (s["max"] is None or s["max"] > p["pass_max_days"]):
            problems.append(f"{f[0]} max {s['max']}")
            evidence.append(f"/etc/shadow:{s['line']}: {f[0]} maximum password age {s['max']}")
    if problems:
        return failed("; ".join(problems), evidence)
    return passed(f"max {p['pass_max_days']} / min {p['pass_min_days']} / warn {p['pass_warn_age']} days met", evidence)


def _sshd_cites(views: list[Effective], *keys: str) -> list[str]:
    return list(dict.fromkeys(v.cite(k) for v in views for k in keys))


@check("ssh.empty_passwords", fixable=True)
def ssh_empty_passwords(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    bad = [v for v in ev.sshd if v.get("permitemptypasswords").value == "yes"]
    if bad:
        return failed(f"sshd accepts empty passwords {bad[0].label}", _sshd_cites(bad, "permitemptypasswords"))
    return passed("PermitEmptyPasswords no for every connection checked", _sshd_cites(ev.sshd, "permitemptypasswords"))


@check("trust.rhosts")
def trust_rhosts(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    found = (ev.facts.get("runtime") or {}).get("trust", [])
    if found:
        return failed(f"trust files present: {', '.join(found)}", found)
    return passed("no .rhosts, .shosts, .netrc or hosts.equiv")


LOCKOUT_MODULES = ("pam_faillock", "pam_tally2", "pam_tally")


def _flatten(items: tuple[pam_stack.Item, ...]) -> list[PamLine]:
    return [y for x in items for y in (_flatten(x.items) if isinstance(x, pam_stack.Substack) else [x])]


def _lockout_stacks(ev: Evidence) -> list[tuple[str, tuple[pam_stack.Item, ...]]]:
    """The auth stacks a login runs: the sshd and login services where present, else the family's auth files."""
    services = [f for f in ("/etc/pam.d/sshd", "/etc/pam.d/login") if ev.has(f)]
    return [(f, ev.pam_stack(f, "auth")) for f in services or ev.pam_files(PAM_AUTH) if ev.has(f)]


def _stack_fault(path: str, stack: tuple[pam_stack.Item, ...]) -> tuple[str, list[str]] | None:
    """Why this stack does not lock accounts, run as libpam runs it (pam.py), or None when it does."""
    lines = _flatten(stack)
    modules = [x.line.cite() for x in lines if x.module in LOCKOUT_MODULES]
    if not modules:
        return f"{path}: no pam_faillock or pam_tally2 in its auth stack", [f"{path}: searched, no lockout module"]
    locked = pam_stack.run(stack, pam_stack.locked_account)
    if locked.success:
        ends = f": {locked.decided_by.line.cite()} ends the stack first" if locked.decided_by else ""
        return (f"{path}: a locked account with the right password still logs in{ends}",
                [*([locked.decided_by.line.cite()] if locked.decided_by else []), *modules])
    wrong = pam_stack.run(stack, pam_stack.wrong_password)
    if not any(pam_stack.counts_failures(x) for x in wrong.ran):
        ends = f": {wrong.decided_by.line.cite()} ends the stack first" if wrong.decided_by else ""
        return (f"{path}: a wrong password is never counted (no pam_faillock authfail or pam_tally2 runs){ends}",
                [*([wrong.decided_by.line.cite()] if wrong.decided_by else []), *modules])
    right = pam_stack.run(stack, pam_stack.right_password)
    if not right.success:
        ends = f": {right.decided_by.line.cite()} ends it" if right.decided_by else ""
        return (f"{path}: the right password on an account that is not locked is refused, so nobody can log in "
                f"(a jump lands on pam_deny?){ends}", [*([right.decided_by.line.cite()] if right.decided_by else []),
                                                     *modules])
    return None


@check("login.lockout", fixable=True, params=("lockout_deny", "lockout_unlock_time"))
def login_lockout(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    stacks = _lockout_stacks(ev)
    lines = [x for _, stack in stacks for x in _flatten(stack)]
    faillock = [x for x in lines if x.module == "pam_faillock"]
    tally = [x for x in lines if x.module in ("pam_tally2", "pam_tally")]
    if not faillock and not tally:
        files = (*ev.pam_files(PAM_AUTH), "/etc/pam.d/sshd", "/etc/pam.d/login")
        return failed("no pam_faillock or pam_tally2 in the auth stack", _searched(ev, *files))
    for path, stack in stacks:
        fault = _stack_fault(path, stack)
        if fault:
            return failed(*fault)
    if faillock:  # Linux-PAM >= 1.5 has only this one: read it first
        conf = {k: v for k, v in ev.conf("/etc/security/faillock.conf").items() if k in ("deny", "unlock_time")}
        settings = {k: value for k, (value, _) in conf.items()}
        for x in faillock:  # the module's arguments override faillock.conf
            settings.update({k: v for k, v in x.args.items() if k in ("deny", "unlock_time")})
        deny, unlock = _int(settings.get("deny")), _int(settings.get("unlock_time"))
        deny = 3 if deny is None else deny  # pam_faillock's own defaults: deny 3, unlock_time 600
        unlock = 600 if unlock is None else unlock
        evidence = list(dict.fromkeys(x.line.cite() for x in faillock)) + [line.cite() for _, line in conf.values()]
        name = "pam_faillock"
    else:
        args = {k: v for x in tally for k, v in x.args.items()}
        deny, unlock = _int(args.get("deny")) or 0, _int(args.get("unlock_time")) or 0  # pam_tally2: no deny, no lock
        evidence, name = list(dict.fromkeys(x.line.cite() for x in tally)), tally[0].module
    summary = f"{name}: deny {deny}, unlock_time {unlock} s"
    if deny == 0:
        return failed(f"{summary}: deny 0 never locks an account", evidence)
    if deny > p["lockout_deny"] or (0 < unlock < p["lockout_unlock_time"]):
        return failed(summary + f" (needs deny <= {p['lockout_deny']}, unlock_time >= {p['lockout_unlock_time']})",
                      evidence)
    return passed(summary, evidence)


def _login_shells(ev: Evidence, p: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The login shells' own answers (probes.LoginShells) for root and the interactive accounts."""
    users = {"root", *(f[0] for _, f in _interactive(ev, p))}
    return {u: v for u, v in (ev.facts.get("shells") or {}).items() if u in users}


def _shell_cite(user: str, v: dict[str, str], what: str) -> str:
    return f"{v['shell']} -lc (login shell of {user}): {what}"


@check("session.tmout", fixable=True, params=("idle_timeout",))
def session_tmout(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    reading = shell.tmout(ev.lines(*PROFILE_FILES))
    where = [line.cite() for _, line in reading.seen] + [f"{x.cite()} (no effect: TMOUT is readonly)"
                                                         for x in reading.ignored]
    shells = _login_shells(ev, p)
    if shells:  # bash's own answer
        values = {u: _int(v["tmout"]) for u, v in shells.items()}
        evidence = [_shell_cite(u, v, f"TMOUT={v['tmout']}") for u, v in sorted(shells.items())] + where
        bad = sorted(u for u, t in values.items() if not t or t > p["idle_timeout"])
        if bad:
            return failed(f"TMOUT {shells[bad[0]]['tmout']} in {bad[0]}'s login shell (needs 1..{p['idle_timeout']})",
                          evidence)
        return passed(f"TMOUT {max(values.values())} s in every login shell checked", evidence)
    if reading.uncertain:
        return needs_evidence("TMOUT is set under a condition only the shell can evaluate: show `bash -lc 'echo "
                              "$TMOUT'` for the administrators", [x.cite() for x in reading.uncertain] + where)
    if reading.value is None:
        return failed("TMOUT is not set in /etc/profile, /etc/profile.d, /etc/bashrc or /etc/bash.bashrc",
                      where or _searched(ev, *PROFILE_FILES))
    value = _int(reading.value)
    if not value or value > p["idle_timeout"]:
        return failed(f"TMOUT {reading.value} s (needs 1..{p['idle_timeout']})", where)
    return passed(f"TMOUT {value} s", where)


@check("ssh.idle", fixable=True, params=("idle_timeout", "require_ssh_client_alive"))
def ssh_idle(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    evidence = _sshd_cites(ev.sshd, "clientaliveinterval", "clientalivecountmax")
    if not p["require_ssh_client_alive"]:
        return passed("not required by the profile", evidence)
    limits = []
    for v in ev.sshd:
        interval, count = _int(v.get("clientaliveinterval").value) or 0, _int(v.get("clientalivecountmax").value)
        why = f"sshd idle limit {interval} x {count} = {interval * (count or 0)} s {v.label}"
        if not interval:
            return failed(f"sshd ClientAliveInterval is 0 (disabled) {v.label}",
                          _sshd_cites([v], "clientaliveinterval"))
        if not count:  # OpenSSH >= 8.2: 0 sends keepalives and never disconnects
            return failed(f"sshd ClientAliveCountMax 0 never disconnects an idle session {v.label}",
                          _sshd_cites([v], "clientaliveinterval", "clientalivecountmax"))
        if interval * count > p["idle_timeout"]:
            return failed(f"{why} (needs <= {p['idle_timeout']})",
                          _sshd_cites([v], "clientaliveinterval", "clientalivecountmax"))
        limits.append(interval * count)
    return passed(f"sshd idle limit at most {max(limits)} s for every connection checked", evidence)


def _listeners(ev: Evidence, ports: list[int] | set[int], exposed_only: bool = False) -> list[dict[str, Any]]:
    out = []
    for s in ev.listening():
        if s["port"] in ports and not (exposed_only and (s["address"].startswith("127.") or s["address"] == "::1")):
            out.append(s)
    return out


def _cite_socket(s: dict[str, Any]) -> str:
    owner = f" ({s['process']})" if s.get("process") else ""
    return f"ss: {s['proto']} {s['address']}:{s['port']} listening{owner}"


def _sshd_running(ev: Evidence) -> tuple[bool, list[str]]:
    ports = {_int(x) for v in ev.sshd for x in v.get("port").values} - {None}
    listening = [s for s in ev.listening() if s["proto"] == "tcp" and s["port"] in ports]
    running = "sshd" in ev.processes() or bool(ev.running(["sshd"])) or bool(listening)
    return running, [_cite_socket(s) for s in listening] or (["process: sshd"] if running else [])


@check("remote.ssh_only", params=("plaintext_admin_ports",))
def remote_ssh_only(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    running, evidence = _sshd_running(ev)
    plain = _listeners(ev, set(p["plaintext_admin_ports"]))
    daemons = sorted(ev.processes() & {"in.telnetd", "telnetd", "in.rlogind", "in.rshd", "in.rexecd"})
    if plain or daemons:
        return failed("plaintext remote administration is open",
                      [_cite_socket(s) for s in plain] + [f"process: {d}" for d in daemons])
    if not running:
        return failed("sshd is not running", _procs(ev))
    return passed("administration over SSH only", evidence)


@check("remote.second_factor", params=("second_factor_modules",))
def remote_second_factor(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    lines = [x for x in ev.pam("/etc/pam.d/*") if x.module in p["second_factor_modules"]]
    libs = (ev.facts.get("runtime") or {}).get("mfa", [])
    if lines:
        return passed(f"second factor: {lines[0].module}", [x.line.cite() for x in lines])
    return needs_evidence("no second-factor PAM module configured; show the bastion host's (堡垒机) multi-factor login",
                          [f"installed, not configured: {x}" for x in libs])


# --- 8.1.4.2 access control ------------------------------------------------------------------------

@check("accounts.uid0")
def accounts_uid0(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    extra = [line.cite() for line, f in ev.passwd if f[2] == "0" and f[0] != "root"]
    if extra:
        return failed(f"{len(extra)} accounts besides root have UID 0", extra)
    return passed("only root has UID 0")


@check("accounts.system_shells", params=("uid_min", "nologin_shells", "system_shell_exceptions"))
def accounts_system_shells(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    uid_min = ev.uid_min(p["uid_min"])
    bad = []
    for line, f in ev.passwd:
        uid = _int(f[2])
        if uid is None or uid == 0 or uid >= uid_min or _nologin(f[6], p):
            continue
        locked = ev.shadow.get(f[0], {}).get("status") in ("locked", None)
        if p["system_shell_exceptions"].get(f[0]) == f[6] and locked:
            continue
        bad.append(line.cite())
    if bad:
        return failed(f"{len(bad)} system accounts (uid < {uid_min}) have a login shell", bad)
    return passed(f"system accounts (uid < {uid_min}) cannot log in")


@check("accounts.defaults", params=("default_accounts", "nologin_shells", "system_shell_exceptions"))
def accounts_defaults(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    bad, present = [], []
    for line, f in ev.passwd:
        if f[0] not in p["default_accounts"]:
            continue
        present.append(f[0])
        s = ev.shadow.get(f[0], {})
        shell_ok = _nologin(f[6], p) or p["system_shell_exceptions"].get(f[0]) == f[6]
        if s.get("status") not in ("locked",) or not shell_ok:
            why = "password usable" if s.get("status") in ("hash", "empty") else ""
            why = ", ".join(x for x in (why, "" if shell_ok else f"shell {f[6]}") if x) or "not locked"
            bad.append(f"{line.cite()} ({why})")
    if bad:
        return failed(f"{len(bad)} default accounts are neither removed nor locked", bad)
    return passed(f"default accounts removed or locked ({', '.join(present) or 'none present'})")


@check("accounts.dormant", params=("dormant_days", "uid_min", "nologin_shells"))
def accounts_dormant(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    epoch = (ev.facts.get("clock") or {}).get("epoch")
    if not epoch:
        return needs_evidence("the host's clock could not be read")
    now = datetime.fromtimestamp(epoch, UTC)
    last = (ev.facts.get("lastlog") or {}).get("users_last", {})
    users = _interactive(ev, p)
    bad = []
    for line, f in users:
        seen = last.get(f[0])
        days = (now - datetime.fromisoformat(seen)).days if seen else None
        if days is None or days > p["dormant_days"]:
            bad.append(f"{line.cite()} (last login: {'never' if days is None else f'{days} days ago'})")
    if bad:
        return failed(f"{len(bad)} interactive accounts unused for over {p['dormant_days']} days", bad)
    return passed(f"{len(users)} interactive accounts, all used within {p['dormant_days']} days",
                  [f"lastlog: {f[0]} {last.get(f[0])}" for _, f in users])


_NOPASSWD_ALL = re.compile(r"NOPASSWD\s*:\s*ALL\s*$")


@check("sudo.nopasswd")
def sudo_nopasswd(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    lines = list(ev.lines("/etc/sudoers", "/etc/sudoers.d/*"))
    bad = [x.cite() for x in lines if _NOPASSWD_ALL.search(x.text) and x.text.split()[0] not in ("root", "Defaults")]
    if bad:
        return failed("password-less sudo to every command for ordinary users", bad)
    grants = [x.cite() for x in lines if re.search(r"\bALL\s*=", x.text) and not x.text.startswith("Defaults")]
    return passed("no NOPASSWD: ALL grant", grants)


@check("ssh.root_login", fixable=True, params=("permit_root_login",))
def ssh_root_login(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    bad = [v for v in ev.sshd if v.get("permitrootlogin").value not in p["permit_root_login"]]
    if bad:
        return failed(f"PermitRootLogin {bad[0].get('permitrootlogin').value} {bad[0].label}: root may log in "
                      "with a password", _sshd_cites(bad, "permitrootlogin"))
    values = sorted({v.get("permitrootlogin").value for v in ev.sshd})
    return passed(f"PermitRootLogin {', '.join(values)} for every connection checked",
                  _sshd_cites(ev.sshd, "permitrootlogin"))


@check("files.owners")
def files_owners(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    modes = ev.facts.get("modes") or {}
    watched = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/ssh/sshd_config", "/etc/sudoers")
    bad = [f"stat: {path} owner uid {m['uid']}" for path, m in modes.items() if path in watched and m["uid"] != 0]
    if bad:
        return failed("security files not owned by root", bad)
    return passed("security policy files owned by root",
                  [f"stat: {path} uid {m['uid']} mode {m['mode']}" for path, m in modes.items() if path in watched])


@check("files.modes", fixable=True, params=("file_modes",))
def files_modes(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    modes = ev.facts.get("modes") or {}
    bad, good = [], []
    for path, allowed in p["file_modes"].items():
        m = modes.get(path)
        if m is None:
            continue
        (good if m["mode"] in [str(a).rjust(3, "0") for a in allowed] else bad).append(
            f"stat: {path} mode {m['mode']} (allowed {', '.join(map(str, allowed))})")
    if bad:
        return failed(f"{len(bad)} files have a wider mode than allowed", bad)
    return passed(f"{len(good)} files with the required modes", good)


@check("umask", fixable=True, params=("umask",))
def umask(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    required = int(str(p["umask"]), 8)
    reading = shell.umask(ev.lines(*PROFILE_FILES))
    found = [(int(v, 8), line.cite()) for v, line in reading.seen]
    defs = ev.login_defs().get("UMASK")
    if defs and re.fullmatch(r"0?[0-7]{3}", defs.text):  # pam_umask's and useradd's
        found.append((int(defs.text, 8), Line(defs.path, defs.number, f"UMASK {defs.text}").cite()))
    shells = _login_shells(ev, p)
    if shells:  # bash's own answer, and login.defs
        found = [(int(v["umask"], 8), _shell_cite(u, v, f"umask {v['umask']}")) for u, v in sorted(shells.items())] \
            + found[len(reading.seen):]
    elif reading.uncertain:
        return needs_evidence("umask is set under a condition only the shell can evaluate: show `bash -lc umask` for "
                              "the administrators", [x.cite() for x in reading.uncertain] + [c for _, c in found])
    if not found:
        return failed("no umask set in the login files or login.defs", _searched(ev, *PROFILE_FILES, "/etc/login.defs"))
    evidence = [c for _, c in found]
    weak = [v for v, _ in found if v & required != required]
    if weak:
        return failed(f"umask {weak[0]:03o} is wider than {p['umask']}", evidence)
    return passed(f"umask {found[0][0]:03o}", evidence)


@check("mac.enforcing", params=("mac_required",))
def mac_enforcing(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    rt = ev.facts.get("runtime") or {}
    state = rt.get("getenforce") or {"1": "Enforcing", "0": "Permissive"}.get(rt.get("selinuxfs", ""), "")
    if state:
        if state.lower() == "enforcing":
            return passed("SELinux enforcing", [f"getenforce: {state}"])
        return failed(f"SELinux {state}", [f"getenforce: {state}"])
    if rt.get("apparmor", "").upper().startswith("Y"):
        profiles = _int(rt.get("apparmor_profiles")) or 0
        if profiles:
            return passed(f"AppArmor enabled, {profiles} profiles loaded", [f"apparmor: {profiles} profiles"])
        return failed("AppArmor enabled but no profile loaded", ["apparmor: 0 profiles"])
    conf = ev.kv("/etc/selinux/config", sep="=").get("SELINUX")
    if conf and conf.text.lower() == "enforcing":
        return passed("SELinux configured enforcing (runtime state not readable)", [conf.cite()])
    if conf:
        return failed(f"SELinux configured {conf.text}", [conf.cite()])
    return failed("neither SELinux nor AppArmor is enabled", ["getenforce, /sys/fs/selinux, /sys/module/apparmor: "
                                                              "not present", *_searched(ev, "/etc/selinux/config")])


# --- 8.1.4.3 security audit ---------------------------------------------------------------------

@check("audit.auditd", params=("audit_daemons",))
def audit_auditd(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    running = ev.running(p["audit_daemons"])
    if not running:
        return failed("auditd is not running", _procs(ev))
    enabled = (ev.facts.get("services") or {}).get("enabled", [])
    if ev.systemd and not any(u.startswith(tuple(running)) for u in enabled):
        return failed(f"{running[0]} runs but is not enabled at boot", [f"systemctl: {running[0]} not enabled"])
    return passed(f"{running[0]} running", [f"process: {x}" for x in running])


def _audit_rule_lines(ev: Evidence) -> list[Line]:
    return [x for x in ev.lines("/etc/audit/audit.rules", "/etc/audit/rules.d/*.rules")
            if re.match(r"^\s*-[aw]\s", x.text)]


@check("audit.rules", fixable=True)
def audit_rules(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    loaded = [x for x in (ev.facts.get("runtime") or {}).get("auditctl", []) if re.match(r"^-[aw]\s", x)]
    if loaded:
        return passed(f"{len(loaded)} audit rules loaded", [f"auditctl -l: {x}" for x in loaded[:10]])
    files = _audit_rule_lines(ev)
    if files:
        return passed(f"{len(files)} audit rules configured (auditctl -l not readable)", [x.cite() for x in files[:10]])
    return failed("no audit rules loaded or configured",
                  [f"auditctl -l: {x}" for x in (ev.facts.get("runtime") or {}).get("auditctl", [])[:3]]
                  + _searched(ev, "/etc/audit/audit.rules", "/etc/audit/rules.d/*.rules"))


@check("audit.syslog", params=("log_daemons",))
def audit_syslog(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    running = ev.running(p["log_daemons"])
    if running:
        return passed(f"{running[0]} running", [f"process: {running[0]}"])
    storage = ev.kv("/etc/systemd/journald.conf", sep="=").get("Storage")
    for path in ev.paths("/etc/systemd/journald.conf.d/*.conf"):
        storage = ev.kv(path, sep="=").get("Storage", storage)
    if storage and storage.text == "persistent" and ev.running(["systemd-journald"]):
        return passed("journald with persistent storage", [storage.cite()])
    return failed("no system logger running (rsyslog, syslog-ng or persistent journald)",
                  ([storage.cite()] if storage else []) + _procs(ev))


@check("time.sync", params=("time_daemons",))
def time_sync(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    running = ev.running(p["time_daemons"])
    rt = ev.facts.get("runtime") or {}
    servers = [x for x in ev.lines("/etc/chrony.conf", "/etc/chrony/chrony.conf", "/etc/ntp.conf")
               if re.match(r"^\s*(server|pool|peer)\s", x.text)]
    evidence = [f"process: {x}" for x in running] + [x.cite() for x in servers[:3]]
    if not running:
        return failed("no time synchronisation daemon running", evidence + _procs(ev))
    if rt.get("chrony") and "normal" not in rt["chrony"].lower():
        return failed(f"chrony: {rt['chrony']}", [*evidence, f"chronyc tracking: {rt['chrony']}"])
    if rt.get("timedatectl") == "NTPSynchronized=no":
        return failed("the clock is not synchronised", [*evidence, "timedatectl: NTPSynchronized=no"])
    if not servers and running != ["systemd-timesyncd"]:
        return failed(f"{running[0]} runs without a configured server", evidence)
    return passed(f"{running[0]} synchronising", evidence)


@check("history.timestamps", fixable=True)
def history_timestamps(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    found = [x for x in ev.lines(*PROFILE_FILES) if re.match(r"^\s*(export\s+)?HISTTIMEFORMAT=\S", x.text)]
    if found:
        return passed("shell history carries timestamps", [x.cite() for x in found])
    return failed("HISTTIMEFORMAT is not set: shell history has no time", _searched(ev, *PROFILE_FILES))


def _protected_logs(ev: Evidence, p: dict[str, Any]) -> list[str]:
    logs = p["protected_logs"]
    return list(logs.get(ev.family, [])) if ev.family else [x for v in logs.values() for x in v]


@check("logs.permissions", fixable=True, params=("protected_logs",))
def logs_permissions(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    modes = ev.facts.get("modes") or {}
    present = [(path, modes[path]) for path in _protected_logs(ev, p) if path in modes]
    bad = [f"stat: {path} mode {m['mode']} (world-readable)" for path, m in present if int(m["mode"][-1]) & 4]
    if bad:
        return failed("security logs are world-readable", bad)
    if not present:
        return needs_evidence("none of the security logs exists", [f"missing: {x}" for x in _protected_logs(ev, p)])
    return passed(f"{len(present)} security logs not world-readable",
                  [f"stat: {x} mode {m['mode']}" for x, m in present])


@check("logs.retention", fixable=True, params=("log_retention_days", "protected_logs"))
def logs_retention(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    targets = [x for x in _protected_logs(ev, p) if not x.startswith("/var/log/audit/")]  # auditd rotates its own
    kept = logrotate_days(ev, targets)
    bad, evidence = [], []
    for target, (days, lines) in kept.items():
        evidence += [f"{x.cite()} ({target})" for x in lines]
        if days is None or days < p["log_retention_days"]:
            bad.append(f"{target}: {'no rotation with a count' if days is None else f'{days} days'}")
    if bad:
        return failed(f"logs kept less than {p['log_retention_days']} days: " + "; ".join(bad), evidence)
    return passed(f"logs kept at least {min(d for d, _ in kept.values())} days", evidence)


_FORWARD = re.compile(r"^\s*[^#\s]+\s+@@?\[?[\w.:-]+|type\s*=\s*\"omfwd\"|^\s*destination\s.*\b(network|tcp|udp)\s*\(")


@check("logs.remote")
def logs_remote(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    found = [x for x in ev.lines("/etc/rsyslog.conf", "/etc/rsyslog.d/*.conf", "/etc/syslog-ng/syslog-ng.conf")
             if _FORWARD.search(x.text)]
    if found:
        return passed("logs forwarded to a log server", [x.cite() for x in found])
    return failed("logs are not forwarded to a remote log server",
                  _searched(ev, "/etc/rsyslog.conf", "/etc/rsyslog.d/*.conf", "/etc/syslog-ng/syslog-ng.conf"))


@check("audit.protected", params=("audit_immutable",))
def audit_protected(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    loaded = (ev.facts.get("runtime") or {}).get("auditctl", [])
    locked = [f"auditctl -l: {x}" for x in loaded if "enabled 2" in x] + \
        [x.cite() for x in ev.lines("/etc/audit/audit.rules", "/etc/audit/rules.d/*.rules")
         if re.match(r"^\s*-e\s+2\b", x.text)]
    if locked:
        return passed("audit rules locked until reboot (-e 2)", locked)
    if p["audit_immutable"]:
        return failed("audit rules are not locked (-e 2)", _searched(ev, "/etc/audit/audit.rules",
                                                                     "/etc/audit/rules.d/*.rules"))
    return needs_evidence("show that only authorised administrators can stop auditd or change its rules",
                          [x.cite() for x in _audit_rule_lines(ev)[:3]])


# --- 8.1.4.4 intrusion prevention -----------------------------------------------------------------

@check("packages.risky", params=("risky_packages",))
def packages_risky(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    rt = ev.facts.get("runtime") or {}
    if rt.get("pkgdb", "none") == "none":
        return needs_evidence("no package database could be read (dpkg or rpm)")
    found = [x for x in rt.get("pkg", []) if any(x.startswith(name) for name in p["risky_packages"])]
    if found:
        return failed(f"high-risk packages installed: {', '.join(found)}", [f"{rt['pkgdb']}: {x}" for x in found])
    return passed(f"none of {len(p['risky_packages'])} high-risk packages installed ({rt['pkgdb']})")


@check("ports.risky", params=("risky_ports", "declared_ports"))
def ports_risky(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    allowed = set(p["declared_ports"]) | set(p.get("_declared_services", []))
    found = [s for s in _listeners(ev, set(p["risky_ports"]) - allowed, exposed_only=True)]
    if found:
        return failed(f"high-risk ports listening: {', '.join(str(s['port']) for s in found)}",
                      [_cite_socket(s) for s in found])
    return passed(f"no undeclared high-risk port among {len(ev.listening())} listening sockets")


@check("mgmt.restricted")
def mgmt_restricted(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    outside = ev.sshd[0]  # the connection from outside the management networks
    users = ["root", *(f[0] for _, f in _interactive(ev, p) if f[0] != "root")]
    let_in = [u for u in users if sshd_admitted(outside, u, ev.groups_of(u))[0]]
    lists = ("allowusers", "denyusers", "allowgroups", "denygroups")
    evidence = [] if let_in else [f"sshd admits none of {', '.join(users)} {outside.label}",
                                  *(outside.cite(k) for k in lists if outside.get(k).values)]
    allow = [x for x in ev.lines("/etc/hosts.allow") if re.match(r"^\s*(sshd|ALL)\s*:", x.text)]
    deny = [x for x in ev.lines("/etc/hosts.deny") if re.match(r"^\s*(sshd|ALL)\s*:\s*ALL\b", x.text)]
    if allow and deny:
        evidence += [x.cite() for x in allow + deny]
    if evidence:
        return passed("management access limited by address or user", evidence)
    return failed("nothing on the host limits where SSH management comes from (a firewall outside the host "
                  "is evidence to attach)", [f"sshd admits {', '.join(let_in)} {outside.label}",
                                            *(outside.cite(k) for k in lists),
                                            *_searched(ev, "/etc/hosts.allow", "/etc/hosts.deny")])


@check("vuln.updates", params=("max_days_since_update",))
def vuln_updates(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    pk = ev.facts.get("packages") or {}
    epoch = (ev.facts.get("clock") or {}).get("epoch")
    if not pk.get("last_transaction") or not epoch:
        return needs_evidence("no package-manager history found: show the patch records")
    days = (datetime.fromtimestamp(epoch, UTC) - datetime.fromisoformat(pk["last_transaction"])).days
    evidence = [f"{pk['source']}: {pk['detail']}"]
    if days > p["max_days_since_update"]:
        return failed(f"last package update {days} days ago (policy: {p['max_days_since_update']})", evidence)
    return needs_evidence(f"last package update {days} days ago; pending security updates and test records need the "
                          "vulnerability scan report", evidence)


@check("ids.evidence")
def ids_evidence(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    agents = sorted(ev.processes() & {"ossec-agentd", "wazuh-agentd", "suricata", "snort", "osqueryd", "falco"})
    return needs_evidence("intrusion detection with alerting is shown by the IDS/HIDS console",
                          [f"process: {x}" for x in agents])


@check("malware.protection", params=("malware_processes", "integrity_databases"))
def malware_protection(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    procs = ev.running(p["malware_processes"])
    dbs = {path: t for path, t in ((ev.facts.get("runtime") or {}).get("integrity") or {}).items()
           if path in p["integrity_databases"] or "/clamav/" in path}
    evidence = [f"process: {x}" for x in procs] + [
        f"{path}: updated {datetime.fromtimestamp(t, UTC).date().isoformat()}" for path, t in sorted(dbs.items())]
    if procs or dbs:
        return passed("anti-malware or integrity monitoring present", evidence)
    return failed("no anti-malware process and no integrity database (AIDE) found",
                  [*_procs(ev), f"not found: {', '.join(p['integrity_databases'])}"])


@check("trusted.evidence")
def trusted_evidence(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    rt = ev.facts.get("runtime") or {}
    firmware = "UEFI" if rt.get("efi") else "BIOS or unknown"
    evidence = [f"firmware: {firmware}", *(f"tpm: {x}" for x in rt.get("tpm", []))]
    if rt.get("secureboot"):
        evidence.append(f"mokutil: {rt['secureboot']}")
    return needs_evidence("trusted verification needs the platform's trusted-computing evidence", evidence)


@check("crypto.transit")
def crypto_transit(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    running, evidence = _sshd_running(ev)
    plain = _listeners(ev, {21, 23, 512, 513, 514}, exposed_only=True)
    if plain:
        return failed("plaintext protocols open for administration or file transfer", [_cite_socket(s) for s in plain])
    if not running:
        return failed("sshd is not running", _procs(ev))
    return passed("administration and transfer over SSH", evidence)


@check("crypto.password_hashes", params=("strong_hash_schemes",))
def crypto_password_hashes(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    if not ev.shadow:
        return needs_evidence("/etc/shadow could not be read")
    weak = [f"/etc/shadow:{s['line']}: {user}: scheme {'DES' if s['scheme'] == 'des' else '$' + s['scheme'] + '$'}"
            for user, s in sorted(ev.shadow.items(), key=lambda x: x[1]["line"])
            if s["status"] == "hash" and s["scheme"] not in p["strong_hash_schemes"]]
    if weak:
        return failed(f"{len(weak)} passwords stored with a weak hash", weak)
    return passed("passwords stored as " + (", ".join(sorted({f"${s['scheme']}$" for s in ev.shadow.values()
                                                            if s["status"] == "hash"})) or "no password set"))


@check("backup.evidence")
def backup_evidence(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    jobs = [f"{c['file']}: {c['entry']}" for c in ev.facts.get("cron") or []
            if re.search(r"backup|rsync|dump|xtrabackup|tar\s|borg|restic", c["entry"], re.I)]
    return needs_evidence("backup, off-site copies and redundancy are shown by the backup system's records", jobs[:5])


@check("residual.evidence")
def residual_evidence(ev: Evidence, p: dict[str, Any]) -> CheckVerdict:
    return needs_evidence("clearing of released storage is shown by the vendor's statement or test report")
