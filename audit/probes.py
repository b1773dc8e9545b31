"""Probes: what the collector asks a host, each as `command()` (POSIX sh) and `process()` (parsing).

Like pyinfra's facts, a probe is a small class: `command(ctx)` is the shell run remotely and
`process(text, ctx)` is pure parsing, testable on captured output. `audit.collect` composes all
probes into one script, so each host costs one SSH session and one round trip. Every command is
read-only; declared paths reach the shell only through `shlex.quote`. What each probe returns is
declared in audit/model.py (one TypedDict per probe); whatever a probe needs beyond its own output
(the host's time zone, the sample's start) comes in its `Context`, so every probe parses alike.

Host output is untrusted: it is decoded with replacement characters, bounded in size per probe,
and only ever turned into data (numbers, strings), never into markup or formulas here.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, ClassVar, Generic, TypeVar, cast

from audit.model import (
    ClockFacts,
    Connection,
    CronEntry,
    DataPathFacts,
    Disk,
    HostFacts,
    HostOSFacts,
    Listening,
    LoginFacts,
    PackageFacts,
    SampleFacts,
    ServiceFacts,
    SocketFacts,
    WebFacts,
)

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

# ID (or ID_LIKE fallback) in os-release -> the distribution name used in reports and the lifecycle table.
DISTRIBUTIONS = {
    "kylin": "Kylin", "neokylin": "NeoKylin", "uos": "UOS", "deepin": "Deepin", "openeuler": "openEuler",
    "anolis": "Anolis", "centos": "CentOS", "rhel": "RHEL", "rocky": "Rocky", "almalinux": "AlmaLinux",
    "ol": "Oracle Linux", "fedora": "Fedora", "debian": "Debian", "ubuntu": "Ubuntu", "opencloudos": "OpenCloudOS",
    "tencentos": "TencentOS", "alinux": "Alibaba Cloud Linux", "euleros": "EulerOS", "sles": "SLES",
}


@dataclass(frozen=True)
class Context:
    """What a probe needs to know about the host beyond its own output.

    Before the run: the owning system's declarations and the sampling settings. While parsing,
    `Script.parse` adds what the run itself told: the host's clock (`now`) and zone (`tz`: log files
    without a zone are read in it) and the sample's start snapshot (`sample_start`).
    """

    log_paths: tuple[str, ...] = ()
    data_paths: tuple[str, ...] = ()
    sample_seconds: int = 1
    max_clients: int = 5000  # distinct web clients kept per host per run
    tz: timezone = UTC
    now: datetime | None = None
    sample_start: str = ""


F = TypeVar("F")


class Probe(Generic[F]):
    """One question to a host: `command(ctx)` (POSIX sh, read-only) and `process(text, ctx)` (pure)."""

    name: ClassVar[str]
    # The facts are keys of the host's facts themselves (HostOS: `os`, `cpu`, …), not one section.
    top_level: ClassVar[bool] = False

    def command(self, ctx: Context) -> str:
        raise NotImplementedError

    def process(self, text: str, ctx: Context) -> F:
        raise NotImplementedError


def _kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            out[key] = value.strip().strip('"').strip("'")
    return out


def _num(value: str, default: float = 0.0) -> float:
    try:
        return float(value)
    except ValueError:
        return default


class Clock(Probe[ClockFacts]):
    """The host's time and zone: log files without a zone are read in it; skew is reported."""

    name = "clock"

    def command(self, ctx: Context) -> str:
        return "date '+%s %z'"

    def process(self, text: str, ctx: Context) -> ClockFacts:
        lines = text.split()
        epoch = int(_num(lines[0])) if lines else 0
        offset = lines[1] if len(lines) > 1 and re.fullmatch(r"[+-]\d{4}", lines[1]) else "+0000"
        return {"epoch": epoch, "utc_offset": offset}


def _tz(offset: str) -> timezone:
    sign = -1 if offset.startswith("-") else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))


class HostOS(Probe[HostOSFacts]):
    """The operating system and what it reports about the machine: OS identity, kernel, uptime, CPU,
    memory, disks, load, hostname."""

    name = "host_os"
    top_level = True

    def command(self, ctx: Context) -> str:
        return ("rd /etc/os-release; echo '@@'; rd /proc/sys/kernel/osrelease; echo '@@'; rd /proc/uptime; "
                "echo '@@'; grep -E '^(model name|processor)' /proc/cpuinfo; echo '@@'; rd /proc/meminfo; echo '@@'; "
                "df -P -k -x tmpfs -x devtmpfs -x overlay -x squashfs 2>/dev/null; echo '@@'; rd /proc/loadavg; "
                "echo '@@'; rd /proc/sys/kernel/hostname")

    def process(self, text: str, ctx: Context) -> HostOSFacts:
        parts = (text.split("@@\n") + [""] * 8)[:8]
        osr = _kv(parts[0])
        os_id = osr.get("ID", "").lower()
        like = osr.get("ID_LIKE", "").lower().split()
        distribution = DISTRIBUTIONS.get(os_id) or next((DISTRIBUTIONS[x] for x in like if x in DISTRIBUTIONS), None)
        cpu_lines = parts[3].splitlines()
        models = [line.split(":", 1)[1].strip() for line in cpu_lines if line.startswith("model name") and ":" in line]
        model = models[0] if models else ""
        count = sum(line.startswith("processor") for line in cpu_lines)
        mem = {f[0].rstrip(":"): int(_num(f[1])) for f in (line.split() for line in parts[4].splitlines())
               if len(f) >= 2}
        disks: list[Disk] = []
        for line in parts[5].splitlines():
            f = line.split()
            if len(f) >= 6 and f[1].isdigit():
                disks.append({"device": f[0], "mount": " ".join(f[5:]), "size_kb": int(f[1]),
                              "used_kb": int(f[2])})
        load = [_num(x) for x in parts[6].split()[:3]]
        return {
            "os": {"id": os_id, "id_like": like, "version_id": osr.get("VERSION_ID", ""),
                   "name": osr.get("NAME", ""), "pretty_name": osr.get("PRETTY_NAME", ""),
                   "distribution": distribution or (osr.get("NAME") or "unknown")},
            "kernel": parts[1].strip(),
            "uptime_s": _num(parts[2].split()[0]) if parts[2].split() else 0.0,
            "cpu": {"model": model, "count": count},
            "memory": {"total_kb": mem.get("MemTotal", 0), "available_kb": mem.get("MemAvailable", 0)},
            "disks": disks,
            "load": load,
            "hostname": parts[7].strip(),
        }


class Sample(Probe[SampleFacts]):
    """CPU and network over a short interval that spans the other probes (no time is spent idle).

    CPU is that of the processes in the host's network namespace (on a VM: the whole host; in the
    lab: that host's own processes), excluding the collector's own shell and session; network is
    the namespace's interfaces. The host-wide /proc/stat figure is kept too. The script holds back
    all its output until the interval ends, so the collector's own SSH traffic is not measured.
    """

    name = "sample"
    # The processes of this host's network namespace, found once per script (`jy_pids`): the sample
    # and the sockets probe read only theirs (in the lab, /proc shows every lab host's processes).
    find_pids = ("jy_pids=$(ls -lU /proc/$$/ns/net /proc/[0-9]*/ns/net 2>/dev/null | awk 'NR == 1 { me = $NF; "
                 "next } $NF == me { split($(NF-2), a, \"/\"); printf \"%s \", a[3] }')")
    _procs = "for p in $jy_pids; do [ -r /proc/$p/stat ] && rd /proc/$p/stat; done"

    # Run in the script's own shell right after `begin`: from here `command` waits out the interval.
    mark = "read jy_up _ < /proc/uptime"

    def begin(self) -> str:
        return ("rd /proc/uptime; rd /proc/stat; echo '##'; rd /proc/net/dev; echo '##'; rd /proc/net/netstat; "
                "echo '@@'; " + self._procs)

    def command(self, ctx: Context) -> str:
        # Sleep only what the other probes did not already take (uptime in centiseconds, no float in sh).
        elapsed = "${jy_now%.*}${jy_now#*.} - ${jy_up%.*}${jy_up#*.}"
        wait = (f"read jy_now _ < /proc/uptime; jy_left=$(( {100 * int(ctx.sample_seconds)} - ({elapsed}) )); "
                "if [ \"$jy_left\" -gt 0 ]; then jy_c=$((jy_left % 100)); [ $jy_c -lt 10 ] && jy_c=0$jy_c; "
                "sleep $((jy_left / 100)).$jy_c; fi")
        return f"{wait}; echo \"$$ $PPID\"; echo '@@'; {self.begin()}"

    @staticmethod
    def _snapshot(text: str) -> dict[str, Any]:
        head, _, procs = text.partition("@@\n")
        clock, dev, netstat = ([*head.split("##\n"), "", ""])[:3]
        lines = clock.splitlines()
        up = _num(lines[0].split()[0]) if lines and lines[0].split() else 0.0
        cpu = next(([int(_num(x)) for x in line.split()[1:]] for line in lines if line.startswith("cpu ")), [])
        # Network: unicast IP bytes (IpExt in /proc/net/netstat) less loopback, so ARP and broadcast noise
        # on a shared segment (every host hears every ARP request) is not taken for use; where IpExt is
        # missing, the interfaces' bytes (/proc/net/dev) less loopback.
        dev_rx = dev_tx = lo_rx = lo_tx = 0
        for line in dev.splitlines():
            iface, sep, data = line.partition(":")
            f = data.split()
            if not sep or len(f) < 9:
                continue
            if iface.strip() == "lo":
                lo_rx, lo_tx = int(_num(f[0])), int(_num(f[8]))
            else:
                dev_rx, dev_tx = dev_rx + int(_num(f[0])), dev_tx + int(_num(f[8]))
        rows = [line.split()[1:] for line in netstat.splitlines() if line.startswith("IpExt:")]
        ipext = {k: int(_num(v)) for k, v in zip(rows[0], rows[1], strict=False)} if len(rows) >= 2 else {}
        if "InOctets" in ipext:
            rx = max(ipext["InOctets"] - ipext.get("InMcastOctets", 0) - ipext.get("InBcastOctets", 0) - lo_rx, 0)
            tx = max(ipext["OutOctets"] - ipext.get("OutMcastOctets", 0) - ipext.get("OutBcastOctets", 0) - lo_tx, 0)
        else:
            rx, tx = dev_rx, dev_tx
        proc: dict[int, tuple[int, int, int, str]] = {}
        for line in procs.splitlines():
            m = re.match(r"(\d+) \((.*)\) (\S) (\d+)((?: \S+)+)", line)
            if m:
                rest = m.group(5).split()
                # fields after ppid: pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
                if len(rest) >= 20:
                    proc[int(m.group(1))] = (int(rest[9]) + int(rest[10]), int(m.group(4)), int(rest[19]), m.group(2))
        return {"uptime": up, "cpu": cpu, "rx": rx, "tx": tx, "proc": proc}

    def process(self, text: str, ctx: Context) -> SampleFacts:
        ids, _, end = text.partition("@@\n")
        a, b = self._snapshot(ctx.sample_start), self._snapshot(end)
        interval = max(b["uptime"] - a["uptime"], 1e-3)
        own = {int(x) for x in ids.split() if x.isdigit()}
        # the session's sshd processes are the parents of our shell's parent
        own |= {b["proc"][p][1] for p in list(own) if p in b["proc"]}
        hz = 100  # USER_HZ is 100 on every Linux the project meets
        ticks = sum(b["proc"][p][0] - a["proc"][p][0] for p in b["proc"]
                    if p in a["proc"] and p not in own and b["proc"][p][0] >= a["proc"][p][0])
        host = [y - x for x, y in zip(a["cpu"], b["cpu"], strict=False)]
        busy = sum(host) - (host[3] + host[4] if len(host) > 4 else 0) if host else 0
        rss_pages = sum(v[2] for p, v in b["proc"].items() if p not in own)
        return {
            "interval_s": round(interval, 3),
            "cpu_seconds": round(ticks / hz, 3),
            "cpu_pct_of_one_core": round(100.0 * ticks / hz / interval, 2),
            "host_cpu_pct": round(100.0 * busy / sum(host), 2) if host and sum(host) else 0.0,
            "net_bytes": (b["rx"] - a["rx"]) + (b["tx"] - a["tx"]),
            "net_bytes_per_s": round(((b["rx"] - a["rx"]) + (b["tx"] - a["tx"])) / interval, 1),
            "net_counters": {"rx": b["rx"], "tx": b["tx"]},
            "processes": len([p for p in b["proc"] if p not in own]),
            "rss_kb": rss_pages * 4,
        }


_SS_PROC = re.compile(r'\("([^"]*)",pid=(\d+)')


def _split_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if "%" in host:
        host = host.split("%", 1)[0]
    return host, int(port) if port.isdigit() else 0


class Sockets(Probe[SocketFacts]):
    """Listening ports with their processes, and established TCP connections (the dependency map).

    One `ss` call (with socket inodes, without `-p`, which walks every process of the machine), and the
    file descriptors of this namespace's processes (`jy_pids`) to name the process behind each socket.
    Output of `ss -p` (`users:(("name",pid=…))`) is understood too.
    """

    name = "sockets"
    top_level = True

    def command(self, ctx: Context) -> str:
        return ("ss -H -tuane 2>/dev/null | head -n 20000; echo '@@'; set --; "
                "for p in $jy_pids; do set -- \"$@\" /proc/$p/fd; done; [ $# -gt 0 ] && ls -l \"$@\" 2>/dev/null; "
                "echo '@@'; for p in $jy_pids; do [ -r /proc/$p/comm ] && read -r c < /proc/$p/comm && "
                "echo \"$p $c\"; done")

    @staticmethod
    def _owners(fds: str, comms: str) -> dict[str, tuple[str, int]]:
        """socket inode -> (process name, pid), from `ls -l /proc/PID/fd …` and "PID NAME" lines."""
        names: dict[int, str] = {}
        for line in comms.splitlines():
            number, _, name = line.partition(" ")
            if number.isdigit():
                names[int(number)] = name
        owners: dict[str, tuple[str, int]] = {}
        pid: int | None = None
        for line in fds.splitlines():
            m = re.match(r"/proc/(\d+)/fd:$", line)
            if m:
                pid = int(m.group(1))
                continue
            m = re.search(r"-> socket:\[(\d+)\]$", line)
            if m and pid is not None:
                owners.setdefault(m.group(1), (names.get(pid, ""), pid))
        return owners

    def process(self, text: str, ctx: Context) -> SocketFacts:
        sockets, fds, comms = ([*text.split("@@\n"), "", ""])[:3]
        owners = self._owners(fds, comms)
        listening: list[Listening] = []
        connections: list[Connection] = []
        seen = set()
        for line in sockets.splitlines():
            f = line.split()
            if len(f) < 6 or f[0] not in ("tcp", "udp"):
                continue
            local, lport = _split_hostport(f[4])
            peer, pport = _split_hostport(f[5])
            proc = _SS_PROC.search(line)
            inode = re.search(r"\bino:(\d+)", line)
            process, pid = (proc.group(1), int(proc.group(2))) if proc else \
                owners.get(inode.group(1) if inode else "", ("", None))
            if f[1] in ("LISTEN", "UNCONN"):
                if (f[0], local, lport) not in seen:
                    seen.add((f[0], local, lport))
                    listening.append({"proto": f[0], "address": local, "port": lport, "process": process,
                                      "pid": pid})
            elif f[0] == "tcp" and f[1] == "ESTAB" and not (local.startswith("127.") or local == "::1"):
                connections.append({"local": local, "local_port": lport, "peer": peer, "peer_port": pport,
                                    "process": process})
        listening.sort(key=lambda x: (x["proto"], x["port"], x["address"]))
        return {"listening": listening, "connections": connections}


_UTMP = re.compile(r"^\[(\d+)\] \[\s*(\d+)\] \[([^\]]*)\] \[([^\]]*)\] \[([^\]]*)\] \[([^\]]*)\] "
                   r"\[([^\]]*)\] \[([^\]]*)\]")


class Logins(Probe[LoginFacts]):
    """Interactive logins from wtmp (utmpdump, or `last`), lastlog, and wtmpdb where present; with the
    host's clock in the context, the distinct users of the last 30, 90 and 365 days."""

    name = "logins"

    def command(self, ctx: Context) -> str:
        return ("for f in /var/log/wtmp.1 /var/log/wtmp; do [ -f \"$f\" ] && "
                "{ utmpdump \"$f\" 2>/dev/null || last -F -w -i -f \"$f\" 2>/dev/null | sed 's/^/LAST /'; } "
                "| tail -n 50000; done; "
                "echo '@@'; lastlog 2>/dev/null | tail -n +2 | grep -v 'Never logged in'; echo '@@'; "
                "command -v wtmpdb >/dev/null 2>&1 && wtmpdb last -F 2>/dev/null")

    def process(self, text: str, ctx: Context) -> LoginFacts:
        tz = ctx.tz
        wtmp, _, rest = text.partition("@@\n")
        lastlog, _, wtmpdb = rest.partition("@@\n")
        last: dict[str, datetime] = {}
        per_day: Counter[str] = Counter()

        def seen(user: str, at: datetime | None) -> None:
            if not user or at is None or user in ("reboot", "shutdown", "LOGIN"):
                return
            at = at.astimezone(UTC)
            per_day[at.date().isoformat()] += 1
            if user not in last or at > last[user]:
                last[user] = at

        sources = set()
        for line in wtmp.splitlines():
            m = _UTMP.match(line)
            if m and m.group(1) == "7":  # USER_PROCESS: an interactive login
                sources.add("wtmp")
                seen(m.group(4).strip(), _iso(m.group(8)))
            elif line.startswith("LAST "):
                f = line[5:].split()
                if len(f) >= 9 and f[0] not in ("reboot", "wtmp"):
                    sources.add("wtmp")
                    seen(f[0], _ctime(" ".join(f[3:8]), tz))
        for line in lastlog.splitlines():
            f = line.split()
            # Username Port [From] Latest: "root pts/0 10.0.0.1 Sat Nov 21 10:00:00 +0800 2026"
            if len(f) >= 7 and re.fullmatch(r"[+-]\d{4}", f[-2]):
                sources.add("lastlog")
                stamp = _ctime(" ".join([*f[-6:-2], f[-1]]), _tz(f[-2]))
                user = f[0]
                if stamp and (user not in last or stamp > last[user]):
                    last[user] = stamp.astimezone(UTC)
        for line in wtmpdb.splitlines():
            f = line.split()
            if len(f) >= 8 and f[0] not in ("reboot",):
                at = _iso(f[3]) if "T" in f[3] else None
                if at:
                    sources.add("wtmpdb")
                    seen(f[0], at)
        facts: LoginFacts = {"users_last": {u: t.isoformat() for u, t in sorted(last.items())},
                             "logins_per_day": dict(sorted(per_day.items())), "sources": sorted(sources)}
        if ctx.now is not None:
            facts["distinct_users"] = {str(days): sum(1 for at in last.values() if at >= ctx.now - timedelta(days=days))
                                       for days in (30, 90, 365)}
        return facts


def _iso(text: str) -> datetime | None:
    text = text.strip().replace(",", ".")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ctime(text: str, tz: timezone) -> datetime | None:
    """'Sat Nov 21 10:00:00 2026' (the day name optional) in the host's zone."""
    f = text.split()
    if f and f[0][:3].isalpha() and f[0][:3] not in MONTHS:
        f = f[1:]
    try:
        month, day, clock, year = MONTHS[f[0][:3]], int(f[1]), f[2], int(f[3])
        hh, mm, ss = (int(x) for x in clock.split(":"))
        return datetime(year, month, day, hh, mm, ss, tzinfo=tz)
    except (IndexError, KeyError, ValueError):
        return None


class WebAccess(Probe[WebFacts]):
    """Requests per day, distinct clients and the last request, from the declared access logs.

    Aggregated on the host with awk, so a busy log costs a few kilobytes of output, not its size.
    """

    name = "web"

    def command(self, ctx: Context) -> str:
        if not ctx.log_paths:
            return "true"
        files = " ".join(f"{shlex.quote(p)}.1 {shlex.quote(p)}" for p in ctx.log_paths)
        awk = ("{ if (match($0, /\\[[0-9][0-9]\\/[A-Z][a-z][a-z]\\/[0-9][0-9][0-9][0-9]:[0-9:]+ [+-][0-9]+\\]/)) "
               "{ t = substr($0, RSTART + 1, RLENGTH - 2); d = substr(t, 1, 11); n[d]++; "
               "if (!((d, $1) in s)) { s[d, $1] = 1; u[d]++ } c[$1] = d; last = t } } "
               "END { for (d in n) print \"D\", d, n[d], u[d]; k = 0; "
               f"for (ip in c) if (k++ < {int(ctx.max_clients)}) print \"C\", ip, c[ip]; print \"L\", last }}")
        return (f"for f in {files}; do [ -f \"$f\" ] && echo \"F $f\"; done; "
                f"for f in {files}; do [ -f \"$f\" ] && cat \"$f\"; done | awk '{awk}'")

    def process(self, text: str, ctx: Context) -> WebFacts:
        days: dict[str, list[int]] = {}
        clients: dict[str, str] = {}
        last = None
        found = []
        for line in text.splitlines():
            f = line.split(" ")
            if f[0] == "F" and len(f) >= 2:
                found.append(line[2:])
            elif f[0] == "D" and len(f) == 4:
                day = _clf_day(f[1])
                if day:
                    days[day] = [int(_num(f[2])), int(_num(f[3]))]
            elif f[0] == "C" and len(f) == 3:
                day = _clf_day(f[2])
                if day and re.fullmatch(r"[0-9A-Fa-f:.]{2,45}", f[1]):
                    clients[f[1]] = day
            elif f[0] == "L" and len(f) >= 3:
                last = _clf_time(" ".join(f[1:3]))
        return {"requests_per_day": dict(sorted(days.items())), "clients_last_day": dict(sorted(clients.items())),
                "last_request": last.isoformat() if last else None, "logs": list(ctx.log_paths), "found": found}


def _clf_day(text: str) -> str | None:
    m = re.fullmatch(r"(\d\d)/([A-Z][a-z]{2})/(\d{4})", text)
    if not m or m.group(2) not in MONTHS:
        return None
    try:
        return date(int(m.group(3)), MONTHS[m.group(2)], int(m.group(1))).isoformat()
    except ValueError:
        return None


def _clf_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None


class Packages(Probe[PackageFacts]):
    """The last package-manager transaction, from whichever records the host keeps."""

    name = "packages"

    def command(self, ctx: Context) -> str:
        # One awk over whichever logs exist; yum.log has no year, so its file's year comes along.
        awk = ("FILENAME ~ /dpkg/ && $3 ~ /^(install|upgrade|remove|purge)$/ { d = $0 } "
               "FILENAME ~ /history/ && /^End-Date:/ { a = $0 } "
               "FILENAME ~ /dnf/ && / (Upgrade|Upgraded|Install|Installed|Erase|Reinstall|Downgrade):/ { n = $0 } "
               "FILENAME ~ /yum/ { y = $0 } "
               "END { if (d) print \"dpkg\", d; if (a) print \"apt\", a; if (n) print \"dnf\", n; "
               "if (y) print \"yum\", year, y }")
        return ("set --; for f in /var/log/dpkg.log.1 /var/log/dpkg.log /var/log/apt/history.log "
                "/var/log/dnf.rpm.log /var/log/yum.log; do [ -f \"$f\" ] && set -- \"$@\" \"$f\"; done; "
                "y=; [ -f /var/log/yum.log ] && y=$(date -r /var/log/yum.log +%Y); "
                f"[ $# -gt 0 ] && awk -v year=\"$y\" '{awk}' \"$@\"; "
                "command -v rpm >/dev/null 2>&1 && rpm -qa --last 2>/dev/null | head -1 | sed 's/^/rpm /'; true")

    def process(self, text: str, ctx: Context) -> PackageFacts:
        tz = ctx.tz
        found: list[tuple[datetime, str, str]] = []
        for line in text.splitlines():
            source, _, rest = line.partition(" ")
            at = None
            if source == "dpkg":
                at = _naive(rest[:19], tz)
            elif source == "apt":
                at = _naive(rest.removeprefix("End-Date:").strip()[:20].replace("  ", " "), tz)
            elif source == "dnf":
                at = _iso(rest.split()[0]) if rest.split() else None
            elif source == "yum":
                f = rest.split()
                if len(f) >= 4:
                    at = _ctime(f"{f[1]} {f[2]} {f[3]} {f[0]}", tz)
            elif source == "rpm":
                m = re.search(r"(\w{3} \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d(?: [AP]M)?)", rest)
                if m:
                    for fmt in ("%a %d %b %Y %I:%M:%S %p", "%a %d %b %Y %H:%M:%S"):
                        try:
                            at = datetime.strptime(m.group(1), fmt).replace(tzinfo=tz)
                            break
                        except ValueError:
                            continue
            if at is not None:
                found.append((at.astimezone(UTC), source, rest.strip()[:200]))
        if not found:
            return {"last_transaction": None, "source": None, "detail": None}
        at, source, detail = max(found)
        return {"last_transaction": at.isoformat(), "source": source, "detail": detail}


def _naive(text: str, tz: timezone) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
    except ValueError:
        return None


class Services(Probe[ServiceFacts]):
    """Enabled and running services (systemd), or the init scripts (SysV)."""

    name = "services"

    def command(self, ctx: Context) -> str:
        return ("if [ -d /run/systemd/system ]; then echo systemd; "
                "systemctl list-unit-files --type=service --state=enabled --no-legend --no-pager 2>/dev/null "
                "| awk '{print \"E\", $1}'; "
                "systemctl list-units --type=service --state=running --no-legend --no-pager 2>/dev/null "
                "| awk '{print \"R\", $1}'; "
                "else echo sysv; ls /etc/init.d 2>/dev/null | sed 's/^/E /'; fi")

    def process(self, text: str, ctx: Context) -> ServiceFacts:
        lines = text.splitlines()
        manager = lines[0].strip() if lines else "unknown"
        enabled = sorted({line[2:].strip() for line in lines[1:] if line.startswith("E ")})
        running = sorted({line[2:].strip() for line in lines[1:] if line.startswith("R ")})
        return {"manager": manager, "enabled": enabled, "running": running}


class Cron(Probe[list[CronEntry]]):
    """Every active crontab line of the system crontabs, cron.d and the users' spools."""

    name = "cron"

    def command(self, ctx: Context) -> str:
        return ("grep -H -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' /etc/crontab /etc/cron.d/* "
                "/var/spool/cron/crontabs/* /var/spool/cron/* 2>/dev/null | head -n 500")

    def process(self, text: str, ctx: Context) -> list[CronEntry]:
        out: list[CronEntry] = []
        for line in text.splitlines():
            file, sep, entry = line.partition(":")
            if sep and entry.strip() and not re.match(r"^\s*[A-Z_]+=", entry):
                out.append({"file": file, "entry": entry.strip()[:300]})
        return out


class DataPaths(Probe[dict[str, DataPathFacts]]):
    """Files, bytes and the newest modification under each declared data path."""

    name = "data"

    def command(self, ctx: Context) -> str:
        if not ctx.data_paths:
            return "true"
        lines = []
        for p in ctx.data_paths:
            q = shlex.quote(p)
            lines.append(f"if [ -d {q} ]; then find {q} -xdev -type f -printf '%T@ %s\\n' 2>/dev/null | "
                         f"awk -v p={q} '{{n++; s+=$2; if ($1>m) m=$1}} END {{print \"P\", n+0, s+0, m+0, p}}'; "
                         f"else echo \"M {p}\"; fi")
        return "; ".join(lines)

    def process(self, text: str, ctx: Context) -> dict[str, DataPathFacts]:
        out: dict[str, DataPathFacts] = {}
        for line in text.splitlines():
            f = line.split(" ", 4)
            if f[0] == "P" and len(f) == 5 and f[4] in ctx.data_paths:
                newest = _num(f[3])
                out[f[4]] = {"exists": True, "files": int(_num(f[1])), "bytes": int(_num(f[2])),
                             "last_modified": datetime.fromtimestamp(newest, UTC).isoformat() if newest else None}
            elif f[0] == "M" and line[2:] in ctx.data_paths:
                out[line[2:]] = {"exists": False, "files": 0, "bytes": 0, "last_modified": None}
        return out


# rd: cat without a process (shell builtins only), since most reads are small /proc files.
PREAMBLE = "exec 2>/dev/null\nrd() { while IFS= read -r l || [ -n \"$l\" ]; do printf '%s\\n' \"$l\"; done < \"$1\"; }"

_SECTION_HEAD = re.compile(r"(\w+)>>>\n")

PROBES: tuple[Probe[Any], ...] = (Clock(), HostOS(), Sockets(), Logins(), WebAccess(), Packages(), Services(), Cron(),
                             DataPaths(), Sample())


@dataclass
class Script:
    """The one script a host runs, and how to split its output back into probe sections."""

    token: str
    ctx: Context
    probes: tuple[Probe[Any], ...] = PROBES
    text: str = field(init=False)

    def __post_init__(self) -> None:
        sample = next((p for p in self.probes if isinstance(p, Sample)), None)
        others = "\n".join(self._section(p.name, p.command(self.ctx)) for p in self.probes if p is not sample)
        if sample is None:
            self.text = f"{PREAMBLE}\n{others}\n"
            return
        # Output waits in shell variables until the sample's end snapshot is taken: nothing the script
        # sends over SSH falls inside the measured interval.
        self.text = (f"{PREAMBLE}\n{sample.find_pids}\n"
                     f"jy_begin=$({self._section('sample_begin', sample.begin())})\n{sample.mark}\n"
                     f"jy_out=$({others})\n{self._section(sample.name, sample.command(self.ctx))}\n"
                     "printf '%s\\n%s\\n' \"$jy_begin\" \"$jy_out\"\n")

    def _section(self, name: str, command: str) -> str:
        # The marker carries a per-run random token: host output cannot forge a section.
        return f"echo '<<<{self.token}:{name}>>>'\n{{ {command} ; }} < /dev/null"

    def sections(self, text: str) -> dict[str, str]:
        """The output split at this script's markers, by section name (a later section of a name wins).

        Split on the marker text with one fixed pattern for the name: a pattern built around each run's token
        would be compiled anew for every host (a few milliseconds each, at a thousand hosts seconds)."""
        marker = f"<<<{self.token}:"
        sections: dict[str, str] = {}
        name, chunks = None, []
        for piece in text.split(marker)[1:]:
            head = _SECTION_HEAD.match(piece)
            if head is None:  # the marker's text without a name after it: part of the section's output
                if name is not None:
                    chunks.append(marker + piece)
                continue
            if name is not None:
                sections[name] = "".join(chunks)
            name, chunks = head.group(1), [piece[head.end():]]
        if name is not None:
            sections[name] = "".join(chunks)
        return sections

    def parse(self, output: bytes) -> HostFacts:
        sections = self.sections(output.decode("utf-8", errors="replace"))
        ctx = replace(self.ctx, sample_start=sections.get("sample_begin", ""))
        if "clock" in sections:  # the host's own clock and zone, for the probes that read times
            clock = Clock().process(sections["clock"], ctx)
            ctx = replace(ctx, tz=_tz(clock["utc_offset"]), now=datetime.fromtimestamp(clock["epoch"], UTC))
        facts: dict[str, Any] = {}
        for probe in self.probes:
            if probe.name in sections:
                value = probe.process(sections[probe.name], ctx)
                if probe.top_level:
                    facts.update(value)
                else:
                    facts[probe.name] = value
        return cast(HostFacts, facts)
