"""The lab's network devices: one simulator process in one namespace holding every management address.

`Lab.up` calls `devices_up`: the namespace `<tag>-netsim` joins the lab bridge with a veth, gets each
inventory device's management address, and runs `server.py`; the devices boot with the configs of
`baseline.py`. `Lab.down` removes the namespace (and so the process) with the others.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inventory.model import Inventory
from tests.lab.netsim.api import Netsim
from tests.lab.netsim.baseline import device_specs

if TYPE_CHECKING:
    from tests.lab.hosts import Lab

NETNS_NAME = "netsim"


@dataclass
class DeviceStatus:
    name: str
    platform: str
    address: str
    port: int
    running: bool
    ssh_banner: str | None

    @property
    def up(self) -> bool:
        return self.running and bool(self.ssh_banner)


def netsim(lab: Lab) -> Netsim:
    return Netsim(lab.state_dir / "devices", netns=lab.netns(NETNS_NAME))


def devices_up(lab: Lab, inv: Inventory, names: list[str] | None = None) -> list[str]:
    """Start the inventory's devices (those in `names`) that are not running; return the names started."""
    from tests.lab.hosts import LabError, _run

    if NETNS_NAME in inv.hosts:
        raise LabError(f"a host is named {NETNS_NAME!r}: that name is the lab's device namespace; rename the host")
    specs = device_specs(inv, lab.state_dir, names)
    if not specs:
        return []
    ns = lab.netns(NETNS_NAME)
    if not Path("/run/netns", ns).exists():
        link = lab._link_name(NETNS_NAME)
        _run("ip", "link", "del", link, check=False)
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", link, "master", lab.bridge, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "-4", "route", "add", "default", "dev", "eth0")
        _run("ip", "-n", ns, "-6", "route", "add", "default", "dev", "eth0", check=False)
    present = _run("ip", "-n", ns, "-o", "addr", "show", "dev", "eth0").stdout
    for spec in specs:
        address = ipaddress.ip_address(spec.address)
        if f" {address}/" in present:
            continue
        subnet = inv.subnet_of(address)
        prefixlen = subnet.prefix.prefixlen if subnet else (24 if address.version == 4 else 64)
        extra = ["nodad"] if address.version == 6 else []
        _run("ip", "-n", ns, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0", *extra)
    return netsim(lab).start(specs)


def devices_status(lab: Lab, names: list[str] | None = None) -> list[DeviceStatus]:
    from concurrent.futures import ThreadPoolExecutor

    from tests.lab.hosts import ssh_banner

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
