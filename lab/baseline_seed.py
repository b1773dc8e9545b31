"""Seed the lab hosts' graded-protection state from `baseline.yaml` (see its header).

Writes each host's own copies of PAM, login.defs, pwquality/faillock, profile.d, sshd_config (the
lab sshd's real configuration: the seeded directives go first, the lab's own lines stay, `sshd -t`
validates it and sshd reloads), sudoers, SELinux, audit, rsyslog, logrotate, chrony, hosts.allow/deny,
passwd/shadow/group/gshadow, lastlog, the security logs and an AIDE database; then starts the
host's daemons. Without systemd in the lab, a daemon is a process of that name in the host's
namespaces (a `sleep` run under the daemon's name: what the process table shows is what checks
read), and a listener on a seeded port is `app.py tcp`. Seeding again rewrites everything and
restarts those processes: never two.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shlex
import shutil
import signal
import string
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import yaml

from audit.baseline.evidence import family_of
from inventory.model import Host, Inventory
from jiyue.processes import pid_alive
from lab.hosts import SSHD, Lab, LabError, os_release
from lab.seed import DEFAULT_SCENARIO, administrators_last_login, load_scenario

HERE = Path(__file__).resolve().parent
DEFAULT_BASELINE = HERE / "baseline.yaml"
APP = HERE / "app.py"
LIFETIME = 7200  # seconds, like the audit scenario's services
# In-host directories the seed owns entirely (emptied before writing).
OWNED_DIRS = ("/etc/pam.d", "/etc/security", "/etc/profile.d", "/etc/sudoers.d", "/etc/selinux", "/etc/audit",
              "/etc/rsyslog.d", "/etc/logrotate.d", "/var/lib/aide")
LOGS = {"redhat": ("/var/log/secure", "/var/log/messages", "/var/log/cron"),
        "debian": ("/var/log/auth.log", "/var/log/syslog", "/var/log/kern.log")}
LASTLOG_RECORD = struct.Struct("=i32s256s")  # struct lastlog: ll_time, ll_line, ll_host (glibc, 292 bytes)


def load(path: Path = DEFAULT_BASELINE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for host, faults in data["hosts"].items():
        unknown = [f for f in faults if f not in data["faults"]]
        if unknown:
            raise ValueError(f"{path}: hosts.{host}: unknown faults {unknown}")
    return data


def host_faults(data: dict[str, Any], host: str) -> list[str]:
    return list(data["hosts"].get(host, []))


def expected_failures(data: dict[str, Any], host: str) -> set[str]:
    """The checks the seeded faults of `host`, and the audit scenario (lab.seed's), must make fail."""
    found = {c for f in host_faults(data, host) for c in data["faults"][f]["expect"]}
    return found | set(data.get("scenario_expect", {}).get(host, []))


def ssh_sources(inv: Inventory) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Where SSH management may come from on a lab host: the inventory's own address space, both families.

    Every subnet (the operator is the lab machine, on each subnet's gateway; hosts reach each other, as
    the migration's rsync does), the extranet's management sources, and any host address outside them.
    """
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [s.prefix for s in inv.subnets.values()]
    if inv.extranet and inv.extranet.management:
        nets += inv.extranet.management.sources
    nets += [ipaddress.ip_network(h.address) for h in inv.hosts.values() if not any(h.address in n for n in nets)]
    return [*ipaddress.collapse_addresses(n for n in nets if n.version == 4),
            *ipaddress.collapse_addresses(n for n in nets if n.version == 6)]


def wrapper_source(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A network in hosts.allow's notation: 198.18.10.0/255.255.255.0, [2001:db8::]/64."""
    if net.version == 6:
        return f"[{net.network_address}]/{net.prefixlen}"
    return f"{net.network_address}/{net.netmask}"


def management_servers(inv: Inventory, host: Host) -> dict[str, str]:
    """The host's syslog host (bracketed if IPv6, for rsyslog's @@HOST:PORT) and NTP server, from the extranet's
    management settings; without them, the lab machine on the host's subnet (its gateway)."""
    mgmt = inv.extranet.management if inv.extranet else None
    subnet = inv.subnet_of(host.address)
    fallback = subnet.gateway if subnet else host.address
    syslog = mgmt.syslog_hosts[0] if mgmt else fallback
    ntp = mgmt.ntp_servers[0] if mgmt else fallback
    return {"syslog_host": f"[{syslog}]" if syslog.version == 6 else str(syslog), "ntp_server": str(ntp)}


def host_vars(data: dict[str, Any], host: str, family: str) -> dict[str, Any]:
    v = deepcopy(data["compliant"])
    for name in host_faults(data, host):
        fault = data["faults"][name]
        v.update(deepcopy(fault.get("set", {})))
        v["users"] = v["users"] + deepcopy(fault.get("add_users", []))
        for user in v["users"]:
            user.update(fault.get("set_users", {}).get(user["name"], {}))
    v["family"] = family
    return v


def _fake_hash(scheme: str, rng: random.Random) -> str:
    chars = string.ascii_letters + string.digits + "./"
    salt = "".join(rng.choices(chars, k=16))
    if scheme == "empty":
        return ""
    if scheme == "y":
        return f"$y$j9T${salt}${''.join(rng.choices(chars, k=43))}"
    if scheme == "1":
        return f"$1${salt[:8]}${''.join(rng.choices(chars, k=22))}"
    return f"${scheme}${salt}${''.join(rng.choices(chars, k=86))}"


def _render(template: str, v: dict[str, Any]) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template).render(v)


def _accounts(data: dict[str, Any], v: dict[str, Any], host: str) -> dict[str, str]:
    """passwd, shadow, group and gshadow texts."""
    rng = random.Random(host)
    family = v["family"]
    passwd = [_render(line, v) for line in data["base_accounts"][family]]
    day = int(time.time() // 86400)
    scheme = "y" if family == "debian" else "6"
    shadow = [f"root:{_fake_hash(scheme, rng)}:{day - 10}:1:90:7:::"]
    for line in passwd[1:]:
        name = line.split(":")[0]
        field = _fake_hash("6", rng) if name == "lp" and v["lp_unlocked"] else "*"
        shadow.append(f"{name}:{field}:{day - 400}:0:99999:7:::")
    if v["extra_uid0"]:
        passwd.append("toor:x:0:0::/root:/bin/bash")
        shadow.append(f"toor:{_fake_hash('6', rng)}:{day - 30}:1:90:7:::")
    for user in v["users"]:
        passwd.append(f"{user['name']}:x:{user['uid']}:{user['uid']}::/home/{user['name']}:/bin/bash")
        shadow.append(f"{user['name']}:{_fake_hash(user['scheme'], rng)}:{day - 20}:1:{user['max_days']}:7:::")
    groups = {line.split(":")[0]: line.split(":")[3] for line in passwd}
    group = [f"{name}:x:{gid}:" for name, gid in groups.items() if name != "toor"]
    group += ["wheel:x:10:sysadmin" if family == "redhat" else "sudo:x:27:sysadmin", "shadow:x:42:"]
    gshadow = [f"{g.split(':')[0]}:!::" for g in group]
    return {"/etc/passwd": "\n".join(passwd) + "\n", "/etc/shadow": "\n".join(shadow) + "\n",
            "/etc/group": "\n".join(group) + "\n", "/etc/gshadow": "\n".join(gshadow) + "\n"}


def _sshd_config(current: str, seeded: str) -> str:
    """The seeded directives first (sshd takes the first value), then the lab's own lines without them."""
    keys = {line.split()[0].lower() for line in seeded.splitlines() if line.strip()}
    keep = [line for line in current.splitlines()
            if line.strip() and not line.startswith("# jiyue baseline") and line.split()[0].lower() not in keys]
    return "# jiyue baseline (lab/baseline.yaml)\n" + seeded.rstrip("\n") + "\n" + "\n".join(keep) + "\n"


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _standins(lab: Lab) -> Path:
    """Daemon stand-ins: symlinks to sleep named after the daemons, so the process shows that name."""
    bin_dir = lab.state_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("auditd", "rsyslogd", "chronyd"):
        link = bin_dir / name
        if not os.path.lexists(link):
            link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    return bin_dir


def _stop_previous(pid_file: Path) -> None:
    if not pid_file.exists():
        return
    for token in pid_file.read_text().split():
        if token.isdigit() and pid_alive(int(token)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(token), signal.SIGTERM)
    pid_file.unlink()


def lastlog(users: list[dict[str, Any]], last_login: datetime | None, source: str) -> bytes:
    """The lastlog file: each account's last login `last_login_days` before `last_login` (from `source`); none
    at all when `last_login` is None (the accounts never logged in)."""
    records = bytearray(LASTLOG_RECORD.size * (max((u["uid"] for u in users), default=0) + 1))
    if last_login is not None:
        for user in users:
            at = int(last_login.timestamp()) - int(user["last_login_days"]) * 86400
            LASTLOG_RECORD.pack_into(records, user["uid"] * LASTLOG_RECORD.size, at, b"pts/0", source.encode())
    return bytes(records)


def seed_host(lab: Lab, inv: Inventory, data: dict[str, Any], host: str, last_login: datetime | None) -> list[str]:
    """Write one host's baseline state, its administrators' last logins before `last_login` (the newest the
    audit scenario allows; None: they never logged in); return its faults."""
    h = inv.hosts[host]
    release = dict(line.split("=", 1) for line in os_release(h.os).splitlines() if "=" in line)
    os_id = release.get("ID", "").strip('"')
    family = family_of(os_id, release.get("ID_LIKE", "").strip('"').split(), h.os_family.value) or "redhat"
    v = host_vars(data, host, family)
    sources = ssh_sources(inv)
    v |= {"ssh_sources": [str(n) for n in sources], "wrapper_sources": [wrapper_source(n) for n in sources],
          **management_servers(inv, h)}
    for d in OWNED_DIRS:
        target = lab.path(host, d)  # emptied, never removed: it is the source of the host's bind mount
        target.mkdir(parents=True, exist_ok=True)
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    files = {**data["files"], **data[f"files_{family}"]}
    for in_host, template in files.items():
        text = _render(template, v)
        if in_host == "/etc/ssh/sshd_config":
            path = lab.path(host, in_host)
            text = _sshd_config(path.read_text(), text)
            _write(path, text, int(v["sshd_config_mode"], 8))
            proc = subprocess.run([str(SSHD), "-t", "-f", str(path)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise LabError(f"{host}: the seeded sshd_config is invalid: {proc.stderr.strip()}")
            continue
        _write(lab.path(host, in_host), text, 0o440 if in_host.startswith("/etc/sudoers") else 0o644)
    for in_host, text in _accounts(data, v, host).items():
        mode = {"/etc/shadow": int(v["shadow_mode"], 8), "/etc/gshadow": 0o640}.get(in_host, 0o644)
        _write(lab.path(host, in_host), text, mode)
    rhosts = lab.path(host, "/root/.rhosts")
    if v["rhosts"]:
        _write(rhosts, "+ +\n", 0o600)
    else:
        rhosts.unlink(missing_ok=True)
    if v["aide"]:
        _write(lab.path(host, "/var/lib/aide/aide.db.gz"), "jiyue lab AIDE database\n", 0o600)
    now = int(time.time())
    for log in LOGS[family]:
        line = f"{time.strftime('%b %d %H:%M:%S')} {host} jiyue-lab: seeded\n"
        _write(lab.path(host, log), line, int(v["log_mode"], 8))
    _write(lab.path(host, "/var/log/audit/audit.log"), f"type=DAEMON_START msg=audit({now}.000:1): seeded\n", 0o600)
    subnet = inv.subnet_of(h.address)  # the operator logs in from the lab machine, the subnet's gateway
    source = str(subnet.gateway) if subnet else ""
    _write(lab.path(host, "/var/log/lastlog"), "", 0o664)
    lab.path(host, "/var/log/lastlog").write_bytes(lastlog(v["users"], last_login, source))
    # daemons and listeners
    pid_file = lab.host_dir(host) / "baseline.pids"
    _stop_previous(pid_file)
    bin_dir = lab.state_dir / "bin"  # made by seed_baseline
    starts = [f"setsid {shlex.quote(str(bin_dir / d))} {LIFETIME} </dev/null >/dev/null 2>&1 & echo $!"
              for d in v["daemons"]]
    starts += [f"setsid /usr/bin/python3 {shlex.quote(str(APP))} tcp --port {int(p)} --lifetime {LIFETIME} "
               "</dev/null >/dev/null 2>&1 & echo $!" for p in v["listen"]]
    if starts:
        proc = lab.exec(host, "; ".join(starts))
        pid_file.write_text(proc.stdout)
    pid = lab.sshd_pid(host)
    if pid:
        os.kill(pid, signal.SIGHUP)  # reload the seeded sshd_config (validated above)
    return host_faults(data, host)


def seed_baseline(lab: Lab, inv: Inventory, path: Path = DEFAULT_BASELINE, hosts: list[str] | None = None,
                  workers: int = 16, scenario: Path = DEFAULT_SCENARIO) -> dict[str, list[str]]:
    """Seed every (or the given) host; return each host's faults. Waits until every sshd answers again.

    The administrators' logins (lastlog) follow the audit `scenario` (the one lab.seed writes), so the two
    seeds compose in either order: the audit finds each system's scenario as it would without this seed.
    """
    data = load(path)
    plan = load_scenario(scenario)
    now = datetime.now(UTC)
    names = list(hosts if hosts is not None else inv.hosts)
    _standins(lab)

    def one(name: str) -> list[str]:
        return seed_host(lab, inv, data, name, administrators_last_login(inv, plan, name, now))

    with ThreadPoolExecutor(workers) as pool:
        faults = dict(zip(names, pool.map(one, names), strict=True))
    deadline = time.monotonic() + 10
    pending = set(names)
    while pending and time.monotonic() < deadline:
        pending = {s.name for s in lab.status(sorted(pending)) if not s.up}
        if pending:
            time.sleep(0.05)
    if pending:
        raise LabError(f"sshd did not come back after reloading: {', '.join(sorted(pending))}")
    return faults
