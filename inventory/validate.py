"""Cross-record rules: references that must resolve and placements the policy forbids.

Each rule reports at the exact field that breaks it. `declared` holds the names of records that
exist in the files but failed their own validation, so a reference to them is not reported a
second time as "unknown".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path

import yaml

from inventory.loader import FieldPath, Problem
from inventory.model import (
    JUMP_NONE,
    MAX_JUMP_CHAIN,
    Classification,
    Defaults,
    Inventory,
    Located,
    ProtectionScheme,
    RoomStatus,
    ShareType,
    SubnetKind,
    System,
    Zone,
)
from network.vendor import VendorRuleError, routed_port

LEVEL_ORDER = {"city": 0, "county": 1, "town": 2, "village": 3}


def _at(record: Located, sub: FieldPath, message: str) -> Problem:
    origin = record._origin
    return Problem(origin.file, origin.line(sub), origin.describe(sub), message)


class _Known(set[str]):
    """The names a reference may name, and apart from them the drafts' (which a complete record may not name)."""

    def __init__(self, names: Iterable[str], drafts: Iterable[str]) -> None:
        super().__init__(names)
        self.drafts = set(drafts)


def _unknown(what: str, value: str, known: set[str]) -> str:
    if value in getattr(known, "drafts", ()):
        return (f"{what} '{value}' is a draft (incomplete): complete it and remove its `draft: true`, or mark this "
                "record a draft too")
    return f"unknown {what} '{value}'"


def _refs(
    record: Located, field: str, values: Iterable[str | None], known: set[str], what: str, indexed: bool
) -> Iterator[Problem]:
    for i, value in enumerate(values):
        if value is not None and value not in known:
            sub: FieldPath = (field, i) if indexed else (field,)
            yield _at(record, sub, _unknown(what, value, known))


def cross_check(inv: Inventory, declared: dict[str, set[str]]) -> list[Problem]:
    names = {section: _Known(declared.get(section, set()), inv.drafts.get(section, {})) for section in
             ("departments", "systems", "hosts", "devices", "subnets", "sections")}
    problems: list[Problem] = []
    problems += _drafts(inv, names)
    problems += _departments(inv, names["departments"])
    problems += _systems(inv, names)
    problems += _addresses(inv)
    problems += _devices(inv, names)
    problems += _extranet(inv, names)
    problems += _cloud(inv, names)
    problems += _rooms(inv, names)
    problems += _leased_lines(inv, names)
    problems += _private_networks(inv, names)
    problems += _routing(inv)
    problems += _jumps(inv, declared.get("jump_hosts", set()))
    problems += _programme(inv, names)
    problems += _catalog(inv, names["systems"])
    return problems


def _catalog(inv: Inventory, systems: set[str]) -> Iterator[Problem]:
    """The catalog's cross-record rules: a resource name once per system (a request names `system/name`), a
    classified system's data never shared, the exchange platform a system of the city."""
    for system in inv.systems.values():
        seen: dict[str, int] = {}
        for i, resource in enumerate(system.resources):
            if resource.name in seen:
                yield _at(system, ("resources", i, "name"), f"resource '{resource.name}' is already declared "
                                                            f"(resources[{seen[resource.name]}]): one name each")
            seen.setdefault(resource.name, i)
            if system.classification == Classification.classified and resource.share_type != ShareType.not_shared:
                yield _at(system, ("resources", i, "share_type"),
                          "a classified (涉密) system's data is 不予共享 (not_shared), on the legal basis of "
                          "《中华人民共和国保守国家秘密法》")
    settings = inv.catalog
    if settings.exchange_platform is not None and settings.exchange_platform not in systems:
        yield _at(settings, ("exchange_platform",), _unknown("system", settings.exchange_platform, systems))


def _programme(inv: Inventory, names: dict[str, _Known]) -> Iterator[Problem]:
    """Milestones name known departments, once each, and unique names; an exchange milestone needs the
    catalog's exchange platform; a milestone is due after the programme starts."""
    programme = inv.programme
    if programme is None:
        return
    seen: dict[str, int] = {}
    for i, milestone in enumerate(programme.milestones):
        if milestone.name in seen:
            yield _at(programme, ("milestones", i, "name"),
                      f"milestone '{milestone.name}' is already declared (milestones[{seen[milestone.name]}]): "
                      "each milestone has a name of its own, the report's sheets are named by it")
        seen.setdefault(milestone.name, i)
        if milestone.due <= programme.start:
            yield _at(programme, ("milestones", i, "due"),
                      f"due {milestone.due} is not after the programme's start {programme.start}")
        if milestone.measure == "exchange" and inv.catalog.exchange_platform is None:
            yield _at(programme, ("milestones", i, "measure"),
                      "the exchange measure counts connections to the data-sharing exchange platform: name its "
                      "system in catalog.exchange_platform")
        if isinstance(milestone.departments, list):
            for j, code in enumerate(milestone.departments):
                if code not in names["departments"]:
                    yield _at(programme, ("milestones", i, "departments", j), _unknown("department", code,
                                                                                       names["departments"]))
                elif code in milestone.departments[:j]:
                    yield _at(programme, ("milestones", i, "departments", j), f"department '{code}' listed twice")


def _jumps(inv: Inventory, declared: set[str]) -> Iterator[Problem]:
    """Every `jump:` names a jump host (or `none`), and a jump host's own chain is at most two long, loop-free."""
    known = declared | {JUMP_NONE}
    records: list[Located] = [*inv.hosts.values(), *inv.devices.values(), *inv.subnets.values(),
                              *inv.departments.values()]
    if inv.defaults._origin is not None:
        records.append(inv.defaults)
    for record in records:
        value = getattr(record, "jump", None)
        if value is not None and value not in known:
            yield _at(record, ("jump",), f"unknown jump host '{value}' (declare it under jump_hosts, or write "
                                         f"`jump: {JUMP_NONE}` for a direct connection)")
    for jump in inv.jump_hosts.values():
        if jump.name == JUMP_NONE:
            yield _at(jump, ("name",), f"'{JUMP_NONE}' means a direct connection; give the jump host another name")
        if jump.jump is None:
            continue
        if jump.jump not in declared:
            yield _at(jump, ("jump",), f"unknown jump host '{jump.jump}'")
            continue
        chain, cur = [jump.name], inv.jump_hosts.get(jump.jump)
        while cur is not None:
            if cur.name in chain:
                yield _at(jump, ("jump",), f"the jump chain loops back to '{cur.name}'")
                break
            chain.append(cur.name)
            if len(chain) > MAX_JUMP_CHAIN:
                yield _at(jump, ("jump",), f"a chain of at most {MAX_JUMP_CHAIN} jump hosts is allowed: "
                                           f"{' → '.join(reversed(chain))} is longer")
                break
            cur = inv.jump_hosts.get(cur.jump) if cur.jump else None


# What a draft may refer to: its references must name a record, complete or draft, like any other's.
DRAFT_REFERENCES = {
    "departments": {"parent": "departments"},
    "systems": {"department": "departments", "hosts": "hosts", "depends_on": "systems",
                "overlaps_with": "systems", "replaced_by": "systems"},
    "machine_rooms": {"department": "departments", "hosts": "hosts"},
}


def _drafts(inv: Inventory, names: dict[str, _Known]) -> Iterator[Problem]:
    """Drafts' references resolve, and a draft host's address is nobody else's."""
    for section, fields in DRAFT_REFERENCES.items():
        for draft in inv.drafts.get(section, {}).values():
            for field, target in fields.items():
                value = draft.data.get(field)
                for i, ref in enumerate(value if isinstance(value, list) else [value]):
                    known = names[target]
                    if isinstance(ref, str) and ref not in known and ref not in known.drafts:
                        sub: FieldPath = (field, i) if isinstance(value, list) else (field,)
                        origin = draft.origin
                        yield Problem(origin.file, origin.line(sub), origin.describe(sub),
                                      f"unknown {target.removesuffix('s')} '{ref}'")
    used = {str(r.address): f"{kind} '{r.name}'" for kind, records in
            (("host", inv.hosts.values()), ("device", inv.devices.values())) for r in records}
    for draft in inv.drafts.get("hosts", {}).values():
        address = draft.data.get("address")
        if address is None:
            continue
        address = str(ipaddress.ip_address(str(address)))  # validated as an address already
        if address in used:
            yield Problem(draft.origin.file, draft.origin.line(("address",)), draft.origin.describe(("address",)),
                          f"address {address} is already used by {used[address]}")
        used.setdefault(address, f"draft host '{draft.key}'")


def _departments(inv: Inventory, known: set[str]) -> Iterator[Problem]:
    for dept in inv.departments.values():
        if dept.parent is None:
            if dept.level != "city":
                yield _at(dept, ("parent",), f"a {dept.level}-level department needs a parent")
            continue
        yield from _refs(dept, "parent", [dept.parent], known, "department", indexed=False)
        parent = inv.departments.get(dept.parent)
        if parent and LEVEL_ORDER[parent.level] > LEVEL_ORDER[dept.level]:
            yield _at(dept, ("parent",), f"a {dept.level}-level department cannot sit under "
                                         f"{parent.level}-level '{parent.code}'")
        seen, cur = {dept.code}, parent
        while cur is not None and cur.parent is not None:
            if cur.parent in seen:
                yield _at(dept, ("parent",), f"parent chain loops back to '{cur.parent}'")
                break
            seen.add(cur.parent)
            cur = inv.departments.get(cur.parent)


def _systems(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    owner: dict[str, str] = {}
    pool = {p.host for p in inv.cloud.pool} if inv.cloud else set()
    for system in inv.systems.values():
        yield from _refs(system, "department", [system.department], names["departments"], "department", False)
        yield from _refs(system, "hosts", system.hosts, names["hosts"], "host", True)
        yield from _refs(system, "depends_on", system.depends_on, names["systems"], "system", True)
        yield from _refs(system, "overlaps_with", system.overlaps_with, names["systems"], "system", True)
        yield from _refs(system, "replaced_by", [system.replaced_by], names["systems"], "system", False)
        for field, values in (("depends_on", system.depends_on), ("overlaps_with", system.overlaps_with),
                              ("replaced_by", [system.replaced_by])):
            if system.id in values:
                sub = (field,) if field == "replaced_by" else (field, values.index(system.id))
                yield _at(system, sub, "a system cannot refer to itself")
        for i, host in enumerate(system.hosts):
            if host in owner and owner[host] != system.id:
                yield _at(system, ("hosts", i), f"host '{host}' is already owned by system '{owner[host]}'")
            owner.setdefault(host, system.id)
            if host in pool:
                yield _at(system, ("hosts", i), f"host '{host}' is a cloud-pool target, not a source host")
        bound: dict[tuple[str, str, int], str] = {}
        for i, service in enumerate(system.services):
            if service.host not in system.hosts:
                yield _at(system, ("services", i, "host"),
                          f"service host '{service.host}' is not one of this system's hosts")
            key = (service.host, service.protocol, service.port)
            if key in bound:
                yield _at(system, ("services", i, "port"),
                          f"{service.protocol} port {service.port} on '{service.host}' is already service "
                          f"'{bound[key]}': one port serves one service; give the real port of each")
            bound.setdefault(key, service.name)
        if system.classification == Classification.classified and system.zone in (Zone.extranet, Zone.internet):
            yield _at(system, ("zone",), f"a classified (涉密) system cannot be placed in the {system.zone} "
                                         "(盘政办发〔2017〕144号: classified systems stay on the confidential network)")
        yield from _protection(system)


# The clause both schemes rest on, quoted where a record breaks it.
SCHEMES_CLAUSE = "汉中市《关于促进电子政务协调发展的实施意见》：“落实涉密信息系统分级保护和非涉密信息系统等级保护”"


def _protection(system: System) -> Iterator[Problem]:
    """Classified systems are under 分保 (the confidential bureau's, so no 等保 filing is asked of them),
    the others under 等保, filed from level 2."""
    p = system.protection
    classified = system.classification == Classification.classified
    if classified and p.scheme != ProtectionScheme.fenbao:
        yield _at(system, ("protection",), "a classified (涉密) system is under 分级保护, handled by the "
                                           "confidential bureau, not 等保: declare protection: {scheme: fenbao} "
                                           f"({SCHEMES_CLAUSE})")
    elif not classified and p.scheme == ProtectionScheme.fenbao:
        yield _at(system, ("protection", "scheme"), "分级保护 (fenbao) is for classified (涉密) systems; a "
                                                    f"non-classified system is under 等保 ({SCHEMES_CLAUSE})")
    elif p.scheme == ProtectionScheme.dengbao and p.level is not None and p.level >= 2 and not p.filing_number:
        yield _at(system, ("protection", "filing_number"),
                  f"level {p.level} systems must be filed (备案): give the filing number")


def _routing(inv: Inventory) -> list[Problem]:
    """The zone gate at the source: a system declared on a network its category may not use. The rule is policy
    data kept once, with its sources, in migrations/planning.yaml `routing`, which the planner applies too."""
    from migrations.plan import DEFAULT_PLANNING, PlanningError, load_planning

    try:
        routing = load_planning().routing
    except PlanningError as exc:
        return [Problem(DEFAULT_PLANNING, 1, "routing", f"cannot check the systems' network zones: {exc}")]
    return list(forbidden_zones(inv, routing.categories, routing.declared))


def forbidden_zones(inv: Inventory, categories: Mapping[str, Sequence[str]], declared: Mapping[str, str]
                    ) -> Iterator[Problem]:
    """Systems whose declared network (`zone`, through `declared`) leads to a cloud zone their category forbids
    (`categories`). A golden network stays on its national network and a classified system goes to the
    confidential bureau: neither is routed, so neither is checked here."""
    for system in inv.systems.values():
        if system.golden_network is not None or system.classification == Classification.classified:
            continue
        target = declared.get(system.zone)
        allowed = categories.get(system.category, [])
        if target not in allowed:
            shown = "、".join(map(str, allowed)) or "none"
            yield _at(system, ("zone",), f"a {system.category} system cannot be on the {system.zone} network: it "
                                         f"would land in the {target} zone, and its category allows only {shown} "
                                         "(migrations/planning.yaml routing: 贺州市 内网/外网迁移)")


def _addresses(inv: Inventory) -> Iterator[Problem]:
    """Every host and device address is unique and inside a declared subnet."""
    seen: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for gw in inv.subnets.values():
        if gw.gateway not in gw.prefix:
            yield _at(gw, ("gateway",), f"gateway {gw.gateway} is outside {gw.prefix}")
        seen[gw.gateway] = f"the gateway of subnet '{gw.name}'"
    subnets = list(inv.subnets.values())
    for i, a in enumerate(subnets):
        for b in subnets[i + 1:]:
            if a.prefix.version == b.prefix.version and a.prefix.overlaps(b.prefix):
                yield _at(b, ("prefix",), f"overlaps subnet '{a.name}' ({a.prefix})")
    for kind, records in (("host", inv.hosts.values()), ("device", inv.devices.values())):
        for record in records:
            if record.address in seen:
                yield _at(record, ("address",), f"address {record.address} is already used by {seen[record.address]}")
            seen.setdefault(record.address, f"{kind} '{record.name}'")
            subnet = inv.subnet_of(record.address)
            if subnets and subnet is None:
                yield _at(record, ("address",), f"address {record.address} is outside every declared subnet")
            elif kind == "device" and subnet is not None and subnet.kind != SubnetKind.management:
                yield _at(record, ("address",), f"management address {record.address} is in the {subnet.kind} "
                                                f"subnet '{subnet.name}', not a management subnet")


def _devices(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    for device in inv.devices.values():
        yield from _refs(device, "department", [device.department], names["departments"], "department", False)
        defaults_broken = "defaults" in names["sections"] and inv.defaults.model_dump() == Defaults().model_dump()
        if device.credentials is None and inv.defaults.device_credentials is None and not defaults_broken:
            yield _at(device, ("credentials",), "no credentials and no defaults.device_credentials")
        seen: set[str] = set()
        for i, iface in enumerate(device.interfaces):
            if iface.name in seen:
                yield _at(device, ("interfaces", i, "name"), f"interface '{iface.name}' declared twice")
            seen.add(iface.name)
            if iface.department is not None and iface.department not in names["departments"]:
                yield _at(device, ("interfaces", i, "department"), f"unknown department '{iface.department}'")
        if device.upstream is not None:
            upstream = inv.devices.get(device.upstream)
            if device.upstream == device.name:
                yield _at(device, ("upstream",), "a device cannot be its own upstream")
            elif device.upstream not in names["devices"]:
                yield _at(device, ("upstream",), f"unknown device '{device.upstream}'")
            elif upstream is not None and upstream.golden_network:
                yield _at(device, ("upstream",), f"device '{upstream.name}' is part of the golden network "
                                                 f"{upstream.golden_network}: the extranet cannot route through it")


POLICY = Path(__file__).resolve().parent / "policy.yaml"


@cache
def _widest_management_prefix() -> dict[int, int]:
    """IP version -> the widest management source prefix policy.yaml accepts."""
    widest = yaml.safe_load(POLICY.read_text(encoding="utf-8"))["management_sources"]["widest_prefix"]
    return {4: int(widest["ipv4"]), 6: int(widest["ipv6"])}


def _extranet(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    ext = inv.extranet
    if ext is None:
        return
    for i, source in enumerate(ext.management.sources if ext.management else []):
        widest = _widest_management_prefix()[source.version]
        if source.prefixlen < widest:
            what = "admits every address" if source.prefixlen == 0 else f"is wider than /{widest}"
            yield _at(ext, ("management", "sources", i),
                      f"{source} {what}: management sessions must come from the operators' networks only "
                      f"(GB/T 22239-2019 8.1.4.4 c; the limit is inventory/policy.yaml management_sources)")
    seen: dict[str, int] = {}
    allocations = ext.departments
    for i, alloc in enumerate(allocations):
        if alloc.department not in names["departments"]:
            yield _at(ext, ("departments", i, "department"), f"unknown department '{alloc.department}'")
        if alloc.department in seen:
            yield _at(ext, ("departments", i, "department"),
                      f"department '{alloc.department}' already has an allocation")
        seen.setdefault(alloc.department, i)
        for family, city in (("ipv4", ext.ipv4), ("ipv6", ext.ipv6)):
            block = getattr(alloc, family)
            if not block.subnet_of(city):
                yield _at(ext, ("departments", i, family), f"{block} is outside the city block {city}")
            for j, other in enumerate(allocations[:i]):
                if block.overlaps(getattr(other, family)):
                    yield _at(ext, ("departments", i, family),
                              f"{block} overlaps the allocation of '{other.department}' (departments[{j}])")
        if alloc.ipv4.prefixlen > ext.vlan_ipv4_prefix:
            yield _at(ext, ("departments", i, "ipv4"), f"{alloc.ipv4} is smaller than one VLAN subnet "
                                                       f"(vlan_ipv4_prefix: /{ext.vlan_ipv4_prefix})")
        if alloc.ipv6.prefixlen > 64:
            yield _at(ext, ("departments", i, "ipv6"), f"{alloc.ipv6} is smaller than one VLAN subnet (/64)")
    yield from _egress(inv, names)
    if ext.interconnect is not None:
        pool = ext.interconnect
        for family, city in (("ipv4", ext.ipv4), ("ipv6", ext.ipv6)):
            block = getattr(pool, family)
            if not block.subnet_of(city):
                yield _at(ext, ("interconnect", family), f"{block} is outside the city block {city}")
            for j, alloc in enumerate(allocations):
                if block.overlaps(getattr(alloc, family)):
                    yield _at(ext, ("interconnect", family),
                              f"{block} overlaps the allocation of '{alloc.department}' (departments[{j}])")
        if pool.ipv4.prefixlen > pool.ipv4_prefix:
            yield _at(ext, ("interconnect", "ipv4"), f"{pool.ipv4} is smaller than one interconnect subnet "
                                                     f"(ipv4_prefix: /{pool.ipv4_prefix})")
        if pool.ipv6.prefixlen > 64:
            yield _at(ext, ("interconnect", "ipv6"), f"{pool.ipv6} is smaller than one /64")
    if ext.ospfv3 is not None:
        seen_devices: set[str] = set()
        for i, name in enumerate(ext.ospfv3.devices):
            device = inv.devices.get(name)
            if name not in names["devices"]:
                yield _at(ext, ("ospfv3", "devices", i), f"unknown device '{name}'")
            elif name in seen_devices:
                yield _at(ext, ("ospfv3", "devices", i), f"device '{name}' listed twice")
            elif device is not None and device.golden_network:
                yield _at(ext, ("ospfv3", "devices", i), f"device '{name}' is part of the golden network "
                                                         f"{device.golden_network}")
            elif device is not None and device.address.version != 4:
                yield _at(ext, ("ospfv3", "devices", i), f"device '{name}' needs an IPv4 management address: "
                                                         "it is the OSPFv3 router ID")
            seen_devices.add(name)


def _egress(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    """Each carrier exit names a device of the extranet and one of its physical (or aggregated) ports, valid on
    its platform, and the carrier's next hop of each family lies in the port's subnet of that family."""
    ext = inv.extranet
    seen_names: set[str] = set()
    seen_ports: dict[tuple[str, str], str] = {}
    pools = [(f"the allocation of '{a.department}'", a.ipv4, a.ipv6) for a in ext.departments]
    if ext.interconnect is not None:
        pools.append(("the interconnect pool", ext.interconnect.ipv4, ext.interconnect.ipv6))
    for i, egress in enumerate(ext.egress):
        if egress.name in seen_names:
            yield _at(ext, ("egress", i, "name"), f"egress '{egress.name}' declared twice")
        seen_names.add(egress.name)
        device = inv.devices.get(egress.device)
        if egress.device not in names["devices"]:
            yield _at(ext, ("egress", i, "device"), f"unknown device '{egress.device}'")
        elif device is not None and device.golden_network:
            yield _at(ext, ("egress", i, "device"), f"device '{egress.device}' is part of the golden network "
                                                    f"{device.golden_network}")
        if device is not None:
            try:
                routed_port(device.platform, egress.interface)
            except VendorRuleError as exc:
                yield _at(ext, ("egress", i, "interface"), f"{exc}")
            declared = next((f for f in device.interfaces if f.name == egress.interface), None)
            if declared is None:
                yield _at(ext, ("egress", i, "interface"), f"device '{device.name}' declares no interface "
                                                           f"'{egress.interface}': add it to the device's interfaces")
            elif declared.golden_network or declared.vlan is not None or declared.department is not None:
                what = (f"is part of the golden network {declared.golden_network}" if declared.golden_network
                        else "carries a VLAN or department (a carrier link is a routed port of its own)")
                yield _at(ext, ("egress", i, "interface"), f"interface '{egress.interface}' of '{device.name}' {what}")
            key = (device.name, egress.interface)
            if key in seen_ports:
                yield _at(ext, ("egress", i, "interface"), f"interface '{egress.interface}' of '{device.name}' is "
                                                           f"already egress '{seen_ports[key]}'")
            seen_ports.setdefault(key, egress.name)
        for family, address, hop in (("ipv4", egress.ipv4, egress.ipv4_next_hop),
                                     ("ipv6", egress.ipv6, egress.ipv6_next_hop)):
            net = address.network
            if hop not in net:
                yield _at(ext, ("egress", i, f"{family}_next_hop"),
                          f"next hop {hop} is outside the interface's subnet {net} ({family}: {address}): the "
                          "carrier's router must be on the link")
            elif hop == address.ip:
                yield _at(ext, ("egress", i, f"{family}_next_hop"), f"next hop {hop} is the interface's own address")
            if address.ip == net.network_address and net.prefixlen < net.max_prefixlen - 1:
                yield _at(ext, ("egress", i, family), f"{address.ip} is the network address of {net}")
            elif family == "ipv4" and address.ip == net.broadcast_address and net.prefixlen < 31:
                yield _at(ext, ("egress", i, family), f"{address.ip} is the broadcast address of {net}")
            for what, *blocks in pools:
                block = blocks[0] if family == "ipv4" else blocks[1]
                if net.overlaps(block):
                    yield _at(ext, ("egress", i, family), f"{net} overlaps {what} ({block}): the carrier link "
                                                          "must not take addresses the plan hands out")


def _cloud(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    cloud = inv.cloud
    if cloud is None:
        return
    flavors = {f.name for f in cloud.flavors}
    for i, zone in enumerate(cloud.zones):
        if zone in cloud.zones[:i]:
            yield _at(cloud, ("zones", i), f"zone '{zone}' declared twice")
        elif not any(p.zone == zone for p in cloud.pool):
            yield _at(cloud, ("zones", i), f"zone '{zone}' has no pool host: give it hosts, or do not declare it "
                                           "(its systems wait for it, they never go to another zone)")
    seen: set[str] = set()
    for i, member in enumerate(cloud.pool):
        if member.zone not in cloud.zones:
            yield _at(cloud, ("pool", i, "zone"), f"zone '{member.zone}' is not one of the city's cloud zones "
                                                  f"({', '.join(map(str, cloud.zones))})")
        if member.host not in names["hosts"]:
            yield _at(cloud, ("pool", i, "host"), f"unknown host '{member.host}'")
        elif member.host in seen:
            yield _at(cloud, ("pool", i, "host"), f"host '{member.host}' is in the pool twice")
        seen.add(member.host)
        if member.flavor not in flavors:
            yield _at(cloud, ("pool", i, "flavor"),
                      f"unknown flavor '{member.flavor}' (known: {', '.join(sorted(flavors))})")
        host = inv.hosts.get(member.host)
        if host is not None:
            subnet = inv.subnet_of(host.address)
            if subnet is not None and subnet.kind != "cloud":
                yield _at(cloud, ("pool", i, "host"),
                          f"host '{member.host}' ({host.address}) is not in a cloud subnet")
        if host is not None and host.role != "cloud":
            yield _at(cloud, ("pool", i, "host"), f"host '{member.host}' has role '{host.role}', not 'cloud'")
    if cloud.gateway not in names["hosts"]:
        yield _at(cloud, ("gateway",), f"unknown host '{cloud.gateway}'")
    gateway = inv.hosts.get(cloud.gateway)
    if gateway is not None:
        if gateway.role != "gateway":
            yield _at(cloud, ("gateway",), f"host '{cloud.gateway}' has role '{gateway.role}', not 'gateway'")
        if inv.owner(gateway.name) is not None:
            yield _at(cloud, ("gateway",), f"host '{cloud.gateway}' belongs to system "
                                           f"'{inv.owner(gateway.name).id}'; the gateway serves every system")


def _rooms(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    """A room's department and hosts exist, and a host stands in one room only."""
    where: dict[str, str] = {}
    for room in inv.machine_rooms.values():
        yield from _refs(room, "department", [room.department], names["departments"], "department", False)
        yield from _refs(room, "hosts", room.hosts, names["hosts"], "host", True)
        for i, host in enumerate(room.hosts):
            if host in where:
                yield _at(room, ("hosts", i), f"host '{host}' already stands in machine room '{where[host]}'")
            where.setdefault(host, room.id)


def _leased_lines(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    """A line's department and hosts exist, a circuit is declared once, and no line serves a classified host
    (涉密 systems are the confidential bureau's, never on an internet line jiyue plans for)."""
    circuits: dict[tuple[str, str], str] = {}
    for line in inv.leased_lines.values():
        yield from _refs(line, "department", [line.department], names["departments"], "department", False)
        yield from _refs(line, "hosts", line.hosts, names["hosts"], "host", True)
        key = (line.carrier, line.circuit_id)
        if key in circuits:
            yield _at(line, ("circuit_id",), f"circuit {line.circuit_id} of {line.carrier} is already leased line "
                                             f"'{circuits[key]}'")
        circuits.setdefault(key, line.id)
        for i, host in enumerate(line.hosts):
            if host in inv.hosts and inv.is_classified(host):
                yield _at(line, ("hosts", i), f"host '{host}' belongs to a classified (涉密) system: it has no "
                                              "place on an internet line; remove it from the line")


def _private_networks(inv: Inventory, names: dict[str, set[str]]) -> Iterator[Problem]:
    """A private network's department and systems exist, its systems are that department's and declared on a
    private network (zone: private), and the VLAN it joins through is one of the department's extranet VLANs."""
    owner: dict[str, str] = {}
    for net in inv.private_networks.values():
        yield from _refs(net, "department", [net.department], names["departments"], "department", False)
        yield from _refs(net, "systems", net.systems, names["systems"], "system", True)
        for i, sid in enumerate(net.systems):
            system = inv.systems.get(sid)
            if system is None:
                continue
            if sid in owner:
                yield _at(net, ("systems", i), f"system '{sid}' is already on private network '{owner[sid]}'")
            owner.setdefault(sid, net.id)
            if system.zone != Zone.private:
                yield _at(net, ("systems", i), f"system '{sid}' declares zone {system.zone}, not private: a system "
                                               "on a business private network declares `zone: private`")
            if system.department != net.department:
                yield _at(net, ("systems", i), f"system '{sid}' is department '{system.department}''s, not "
                                               f"'{net.department}''s")
            if net.qualifies and system.golden_network is not None:
                yield _at(net, ("qualifies",), f"system '{sid}' is on the golden network {system.golden_network}: "
                                               "the network cannot qualify to join the extranet")
        if net.join is not None and net.department in inv.departments:
            vlans = sorted({i.vlan for d in inv.devices.values() if d.golden_network is None for i in d.interfaces
                            if i.department == net.department and i.vlan is not None and i.golden_network is None})
            if net.join.vlan not in vlans:
                known = ", ".join(map(str, vlans)) or "none"
                yield _at(net, ("join", "vlan"), f"VLAN {net.join.vlan} is no extranet VLAN of department "
                                                 f"'{net.department}' (its VLANs: {known}): name one, or give the "
                                                 "department a VLAN interface first")


def room_findings(inv: Inventory, max_area_m2: float, approval_body: str, max_rooms_per_department: int = 1,
                  reasons: Iterable[str] = ()) -> dict[str, list[Problem]]:
    """Rooms kept against the machine-room rule (audit/assets.yaml, 盘政办发〔2017〕144号 机房腾退): over the
    area, without the leading group's approval, on no allowed ground, or more rooms than one per department.

    A finding, not an invalid inventory: the city is as it is, and the audit reports it, each at the field
    that breaks the rule so the department sees where to act.
    """
    allowed = set(reasons)
    findings: dict[str, list[Problem]] = {}
    kept_by_dept: dict[str, list[str]] = {}
    for room in inv.machine_rooms.values():
        if room.status != RoomStatus.kept:
            continue
        kept_by_dept.setdefault(room.department, []).append(room.id)
        found = findings.setdefault(room.id, [])
        if room.area_m2 > max_area_m2:
            found.append(_at(room, ("area_m2",), f"kept room of {room.area_m2:g} m² exceeds the {max_area_m2:g} m² a "
                                                 "department may keep (机房腾退)"))
        if room.approval is None:
            found.append(_at(room, ("approval",), f"kept without the approval of the {approval_body} recorded"))
        elif room.approval.body != approval_body:
            found.append(_at(room, ("approval", "body"), f"approved by '{room.approval.body}', not by the "
                                                         f"{approval_body}"))
        if allowed and (room.reason is None or room.reason not in allowed):
            found.append(_at(room, ("reason",), "kept without a ground the rule allows "
                                                f"({', '.join(sorted(allowed))})"))
        if len(kept_by_dept[room.department]) > max_rooms_per_department:
            found.append(_at(room, ("status",), f"department '{room.department}' keeps more than "
                                                f"{max_rooms_per_department} room(s): "
                                                f"{', '.join(kept_by_dept[room.department])}"))
    return {room: found for room, found in findings.items() if found}
