"""Evidence probes for the host baseline: what a host must show, each a `command()` and a pure `process()`.

The same shape as audit/probes.py (and composed by its `Script`): one read-only POSIX-sh script per
host, one SSH round trip. Probes gather *evidence*, independent of any threshold: every file the
checks of both distribution families read (a missing file costs nothing), file modes, a reduced
/etc/shadow, runtime state. Evaluation (checks.py) decides against the profile's parameters, so
the same evidence serves level 2, level 3 and a city's tuning.

Secrets never leave the host: /etc/shadow is reduced on the host to user, status and hash scheme
(never the hash). File contents come back line by line behind a `|` prefix, so a file cannot forge
another file's header.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypedDict

from audit.baseline.sshd import MAIN, Connection
from audit.probes import Clock, Context, Cron, HostOS, Logins, Packages, Probe, Sample, Services, Sockets

# Configuration the checks read, RHEL family and Debian family alike (globs expanded on the host);
# sshd's files are SshdEffective's: it follows their Include lines.
CONFIG_FILES = (
    "/etc/passwd", "/etc/group", "/etc/login.defs",
    "/etc/pam.d/system-auth", "/etc/pam.d/password-auth", "/etc/pam.d/common-auth",
    "/etc/pam.d/common-password", "/etc/pam.d/common-account", "/etc/pam.d/sshd", "/etc/pam.d/login",
    "/etc/security/pwquality.conf", "/etc/security/pwquality.conf.d/*.conf", "/etc/security/faillock.conf",
    "/etc/profile", "/etc/profile.d/*.sh", "/etc/bashrc", "/etc/bash.bashrc",
    "/etc/sudoers", "/etc/sudoers.d/*",
    "/etc/selinux/config",
    "/etc/audit/auditd.conf", "/etc/audit/audit.rules", "/etc/audit/rules.d/*.rules",
    "/etc/rsyslog.conf", "/etc/rsyslog.d/*.conf", "/etc/syslog-ng/syslog-ng.conf",
    "/etc/systemd/journald.conf", "/etc/systemd/journald.conf.d/*.conf",
    "/etc/logrotate.conf", "/etc/logrotate.d/*",
    "/etc/hosts.allow", "/etc/hosts.deny",
    "/etc/chrony.conf", "/etc/chrony/chrony.conf", "/etc/ntp.conf",
)
# Files whose owner and mode the checks judge (besides the protected logs of both families).
MODE_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/ssh/sshd_config", "/etc/sudoers",
              "/var/log/secure", "/var/log/messages", "/var/log/cron", "/var/log/auth.log", "/var/log/syslog",
              "/var/log/kern.log", "/var/log/audit/audit.log")
RISKY_PACKAGES = ("telnet-server", "telnetd", "inetutils-telnetd", "rsh-server", "rsh-redone-server", "ypserv", "nis",
                  "tftp-server", "tftpd-hpa", "vsftpd", "xinetd")
SECOND_FACTOR_LIBS = ("/lib*/security/pam_google_authenticator.so", "/usr/lib*/security/pam_google_authenticator.so",
                      "/lib/*/security/pam_google_authenticator.so", "/usr/lib*/security/pam_oath.so",
                      "/usr/lib*/security/pam_radius_auth.so", "/usr/lib*/security/pam_pkcs11.so")
INTEGRITY_FILES = ("/var/lib/aide/aide.db", "/var/lib/aide/aide.db.gz", "/var/lib/clamav/main.cvd",
                   "/var/lib/clamav/main.cld", "/var/lib/clamav/daily.cvd", "/var/lib/clamav/daily.cld")
MAX_LINES = 20000


class FileMode(TypedDict):
    mode: str  # octal, three digits at least: "640"
    uid: int
    gid: int


class ShadowEntry(TypedDict):
    """One /etc/shadow line without its hash; the aging fields are None where empty."""

    line: int
    status: str  # empty | locked | hash
    scheme: str  # "6", "y", "des", or "-"
    lastchg: int | None
    min: int | None
    max: int | None
    warn: int | None
    inactive: int | None
    expire: int | None


def _globs(paths: tuple[str, ...]) -> str:
    """Paths for a shell `for` list: globs stay unquoted (expanded on the host), nothing else is variable."""
    assert all(re.fullmatch(r"[\w./*-]+", p) for p in paths)
    return " ".join(paths)


class ConfigFiles(Probe[dict[str, list[str]]]):
    """The content of every configuration file a check reads: {path: [lines]}, line numbers = index + 1."""

    name = "config"

    def command(self, ctx: Context) -> str:
        return (f"set --; for f in {_globs(CONFIG_FILES)}; do [ -f \"$f\" ] && [ -r \"$f\" ] && set -- \"$@\" \"$f\"; "
                "done; for f in \"$@\"; do echo \"F $f\"; done; "
                "[ $# -gt 0 ] && awk 'FNR == 1 { print \"@ \" FILENAME } { print \"|\" substr($0, 1, 1000) }' \"$@\" "
                f"| head -n {MAX_LINES}")

    def process(self, text: str, ctx: Context) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in text.splitlines():
            if line.startswith("|"):
                if current is not None:
                    current.append(line[1:])
            elif line.startswith("F /"):
                files.setdefault(line[2:], [])
            elif line.startswith("@ /"):
                current = files.setdefault(line[2:], [])
                current.clear()
        return files


class FileModes(Probe[dict[str, FileMode]]):
    """Owner and mode of the security files and logs: {path: {"mode": "640", "uid": 0, "gid": 42}}."""

    name = "modes"

    def command(self, ctx: Context) -> str:
        return f"stat -L -c 'M %a %u %g %n' {_globs(MODE_FILES)} 2>/dev/null"

    def process(self, text: str, ctx: Context) -> dict[str, FileMode]:
        out: dict[str, FileMode] = {}
        for line in text.splitlines():
            f = line.split(" ", 4)
            if len(f) == 5 and f[0] == "M" and f[1].isdigit():
                out[f[4]] = {"mode": f[1].rjust(3, "0"), "uid": int(f[2]), "gid": int(f[3])}
        return out


class Shadow(Probe[dict[str, ShadowEntry]]):
    """/etc/shadow reduced on the host: per user its line, password status (empty, locked, hash), the
    hash scheme ($6$ -> "6", DES -> "des") and the aging fields. The hash itself never leaves the host."""

    name = "shadow"

    def command(self, ctx: Context) -> str:
        awk = ("{ p = $2; s = \"hash\"; if (p == \"\") s = \"empty\"; else if (p ~ /^[!*]/) s = \"locked\"; "
               "q = p; sub(/^!+/, \"\", q); sc = \"-\"; if (q ~ /^\\$/) { split(q, a, \"$\"); sc = a[2] } "
               "else if (s == \"hash\") sc = \"des\"; "
               "printf \"S %d %s %s %s\", NR, $1, s, sc; "
               "for (i = 3; i <= 8; i++) printf \" %s\", ($i == \"\" ? \"-\" : $i); print \"\" }")
        return f"[ -r /etc/shadow ] && awk -F: '{awk}' /etc/shadow"

    def process(self, text: str, ctx: Context) -> dict[str, ShadowEntry]:
        out: dict[str, ShadowEntry] = {}
        for line in text.splitlines():
            f = line.split()
            if len(f) == 11 and f[0] == "S" and f[1].isdigit():
                def num(v: str) -> int | None:
                    return int(v) if re.fullmatch(r"-?\d+", v) else None
                out[f[2]] = {"line": int(f[1]), "status": f[3], "scheme": f[4], "lastchg": num(f[5]),
                             "min": num(f[6]), "max": num(f[7]), "warn": num(f[8]), "inactive": num(f[9]),
                             "expire": num(f[10])}
        return out


class Processes(Probe[list[str]]):
    """Names of the processes running on the host (in the lab: in the host's own network namespace)."""

    name = "processes"

    def command(self, ctx: Context) -> str:
        return (f"{Sample.find_pids}; for p in $jy_pids; do [ -r /proc/$p/comm ] && read -r c < /proc/$p/comm "
                "&& echo \"$c\"; done")

    def process(self, text: str, ctx: Context) -> list[str]:
        return sorted({line.strip() for line in text.splitlines() if line.strip()})


class Runtime(Probe[dict[str, Any]]):
    """Runtime state the configuration files cannot show: MAC, audit rules loaded, time sync, the
    risky packages installed, second-factor modules, integrity databases, trust files, boot trust."""

    name = "runtime"
    KEYS: ClassVar[tuple[str, ...]] = ("getenforce", "selinuxfs", "apparmor", "apparmor_profiles", "auditctl",
                                        "chrony", "timedatectl", "pkgdb", "pkg", "mfa", "integrity", "trust",
                                        "efi", "tpm", "secureboot")

    def command(self, ctx: Context) -> str:
        pkgs = " ".join(RISKY_PACKAGES)
        return (
            "command -v getenforce >/dev/null && echo \"getenforce $(getenforce)\"; "
            "[ -r /sys/fs/selinux/enforce ] && echo \"selinuxfs $(cat /sys/fs/selinux/enforce)\"; "
            "[ -r /sys/module/apparmor/parameters/enabled ] && "
            "echo \"apparmor $(cat /sys/module/apparmor/parameters/enabled)\"; "
            "[ -r /sys/kernel/security/apparmor/profiles ] && "
            "echo \"apparmor_profiles $(wc -l < /sys/kernel/security/apparmor/profiles)\"; "
            "command -v auditctl >/dev/null && auditctl -l 2>&1 | head -n 200 | sed 's/^/auditctl /'; "
            "command -v chronyc >/dev/null && chronyc -n tracking 2>&1 | grep -i 'leap status' | sed 's/^/chrony /'; "
            "[ -d /run/systemd/system ] && timedatectl show -p NTPSynchronized 2>/dev/null | sed 's/^/timedatectl /'; "
            "if command -v dpkg-query >/dev/null && [ -s /var/lib/dpkg/status ]; then echo 'pkgdb dpkg'; "
            f"dpkg-query -W -f='pkg ${{Package}} ${{db:Status-Abbrev}}\\n' {pkgs} 2>/dev/null | grep ' ii'; "
            "elif command -v rpm >/dev/null; then echo 'pkgdb rpm'; "
            f"rpm -q {pkgs} 2>/dev/null | grep -v 'not installed' | sed 's/^/pkg /'; else echo 'pkgdb none'; fi; "
            f"for f in {_globs(SECOND_FACTOR_LIBS)}; do [ -f \"$f\" ] && echo \"mfa $f\"; done; "
            f"for f in {_globs(INTEGRITY_FILES)}; do [ -f \"$f\" ] && "
            "echo \"integrity $(date -r \"$f\" +%s) $f\"; done; "
            "for d in /root /home/*; do for n in .rhosts .netrc .shosts; do [ -e \"$d/$n\" ] && echo \"trust $d/$n\"; "
            "done; done; for f in /etc/hosts.equiv /etc/shosts.equiv; do [ -s \"$f\" ] && echo \"trust $f\"; done; "
            "[ -d /sys/firmware/efi ] && echo 'efi yes'; ls /sys/class/tpm 2>/dev/null | sed 's/^/tpm /'; "
            "command -v mokutil >/dev/null && mokutil --sb-state 2>/dev/null | head -n 1 | sed 's/^/secureboot /'; true"
        )

    def process(self, text: str, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {"pkg": [], "mfa": [], "integrity": {}, "trust": [], "auditctl": [], "tpm": []}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            value = value.strip()
            if key == "pkg" and value:
                out["pkg"].append(value.split()[0])
            elif key == "integrity":
                stamp, _, path = value.partition(" ")
                if stamp.isdigit():
                    out["integrity"][path] = int(stamp)
            elif key in ("mfa", "trust", "auditctl", "tpm"):
                out[key].append(value)
            elif key in self.KEYS:
                out[key] = value
        return out


class SshdEffective(Probe[dict[str, Any]]):
    """sshd's own answer, and its files. As root, `sshd -T -C user=…,addr=…,host=…` for each connection
    (sshd evaluates its Match blocks for it; read-only: it parses and prints, nothing else), and always
    sshd_config with every file its Include lines name, wherever they live (for the parser, where sshd
    cannot answer): {"binary", "uid", "answers": [{label, user, address, host, rc, text}], "files",
    "expanded": [Include patterns the host expanded]}."""

    name = "sshd"

    def __init__(self, connections: tuple[tuple[str, Connection], ...] = (), config: str = MAIN) -> None:
        assert all(re.fullmatch(r"[\w.:@,=/%-]+", c.spec()) for _, c in connections)
        assert re.fullmatch(r"[\w./-]+", config)
        self.connections = connections
        self.config = config

    def tree(self) -> str:
        """The config file and its Includes, breadth first, at most 64 files (an Include loop ends there)."""
        return (f"set -- {self.config}; jy_n=0; while [ $# -gt 0 ] && [ $jy_n -lt 64 ]; do jy_f=$1; shift; "
                "jy_n=$((jy_n + 1)); [ -f \"$jy_f\" ] && [ -r \"$jy_f\" ] || continue; echo \"@ $jy_f\"; "
                "head -n 5000 \"$jy_f\" | cut -c 1-1000 | sed 's/^/|/'; "
                "jy_ps=$(sed -n 's/#.*//; s/^[[:space:]]*[Ii][Nn][Cc][Ll][Uu][Dd][Ee][[:space:]=][[:space:]=]*//p' "
                "\"$jy_f\"); jy_q=; set -f; for jy_p in $jy_ps; do case $jy_p in /*) ;; *) jy_p=/etc/ssh/$jy_p ;; "
                "esac; echo \"G $jy_p\"; jy_q=\"$jy_q $jy_p\"; done; set +f; "
                "for jy_g in $jy_q; do [ -e \"$jy_g\" ] && set -- \"$@\" \"$jy_g\"; done; done")

    def command(self, ctx: Context) -> str:
        asks = "; ".join(f"echo 'C {i}'; jy_o=$(\"$jy_sshd\" -T -f {self.config} -C '{c.spec()}' 2>&1); "
                         "echo \"R $?\"; printf '%s\\n' \"$jy_o\" | head -n 1000 | sed 's/^/|/'"
                         for i, (_, c) in enumerate(self.connections))
        return ("jy_sshd=; for s in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd; do [ -x \"$s\" ] && "
                "jy_sshd=$s && break; done; echo \"B ${jy_sshd:-none} $(id -u)\"; "
                f"if [ -n \"$jy_sshd\" ] && [ \"$(id -u)\" = 0 ]; then {asks or 'true'}; fi; {self.tree()}")

    def process(self, text: str, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {"binary": None, "uid": None, "answers": [], "files": {}, "expanded": [],
                               "connections": [{"label": label, "user": c.user, "address": c.address, "host": c.host}
                                               for label, c in self.connections]}
        current: list[str] | None = None
        for line in text.splitlines():
            tag, _, rest = line.partition(" ")
            if line.startswith("|"):
                if current is not None:
                    current.append(line[1:])
            elif tag == "B" and len(rest.split()) == 2:
                binary, uid = rest.split()
                out["binary"], out["uid"] = (None if binary == "none" else binary), _num(uid)
            elif tag == "C" and rest.isdigit() and int(rest) < len(self.connections):
                answer = {"index": int(rest), "rc": None, "lines": []}
                out["answers"].append(answer)
                current = answer["lines"]
            elif tag == "R" and out["answers"]:
                out["answers"][-1]["rc"] = _num(rest)
            elif tag == "@" and rest.startswith("/"):
                current = out["files"].setdefault(rest, [])
                current.clear()
            elif tag == "G" and rest.startswith("/"):
                out["expanded"].append(rest)
        for answer in out["answers"]:
            answer["text"] = "\n".join(answer.pop("lines"))
        return out


class LoginShells(Probe[dict[str, dict[str, str]]]):
    """As root: each account's login shell asked for its umask and TMOUT (root and uid >= UID_MIN, shell sh or
    bash, 20 at most). The shell runs under the account's uid through setpriv, not su: no PAM, no session,
    nothing logged; stdin closed, 10 s at most, all at once. {user: {"shell", "umask", "tmout"}}; tmout "unset"
    when unset."""

    name = "shells"
    MAX_USERS = 20

    def command(self, ctx: Context) -> str:
        ask = "printf \"\\njy-shell %s %s\\n\" \"$(umask)\" \"${TMOUT-unset}\""
        return ("[ \"$(id -u)\" = 0 ] && command -v setpriv >/dev/null && command -v timeout >/dev/null && { "
                "jy_min=$(awk '$1 == \"UID_MIN\" { print $2 }' /etc/login.defs 2>/dev/null); "
                "awk -F: -v m=\"${jy_min:-1000}\" '($3 == 0 || $3 >= m) && $3 != 65534 && $7 ~ /\\/(ba)?sh$/ "
                "{ print $1, $3, $4, $6, $7 }' /etc/passwd | "
                f"head -n {self.MAX_USERS} | while read -r u uid gid home sh; do {{ "
                "jy_o=$(cd / && timeout 10 setpriv --reuid \"$uid\" --regid \"$gid\" --init-groups env -i "
                "HOME=\"$home\" USER=\"$u\" LOGNAME=\"$u\" SHELL=\"$sh\" PATH=/usr/local/bin:/usr/bin:/bin "
                f"TERM=dumb \"$sh\" -lc '{ask}' </dev/null 2>/dev/null | grep '^jy-shell ' | tail -n 1); "
                "echo \"U $u $sh ${jy_o:-none}\"; } & done; wait; }; true")

    def process(self, text: str, ctx: Context) -> dict[str, dict[str, str]]:
        out = {}
        for line in text.splitlines():
            f = line.split()
            if len(f) == 6 and f[0] == "U" and f[3] == "jy-shell" and re.fullmatch(r"[0-7]{3,4}", f[4]):
                out[f[1]] = {"shell": f[2], "umask": f[4], "tmout": f[5]}
        return out


def _num(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?\d+", text.strip()) else None


class LastLogins(Logins):
    """The newest login of each account from lastlog (audit's Logins parser, without the wtmp dump)."""

    name = "lastlog"

    def command(self, ctx: Context) -> str:
        return "echo '@@'; lastlog 2>/dev/null | tail -n +2 | grep -v 'Never logged in'; echo '@@'"


# Order matters only for reading the output: Clock first (Script parses it first anyway).
# Processes defines $jy_pids, which Sockets reads: it comes first.
PROBES: tuple[Probe[Any], ...] = (Clock(), HostOS(), ConfigFiles(), FileModes(), Shadow(), Processes(), Services(),
                                  Sockets(), Runtime(), LastLogins(), Packages(), Cron(), SshdEffective(),
                                  LoginShells())


def probes(connections: tuple[tuple[str, Connection], ...]) -> tuple[Probe[Any], ...]:
    """The baseline's probes, sshd asked about these connections."""
    return tuple(SshdEffective(connections) if p.name == "sshd" else p for p in PROBES)
