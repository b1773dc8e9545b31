"""The extranet address plan: what `network.plan` writes for review and `network.render` reads.

A plan is a YAML file (network/plans/<inventory dir>-<digest>.yaml, reviewable, editable by hand). It holds two
lists, each entry keyed so that planning again finds it and keeps it:

- `subnets`: one per VLAN, keyed by (department, vlan); `department: null` marks an interconnect
  VLAN (a VLAN interface without a department, joining extranet devices);
- `addresses`: one per VLAN interface, keyed by (device, interface).

Loading a plan checks it again (`AddressPlan.check`), so a hand edit cannot put an address outside
its subnet, a subnet outside its department's share, or two VLANs on one prefix. `PlannedAddresses`
is what planning returns (the plan, where it was written, the inventory it was made for), the one
object the plan report is written from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from inventory.model import Inventory
from jiyue.reports import write_yaml


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VlanSubnet(Model):
    department: str | None  # None: an interconnect VLAN
    vlan: int
    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network

    @property
    def key(self) -> tuple[str | None, int]:
        return (self.department, self.vlan)

    @property
    def label(self) -> str:
        return f"VLAN {self.vlan} ({self.department or 'interconnect'})"


class InterfaceAddress(Model):
    device: str
    interface: str
    department: str | None
    vlan: int
    ipv4: ipaddress.IPv4Interface
    ipv6: ipaddress.IPv6Interface

    @property
    def key(self) -> tuple[str, str]:
        return (self.device, self.interface)


class AddressPlan(Model):
    generated: datetime
    inventory: str
    vpn_instance: str
    ipv4: ipaddress.IPv4Network  # the city blocks the plan was made in
    ipv6: ipaddress.IPv6Network
    subnets: list[VlanSubnet] = []
    addresses: list[InterfaceAddress] = []
    released: list[str] = []  # what the last planning dropped because the inventory no longer asks for it
    warnings: list[str] = []

    def subnet(self, department: str | None, vlan: int) -> VlanSubnet | None:
        return next((s for s in self.subnets if s.key == (department, vlan)), None)

    def address(self, device: str, interface: str) -> InterfaceAddress | None:
        return next((a for a in self.addresses if a.key == (device, interface)), None)

    def check(self, inv: Inventory) -> list[str]:
        """Problems that make the plan disagree with itself or with the inventory. Empty when sound.

        Every message names the plan entry (`subnets[VLAN 120 (fgw)]`, `addresses[sj-hj1 Vlanif120]`)."""
        foreign = inv.foreign_plan(self.inventory)
        if foreign:
            return [foreign]
        problems: list[str] = []
        ext = inv.extranet
        if ext is None:
            return ["the inventory has no extranet section, but a plan exists for it"]
        if (self.ipv4, self.ipv6) != (ext.ipv4, ext.ipv6):
            problems.append(f"the plan was made for the city blocks {self.ipv4} and {self.ipv6}; the inventory now "
                            f"says {ext.ipv4} and {ext.ipv6}")
        shares = {a.department: a for a in ext.departments}
        seen: dict[tuple[str | None, int], VlanSubnet] = {}
        for s in self.subnets:
            where = f"subnets[{s.label}]"
            if s.key in seen:
                problems.append(f"{where}: planned twice")
            seen[s.key] = s
            if s.ipv6.prefixlen != 64:
                problems.append(f"{where}: ipv6 {s.ipv6} is not a /64 (one /64 per VLAN)")
            if s.department is None:
                pool = ext.interconnect
                if pool is None:
                    problems.append(f"{where}: an interconnect VLAN, but the inventory has no "
                                    "extranet.interconnect pool")
                    continue
                blocks = (pool.ipv4, pool.ipv6)
                owner = "the interconnect pool"
            else:
                share = shares.get(s.department)
                if share is None:
                    problems.append(f"{where}: department '{s.department}' has no extranet allocation in the inventory")
                    continue
                blocks = (share.ipv4, share.ipv6)
                owner = f"the share of '{s.department}'"
            for net, block in zip((s.ipv4, s.ipv6), blocks, strict=True):
                if not net.subnet_of(block):
                    problems.append(f"{where}: {net} is outside {owner} ({block}): the inventory changed the "
                                    "block; restore it, or delete this entry to have it renumbered")
        subnets = list(seen.values())
        for i, a in enumerate(subnets):
            for b in subnets[i + 1:]:
                for family in ("ipv4", "ipv6"):
                    if getattr(a, family).overlaps(getattr(b, family)):
                        problems.append(f"subnets[{b.label}]: {getattr(b, family)} overlaps subnets[{a.label}] "
                                        f"({getattr(a, family)})")
        used: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
        keys: set[tuple[str, str]] = set()
        for a in self.addresses:
            where = f"addresses[{a.device} {a.interface}]"
            if a.key in keys:
                problems.append(f"{where}: planned twice")
            keys.add(a.key)
            subnet = seen.get((a.department, a.vlan))
            if subnet is None:
                problems.append(f"{where}: no subnet planned for VLAN {a.vlan} ({a.department or 'interconnect'})")
                continue
            for ip, net in ((a.ipv4, subnet.ipv4), (a.ipv6, subnet.ipv6)):
                if ip.network != net:
                    problems.append(f"{where}: {ip} is not in its VLAN's subnet {net}")
                elif ip.ip in (net.network_address, net.broadcast_address) and net.version == 4:
                    problems.append(f"{where}: {ip.ip} is the network or broadcast address of {net}")
                elif ip.ip == net.network_address:
                    problems.append(f"{where}: {ip.ip} is the subnet-router anycast address of {net}")
                if ip.ip in used:
                    problems.append(f"{where}: {ip.ip} is already used by {used[ip.ip]}")
                used.setdefault(ip.ip, where)
            device = inv.devices.get(a.device)
            if device is None:
                problems.append(f"{where}: device '{a.device}' is not in the inventory")
            elif device.golden_network:
                problems.append(f"{where}: device '{a.device}' is part of the golden network {device.golden_network}")
            elif not any(i.name == a.interface for i in device.interfaces):
                problems.append(f"{where}: device '{a.device}' has no interface '{a.interface}' in the inventory")
        return problems


class PlanError(ValueError):
    """A plan file that cannot be used: it does not parse, or `AddressPlan.check` found problems."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = Path(path)
        self.problems = problems


def load_plan(path: Path, inv: Inventory | None = None) -> AddressPlan:
    """Read a plan file; with `inv`, refuse it (PlanError) when it disagrees with itself or the inventory."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        plan = AddressPlan.model_validate(data)
    except OSError as exc:
        raise PlanError(path, [f"cannot read it: {exc.strerror}: write it with `invoke network.plan`"]) from None
    except yaml.YAMLError as exc:
        raise PlanError(path, [f"not valid YAML: {exc}"]) from None
    except ValidationError as exc:
        raise PlanError(path, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                               for e in exc.errors(include_url=False)]) from None
    if inv is not None:
        problems = plan.check(inv)
        if problems:
            raise PlanError(path, problems)
    return plan


def save_plan(plan: AddressPlan, path: Path) -> Path:
    header = ("# Extranet address plan written by `invoke network.plan`. Planning again keeps every entry\n"
              "# below (nothing is renumbered); edit by hand only with care: it is checked again on load.\n")
    return write_yaml(path, plan.model_dump(mode="json"), header)


@dataclass(frozen=True)
class PlannedAddresses:
    """The result of planning: the plan, the file it was written to, and the inventory it was made for."""

    inv: Inventory
    plan: AddressPlan
    path: Path
