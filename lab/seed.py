"""Seed the lab: give every system's hosts a history and a present, as `scenario.yaml` says.

For each system, by its profile (active, detached, idle, stale, small), on its hosts:

- the access log at each declared log_path (combined log format), on the hosts that run the
  system's http service (all its hosts if it has none);
- /var/log/wtmp with interactive logins and logouts (written with `utmpdump --reverse`);
- the package manager's log: /var/log/dpkg.log and /var/log/apt/history.log (debian family),
  /var/log/dnf.rpm.log (RPM hosts), /var/log/yum.log (CentOS 6/7), with file mtimes at the last
  transaction;
- files under each declared data_path (app.db, uploads/, export/) with the profile's mtimes;
- /etc/cron.d/<system-id>.

Then it writes, per declared service, the control script /etc/app/<system-id>/service and its
service.env on the service's host (lab/service.py: everything the service needs to run on
another host is there and in its data paths) and starts it with `service start`: one `app.py`
process (http if the service has a health_url, keeping its records in <first data path>/app.db,
else a plain TCP holder such as a database stand-in); an http service keeps a connection open to its
own system's other services and to the first service of each system it depends on. The gateway host
gets a real nginx with one route per system with an http service (lab/gateway.py). Last,
`traffic.py` runs inside the gateway host and calls, through the gateway, the systems whose profile
has live traffic. Every app and the traffic end by themselves after the scenario's `lifetime`
(nginx runs until lab.down).

Seeding again rewrites the history files (the same history relative to the new moment; app.db is
rewritten in place, keeping the records the app stored) and leaves running processes alone when
their command line is unchanged: never two processes per service. Routes are put back to the
inventory's hosts. Timestamps in log text are Asia/Shanghai local time (+0800).
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import os
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import yaml

from inventory.model import Host, Inventory, System
from jiyue.files import write_atomic
from lab import gateway as gw
from lab import service as svc
from lab.appdb import SCHEMA as APP_SCHEMA
from lab.hosts import Lab, LabError
from lab.model import PROFILES, Proc, SeedResult, UndeclaredHost

HERE = Path(__file__).resolve().parent
DEFAULT_SCENARIO = HERE / "scenario.yaml"
APP = HERE / "app.py"
TRAFFIC = HERE / "traffic.py"
PYTHON = "/usr/bin/python3"  # the machine's own: lab hosts see the machine's /usr
TZ = timezone(timedelta(hours=8), "CST")  # Asia/Shanghai, no DST since 1991
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAY = 86400.0

USERS = ("zhangwei", "liqiang", "wangfang", "liuyang", "chenjing", "yangli", "zhaolei", "huangmin", "zhoujie",
         "wuxia", "ops", "admin")
REQUESTS = (  # (weight, method, path template, status, size range)
    (30, "GET", "/api/list?page={n}", 200, (800, 4000)),
    (20, "GET", "/api/detail/{id}", 200, (300, 2500)),
    (10, "POST", "/api/save", 200, (60, 200)),
    (8, "GET", "/api/search?q={id}", 200, (200, 3000)),
    (8, "GET", "/", 200, (1500, 1600)),
    (6, "GET", "/static/js/app.{n}.js", 304, (0, 0)),
    (5, "POST", "/login", 302, (0, 0)),
    (3, "GET", "/api/export?month={n}", 200, (5000, 60000)),
    (2, "GET", "/api/detail/{id}", 404, (9, 9)),
)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/102.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
)
# Upstream versions of a few always-updated packages per distribution, so package logs look like
# the distribution's own: ssl, ssh, libc, curl, sudo, systemd, bash (CentOS 6 has no systemd).
DIST_VERSIONS = {
    "debian12": ("3.0.11", "1:9.2p1", "2.36", "7.88.1", "1.9.13p3", "252.22", "5.2.15"),
    "ubuntu2204": ("3.0.2", "1:8.9p1", "2.35", "7.81.0", "1.9.9", "249.11", "5.1"),
    "uos20": ("1.1.1d", "1:7.9p1", "2.28", "7.64.0", "1.8.27", "241", "5.0"),
    "kylin4": ("1.0.2g", "1:7.2p2", "2.23", "7.47.0", "1.8.16", "229", "4.3"),
    "el6": ("1.0.1e", "5.3p1", "2.12", "7.19.7", "1.8.6p3", None, "4.1.2"),
    "el7": ("1.0.2k", "7.4p1", "2.17", "7.29.0", "1.8.23", "219", "4.2.46"),
    "ky10": ("1:1.1.1f", "8.2p1", "2.28", "7.71.1", "1.9.2", "243", "5.0"),
    "oe2203": ("1:1.1.1m", "8.8p1", "2.34", "7.79.1", "1.9.8p2", "249", "5.1.8"),
    "oe2403": ("1:3.0.12", "9.6p1", "2.38", "8.4.0", "1.9.15p5", "255", "5.2.15"),
    "an8": ("1:1.1.1k", "8.0p1", "2.28", "7.61.1", "1.9.5p2", "239", "4.4.20"),
}
DEB_PACKAGES = {"openssl": 0, "libssl3": 0, "openssh-server": 1, "openssh-client": 1, "libc6": 2, "curl": 3,
                "libcurl4": 3, "sudo": 4, "systemd": 5, "bash": 6}
RPM_PACKAGES = {"openssl": 0, "openssl-libs": 0, "openssh": 1, "openssh-server": 1, "glibc": 2, "curl": 3,
                "libcurl": 3, "sudo": 4, "systemd": 5, "bash": 6}
PACKAGE_LOGS = ("/var/log/dpkg.log", "/var/log/apt/history.log", "/var/log/dnf.rpm.log", "/var/log/yum.log")
DATA_ITEMS = ("app.db", "uploads", "export")


class ScenarioError(Exception):
    """The scenario file is malformed or names an unknown profile."""


# --- the scenario ------------------------------------------------------------------------------

@dataclass
class Scenario:
    default: str
    profiles: dict[str, dict]
    systems: dict[str, dict]  # system id -> {"profile": name, overrides...}
    lifetime: int = 7200
    traffic: dict = field(default_factory=dict)
    undeclared: list[UndeclaredHost] = field(default_factory=list)

    def plan(self, system_id: str) -> tuple[str, dict]:
        """The system's profile name and its parameters, overrides and since_days applied."""
        entry = self.systems.get(system_id, {"profile": self.default})
        name = entry["profile"]
        params = _merge(self.profiles[name], {k: v for k, v in entry.items() if k != "profile"})
        since = params.get("since_days")
        if since is not None:
            params["access"]["ago"] = since
            params["logins"]["last_ago"] = since
            params["data"]["ago"] = since
        return name, params


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_scenario(path: Path | str = DEFAULT_SCENARIO) -> Scenario:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read the scenario {path}: {exc}") from None
    profiles = raw.get("profiles") or {}
    unknown = sorted(set(profiles) - set(PROFILES))
    if unknown:
        raise ScenarioError(f"{path}: unknown profiles {unknown} (known: {', '.join(PROFILES)})")
    for params in profiles.values():
        for section in ("access", "logins", "updates", "data"):
            params.setdefault(section, {})
    systems = {}
    for system_id, entry in (raw.get("systems") or {}).items():
        entry = {"profile": entry} if isinstance(entry, str) else dict(entry)
        if entry.get("profile") not in profiles:
            raise ScenarioError(f"{path}: system {system_id}: unknown profile {entry.get('profile')!r}")
        systems[system_id] = entry
    default = raw.get("default", "active")
    if default not in profiles:
        raise ScenarioError(f"{path}: default profile {default!r} is not defined")
    undeclared = []
    for i, entry in enumerate(raw.get("undeclared") or []):
        try:
            undeclared.append(UndeclaredHost(str(entry["name"]), str(entry["address"]), bool(entry.get("ssh", False)),
                                             str(entry.get("os", "Debian 12")),
                                             tuple(int(p) for p in entry.get("listen") or ()),
                                             tuple(str(c) for c in entry.get("connect") or ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise ScenarioError(f"{path}: undeclared[{i}]: give name, address and optionally ssh, os, listen, "
                                f"connect ({exc})") from None
    return Scenario(default, profiles, systems, int(raw.get("lifetime", 7200)), raw.get("traffic") or {},
                    undeclared)


def _pick(rng: random.Random, value: object) -> float:
    """A number from a scalar or an inclusive [lo, hi] range (integers stay integers)."""
    if isinstance(value, list | tuple):
        lo, hi = value
        return rng.randint(lo, hi) if isinstance(lo, int) and isinstance(hi, int) else rng.uniform(lo, hi)
    return value  # type: ignore[return-value]


def _rng(*parts: object) -> random.Random:
    return random.Random("/".join(map(str, parts)))  # stable across runs: str seeds are hashed with sha512


# --- what gets written ---------------------------------------------------------------------------

def _clients(inv: Inventory, system: System, rng: random.Random, count: int) -> list[str]:
    """Distinct extranet-looking client addresses: from the department's extranet block if it has one."""
    block = next((d.ipv4 for d in (inv.extranet.departments if inv.extranet else [])
                  if d.department == system.department), None) or ipaddress.IPv4Network("10.80.0.0/14")
    size = block.num_addresses - 2
    chosen = rng.sample(range(2, size), min(count, size - 2))
    return [str(block.network_address + i) for i in chosen]


def _request_times(rng: random.Random, day_start: float, limit: float, n: int) -> list[float]:
    """n epoch times within one local day (not after `limit`), mostly in office hours."""
    span = min(DAY, limit - day_start)
    office = span >= 17.5 * 3600
    times = [day_start + (rng.uniform(30600.0, 63000.0) if office and rng.random() < 0.8
                          else rng.uniform(0.0, max(span, 1.0))) for _ in range(n)]
    return sorted(min(t, day_start + span) for t in times)


def access_log(inv: Inventory, system: System, params: dict, now: datetime, rng: random.Random) -> tuple[str, float]:
    """The access log's text and the time of its last entry."""
    days, ago = int(params.get("days", 60)), float(_pick(rng, params.get("ago", 0)))
    clients = _clients(inv, system, rng, int(_pick(rng, params.get("clients", [20, 60]))))
    weights = [1.0 / (i + 1) for i in range(len(clients))]  # a few heavy users, a long tail
    agents = {ip: rng.choice(AGENTS) for ip in clients}
    kinds = [r[0] for r in REQUESTS]
    referer = f"http://{system.id}.zw.local/"
    end = now - timedelta(days=ago)
    last_day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    # A seasonal system (`seasons`, `every`): the same span of days once per cycle, the newest first ending `ago`.
    seasons, every = int(params.get("seasons", 1)), int(params.get("every", 365))
    backs = [season * every + back for season in range(seasons - 1, -1, -1) for back in range(days - 1, -1, -1)]
    lines, last = [], 0.0
    for back in backs:
        day_start = last_day - timedelta(days=back)
        n = int(_pick(rng, params.get("requests_per_day", [150, 400])))
        times = _request_times(rng, day_start.timestamp(), end.timestamp(), n)
        stamp = f"/{MONTHS[day_start.month - 1]}/{day_start.year}:"
        for when, (_, method, template, status, (lo, hi)), ip in zip(
                times, rng.choices(REQUESTS, weights=kinds, k=n), rng.choices(clients, weights=weights, k=n),
                strict=True):
            local = datetime.fromtimestamp(when, TZ)
            path = template.format(n=rng.randint(1, 40), id=rng.randint(1000, 99999))
            lines.append(f'{ip} - - [{local.day:02d}{stamp}{local:%H:%M:%S} +0800] "{method} {path} HTTP/1.1" '
                         f'{status} {rng.randint(lo, hi)} "{"-" if path == "/" else referer}" "{agents[ip]}"\n')
            last = when
    return "".join(lines), last


def newest_login(system: System, host: str, params: dict, now: datetime) -> datetime:
    """The newest interactive login the scenario's `logins` params give `host` (stable per system and host, so
    the baseline seed, which places the administrators' lastlog entries before it, finds the same moment)."""
    last_ago = params.get("last_ago", [0, 3])
    if isinstance(last_ago, list):  # between lo days and hi days back (at least 3 h back)
        rng = _rng(system.id, host, "newest login")
        return now - timedelta(seconds=rng.uniform(max(last_ago[0] * DAY, 3 * 3600), last_ago[1] * DAY))
    return now - timedelta(days=float(last_ago))


def administrators_last_login(inv: Inventory, scenario: Scenario, host: str, now: datetime) -> datetime | None:
    """The latest moment the host's administrator accounts (lab/baseline.yaml's) can have logged in, by the scenario.

    Their logins are part of the host's login history, so they are no newer than its newest login; None where the
    scenario's `logins.admins` is false (a detached or small system: their logins would change what the audit
    finds). A host of no system has no scenario: `now`.
    """
    system = next((s for s in inv.systems.values() if host in s.hosts), None)
    if system is None:
        return now
    _, params = scenario.plan(system.id)
    if not params["logins"].get("admins", True):
        return None
    return newest_login(system, host, params["logins"], now)


def wtmp_text(inv: Inventory, system: System, host: str, params: dict, now: datetime,
              rng: random.Random) -> tuple[str, float]:
    """utmpdump text of boot, logins and logouts (UTC, as utmpdump reads it); and the last logout's time."""
    users = rng.sample(USERS, int(_pick(rng, params.get("users", [4, 8]))))
    days = float(params.get("days", 30))
    newest = newest_login(system, host, params, now)
    sources = _clients(inv, system, rng, 6)
    starts = [newest] + [newest - timedelta(seconds=rng.uniform(0, days * DAY)) for _ in range(len(users) * 3)]
    sessions = []
    for i, start in enumerate(sorted(starts)):
        user = users[i] if i < len(users) else rng.choice(users)
        length = timedelta(seconds=rng.uniform(120, 5400))
        if start == newest:
            length = min(length, (now - start) - timedelta(seconds=60))
        sessions.append((start, start + length, user, rng.randint(1200, 64000), f"pts/{i % 6}",
                         rng.choice(sources)))
    boot = min(s[0] for s in sessions) - timedelta(days=rng.uniform(1, 20))
    records = [(boot, 2, 0, "~~", "reboot", "~", "6.1.0-13-amd64", "0.0.0.0")]
    for start, end, user, pid, line, source in sessions:
        records.append((start, 7, pid, line.replace("pts/", "ts/"), user, line, source, source))
        records.append((end, 8, pid, line.replace("pts/", "ts/"), "", line, "", "0.0.0.0"))
    records.sort(key=lambda r: r[0])
    text = "".join(
        f"[{kind}] [{pid:05d}] [{ident:<4.4}] [{user:<8}] [{line:<12}] [{host:<20}] [{addr:<15}] "
        f"[{when.astimezone(UTC):%Y-%m-%dT%H:%M:%S},{when.microsecond:06d}+00:00]\n"
        for when, kind, pid, ident, user, line, host, addr in records)
    return text, max(s[1] for s in sessions).timestamp()


def _transactions(params: dict, now: datetime, rng: random.Random) -> list[datetime]:
    """Package transaction times, oldest first: every 2-5 weeks for two years up to the last one."""
    if params.get("last_date"):
        day = params["last_date"]
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        last = datetime(day.year, day.month, day.day, rng.randint(9, 16), rng.randint(0, 59), rng.randint(0, 59),
                        tzinfo=TZ)
    else:
        day = (now - timedelta(days=float(_pick(rng, params.get("last_ago", [3, 20]))))).date()
        last = datetime(day.year, day.month, day.day, rng.randint(9, 16), rng.randint(0, 59), rng.randint(0, 59),
                        tzinfo=TZ)
        last = min(last, now - timedelta(hours=1))
    times = [last]
    while times[-1] > last - timedelta(days=730):
        t = times[-1] - timedelta(days=rng.uniform(14, 35))
        times.append(t.replace(hour=rng.randint(9, 16), minute=rng.randint(0, 59), second=rng.randint(0, 59)))
    return sorted(times)


def _dist(host: Host) -> tuple[str, str]:
    """(key of DIST_VERSIONS, release suffix template) for a host's declared OS."""
    name = host.os.lower().replace(" ", "")
    for prefix, key, suffix in (("ubuntu", "ubuntu2204", "-0ubuntu1.{n}"), ("uos", "uos20", "-1+uos{n}"),
                                ("kylinv4", "kylin4", "-1kylin0.{n}"), ("centos6", "el6", "-{n}.el6_10"),
                                ("centos7", "el7", "-{n}.el7_9"), ("kylinv10", "ky10", "-{n}.ky10"),
                                ("openeuler24.03ltssp1", "oe2403", "-{n}.oe2403sp1"),
                                ("openeuler24.03", "oe2403", "-{n}.oe2403"),
                                ("openeuler22.03ltssp1", "oe2203", "-{n}.oe2203sp1"),
                                ("openeuler22.03ltssp2", "oe2203", "-{n}.oe2203sp2"),
                                ("openeuler", "oe2203", "-{n}.oe2203"), ("anolis", "an8", "-{n}.an8")):
        if name.startswith(prefix):
            return key, suffix
    return ("debian12", "-1+deb12u{n}") if host.os_family == "debian" else ("an8", "-{n}.an8")


def package_logs(host: Host, params: dict, now: datetime, rng: random.Random) -> tuple[dict[str, str], float]:
    """The package manager's log files (in-host path -> text) and the last transaction's time."""
    times = _transactions(params, now, rng)
    key, suffix = _dist(host)
    versions = DIST_VERSIONS[key]
    names = DEB_PACKAGES if host.os_family == "debian" else RPM_PACKAGES
    packages = {pkg: versions[i] for pkg, i in names.items() if versions[i]}

    def version(pkg: str, n: int, epoch: bool = True) -> str:
        upstream = packages[pkg] if epoch else packages[pkg].split(":")[-1]
        return upstream + suffix.format(n=n)

    history = []  # (time, [(package, old, new)])
    counter: dict[str, int] = {}
    for when in times:
        changed = []
        for pkg in rng.sample(sorted(packages), rng.randint(1, 4)):
            n = counter[pkg] = counter.get(pkg, 0) + 1
            changed.append((pkg, n, n + 1))
        history.append((when, changed))
    files: dict[str, str] = {}
    if host.os_family == "debian":
        dpkg, apt = [], [""]
        for when, changed in history:
            t0, t1 = when, when + timedelta(seconds=rng.randint(4, 40))
            ts0, ts1 = f"{t0:%Y-%m-%d %H:%M:%S}", f"{t1:%Y-%m-%d %H:%M:%S}"
            dpkg.append(f"{ts0} startup archives unpack\n")
            for pkg, old, new in changed:
                dpkg.append(f"{ts0} upgrade {pkg}:amd64 {version(pkg, old)} {version(pkg, new)}\n")
                dpkg.append(f"{ts0} status unpacked {pkg}:amd64 {version(pkg, new)}\n")
            dpkg.append(f"{ts1} startup packages configure\n")
            for pkg, _old, new in changed:
                dpkg.append(f"{ts1} configure {pkg}:amd64 {version(pkg, new)} <none>\n")
                dpkg.append(f"{ts1} status installed {pkg}:amd64 {version(pkg, new)}\n")
            upgrades = ", ".join(f"{pkg}:amd64 ({version(pkg, old)}, {version(pkg, new)})" for pkg, old, new in changed)
            apt.append(f"Start-Date: {t0:%Y-%m-%d  %H:%M:%S}\nCommandline: apt-get -y upgrade\n"
                       f"Upgrade: {upgrades}\nEnd-Date: {t1:%Y-%m-%d  %H:%M:%S}\n\n")
        files["/var/log/dpkg.log"] = "".join(dpkg)
        files["/var/log/apt/history.log"] = "\n".join(apt[:1]) + "".join(apt[1:])
        last = times[-1] + timedelta(seconds=40)
    else:
        def rpm(pkg: str, n: int, epoch: bool = True) -> str:
            return f"{pkg}-{version(pkg, n, epoch)}.x86_64"

        if key in ("el6", "el7"):  # yum: no year in the text; yum.log is rotated yearly
            year = times[-1].year
            files["/var/log/yum.log"] = "".join(
                f"{MONTHS[when.month - 1]} {when:%d %H:%M:%S} Updated: {rpm(pkg, new, epoch=False)}\n"
                for when, changed in history if when.year == year for pkg, _old, new in changed)
        else:
            lines = []
            for when, changed in history:
                ts = f"{when:%Y-%m-%dT%H:%M:%S%z}"
                lines.append(f"{ts} INFO --- logging initialized ---\n")
                for pkg, old, new in changed:
                    lines.append(f"{ts} SUBDEBUG Upgrade: {rpm(pkg, new)}\n")
                    lines.append(f"{ts} SUBDEBUG Upgraded: {rpm(pkg, old)}\n")
            files["/var/log/dnf.rpm.log"] = "".join(lines)
        last = times[-1]
    return files, last.timestamp()


def write_data(real: Path, system: System, params: dict, now: datetime, rng: random.Random) -> None:
    """A small application's data: app.db (SQLite), uploads/YYYY-MM/*.pdf, export/summary.csv."""
    ago = params.get("ago", [0, 1])

    def age(newest: bool = False) -> float:  # seconds; a range: each file its own; a number: the newest file's
        if isinstance(ago, list):
            return rng.uniform(*ago) * DAY
        return (float(ago) + (0 if newest else rng.uniform(0, 3))) * DAY

    real.mkdir(parents=True, exist_ok=True)
    for item in DATA_ITEMS:
        target = real / item
        if item == "app.db" and target.is_file() and not target.is_symlink():
            continue  # rewritten in place below: a running app may hold records in it
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    stamps = []
    newest = now.timestamp() - age(newest=True)
    db = real / "app.db"
    rows = [(i, f"{system.name} 记录 {i}", datetime.fromtimestamp(newest - (60 - i) * 3 * DAY, TZ).isoformat(),
             datetime.fromtimestamp(newest - (60 - i) * DAY / 4, TZ).isoformat()) for i in range(1, 61)]
    try:
        _write_records(db, rows)
    except sqlite3.DatabaseError:  # not a database (any more): start afresh
        for extra in ("app.db", "app.db-journal", "app.db-wal", "app.db-shm"):
            (real / extra).unlink(missing_ok=True)
        _write_records(db, rows)
    stamps.append((db, newest))
    for i in range(rng.randint(2, 4)):
        when = now.timestamp() - age()
        month = datetime.fromtimestamp(when, TZ).strftime("%Y-%m")
        pdf = real / "uploads" / month / f"doc-{i + 1:04d}.pdf"
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(b"%PDF-1.4\n% jiyue lab\n" + rng.randbytes(rng.randint(512, 4096)) + b"\n%%EOF\n")
        stamps.append((pdf, when))
    csv = real / "export" / "summary.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("month,count\n" + "".join(f"{m:02d},{rng.randint(10, 500)}\n" for m in range(1, 13)),
                   encoding="utf-8")
    stamps.append((csv, now.timestamp() - age()))
    for path, when in stamps:
        os.utime(path, (when, when))
    for directory in sorted({p.parent for p, _ in stamps} | {real / "uploads"}, key=lambda p: -len(p.parts)):
        latest = max(os.stat(c).st_mtime for c in directory.iterdir())
        os.utime(directory, (latest, latest))


def _write_records(db: Path, rows: list[tuple]) -> None:
    """The seeded business records, (re)written in one transaction, and the app's own table if it is missing
    (a table the app filled is kept)."""
    with contextlib.closing(sqlite3.connect(db, timeout=10.0, isolation_level=None)) as con:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("BEGIN IMMEDIATE")
        con.execute("DROP TABLE IF EXISTS records")
        con.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT, created TEXT, updated TEXT)")
        con.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
        con.execute(APP_SCHEMA)
        con.execute("COMMIT")


def cron_file(system: System) -> str:
    minute = sum(map(ord, system.id)) % 60
    logs = sorted({str(Path(p).parent) for p in system.log_paths}) or [f"/var/log/app/{system.id}"]
    data = " ".join(system.data_paths) or f"/srv/{system.id}"
    return (f"# {system.name} ({system.id}): nightly backup, weekly log clean-up\n"
            "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
            f"{minute} 2 * * * root tar -czf /srv/backup/{system.id}-$(date +\\%Y\\%m\\%d).tar.gz {data} "
            ">/dev/null 2>&1\n"
            f"{(minute + 17) % 60} 3 * * 0 root find {' '.join(logs)} -name '*.log.*' -mtime +180 -delete\n")


def _write(path: Path, text: str | bytes, mtime: float | None = None, mode: int = 0o644) -> None:
    """Replace a file atomically (a running app appending to it loses at most a line or two)."""
    write_atomic(path, text, mode=mode, mtime=mtime)


def _utmp(text: str) -> bytes:
    proc = subprocess.run(["utmpdump", "--reverse"], input=text.encode(), capture_output=True,
                          env={**os.environ, "TZ": "UTC"})
    if proc.returncode != 0 or not proc.stdout:
        raise LabError(f"utmpdump --reverse failed: {proc.stderr.decode().strip()}")
    return proc.stdout


# --- processes -----------------------------------------------------------------------------------

def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts(pid: int | str) -> list[tuple[str, str, str]]:
    """(device, root within the device, mount point) of each mount process `pid` sees."""
    out = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        out.append((fields[2], _unescape(fields[3]), _unescape(fields[4])))
    return out


def _within(path: str, top: str) -> str | None:
    """`path` relative to `top` ("" for top itself), or None if it is not under it."""
    if top == "/":
        return path.lstrip("/")
    if path == top:
        return ""
    return path[len(top) + 1:] if path.startswith(top + "/") else None


def machine_path(pid: int, path: str) -> str:
    """Where the file process `pid` sees at `path` (through its own mount namespace: a lab host's
    private /etc/app, /srv ...) is in this process's view of the filesystem."""
    try:
        theirs = _mounts(pid)
        ours = _mounts("self")
    except OSError:
        return path
    best = None
    for dev, root, point in theirs:  # the last mount on the longest matching point is the visible one
        rest = _within(path, point)
        if rest is not None and (best is None or len(point) >= len(best[2])):
            best = (dev, root, point, rest)
    if best is None:
        return path
    dev, root, _, rest = best
    inner = root.rstrip("/") + "/" + rest if rest else root  # the file's path within its filesystem
    found = None
    for our_dev, our_root, point in ours:
        within = _within(inner, our_root) if our_dev == dev else None
        if within is not None and (found is None or len(our_root) > len(found[0])):
            found = (our_root, point.rstrip("/") + "/" + within if within else point)
    return found[1] if found else path


def _lab_namespaces() -> set[int]:
    """The network namespaces `ip netns` names in this process's view: those of the labs that run here.

    Every lab on the machine shares one process table, but a lab apart (`lab.isolate`: the test suite's)
    names its namespaces in a /run/netns of its own. A process outside these belongs to another lab, whose
    pid files may even resolve to the same paths as ours (the checkout's `.lab`, bound over): it is never
    ours to adopt or stop."""
    found = set()
    with contextlib.suppress(OSError):
        for entry in Path("/run/netns").iterdir():
            with contextlib.suppress(OSError):
                found.add(entry.stat().st_ino)
    return found


def running_processes(script: Path) -> dict[str, list[tuple[int, list[str]]]]:
    """This lab's processes running `script` (see `_lab_namespaces`), by their --pidfile argument as a path
    on this machine (a pid file inside a lab host's private /etc/app resolves to that host's own file)."""
    found: dict[str, list[tuple[int, list[str]]]] = {}
    namespaces = _lab_namespaces()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            if str(script) not in argv or "--pidfile" not in argv:
                continue
            stat = (entry / "stat").read_text()
            if (entry / "ns" / "net").stat().st_ino not in namespaces:
                continue
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        pidfile = machine_path(int(entry.name), argv[argv.index("--pidfile") + 1])
        found.setdefault(pidfile, []).append((int(entry.name), argv))
    return found


def _kill(pids: Iterable[int]) -> None:
    pids = list(pids)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and
                    Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
            if pids:
                time.sleep(0.05)
        if not pids:
            return


def _ensure(lab: Lab, procs: list[Proc], running: dict[str, list[tuple[int, list[str]]]]) -> None:
    """Leave each process alone if it runs with the same command line; otherwise (re)start it."""
    to_kill: list[int] = []
    starts: dict[str, list[Proc]] = {}
    for proc in procs:
        current = running.get(str(proc.pidfile), [])
        if proc.port:  # another process of this host on the service's port (an older lab's pid file elsewhere)
            host_dir = f"{lab.host_dir(proc.host)}/"
            to_kill += [pid for key, found in running.items() if key != str(proc.pidfile) and key.startswith(host_dir)
                        for pid, argv in found if _arg(argv, "--port") == str(proc.port)]
        if len(current) == 1 and current[0][1] == proc.argv:
            proc.pid, proc.state = current[0][0], "kept"
            continue
        to_kill += [pid for pid, _ in current]
        starts.setdefault(proc.host, []).append(proc)
    _kill(to_kill)

    def start(host: str) -> None:
        group = starts[host]
        lines = ["cd /"]
        for i, proc in enumerate(group):
            proc.pidfile.parent.mkdir(parents=True, exist_ok=True)
            if proc.system_id:  # a service: its control script starts it and waits until it listens
                lines.append(f"{shlex.quote(svc.app_dir(proc.system_id) + '/service')} start >/dev/null 2>&1; "
                             f"echo \"{i} $?\"")
            else:
                proc.pidfile.unlink(missing_ok=True)
                out = proc.out or proc.pidfile.with_suffix(".out")
                lines.append(f"setsid {shlex.join(proc.argv)} </dev/null >{shlex.quote(str(out))} 2>&1 & "
                             f"echo \"{i} 0\"")
        try:
            result = lab.exec(host, "\n".join(lines))
        except LabError:
            result = None
        codes = dict(line.split() for line in result.stdout.splitlines() if len(line.split()) == 2) if result else {}
        for i, proc in enumerate(group):
            proc.state = "started" if codes.get(str(i)) == "0" else "failed"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, list(starts)))


def _arg(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def _wait_listening(procs: list[Proc], timeout: float = 8.0) -> None:
    waiting = [p for p in procs if p.port and p.state == "started"]
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        still = []
        for proc in waiting:
            try:
                with socket.create_connection((proc.address, proc.port), timeout=0.5):
                    pass
            except OSError:
                still.append(proc)
        waiting = still
        if waiting:
            time.sleep(0.1)
    for proc in waiting:
        proc.state = "failed"


# --- the whole -----------------------------------------------------------------------------------

def seed(lab: Lab, inv: Inventory, scenario_path: Path | str = DEFAULT_SCENARIO, hosts: Iterable[str] | None = None,
         now: datetime | None = None) -> SeedResult:
    """Write every system's history into its hosts and start its services and the live traffic.

    `hosts` limits seeding to those hosts (systems with none of them are left out); the traffic
    generator starts only when the gateway host is among them.
    """
    scenario = load_scenario(scenario_path)
    lab.preflight()
    now = (now or datetime.now(TZ)).astimezone(TZ)
    selected = set(inv.hosts) if hosts is None else set(hosts)
    running = {s.name for s in lab.status(sorted(selected)) if s.sshd_pid is not None}
    if not running:
        raise LabError("no selected lab host is running: start them first with: invoke lab.up")
    result = SeedResult()
    for missing in sorted(selected - running):
        result.notes.append(f"host {missing} is not running: not seeded (start it with lab.up)")
    for system_id in sorted(set(scenario.systems) - set(inv.systems)):
        result.notes.append(f"scenario names {system_id}, which the inventory does not have")
    plans = {s.id: (s, *scenario.plan(s.id)) for s in inv.systems.values() if set(s.hosts) & running}
    result.profiles = {sid: profile for sid, (_, profile, _) in plans.items()}
    result.hosts = sorted({h for s, _, _ in plans.values() for h in s.hosts if h in running})

    def seed_host(job: tuple[System, dict, str]) -> None:
        system, params, host = job
        _seed_files(lab, inv, system, params, inv.hosts[host], now)

    jobs = [(s, params, h) for s, _, params in plans.values() for h in s.hosts if h in running]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(seed_host, jobs))

    gateway = inv.cloud.gateway if inv.cloud else None
    procs = _service_procs(lab, inv, scenario, [(s, p) for s, _, p in plans.values()], running)
    result.services = procs
    _ensure(lab, procs, running_processes(APP))
    _wait_listening(procs)

    if gateway in running:
        result.gateway, result.routes = _gateway(lab, inv)
    live = [s for s, _, p in plans.values() if p.get("live_traffic") and any(v.health_url for v in s.services)]
    if gateway in running and live:
        result.traffic, result.traffic_systems = (_traffic_proc(lab, inv, scenario, gateway, live),
                                                  sorted(s.id for s in live))
        _ensure(lab, [result.traffic], running_processes(TRAFFIC))
    elif gateway not in running:
        result.notes.append(f"gateway host {gateway or '(none in the inventory)'} is not running/selected: "
                            "no live traffic")
    found = {**running_processes(APP), **running_processes(TRAFFIC)}
    for proc in [*procs, *([result.traffic] if result.traffic else [])]:
        current = found.get(str(proc.pidfile), [])
        proc.pid = current[0][0] if len(current) == 1 else proc.pid
    return result


def _seed_files(lab: Lab, inv: Inventory, system: System, params: dict, host: Host, now: datetime) -> None:
    rng = _rng(system.id, host.name)
    http_hosts = {v.host for v in system.services if v.health_url} or set(system.hosts)
    if host.name in http_hosts:
        for log_path in system.log_paths:
            text, last_entry = access_log(inv, system, params["access"], now, _rng(rng.random()))
            real = lab.path(host.name, log_path)
            _write(real, text, mtime=last_entry)
            os.utime(real.parent, (last_entry, last_entry))
    text, last_logout = wtmp_text(inv, system, host.name, params["logins"], now, _rng(rng.random()))
    _write(lab.path(host.name, "/var/log/wtmp"), _utmp(text), mtime=last_logout, mode=0o664)
    files, last = package_logs(host, params["updates"], now, _rng(rng.random()))
    for in_host in PACKAGE_LOGS:
        if in_host in files:
            _write(lab.path(host.name, in_host), files[in_host], mtime=last)
        else:
            lab.path(host.name, in_host).unlink(missing_ok=True)
    for data_path in system.data_paths:
        try:
            real = lab.path(host.name, data_path)
        except ValueError:
            continue  # not private to the host: the seeder writes only inside per-host paths
        write_data(real, system, params["data"], now, _rng(rng.random()))
    _write(lab.path(host.name, f"/etc/cron.d/{system.id}"), cron_file(system), mtime=last)


def _endpoint(inv: Inventory, host: str, port: int) -> str:
    address = inv.hosts[host].address
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _service_procs(lab: Lab, inv: Inventory, scenario: Scenario, systems: list[tuple[System, dict]],
                   running: set[str]) -> list[Proc]:
    """One Proc per service on a running host, with its control script and service.env written."""
    trusted = [gw.gateway_address(inv)] if inv.cloud and inv.cloud.gateway in inv.hosts else []
    procs = []
    for system, _params in systems:
        for service in system.services:
            if service.host not in running or service.protocol != "tcp":
                continue
            args = ["http" if service.health_url else "tcp", "--port", str(service.port), "--name", system.id,
                    "--lifetime", str(scenario.lifetime)]
            if service.health_url:
                args += ["--log", system.log_paths[0] if system.log_paths else f"/var/log/app/{system.id}/access.log"]
                data = next((d for d in system.data_paths if _private(lab, service.host, d)), None)
                if data:
                    args += ["--data", data]
                for address in trusted:
                    args += ["--trusted-proxy", address]
                depends = [_endpoint(inv, v.host, v.port) for v in system.services if not v.health_url]
                for dep_id in system.depends_on:
                    dep = inv.systems.get(dep_id)
                    if dep and dep.services and dep.services[0].host in inv.hosts:
                        depends.append(_endpoint(inv, dep.services[0].host, dep.services[0].port))
                for endpoint in depends:
                    args += ["--depends", endpoint]
            label = f"{system.id}/{service.name}"
            directory = lab.path(service.host, svc.app_dir(system.id))
            _write_if_changed(directory / "service", svc.service_script(label), mode=0o755)
            _write_if_changed(directory / "service.env", svc.service_env(label, PYTHON, str(APP), args))
            argv = [PYTHON, str(APP), *args, "--pidfile", svc.pidfile(system.id)]
            procs.append(Proc(service.host, label, argv, lab.path(service.host, svc.pidfile(system.id)),
                              str(inv.hosts[service.host].address), service.port, system_id=system.id,
                              out=directory / "out"))
    return procs


def _private(lab: Lab, host: str, path: str) -> bool:
    try:
        lab.path(host, path)
    except ValueError:
        return False
    return True


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o777) == mode:
        return False
    _write(path, text, mode=mode)
    return True


def _gateway(lab: Lab, inv: Inventory) -> tuple[str, dict[str, tuple[str, int]]]:
    """Write the gateway's nginx.conf, reload script and one route per system with an http service (from
    the inventory), then start nginx or reload it if anything changed; (what happened, the routes)."""
    host = gw.gateway_host(inv)
    routes = {s.id: gw.inventory_route(inv, s) for s in gw.routed_systems(inv)}
    changed = _write_if_changed(lab.path(host, gw.CONF), gw.nginx_conf(inv))
    changed |= _write_if_changed(lab.path(host, gw.RELOAD), gw.reload_script(), mode=0o755)
    for system_id, (address, port) in routes.items():
        changed |= _write_if_changed(lab.path(host, f"{gw.ROUTES}/{system_id}.conf"),
                                     gw.route_conf(system_id, address, port))
    if not changed and gw.nginx_pid(lab, inv) is not None:
        return "unchanged", routes
    try:
        return gw.reload(lab, inv).removeprefix("nginx "), routes
    except LabError as exc:
        return f"failed: {exc}", routes


def _traffic_proc(lab: Lab, inv: Inventory, scenario: Scenario, gateway: str, systems: list[System]) -> Proc:
    """The traffic generator in the gateway host: each system's health URL, a list and a detail, through nginx."""
    urls: list[list[str]] = []
    for system in sorted(systems, key=lambda s: s.id):
        health = urllib.parse.urlsplit(next(v.health_url for v in system.services if v.health_url)).path
        urls.append([gw.gateway_url(inv, system, health), gw.gateway_url(inv, system, "/api/list"),
                     gw.gateway_url(inv, system, f"/api/detail/{sum(map(ord, system.id)) % 9000 + 1000}")])
    ordered = [u[k] for k in range(3) for u in urls]  # round-robin: consecutive requests hit different systems
    t = scenario.traffic
    pidfile = lab.host_dir(gateway) / "run" / "traffic.pid"
    argv = [PYTHON, str(TRAFFIC), "--rate", str(t.get("rate", 8)), "--duration", str(t.get("duration", 3600)),
            "--max-requests", str(t.get("max_requests", 28800)), "--pidfile", str(pidfile)]
    for url in ordered:
        argv += ["--url", url]
    return Proc(gateway, "traffic", argv, pidfile)
