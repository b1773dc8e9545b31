"""The address planner (`invoke network.plan`): one subnet per VLAN, one address per VLAN interface.

What the inventory asks for (`managed_interfaces`): every VLAN interface of a device outside the
golden networks, either a **department VLAN** (it names a department with an extranet allocation:
an IPv4 subnet of `extranet.vlan_ipv4_prefix` and an IPv6 /64 from that department's share) or an
**interconnect VLAN** (no department: the same VLAN number on several devices is one segment joining
them; a subnet of `interconnect.ipv4_prefix` and a /64 from `extranet.interconnect`). Each interface
on a VLAN gets the next free host address of the VLAN's subnet (::1, ::2, ... and .1, .2, ...).

Allocation is first-fit in a fixed order (departments as the inventory lists them, then VLAN number;
devices by role, core first, then by name), so the same inventory gives the same plan. The previous
plan file is the memory: every entry it holds that the inventory still asks for is kept as it is, and
only the rest is allocated around it, so adding a department, a VLAN or a device never renumbers
anything (keep the plan file in the city's own repository: this one ignores network/plans/). An entry
the inventory no longer asks for is released (listed in the plan's `released`); one that no longer fits
(its department's share was moved) is an error, never a silent renumbering.

Bad input is reported as `file:line: where: what` (the inventory's own problem format) and is exit 2:
a department VLAN on a golden-network interface, a VLAN interface whose department has no allocation,
an interconnect VLAN without a pool, a full share or pool, a previous plan that disagrees with the inventory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inventory.loader import Problem
from inventory.model import Device, Interface, Inventory
from network import vendor
from network.model import AddressPlan, InterfaceAddress, PlanError, VlanSubnet, load_plan, save_plan

HERE = Path(__file__).resolve().parent
PLANS_DIR = HERE / "plans"

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class PlanningError(ValueError):
    """Bad input for planning: each problem names the file, line and field, or the plan entry."""

    def __init__(self, problems: list[Problem | str]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass(frozen=True)
class Managed:
    """A VLAN interface jiyue addresses and renders."""

    device: Device
    interface: Interface
    vlan: int
    department: str | None  # None: interconnect

    @property
    def key(self) -> tuple[str, str]:
        return (self.device.name, self.interface.name)


def at(device: Device, index: int | None, field: str | None, message: str) -> Problem:
    """A problem at a device's interface field, with the file and line it was declared on."""
    sub: tuple[str | int, ...] = () if index is None else ("interfaces", index)
    if field:
        sub += (field,)
    origin = device._origin
    if origin is None:
        label = f"devices[{device.name}]" + (f".interfaces[{index}]" if index is not None else "")
        return Problem(Path("(inventory)"), 0, label + (f".{field}" if field else ""), message)
    return Problem(origin.file, origin.line(sub), origin.describe(sub), message)


def managed_interfaces(inv: Inventory) -> list[Managed]:
    """The VLAN interfaces the extranet asks for, in a fixed order; PlanningError for what it cannot have."""
    ext = inv.extranet
    if ext is None:
        raise PlanningError([Problem(Path(str(inv.root)), 0, "extranet",
                                     "the inventory has no extranet section: nothing to plan")])
    shares = {a.department for a in ext.departments}
    problems: list[Problem | str] = []
    out: list[Managed] = []
    for device in sorted(inv.devices.values(), key=lambda d: d.name):
        for i, iface in enumerate(device.interfaces):
            vlan = vendor.vlan_of(device.platform, iface.name)
            golden = iface.golden_network or device.golden_network
            if golden:
                if iface.department in shares and (vlan is not None or iface.vlan is not None):
                    what = "device" if device.golden_network else "interface"
                    problems.append(at(device, i, "department", f"{device.name} {iface.name}: the {what} is part of "
                                       f"the golden network {golden}; it cannot carry department '{iface.department}'"
                                       "'s extranet VLAN (盘政办发〔2017〕144号: golden networks are never touched)"))
                continue
            if vlan is None:
                continue  # a physical port: jiyue addresses VLAN interfaces only
            if iface.vlan is not None and iface.vlan != vlan:
                problems.append(at(device, i, "vlan", f"{device.name} {iface.name}: vlan {iface.vlan} disagrees with "
                                                      f"the interface name (VLAN {vlan})"))
                continue
            if iface.department is not None and iface.department not in shares:
                problems.append(at(device, i, "department", f"{device.name} {iface.name}: department "
                                   f"'{iface.department}' has no extranet allocation: add it under "
                                   "extranet.departments"))
                continue
            if iface.department is None and ext.interconnect is None:
                problems.append(at(device, i, None, f"{device.name} {iface.name}: an interconnect VLAN (no department) "
                                                    "needs an extranet.interconnect pool"))
                continue
            out.append(Managed(device, iface, vlan, iface.department))
    if problems:
        raise PlanningError(problems)
    return out


def _free(block: Net, prefixlen: int, taken: list[Net]) -> Net | None:
    """The first subnet of `block` with `prefixlen` that overlaps nothing taken."""
    if prefixlen < block.prefixlen:
        return None
    step = 1 << (block.max_prefixlen - prefixlen)
    base = int(block.network_address)
    end = int(block.broadcast_address)
    cls = type(block)
    spans = sorted((int(t.network_address), int(t.broadcast_address)) for t in taken if t.overlaps(block))
    start = base
    for lo, hi in spans:  # skip candidates that overlap a taken span, jumping over it
        if start + step - 1 < lo:
            break
        if hi >= start:
            start = ((hi + 1 - base + step - 1) // step) * step + base
    if start + step - 1 > end:
        return None
    return cls((start, prefixlen))


def _host(net: Net, used: set) -> Any:
    """The first free host address: .1 upwards (IPv4 skips network and broadcast; IPv6 skips the anycast ::0)."""
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    for n in range(int(net.network_address) + 1, last + 1):
        address = ipaddress.ip_address(n)
        if address not in used:
            return address
    return None


def build_plan(inv: Inventory, previous: AddressPlan | None = None, now: datetime | None = None,
               previous_path: Path | None = None) -> AddressPlan:
    """The plan for `inv`, keeping every entry of `previous` the inventory still asks for."""
    ext = inv.extranet
    managed = managed_interfaces(inv)
    assert ext is not None
    wanted_subnets: dict[tuple[str | None, int], list[Managed]] = {}
    for m in managed:
        wanted_subnets.setdefault((m.department, m.vlan), []).append(m)
    wanted_addresses = {m.key: m for m in managed}

    released: list[str] = []
    kept_subnets: list[VlanSubnet] = []
    kept_addresses: list[InterfaceAddress] = []
    if previous is not None:
        for s in previous.subnets:
            if s.key in wanted_subnets:
                kept_subnets.append(s)
            else:
                released.append(f"subnet {s.label}: {s.ipv4}, {s.ipv6}")
        for a in previous.addresses:
            m = wanted_addresses.get(a.key)
            if m is not None and (m.department, m.vlan) == (a.department, a.vlan):
                kept_addresses.append(a)
            else:
                released.append(f"address {a.device} {a.interface} (VLAN {a.vlan}): {a.ipv4}, {a.ipv6}")
        # the inventory's VPN and city blocks win; what the plan allocated must still fit them
        kept = previous.model_copy(update={"subnets": kept_subnets, "addresses": kept_addresses,
                                           "vpn_instance": ext.vpn_instance, "ipv4": ext.ipv4, "ipv6": ext.ipv6})
        problems = kept.check(inv)
        if problems:
            where = previous_path or "the previous plan"
            raise PlanningError([f"{where}: disagrees with the inventory: {p}" for p in problems])

    problems: list[Problem | str] = []
    subnets = list(kept_subnets)
    have = {s.key for s in subnets}
    order = {a.department: i for i, a in enumerate(ext.departments)}
    shares = {a.department: a for a in ext.departments}
    for key in sorted(wanted_subnets, key=lambda k: (k[0] is None, order.get(k[0], 0), k[1])):
        if key in have:
            continue
        department, vlan = key
        if department is None:
            pool = ext.interconnect
            blocks, lengths, owner = (pool.ipv4, pool.ipv6), (pool.ipv4_prefix, 64), "the interconnect pool"
        else:
            share = shares[department]
            blocks, lengths, owner = (share.ipv4, share.ipv6), (ext.vlan_ipv4_prefix, 64), \
                f"department '{department}''s share"
        found = []
        for family, block, length in zip(("ipv4", "ipv6"), blocks, lengths, strict=True):
            net = _free(block, length, [getattr(s, family) for s in subnets])
            if net is None:
                m = wanted_subnets[key][0]
                index = m.device.interfaces.index(m.interface)
                problems.append(at(m.device, index, None, f"{m.device.name} {m.interface.name}: VLAN {vlan}: "
                                   f"{owner} {block} is exhausted (no free /{length}); enlarge it or free a VLAN"))
            found.append(net)
        if None in found:
            continue
        subnets.append(VlanSubnet(department=department, vlan=vlan, ipv4=found[0], ipv6=found[1]))
    if problems:
        raise PlanningError(problems)

    by_key = {s.key: s for s in subnets}
    addresses = list(kept_addresses)
    have_addr = {a.key for a in addresses}
    rank = {"core": 0, "aggregation": 1, "access": 2}  # on a shared VLAN the cores get the first addresses
    for key in sorted(wanted_addresses, key=lambda k: (rank[wanted_addresses[k].device.role], k)):
        if key in have_addr:
            continue
        m = wanted_addresses[key]
        subnet = by_key[(m.department, m.vlan)]
        picked = []
        for family, net in (("ipv4", subnet.ipv4), ("ipv6", subnet.ipv6)):
            used = {getattr(a, family).ip for a in addresses if getattr(a, family).network == net}
            host = _host(net, used)
            if host is None:
                index = m.device.interfaces.index(m.interface)
                problems.append(at(m.device, index, None, f"{m.device.name} {m.interface.name}: {subnet.label} "
                                   f"subnet {net} has no free address left"))
            picked.append(host)
        if None in picked:
            continue
        addresses.append(InterfaceAddress(
            device=m.device.name, interface=m.interface.name, department=m.department, vlan=m.vlan,
            ipv4=ipaddress.IPv4Interface(f"{picked[0]}/{subnet.ipv4.prefixlen}"),
            ipv6=ipaddress.IPv6Interface(f"{picked[1]}/64")))
    if problems:
        raise PlanningError(problems)

    subnets.sort(key=lambda s: (s.department is None, order.get(s.department, 0), s.vlan))
    addresses.sort(key=lambda a: a.key)
    warnings = [f"{d.name}：属于金字工程（{d.golden_network}），不参与规划 / {d.name}: not planned, part of the golden "
                f"network {d.golden_network}"
                for d in sorted(inv.devices.values(), key=lambda d: d.name) if d.golden_network]
    plan = AddressPlan(generated=now or datetime.now(UTC).replace(microsecond=0), inventory=inv.identity,
                       vpn_instance=ext.vpn_instance, ipv4=ext.ipv4, ipv6=ext.ipv6, subnets=subnets,
                       addresses=addresses, released=released, warnings=warnings)
    problems = plan.check(inv)
    if problems:  # a planner bug, never an input
        raise AssertionError("the new plan failed its own checks: " + "; ".join(problems))
    return plan


def default_plan_path(inv: Inventory) -> Path:
    """network/plans/<inventory directory name>-<its identity's digest>.yaml"""
    return inv.plan_file(PLANS_DIR)


def read_previous(path: Path) -> AddressPlan | None:
    """The plan a new plan keeps; None when there is none. A file that exists but does not parse is an error:
    planning without it would renumber everything."""
    if not path.exists():
        return None
    try:
        return load_plan(path)
    except PlanError as exc:
        raise PlanningError([f"{path}: the existing plan cannot be read, so planning again could renumber: "
                             + "; ".join(exc.problems) + " (fix it, or move it away to start afresh)"]) from None


def keep_time(plan: AddressPlan, previous: AddressPlan | None) -> AddressPlan:
    """A plan equal to the previous one but for its time keeps that time: same inputs, same file."""
    if previous is not None:
        dump = {**plan.model_dump(mode="json"), "generated": None}
        if dump == {**previous.model_dump(mode="json"), "generated": None}:
            return plan.model_copy(update={"generated": previous.generated})
    return plan


def plan_inventory(inv: Inventory, path: Path | None = None) -> tuple[AddressPlan, Path]:
    """Plan against the file at `path` (default: network/plans/<inventory dir>-<digest>.yaml) and write it back."""
    path = path or default_plan_path(inv)
    previous = read_previous(path)
    plan = keep_time(build_plan(inv, previous, previous_path=path), previous)
    return plan, save_plan(plan, path)


def summary(plan: AddressPlan) -> Iterator[str]:
    yield (f"{len(plan.subnets)} VLAN subnets ({sum(s.department is None for s in plan.subnets)} interconnect), "
           f"{len(plan.addresses)} interface addresses")
    for r in plan.released:
        yield f"released: {r}"
