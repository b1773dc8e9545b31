"""A lab with a bastion (堡垒机): source hosts the control node can reach only through a jump host's sshd.

It is a lab of its own beside the main one (tag `bh`, bridge `bhlab0`, 198.19.240.0/24 behind the bastion,
198.19.241.0/24 between the control node and the bastion), so it runs at the same time as the main lab, the
test suite's and the benches':

- the source hosts are ordinary lab hosts (lab/hosts.py) on the bridge, but the bridge carries no address in
  the control node's namespace, and the source subnet is routed `unreachable` there: no route in;
- the bastion is a namespace with an interface on each side (eth0 on the bridge, eth1 towards the control
  node), IP forwarding off, and an sshd listening on the control node's side only; its `AllowTcpForwarding`
  is the one way through (`forwarding=False` gives a bastion that offers a login shell and nothing else);
- its sshd also listens on its inside address (`BASTION_INSIDE`), which only a channel through the bastion
  reaches: the second hop of a chain of two (OpenSSH refuses a chain that passes one address twice);
- the bastion has a host key of its own, recorded in a known_hosts of its own (the inventory's jump host
  record points at it), apart from the source hosts' known_hosts.

The simulated devices (lab/netsim, `DEVICES`) sit on the same bridge in the host lab's `<tag>-netsim` namespace,
equally unreachable except through the bastion.

`write_inventory` writes the matching inventory: the hosts, the devices, the subnet, and the `bastion` jump host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import time
from pathlib import Path

import yaml

import inventory
from inventory.model import Inventory
from lab.hosts import REPO, SSHD, Lab
from lab.keys import ed25519_keypair
from lab.netsim.baseline import device_specs
from lab.netsim.lab import ensure_addresses, netsim
from lab.procs import LabError, run

DEFAULT_STATE = REPO / ".lab-bastion"
TAG = "bh"
SOURCE = ipaddress.ip_network("198.19.240.0/24")
OPS = ipaddress.ip_network("198.19.241.0/24")
CONTROL_ADDRESS = "198.19.241.1"  # the control node's side of the link to the bastion
BASTION_ADDRESS = "198.19.241.2"
BASTION_INSIDE = "198.19.240.254"  # the bastion's address on the source subnet
HOSTS = {"src-app1": ("198.19.240.11", "debian", "Debian 12"), "src-db1": ("198.19.240.12", "redhat", "Kylin V10")}
# Simulated network devices (lab/netsim) behind the bastion too: device sessions (push, diff, backup, restore, device
# baselines) and the Nornir export are proven through it.
# Their management subnet is on the same bridge, behind the bastion like the source subnet.
MANAGEMENT = ipaddress.ip_network("198.19.243.0/24")
BASTION_MANAGEMENT = "198.19.243.254"  # the bastion's address on the management subnet
DEVICES = {"src-sw1": ("198.19.243.21", "huawei_vrp"), "src-sw2": ("198.19.243.22", "cisco_ios")}

BASTION_SSHD = """\
# jiyue lab bastion
ListenAddress {listen}:22
# its inside address too, which only a channel through the bastion reaches: a second hop for chains of two
ListenAddress {inside}:22
HostKey {host_key}
PidFile {pid_file}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {authorized_keys}
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 200:30:400
AllowTcpForwarding {forwarding}
"""


class BastionLab:
    """The source hosts behind one bastion; `up`, `set_forwarding`, `down`.

    `source` and `ops` give a bastion lab of other networks (a bench's, beside this one): the control node
    takes the first address of `ops`, the bastion the second, and the bastion's inside address is the last
    but one of `source`."""

    def __init__(self, state_dir: Path = DEFAULT_STATE, tag: str = TAG,
                 source: ipaddress.IPv4Network = SOURCE, ops: ipaddress.IPv4Network = OPS) -> None:
        self.state_dir = Path(state_dir)
        self.source, self.ops = source, ops
        self.control_address, self.address, self.inside = str(ops[1]), str(ops[2]), str(source[-2])
        self.hosts = Lab(self.state_dir / "lab", tag=tag)
        self.dir = self.state_dir / "bastion"
        self.netns = f"{tag}-jump"  # in the host lab's netns prefix: its `down` removes it too
        self.ops_link = f"{tag[:3]}jops"
        self.src_link = f"{tag[:3]}jsrc"
        self.known_hosts = self.dir / "known_hosts"  # the bastion's key only
        self.device_password = self.hosts.state_dir / "devices" / "password"  # written by the lab on first start

    # --- inventory -------------------------------------------------------------------------------

    def write_inventory(self, directory: Path, jump: bool = True) -> Path:
        """The lab's inventory in `directory`: its hosts and subnet, and the `bastion` jump host, which the
        defaults name (or, with `jump=False`, which nothing names: the hosts are then addressed directly)."""
        directory.mkdir(parents=True, exist_ok=True)
        data: dict = {
            "defaults": {"ssh": {"user": "root", "key": str(self.hosts.key),
                                 "known_hosts": str(self.hosts.known_hosts)}},
            "jump_hosts": [{"name": "bastion", "address": self.address,
                            "ssh": {"known_hosts": str(self.known_hosts)}}],
            "subnets": [{"name": "src", "kind": "source", "prefix": str(self.source), "gateway": self.inside}],
            "hosts": [{"name": n, "address": a, "os_family": f, "os": o, "role": "app"}
                      for n, (a, f, o) in HOSTS.items()],
        }
        data["defaults"]["device_credentials"] = {"username": "netops",
                                                  "password": {"file": str(self.device_password)}}
        data["subnets"].append({"name": "mgmt", "kind": "management", "prefix": str(MANAGEMENT),
                                "gateway": BASTION_MANAGEMENT})
        data["devices"] = [{"name": n, "platform": p, "address": a, "site": "源机房", "role": "access"}
                           for n, (a, p) in DEVICES.items()]
        if jump:
            data["defaults"]["jump"] = "bastion"
        (directory / "city.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        return directory

    # --- up and down -----------------------------------------------------------------------------

    def up(self, inv: Inventory | None = None, forwarding: bool = True) -> Inventory:
        """Start the source hosts and the bastion; return the inventory (written under the state dir)."""
        self.hosts.preflight()
        inv = inv or inventory.load(self.write_inventory(self.state_dir / "inventory"))
        # The host lab would give the bridge the subnet's gateway address, a route in: leave subnets out.
        self.hosts.up(inv.model_copy(update={"subnets": {}, "devices": {}}))
        run("ip", "addr", "flush", "dev", self.hosts.bridge, check=False)
        run("ip", "route", "replace", "unreachable", str(self.source))
        run("ip", "route", "replace", "unreachable", str(MANAGEMENT))
        if not Path("/run/netns", self.netns).exists():
            self._plumb()
        self._devices_up(inv)
        self.set_forwarding(forwarding)
        return inv

    def _devices_up(self, inv: Inventory) -> None:
        """The inventory's devices in the simulator, on the bridge behind the bastion (no route to them here)."""
        specs = device_specs(inv, self.hosts.state_dir)
        if not specs:
            return
        ensure_addresses(self.hosts, [ipaddress.ip_interface(f"{s.address}/{MANAGEMENT.prefixlen}") for s in specs],
                         routed=False)
        netsim(self.hosts).start(specs)
        self.hosts.write_known_hosts()  # the devices' keys beside the hosts', in the inventory's known_hosts

    def _plumb(self) -> None:
        ns = self.netns
        for link in (self.ops_link, self.src_link):
            run("ip", "link", "del", link, check=False)
        run("ip", "netns", "add", ns)
        run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")  # no routing here
        run("ip", "link", "add", self.src_link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", self.src_link, "master", self.hosts.bridge, "up")
        run("ip", "link", "add", self.ops_link, "type", "veth", "peer", "name", "eth1", "netns", ns)
        run("ip", "addr", "add", f"{self.control_address}/{self.ops.prefixlen}", "dev", self.ops_link)
        run("ip", "link", "set", self.ops_link, "up")
        run("ip", "-n", ns, "addr", "add", f"{self.inside}/{self.source.prefixlen}", "dev", "eth0")
        run("ip", "-n", ns, "addr", "add", f"{BASTION_MANAGEMENT}/{MANAGEMENT.prefixlen}", "dev", "eth0")
        run("ip", "-n", ns, "addr", "add", f"{self.address}/{self.ops.prefixlen}", "dev", "eth1")
        for link in ("lo", "eth0", "eth1"):
            run("ip", "-n", ns, "link", "set", link, "up")
        # A thousand hosts' addresses resolved at once on a loaded machine: more ARP tries before "No route to host"
        # (the default, 3 one second apart, lost a few hosts in a thousand at a load average of 100).
        run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.neigh.eth0.mcast_solicit=9", check=False)

    def set_forwarding(self, allow: bool) -> None:
        """(Re)start the bastion's sshd with `AllowTcpForwarding yes` or `no`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        host_key = self.dir / "ssh_host_ed25519_key"
        if not host_key.exists():
            private, public = ed25519_keypair("root@bastion")
            host_key.write_bytes(private)
            host_key.chmod(0o600)
            host_key.with_suffix(".pub").write_text(public)
        keytype, key = host_key.with_suffix(".pub").read_text().split()[:2]
        self.known_hosts.write_text(f"{self.address} {keytype} {key}\n{self.inside} {keytype} {key}\n")
        (self.dir / "authorized_keys").write_text(self.hosts.key.with_suffix(".pub").read_text())
        pid_file = self.dir / "sshd.pid"
        self._stop_sshd(pid_file)
        config = self.dir / "sshd_config"
        config.write_text(BASTION_SSHD.format(listen=self.address, inside=self.inside, host_key=host_key,
                                              pid_file=pid_file, authorized_keys=self.dir / "authorized_keys",
                                              forwarding="yes" if allow else "no"))
        run("ip", "netns", "exec", self.netns, str(SSHD), "-f", str(config), "-E", str(self.dir / "sshd.log"))
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text().strip():
                return
            time.sleep(0.02)
        raise LabError(f"the bastion's sshd did not start: see {self.dir / 'sshd.log'}")

    @staticmethod
    def _stop_sshd(pid_file: Path) -> None:
        if not pid_file.exists() or not pid_file.read_text().strip():
            return
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        pid_file.unlink(missing_ok=True)

    def down(self) -> int:
        """Remove the bastion and the hosts behind it; return how many namespaces went."""
        self._stop_sshd(self.dir / "sshd.pid")
        run("ip", "link", "del", self.ops_link, check=False)
        run("ip", "route", "del", "unreachable", str(self.source), check=False)
        run("ip", "route", "del", "unreachable", str(MANAGEMENT), check=False)
        return self.hosts.down()
