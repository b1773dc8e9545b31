"""Reading a host's collected evidence: distribution family, files with line numbers, sshd, PAM, logrotate.

Pure functions over the facts the probes returned; nothing here talks to a host. Evidence lines
cite `path:line: text` so an assessor can open the file at the line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import replace
from functools import cached_property
from typing import Any

from audit.baseline import pam as pam_stack
from audit.baseline import sshd as sshd_config
from audit.baseline.pam import PamLine
from audit.baseline.source import Line

# The connection sshd is asked about when the inventory declares nothing (an address of TEST-NET-3, RFC 5737).
DEFAULT_CONNECTION = ("from outside the management networks (203.0.113.7)",
                      sshd_config.Connection("root", "203.0.113.7"))

# os-release ID (then each ID_LIKE word) -> family. Kylin is both (V10 is RPM based, V4 Ubuntu based):
# its ID_LIKE decides, so it is not in this table.
FAMILY_BY_ID = {
    "rhel": "redhat", "centos": "redhat", "fedora": "redhat", "rocky": "redhat", "almalinux": "redhat",
    "ol": "redhat", "anolis": "redhat", "openeuler": "redhat", "euleros": "redhat", "opencloudos": "redhat",
    "tencentos": "redhat", "alinux": "redhat", "neokylin": "redhat", "amzn": "redhat",
    "debian": "debian", "ubuntu": "debian", "uos": "debian", "deepin": "debian", "linuxmint": "debian",
}

# PAM files of each family: where the password and auth stacks live.
PAM_PASSWORD = {"redhat": ("/etc/pam.d/system-auth", "/etc/pam.d/password-auth"),
                "debian": ("/etc/pam.d/common-password",)}
PAM_AUTH = {"redhat": ("/etc/pam.d/system-auth", "/etc/pam.d/password-auth"),
            "debian": ("/etc/pam.d/common-auth",)}
PROFILE_FILES = ("/etc/profile", "/etc/profile.d/*.sh", "/etc/bashrc", "/etc/bash.bashrc")


def family_of(os_id: str, id_like: list[str] | tuple[str, ...], declared: str | None = None) -> str | None:
    """redhat or debian: by ID, then by ID_LIKE, then by what the inventory declares."""
    for word in (os_id.lower(), *(w.lower() for w in id_like)):
        if word in FAMILY_BY_ID:
            return FAMILY_BY_ID[word]
    return declared


class Evidence:
    """One host's facts, with the readings every check shares."""

    def __init__(self, facts: dict[str, Any], declared_family: str | None = None) -> None:
        self.facts = facts
        os_ = facts.get("os") or {}
        self.family = family_of(os_.get("id", ""), os_.get("id_like", []), declared_family)

    # --- files ---------------------------------------------------------------------------------

    @property
    def files(self) -> dict[str, list[str]]:
        return self.facts.get("config") or {}

    def has(self, path: str) -> bool:
        return path in self.files

    def paths(self, pattern: str) -> list[str]:
        """Collected files matching a path or glob, in the order the shell would expand them."""
        if any(c in pattern for c in "*?["):
            return sorted(p for p in self.files if fnmatch.fnmatchcase(p, pattern))
        return [pattern] if pattern in self.files else []

    def lines(self, *patterns: str, comments: str = "#") -> Iterator[Line]:
        """Non-blank, non-comment lines of the matching files, with their numbers."""
        for pattern in patterns:
            for path in self.paths(pattern):
                for i, text in enumerate(self.files[path], start=1):
                    stripped = text.strip()
                    if stripped and not (comments and stripped.startswith(comments)):
                        yield Line(path, i, text)

    def kv(self, path: str, sep: str = r"\s+") -> dict[str, Line]:
        """`KEY value` (or KEY=value) settings of a file: the last one wins, as most parsers do."""
        out = {}
        for line in self.lines(path):
            m = re.match(rf"^\s*([A-Za-z_][\w.-]*)\s*(?:{sep})\s*(.*?)\s*$", line.text)
            if m:
                out[m.group(1)] = Line(line.path, line.number, m.group(2))
        return out

    # --- accounts ------------------------------------------------------------------------------

    @cached_property
    def passwd(self) -> list[tuple[Line, list[str]]]:
        return [(line, line.text.split(":")) for line in self.lines("/etc/passwd")
                if len(line.text.split(":")) >= 7]

    @property
    def shadow(self) -> dict[str, dict[str, Any]]:
        return self.facts.get("shadow") or {}

    def login_defs(self) -> dict[str, Line]:
        return self.kv("/etc/login.defs")

    def uid_min(self, default: int) -> int:
        value = self.login_defs().get("UID_MIN")
        return int(value.text) if value and value.text.isdigit() else default

    def processes(self) -> set[str]:
        return set(self.facts.get("processes") or [])

    def running(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """Which of these daemons run: by process name, or as a running systemd unit of that name."""
        procs = self.processes()
        units = {u.removesuffix(".service") for u in (self.facts.get("services") or {}).get("running", [])}
        aliases = {"rsyslogd": "rsyslog", "chronyd": "chronyd", "ntpd": "ntpd", "auditd": "auditd"}
        return [n for n in names if n in procs or n in units or aliases.get(n, n) in units]

    @property
    def systemd(self) -> bool:
        return (self.facts.get("services") or {}).get("manager") == "systemd"

    def listening(self) -> list[dict[str, Any]]:
        return self.facts.get("listening") or []

    # --- sshd ----------------------------------------------------------------------------------

    @cached_property
    def sshd(self) -> list[sshd_config.Effective]:
        """sshd's configuration for each connection the probe asked about (sshd.py): sshd's own answers where
        every `sshd -T` ran, else the parser's over the collected files. Raises SshdConfigError where neither
        can judge (a file sshd reads was not collected, a line sshd would refuse)."""
        facts = self.facts.get("sshd") or {}
        connections = [(c["label"], sshd_config.Connection(c["user"], c["address"], c.get("host", "")))
                       for c in facts.get("connections", [])] or [DEFAULT_CONNECTION]
        answers = facts.get("answers") or []
        if answers and len(answers) == len(connections) and all(a["rc"] == 0 and a["text"] for a in answers):
            return [sshd_config.from_answer(label, conn, a["text"])
                    for (label, conn), a in zip(connections, answers, strict=True)]
        files = facts.get("files") or {p: t for p, t in self.files.items() if p.startswith("/etc/ssh/")}
        resolve = sshd_config.resolver(files, frozenset(facts.get("expanded") or ()))
        try:
            return [sshd_config.parsed(label, files, resolve, replace(conn, groups=self.groups_of(conn.user)))
                    for label, conn in connections]
        except sshd_config.SshdConfigError as exc:
            refused = next((a for a in answers if a["rc"] != 0), None)
            said = f"; sshd -T said: {refused['text'][:200]}" if refused else ""
            raise sshd_config.SshdConfigError(f"{exc}{said}") from exc

    def groups_of(self, user: str) -> tuple[str, ...]:
        """The user's primary and supplementary groups, from the collected /etc/passwd and /etc/group."""
        gid = next((f[3] for _, f in self.passwd if f[0] == user), None)
        out = []
        for line in self.lines("/etc/group"):
            f = line.text.strip().split(":")
            if len(f) >= 4 and (f[2] == gid or user in f[3].split(",")):
                out.append(f[0])
        return tuple(dict.fromkeys(out))

    # --- PAM -----------------------------------------------------------------------------------

    def pam(self, *paths: str) -> list[PamLine]:
        """The PAM lines of these files as they are written (no include expanded)."""
        return pam_stack.parse(list(self.lines(*paths)))

    def pam_stack(self, path: str, kind: str) -> tuple[pam_stack.Item, ...]:
        """A PAM file's `kind` stack with its includes and substacks expanded (pam.py)."""
        return pam_stack.stack(lambda p: list(self.lines(p)) if self.has(p) else None, path, kind)

    def conf(self, path: str) -> dict[str, tuple[str, Line]]:
        """`key = value` settings as libpwquality and pam_faillock read them: `#` starts a comment anywhere,
        the key ends at `=` or whitespace, the last line of a key wins. {key: (value, the line as written)}."""
        out = {}
        for line in self.lines(path):
            m = re.match(r"^\s*([^\s=#]+)\s*=?\s*(.*?)\s*$", line.text.split("#", 1)[0])
            if m:
                out[m.group(1)] = (m.group(2), line)
        return out

    def pam_files(self, which: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        if self.family in which:
            return which[self.family]
        return tuple(dict.fromkeys(p for paths in which.values() for p in paths))  # unknown family: both


def logrotate_days(ev: Evidence, targets: list[str]) -> dict[str, tuple[int | None, list[Line]]]:
    """Days each target log is kept by logrotate (rotate count x period), with the lines that say so.

    Global settings of logrotate.conf apply to every stanza that does not set its own; None when
    no rotation covers the file (or it has no rotate count: logrotate then keeps no old log).
    """
    period_days = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}
    glob_period: tuple[int, Line] | None = None
    glob_rotate: tuple[int, Line] | None = None
    stanzas: list[tuple[list[str], dict[str, tuple[int, Line]]]] = []
    files = ["/etc/logrotate.conf", *ev.paths("/etc/logrotate.d/*")]
    for path in files:
        pending: list[str] = []
        current: dict[str, tuple[int, Line]] | None = None
        for line in ev.lines(path):
            text = line.text.strip()
            if current is None:
                if "{" in text:
                    pending += text.split("{", 1)[0].split()
                    current = {}
                    stanzas.append((pending, current))
                    pending = []
                    continue
                words = text.split()
                if words[0] in period_days and path == "/etc/logrotate.conf":
                    glob_period = (period_days[words[0]], line)
                elif words[0] == "rotate" and len(words) > 1 and words[1].isdigit() and path == "/etc/logrotate.conf":
                    glob_rotate = (int(words[1]), line)
                elif words[0].startswith("/"):
                    pending += words
                continue
            if text.startswith("}"):
                current = None
                continue
            words = text.split()
            if words[0] in period_days:
                current["period"] = (period_days[words[0]], line)
            elif words[0] == "rotate" and len(words) > 1 and words[1].isdigit():
                current["rotate"] = (int(words[1]), line)
    out: dict[str, tuple[int | None, list[Line]]] = {}
    for target in targets:
        stanza = next((s for paths, s in stanzas if any(fnmatch.fnmatchcase(target, p) for p in paths)), None)
        if stanza is None:
            out[target] = (None, [])
            continue
        period = stanza.get("period") or glob_period or (7, None)  # logrotate's own default: weekly
        rotate = stanza.get("rotate") or glob_rotate
        cited = [x for x in (period[1], rotate[1] if rotate else None) if x is not None]
        out[target] = (period[0] * rotate[0] if rotate else None, cited)
    return out
