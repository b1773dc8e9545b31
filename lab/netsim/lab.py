"""The lab's network devices: one simulator process in one namespace holding every management address.

`Lab.up` calls `devices_up`: the namespace `<tag>-netsim` joins the lab bridge with a veth, gets each
inventory device's management address, and runs `server.py`; the devices boot with the configs of
`baseline.py`. `Lab.down` removes the namespace (and so the process) with the others.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING

from inventory.model import Inventory
from lab.model import DeviceStatus
from lab.netsim.api import Netsim
from lab.netsim.baseline import device_specs
from lab.netsim.device import DeviceSpec
from lab.procs import LabError, run

if TYPE_CHECKING:
    from lab.hosts import Lab

NETNS_NAME = "netsim"


def netsim(lab: Lab) -> Netsim:
    return Netsim(lab.state_dir / "devices", netns=lab.netns(NETNS_NAME))


def devices_up(lab: Lab, inv: Inventory, names: list[str] | None = None) -> list[str]:
    """Start the inventory's devices (those in `names`) that are not running; return the names started."""
    from lab.hosts import LabError

    if NETNS_NAME in inv.hosts:
        raise LabError(f"a host is named {NETNS_NAME!r}: that name is the lab's device namespace; rename the host")
    specs = device_specs(inv, lab.state_dir, names)
    if not specs:
        return []
    addresses = []
    for spec in specs:
        address = ipaddress.ip_address(spec.address)
        subnet = inv.subnet_of(address)
        addresses.append(ipaddress.ip_interface(f"{address}/{subnet.prefix.prefixlen}") if subnet else
                         ipaddress.ip_interface(f"{address}/{24 if address.version == 4 else 64}"))
    ensure_addresses(lab, addresses)
    return netsim(lab).start(specs)


def start_devices(lab: Lab, specs: list[DeviceSpec], prefixlen: int = 24) -> Netsim:
    """Start extra devices (tests, benches) in the lab's simulator, beside the inventory's. Their addresses
    must lie in a subnet the lab's bridge has (the inventory's subnets: the management /24 has room for
    about 150 more devices), or use other ports on one address."""
    ensure_addresses(lab, [ipaddress.ip_interface(f"{s.address}/{prefixlen}") for s in specs])
    sim = netsim(lab)
    sim.start(specs)  # writes sim.known_hosts; the lab's own known_hosts gets the new keys too
    lab.write_known_hosts()
    return sim


def ensure_addresses(lab: Lab, addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
                     routed: bool = True) -> None:
    """The simulator's namespace on the lab bridge, holding these addresses (added if missing). `routed=False`:
    the root namespace is not meant to reach them (the bastion lab's devices, behind its jump host)."""
    ns = lab.netns(NETNS_NAME)
    if not Path("/run/netns", ns).exists():
        link = lab.link_name(NETNS_NAME)
        run("ip", "link", "del", link, check=False)
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", link, "master", lab.bridge, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "-4", "route", "add", "default", "dev", "eth0")
        run("ip", "-n", ns, "-6", "route", "add", "default", "dev", "eth0", check=False)
    bridge = run("ip", "-o", "addr", "show", "dev", lab.bridge).stdout
    bridge_nets = [ipaddress.ip_interface(m).network for m in re.findall(r"inet6? (\S+)", bridge)]
    present = run("ip", "-n", ns, "-o", "addr", "show", "dev", "eth0").stdout
    for iface in addresses:
        if f" {iface.ip}/" in present:
            continue
        if routed and not any(iface.ip in net for net in bridge_nets):
            raise LabError(f"{iface.ip} is in no subnet of the lab bridge {lab.bridge} "
                           f"({', '.join(map(str, bridge_nets)) or 'none'}): the root namespace could not reach it")
        extra = ["nodad"] if iface.version == 6 else []
        run("ip", "-n", ns, "addr", "add", str(iface), "dev", "eth0", *extra)
        present += f" {iface.ip}/"


def devices_status(lab: Lab, names: list[str] | None = None) -> list[DeviceStatus]:
    from concurrent.futures import ThreadPoolExecutor

    from lab.hosts import ssh_banner

    sim = netsim(lab)
    running = {d["name"]: d for d in sim.status()}
    known = {**{n: d for n, d in running.items()}, **_known_specs(sim)}
    wanted = sorted(known) if names is None else list(names)

    def one(name: str) -> DeviceStatus:
        info = known.get(name, {"platform": "?", "address": "?", "port": 22})
        banner = ssh_banner(info["address"], info["port"]) if name in running else None
        return DeviceStatus(name, info["platform"], info["address"], info["port"], name in running, banner)

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, wanted))


def _known_specs(sim: Netsim) -> dict[str, dict]:
    import json

    return {p.parent.name: json.loads(p.read_text()) for p in sim.state_dir.glob("*/spec.json")}
