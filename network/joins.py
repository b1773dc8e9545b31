"""Business private networks (业务专网) joining the extranet through a department VLAN, from the address plan.

A qualifying private network (inventory `private_networks`, `qualifies: true`) names the department VLAN it
joins through (`join.vlan`). Joining is two things on the device carrying that VLAN's interface, rendered with
the rest of its config (`network.render`, features `acl` and `routes`):

- the VLAN's boundary ACL lets the network's prefixes in as sources (rules 100 + 10 × VLAN + 1…9, after the
  VLAN's own permit), so its boundary stays clear: nothing else of it enters the extranet;
- a static route in the extranet VPN to each prefix, via the first boundary device's address on that VLAN.

Values are checked here, each problem naming the record's file and line: the VLAN must be a planned
department VLAN of that department, a boundary device's address must lie inside the VLAN's planned subnet
and be no address the plan gave a device, and a prefix must not overlap the extranet's own blocks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from inventory.loader import Problem
from inventory.model import Inventory, PrivateNetwork
from network.model import AddressPlan

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The permit rules of a joined network follow its VLAN's own permit (rule 100 + 10 × VLAN): at most 9.
MAX_PREFIXES = 9


class JoinError(ValueError):
    """A join that cannot be rendered: every problem names the record's file, line and field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass(frozen=True)
class PlannedJoin:
    """Where and how one private network joins: the device and VLAN interface, the prefixes, the next hops."""

    network: str
    department: str
    vlan: int
    device: str
    interface: str
    prefixes: tuple[Net, ...]
    hop4: ipaddress.IPv4Address | None  # None: the network has no IPv4 prefix (or no boundary address of it)
    hop6: ipaddress.IPv6Address | None
    boundary: str  # the boundary device's name, for people


def _at(net: PrivateNetwork, sub: tuple[str | int, ...], message: str) -> Problem:
    origin = net._origin
    if origin is None:
        return Problem(Path("(inventory)"), 0, f"private_networks[{net.id}]." + ".".join(map(str, sub)), message)
    return Problem(origin.file, origin.line(sub), origin.describe(sub), message)


def planned_joins(inv: Inventory, plan: AddressPlan) -> list[PlannedJoin]:
    """Every qualifying private network's join, checked against the address plan; JoinError lists what is wrong."""
    problems: list[Problem] = []
    out: list[PlannedJoin] = []
    ext = inv.extranet
    for net in sorted(inv.private_networks.values(), key=lambda n: n.id):
        if not net.qualifies or net.join is None:
            continue
        vlan = net.join.vlan
        subnet = plan.subnet(net.department, vlan)
        addresses = [a for a in plan.addresses if (a.department, a.vlan) == (net.department, vlan)]
        if subnet is None or not addresses:
            problems.append(_at(net, ("join", "vlan"), f"VLAN {vlan} of department '{net.department}' has no planned "
                                                       "subnet: run `invoke network.plan` first"))
            continue
        used = {a.ipv4.ip for a in plan.addresses} | {a.ipv6.ip for a in plan.addresses}
        hops: dict[int, tuple[Address, str]] = {}
        for i, device in enumerate(net.boundary_devices):
            where = ("boundary_devices", i, "address")
            within = subnet.ipv4 if device.address.version == 4 else subnet.ipv6
            if device.address not in within or device.address in (within.network_address, within.broadcast_address):
                problems.append(_at(net, where, f"{device.address} is not a host address of VLAN {vlan}'s planned "
                                                f"subnet {within}: the boundary device joins on that VLAN"))
            elif device.address in used:
                problems.append(_at(net, where, f"{device.address} is an address the plan gave an extranet device "
                                                "interface: give the boundary device another one"))
            else:
                hops.setdefault(device.address.version, (device.address, device.name))
        for i, prefix in enumerate(net.prefixes):
            if ext is not None and (prefix.overlaps(ext.ipv4) if prefix.version == 4 else prefix.overlaps(ext.ipv6)):
                problems.append(_at(net, ("prefixes", i), f"{prefix} overlaps the extranet's own block: a private "
                                                          "network joins with its own address space"))
            elif prefix.version not in hops:
                problems.append(_at(net, ("prefixes", i), f"{prefix}: no boundary device has an IPv{prefix.version} "
                                                          "address on the VLAN to route it through"))
        first = addresses[0]
        out.append(PlannedJoin(net.id, net.department, vlan, first.device, first.interface, tuple(net.prefixes),
                               hops[4][0] if 4 in hops else None, hops[6][0] if 6 in hops else None,
                               (hops.get(4) or hops.get(6) or (None, ""))[1]))
    if problems:
        raise JoinError(problems)
    return out


def joins_on(inv: Inventory, plan: AddressPlan, device: str) -> list[PlannedJoin]:
    """The joins rendered on one device (those whose VLAN interface it carries)."""
    return [j for j in planned_joins(inv, plan) if j.device == device]
