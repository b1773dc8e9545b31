"""The lab: every inventory host as a real SSH host on this one machine.

Each host is a network namespace with the inventory's address on a veth joined to one bridge,
plus an sshd started inside a private mount and UTS namespace, so it has its own hostname and
its own `/srv`, `/etc/app`, `/var/log`, `/root`, `/etc/hosts`, `/etc/resolv.conf`, `/etc/os-release`,
`/etc/crontab`, `/etc/cron.d` and `/var/spool/cron` (bind mounts of a per-host directory or file
under the state dir). Everything else is the machine's own filesystem, read-only in spirit: the
lab never writes outside its state dir except the empty mount points it creates (and keeps: see `down`).

Each host presents its declared OS: `/etc/os-release` is written from the inventory's `os` string
with the real-world values in `os_release.yaml` (an unknown `os` gets the machine's own file). Its
local time is Asia/Shanghai: sshd (and so every session) and `Lab.exec` run with TZ set.

Routing: each namespace has one on-link default route out of its veth, so hosts in different lab
subnets reach each other directly over the bridge, and Ansible finds a default interface.
Forwarding in the root namespace stays off: nothing from the lab leaves the machine. The one exception to
on-link routing is the internet test address, routed through the extranet egress or a leased line
(lab/uplinks.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from inventory.model import Host, Inventory
from jiyue.processes import pid_alive
from lab.keys import ed25519_keypair
from lab.model import DeviceStatus, HostStatus, UndeclaredHost
from lab.netsim.lab import devices_status, devices_up, netsim
from lab.procs import LabError, run

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STATE = REPO / ".lab"
SSHD = Path("/usr/sbin/sshd")
APP = Path(__file__).resolve().with_name("app.py")

# In-host path -> directory (or file) under the host's state dir that backs it.
PER_HOST_PATHS: dict[str, str] = {
    "/srv": "srv",
    "/etc/app": "etc-app",
    "/var/log": "var-log",
    "/root": "root",
    "/etc/hosts": "etc/hosts",
    "/etc/resolv.conf": "etc/resolv.conf",
    "/etc/hostname": "etc/hostname",
    "/etc/os-release": "etc/os-release",  # a symlink on Debian: the bind mount lands on its target
    "/etc/crontab": "etc/crontab",
    "/etc/cron.d": "etc/cron.d",
    "/var/spool/cron": "var-spool-cron",
    # What the graded-protection baseline reads (seeded by lab/baseline_seed.py). The host's
    # /etc/ssh/sshd_config is its lab sshd's own configuration; the account files start as copies
    # of the machine's own, so sshd finds its users until the baseline seed writes them.
    **{p: "etc" + p.removeprefix("/etc") for p in (
        "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/login.defs", "/etc/profile",
        "/etc/bashrc", "/etc/bash.bashrc", "/etc/sudoers", "/etc/rsyslog.conf", "/etc/logrotate.conf",
        "/etc/chrony.conf", "/etc/hosts.allow", "/etc/hosts.deny", "/etc/pam.d", "/etc/security", "/etc/profile.d",
        "/etc/sudoers.d", "/etc/selinux", "/etc/audit", "/etc/rsyslog.d", "/etc/logrotate.d")},
    "/etc/ssh/sshd_config": "sshd/sshd_config",
    "/var/lib/aide": "var-lib-aide",
    "/var/lib/jiyue": "var-lib-jiyue",  # the migration's manifest caches: each host has its own, as real hosts do
}
# Those of PER_HOST_PATHS that are single files (the rest are directories).
PER_HOST_FILES = frozenset({"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/etc/os-release", "/etc/crontab",
                            "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/login.defs",
                            "/etc/profile", "/etc/bashrc", "/etc/bash.bashrc", "/etc/sudoers", "/etc/rsyslog.conf",
                            "/etc/logrotate.conf", "/etc/chrony.conf", "/etc/hosts.allow", "/etc/hosts.deny",
                            "/etc/ssh/sshd_config"})

# The hosts' local time, as on a Chinese government server: sshd runs with TZ set, and OpenSSH passes
# TZ on to every session, so `date`, `last` and collectors see +0800 (the machine's own files say UTC).
HOST_TZ = "Asia/Shanghai"

OS_RELEASE_TABLE = Path(__file__).with_name("os_release.yaml")
MACHINE_OS_RELEASE = Path("/etc/os-release")

CRONTAB = """\
# /etc/crontab: system-wide crontab (jiyue lab host)
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

17 *    * * *   root    cd / && run-parts --report /etc/cron.hourly
25 6    * * *   root    test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily
"""

# No resolver in the lab: a lookup fails at once on the namespace's own loopback instead of
# waiting on a real resolver (which made Ansible wait 10 s per host).
RESOLV_CONF = "# jiyue lab: no DNS; names come from /etc/hosts\noptions timeout:1 attempts:1\n"

SSHD_CONFIG = """\
# jiyue lab host {name}
ListenAddress {listen}
HostKey {host_key}
PidFile {pid_file}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 200:30:400
MaxSessions 64
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""


# A Linux bridge takes at most 1,024 ports (BR_MAX_PORTS); one stays free for a bastion's or simulator's link.
BRIDGE_PORTS = 1023
# The kernel's neighbour (ARP/NDP) table is one for the whole machine, every namespace's entries counted
# against `gc_thresh3` (default 1,024): each lab host holds an entry for the control node and the control node
# one for each host, so a thousand hosts overflow it ("neighbour table overflow", hosts unreachable at random).
# The lab raises the thresholds (never lowers them) to fit ARP_ENTRIES_PER_HOST per host of every lab at once.
ARP_ENTRIES_PER_HOST = 4  # the host's own, the control node's, a bastion's, one spare
NEIGH_SYSCTLS = ("net.ipv4.neigh.default.gc_thresh{}", "net.ipv6.neigh.default.gc_thresh{}")


def neighbour_thresholds(hosts: int) -> dict[int, int]:
    """The neighbour table thresholds (gc_thresh1, 2, 3) that fit `hosts` lab hosts: no collection below the
    first, the soft limit at twice, the hard limit at four times (room for the rest of the machine)."""
    floor = ARP_ENTRIES_PER_HOST * hosts
    return {1: floor, 2: 2 * floor, 3: 4 * floor}


def neighbour_room(hosts: int) -> list[str]:
    """Raise the machine's neighbour table thresholds to `neighbour_thresholds(hosts)` where they are lower;
    return the settings changed.

    They exist only in the machine's first network namespace: a lab apart (`lab.isolate`, the test suite's
    small labs) cannot see them and leaves them as they are."""
    changed = []
    for pattern in NEIGH_SYSCTLS:
        for i, value in neighbour_thresholds(hosts).items():
            path = Path("/proc/sys", *pattern.format(i).split("."))
            with contextlib.suppress(OSError, ValueError):
                if int(path.read_text()) < value:
                    path.write_text(f"{value}\n")
                    changed.append(f"{pattern.format(i)}={value}")
    return changed


def ssh_banner(address: str, port: int, timeout: float = 2.0) -> str | None:
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(256).decode("ascii", "replace").strip() or None
    except OSError:
        return None


class Lab:
    """The lab's state directory and the operations on it.

    `tag` names the bridge, namespaces and links, so a second lab (a test's own) can run beside
    the main one without touching it; its subnets must not overlap the main lab's.
    """

    def __init__(self, state_dir: Path = DEFAULT_STATE, tag: str = "jy") -> None:
        self.state_dir = Path(state_dir)
        self.tag = tag
        self.bridge = f"{tag}lab0"
        self.link_group = zlib.crc32(tag.encode()) % 2**31 | 1  # its hosts' links' device group (not 0)
        self.netns_prefix = f"{tag}-"
        self.key = self.state_dir / "ssh" / "id_ed25519"
        self.known_hosts = self.state_dir / "ssh" / "known_hosts"
        self._state_file = self.state_dir / "state.json"
        self.started_devices: list[str] = []

    # --- paths ---------------------------------------------------------------------------------

    def host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def path(self, host: str, in_host: str) -> Path:
        """Where, on this machine, the file a lab host sees at `in_host` really lives."""
        for mount in sorted(PER_HOST_PATHS, key=len, reverse=True):
            if in_host == mount or in_host.startswith(mount.rstrip("/") + "/"):
                rest = in_host[len(mount):].lstrip("/")
                return self.host_dir(host) / PER_HOST_PATHS[mount] / rest
        raise ValueError(f"{in_host} is not private to lab hosts (private: {', '.join(PER_HOST_PATHS)})")

    def netns(self, name: str) -> str:
        return self.netns_prefix + name

    def link_name(self, host: str) -> str:
        """Interface names are limited to 15 bytes: derive a stable short one from the host name."""
        return f"{self.tag[:3]}v" + hashlib.sha1(host.encode()).hexdigest()[:10]

    # --- state ---------------------------------------------------------------------------------

    def _load_state(self) -> dict:
        if self._state_file.exists():
            return json.loads(self._state_file.read_text())
        return {"hosts": {}, "bridge_addresses": []}

    def _save_state(self, state: dict) -> None:
        self._state_file.write_text(json.dumps(state, indent=2, sort_keys=True))

    # --- checks --------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Explain what is missing instead of failing obscurely halfway through."""
        missing = []
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, bind mounts): run it as root or with sudo")
        if not SSHD.exists():
            missing.append("sshd (apt-get install openssh-server)")
        for tool, package in (("ip", "iproute2"), ("unshare", "util-linux"), ("nsenter", "util-linux"),
                              ("mount", "mount")):
            if shutil.which(tool) is None:
                missing.append(f"{tool} (apt-get install {package})")
        if missing:
            raise LabError("the lab is missing: " + ", ".join(missing))
        probe = f"{self.netns_prefix}probe-{os.getpid()}"
        proc = run("ip", "netns", "add", probe, check=False)
        if proc.returncode != 0:
            raise LabError(f"cannot create network namespaces here: {proc.stderr.strip()}")
        run("ip", "netns", "del", probe, check=False)

    # --- up ------------------------------------------------------------------------------------

    def up(self, inv: Inventory, workers: int = 16) -> list[str]:
        """Start every inventory host that is not already running (or runs with an older set of per-host
        paths: it is restarted); return the names started."""
        self.preflight()
        state = self._load_state()
        total = len(set(state["hosts"]) | set(inv.hosts))
        if total > BRIDGE_PORTS:
            raise LabError(f"a lab takes at most {BRIDGE_PORTS} hosts (one Linux bridge has {BRIDGE_PORTS + 1} ports, "
                           f"one kept for a bastion's link); asked for {total}: split the fleet over two labs "
                           "(two tags)")
        neighbour_room(total)
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._client_key()
        self._bridge(inv, state)
        for mount in PER_HOST_PATHS:
            _make_mountpoint(Path(mount), is_file=mount in PER_HOST_FILES)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        hosts_file = self._etc_hosts(inv, state)
        pub = self.key.with_suffix(".pub").read_text()
        hosts = list(inv.hosts.values())
        # A host started by an older lab with other per-host paths or zone is restarted with the current ones.
        layout = {"paths": sorted(PER_HOST_PATHS), "tz": HOST_TZ}
        outdated = {name for name, info in state["hosts"].items() if info.get("layout") != layout}
        for host in hosts:
            state["hosts"][host.name] = {"address": str(host.address), "port": self._port(inv, host),
                                         "layout": layout}
        self._save_state(state)

        def one(host: Host) -> str | None:
            return self._up_host(inv, host, hosts_file, pub, restart=host.name in outdated)

        with ThreadPoolExecutor(workers) as pool:
            started = [n for n in pool.map(one, hosts) if n]
        # The inventory's network devices: simulated, all in one process at their management addresses.
        self.started_devices = devices_up(self, inv) if inv.devices else []
        self.write_known_hosts(state)
        from lab.uplinks import uplinks_up  # the internet test address's two uplinks (it imports this module)

        uplinks_up(self, inv)
        return started

    def up_undeclared(self, inv: Inventory, hosts: Iterable[UndeclaredHost], lifetime: int = 7200) -> list[str]:
        """Start the scenario's undeclared hosts (lab/scenario.yaml `undeclared`) that lie in one of the inventory's
        subnets and at no inventory host's address, beside the inventory's (after `up`); return the names started.

        They are kept apart in the lab's state: `status` and the lab's known_hosts leave them out (nobody recorded
        their host keys), `down` removes them with the rest."""
        state = self._load_state()
        taken = {str(h.address) for h in inv.hosts.values()} | {str(d.address) for d in inv.devices.values()}
        wanted = [u for u in hosts
                  if u.address not in taken and inv.subnet_of(ipaddress.ip_address(u.address)) is not None]
        for u in wanted:
            state.setdefault("undeclared", {})[u.name] = {"address": u.address, "ssh": u.ssh}
        self._save_state(state)
        hosts_file = self._etc_hosts(inv, state)
        pub = self.key.with_suffix(".pub").read_text()
        started: list[str] = []
        for u in wanted:
            # A lab-internal record only, for the namespace plumbing: the inventory never sees it.
            host = Host(name=u.name, address=u.address, os_family="debian", os=u.os, role="undeclared")
            ns = self.netns(u.name)
            if u.ssh:
                if self._up_host(inv, host, hosts_file, pub):
                    started.append(u.name)
            elif not Path("/run/netns", ns).exists():
                self._plumb(inv, host, ns)
                started.append(u.name)
            self._listeners(u, ns, lifetime)
        return started

    def _listeners(self, u: UndeclaredHost, ns: str, lifetime: int) -> None:
        """An undeclared host's stand-in services, each with its pid file in the host's state dir (started again
        only when not running): `tcp` holders, or one `http` app per port that also keeps `connect` open."""
        d = self.host_dir(u.name)
        d.mkdir(parents=True, exist_ok=True)
        lines, pidfiles = ["cd /"], []
        for port in u.listen:
            pidfile = d / f"listen-{port}.pid"
            pidfiles.append(pidfile)
            with contextlib.suppress(OSError, ValueError):
                if pid_alive(int(pidfile.read_text().strip())):
                    continue
            pidfile.unlink(missing_ok=True)
            argv = ["/usr/bin/python3", str(APP), "tcp", "--port", str(port)]
            if u.connect:
                argv = ["/usr/bin/python3", str(APP), "http", "--port", str(port), "--name", u.name,
                        "--log", str(d / f"listen-{port}.log"), *(x for c in u.connect for x in ("--depends", c))]
            argv += ["--lifetime", str(lifetime), "--pidfile", str(pidfile)]
            out = shlex.quote(str(pidfile.with_suffix(".out")))
            lines.append(f"setsid {shlex.join(argv)} </dev/null >{out} 2>&1 &")
        if len(lines) == 1:
            return
        script = "; ".join(lines)
        if u.ssh:
            self.exec(u.name, script)
        else:
            run("ip", "netns", "exec", ns, "/bin/sh", "-c", script)
        for _ in range(250):  # each writes its pid file once it listens
            if all(p.exists() and p.read_text().strip() for p in pidfiles):
                return
            time.sleep(0.02)
        raise LabError(f"undeclared host {u.name}: a stand-in service did not start: see {d}/listen-*.out")

    @staticmethod
    def _port(inv: Inventory, host: Host) -> int:
        return host.ssh.port or inv.defaults.ssh.port or 22

    def _client_key(self) -> None:
        if self.key.exists():
            return
        self.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private, public = ed25519_keypair("jiyue-lab-operator")
        self.key.write_bytes(private)
        self.key.chmod(0o600)
        self.key.with_suffix(".pub").write_text(public)

    def _bridge(self, inv: Inventory, state: dict) -> None:
        if run("ip", "link", "show", self.bridge, check=False).returncode != 0:
            run("ip", "link", "add", self.bridge, "type", "bridge")
            state["bridge_addresses"] = []
        run("ip", "link", "set", self.bridge, "up")
        # The control node resolves every host's address on the lab's bridge, a thousand at once on a loaded
        # machine: more ARP tries there before "No route to host" (this bridge's setting, not the machine's).
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/net/ipv4/neigh/{self.bridge}/mcast_solicit").write_text("9\n")
        for subnet in inv.subnets.values():
            cidr = f"{subnet.gateway}/{subnet.prefix.prefixlen}"
            if cidr not in state["bridge_addresses"]:
                run("ip", "addr", "replace", cidr, "dev", self.bridge, *_no_dad(subnet.gateway))
                state["bridge_addresses"].append(cidr)

    def _etc_hosts(self, inv: Inventory, state: dict) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        known = {**{n: h["address"] for n, h in state["hosts"].items()},
                 **{h.name: str(h.address) for h in inv.hosts.values()}}
        lines += [f"{address}\t{name}" for name, address in sorted(known.items())]
        return "\n".join(lines) + "\n"

    def _up_host(self, inv: Inventory, host: Host, hosts_file: str, pub: str, restart: bool = False) -> str | None:
        d = self.host_dir(host.name)
        ns = self.netns(host.name)
        for mount, sub in PER_HOST_PATHS.items():
            (d / sub).parent.mkdir(parents=True, exist_ok=True)
            if mount not in PER_HOST_FILES:
                (d / sub).mkdir(exist_ok=True)
        for sub in ("root/.ssh", "sshd"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "root").chmod(0o700)
        (d / "root/.ssh").chmod(0o700)
        (d / "root/.ssh/authorized_keys").write_text(pub)
        (d / "etc/hosts").write_text(hosts_file)
        (d / "etc/resolv.conf").write_text(RESOLV_CONF)
        (d / "etc/hostname").write_text(host.name + "\n")
        release = os_release(host.os)
        if not (d / "etc/os-release").exists() or (d / "etc/os-release").read_text() != release:
            (d / "etc/os-release").write_text(release)
        if not (d / "etc/crontab").exists():
            (d / "etc/crontab").write_text(CRONTAB)
        for mount in PER_HOST_FILES:  # any other private file starts as the machine's own (or empty)
            own = d / PER_HOST_PATHS[mount]
            if not own.exists() and mount != "/etc/ssh/sshd_config":
                own.parent.mkdir(parents=True, exist_ok=True)
                if Path(mount).is_file():
                    shutil.copy2(mount, own)
                else:
                    own.touch()
        host_key = d / "sshd/ssh_host_ed25519_key"
        if not host_key.exists():
            private, public = ed25519_keypair(f"root@{host.name}")
            host_key.write_bytes(private)
            host_key.chmod(0o600)
            host_key.with_suffix(".pub").write_text(public)
        if self.sshd_pid(host.name) is not None:
            if not restart:
                return None
            self._kill_netns(ns)  # started with older per-host paths or zone
        elif Path("/run/netns", ns).exists():
            self._kill_netns(ns)  # its state was lost (no pid file): whatever still runs there holds its address
        if not Path("/run/netns", ns).exists():
            self._plumb(inv, host, ns)
        listen = f"[{host.address}]:{self._port(inv, host)}" if host.address.version == 6 else \
            f"{host.address}:{self._port(inv, host)}"
        pid_file = d / "sshd.pid"
        pid_file.unlink(missing_ok=True)
        (d / "sshd/sshd_config").write_text(SSHD_CONFIG.format(
            name=host.name, listen=listen, host_key=host_key, pid_file=pid_file))
        mounts = "; ".join(f"mount --bind {shlex.quote(str(d / src))} {shlex.quote(dst)}"
                           for dst, src in PER_HOST_PATHS.items())
        # `ip netns add` mounts each namespace under /run/netns, and a new mount namespace starts as a copy of
        # every mount: without this the k-th host would hold k namespace mounts (a thousand hosts, half a million
        # mounts, and every later host slower to start). The host needs none of them.
        script = (f"set -e; umount -l /run/netns 2>/dev/null || true; {mounts}; hostname {shlex.quote(host.name)}; "
                  f"export TZ={HOST_TZ}; "
                  f"exec {SSHD} -f {shlex.quote(str(d / 'sshd/sshd_config'))} -E {shlex.quote(str(d / 'sshd.log'))}")
        run("ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation", "private",
             "--", "/bin/sh", "-c", script)
        for _ in range(100):  # sshd writes its pid file once it listens
            if pid_file.exists() and pid_file.read_text().strip():
                return host.name
            time.sleep(0.02)
        raise LabError(f"sshd for {host.name} did not start: see {d / 'sshd.log'}")

    def _plumb(self, inv: Inventory, host: Host, ns: str) -> None:
        subnet = inv.subnet_of(host.address)
        prefixlen = subnet.prefix.prefixlen if subnet else (24 if host.address.version == 4 else 64)
        link = self.link_name(host.name)
        if _link_exists(link):  # left by a namespace that went without its veth
            run("ip", "link", "del", link, check=False)
        run("ip", "netns", "add", ns)
        # One `ip -batch` per side instead of one process per command: at a thousand hosts the processes were
        # most of the start-up time.
        run("ip", "-batch", "-", input=f"link add {link} group {self.link_group} type veth peer name eth0 netns {ns}\n"
                                        f"link set {link} master {self.bridge} up\n")
        default = "::/0" if host.address.version == 6 else "0.0.0.0/0"
        run("ip", "-n", ns, "-batch", "-", input=(
            f"addr add {host.address}/{prefixlen} dev eth0 {' '.join(_no_dad(host.address))}\n"
            "link set lo up\nlink set eth0 up\n"
            f"route add {default} dev eth0\n"))

    def write_known_hosts(self, state: dict | None = None) -> None:
        """The lab's known_hosts: every host's and simulated device's key (again after devices are added)."""
        state = self._load_state() if state is None else state
        lines = []
        for name, info in sorted(state["hosts"].items()):
            pub = self.host_dir(name) / "sshd/ssh_host_ed25519_key.pub"
            if not pub.exists():
                continue
            keytype, key = pub.read_text().split()[:2]
            addr = info["address"] if info["port"] == 22 else f"[{info['address']}]:{info['port']}"
            alias = name if info["port"] == 22 else f"[{name}]:{info['port']}"
            lines.append(f"{alias},{addr} {keytype} {key}")
        lines += netsim(self).known_hosts_lines()  # the simulated devices' keys, for the network engine
        self.known_hosts.write_text("\n".join(lines) + "\n")

    # --- status, stop, down ---------------------------------------------------------------------

    def sshd_pid(self, name: str) -> int | None:
        """The pid of the host's running sshd (the process whose namespaces are the host's), or None."""
        pid_file = self.host_dir(name) / "sshd.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def status(self, names: Iterable[str] | None = None) -> list[HostStatus]:
        hosts = self._load_state()["hosts"]
        wanted = sorted(hosts) if names is None else list(names)

        def one(name: str) -> HostStatus:
            info = hosts.get(name, {"address": "?", "port": 22})
            pid = self.sshd_pid(name)
            banner = ssh_banner(info["address"], info["port"]) if pid else None
            return HostStatus(name, info["address"], Path("/run/netns", self.netns(name)).exists(), pid, banner)

        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(one, wanted))

    def device_status(self, names: Iterable[str] | None = None) -> list[DeviceStatus]:
        """Each simulated device: whether the simulator runs it and whether it answers SSH."""
        return devices_status(self, None if names is None else list(names))

    def stop_host(self, name: str) -> None:
        """Stop one host's sshd and every process in its namespace (it becomes unreachable)."""
        self._kill_netns(self.netns(name))

    def exec(self, name: str, command: str) -> subprocess.CompletedProcess[str]:
        """Run a shell command as the host sees the world (its namespaces), for seeding and tests."""
        pid = self.sshd_pid(name)
        if pid is None:
            raise LabError(f"lab host {name} is not running")
        return run("nsenter", "-t", str(pid), "-n", "-m", "-u", "--", "env", f"TZ={HOST_TZ}", "/bin/sh", "-c", command,
                    check=False)

    @staticmethod
    def _kill_netns(ns: str, pids: list[int] | None = None) -> None:
        """Stop every process in the namespace (`pids`, when the caller has found them already)."""
        pids = list(netns_pids([ns]).get(ns, [])) if pids is None else pids
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 2
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if pid_alive(p)]
                if pids:
                    time.sleep(0.02)
            if not pids:
                return

    def down(self) -> int:
        """Remove everything `up` made; return how many hosts were removed."""
        self.preflight()
        namespaces = [ns for ns in run("ip", "netns", "list", check=False).stdout.split()
                      if ns.startswith(self.netns_prefix)]
        by_ns = netns_pids(namespaces)  # one pass over /proc for all of them, not one `ip netns pids` each
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda ns: self._kill_netns(ns, by_ns.get(ns, [])), namespaces))
        # Delete the veths ourselves: a deleted namespace takes its links down asynchronously, and
        # `down` must leave nothing behind when it returns. One `ip -batch` for each kind: a thousand hosts
        # are a thousand links and namespaces.
        # The lab's links are one device group: deleted in one call, the kernel waits out one RCU grace period for
        # all of them instead of one each (a thousand links one by one took minutes). What is left (a link of a
        # lab started before groups, a bastion's) goes one by one.
        run("ip", "link", "del", "group", str(self.link_group), check=False)
        links = run("ip", "-o", "link", "show", "master", self.bridge, check=False).stdout
        _ip_batch([f"link del {link}" for link in re.findall(r"^\d+: ([^@:]+)", links, re.M)])
        _ip_batch([f"netns del {ns}" for ns in namespaces])
        run("ip", "link", "del", self.bridge, check=False)
        # The mount points `up` made on the machine's root filesystem stay: another lab (a test suite's, a
        # bench's, a second operator's) may have hosts mounted on them, and removing one makes the kernel drop
        # those mounts in every namespace. The state dir stays too (it may be a mount point itself); only its
        # contents go. The hosts' directories go in parallel: a thousand of them are tens of thousands of small
        # files, and each removal waits on the disk.
        hosts_dir = self.state_dir / "hosts"
        if hosts_dir.is_dir():
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda d: shutil.rmtree(d, ignore_errors=True), list(hosts_dir.iterdir())))
        for child in self.state_dir.iterdir() if self.state_dir.is_dir() else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        return len(namespaces)


def _ip_batch(commands: list[str]) -> None:
    """Run `ip` commands in one process, going on past a failed one (what is gone already is fine here)."""
    if commands:
        run("ip", "-force", "-batch", "-", input="\n".join(commands) + "\n", check=False)


def _link_exists(name: str) -> bool:
    """Whether this network namespace has an interface of that name (asked of the kernel, not of /sys, which
    may show another namespace's)."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def netns_pids(namespaces: Iterable[str]) -> dict[str, list[int]]:
    """The processes in each named network namespace (`ip netns pids` for many at once: one pass over /proc)."""
    inodes: dict[tuple[int, int], str] = {}
    for ns in namespaces:
        with contextlib.suppress(OSError):
            st = os.stat(Path("/run/netns", ns))
            inodes[(st.st_dev, st.st_ino)] = ns
    found: dict[str, list[int]] = {ns: [] for ns in inodes.values()}
    if not inodes:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        ns = inodes.get((st.st_dev, st.st_ino))
        if ns is not None:
            found[ns].append(int(entry.name))
    return found


def _no_dad(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, ...]:
    """`ip addr` flags for an address usable at once: an IPv6 address otherwise stays tentative for its
    duplicate address detection (a second or more), and sshd cannot bind it. The inventory's addresses are
    unique by validation, so there is nothing to detect."""
    return ("nodad",) if address.version == 6 else ()


def _make_mountpoint(path: Path, is_file: bool) -> None:
    """Create a missing mount point (an empty file or a directory), once and for good (see `Lab.down`)."""
    if os.path.lexists(path):  # /etc/os-release is a symlink: mounting onto it mounts onto its target
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_file:
        path.touch()
    else:
        path.mkdir()


def _norm_os(declared: str) -> str:
    return " ".join(declared.lower().split())


@functools.cache
def _os_release_table() -> dict[str, dict[str, str]]:
    table = yaml.safe_load(OS_RELEASE_TABLE.read_text(encoding="utf-8"))
    return {_norm_os(name): {k: str(v) for k, v in fields.items()} for name, fields in table.items()}


def os_release(declared: str) -> str:
    """The /etc/os-release text of a host declared as running `declared` (e.g. "Kylin V10 SP2").

    Unknown OS strings get the machine's own os-release, so a host never presents no OS at all.
    """
    fields = _os_release_table().get(_norm_os(declared))
    if fields is None:
        return MACHINE_OS_RELEASE.read_text()

    def quote(value: str) -> str:
        return '"' + re.sub(r'(["\\$`])', r"\\\1", value) + '"'

    return "".join(f"{key}={quote(value)}\n" for key, value in fields.items())

