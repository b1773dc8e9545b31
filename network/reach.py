"""The reachability check of the extranet VPN instance (`invoke network.verify`, and `network.render`'s gate).

Why: a config every device accepts can still leave a department without a way out or back (a missing
return route is silent until a user calls). So before anything is pushed, the whole city's intended
configs are turned into a forwarding graph and every department VLAN is walked through it, hop by
hop, in both families:

- `egress`: a department VLAN reaches an egress (its packets leave by an egress port, to the carrier's next hop
  on that port's link);
- `cloud`: it reaches every cloud subnet of the inventory (in the family the subnet has);
- `return`: from every egress device a reply finds the VLAN again;
- `isolation`: it cannot reach a management subnet (the boundary ACL on its interface denies it, or
  no route leads there).

The graph (`Fabric`) is built from the renderer's structured data (`network.render.intents`): each
device's interfaces and addresses (its carrier-facing egress ports among them: a route leaves the VPN only
when its next hop lies on such a port's connected subnet), its static routes (defaults and return routes), its OSPFv3
participation (IPv6 routes to what the other OSPFv3 devices import as direct, over interconnect
VLANs, less preferred than a static route) and the boundary ACL applied inbound on each department
VLAN. Forwarding is longest-prefix match per device. A failure names the source VLAN, the
destination, the device where forwarding stopped and what is missing there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from inventory.model import Inventory
from network.model import AddressPlan
from network.render import Baseline, intents, select_devices

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address
EGRESS_PROBE = {4: ipaddress.ip_address("192.0.2.254"), 6: ipaddress.ip_address("2001:db8:ffff:ffff::fe")}
CHECKS = ("egress", "cloud", "return", "isolation")
MAX_HOPS = 32


@dataclass(frozen=True)
class Acl:
    """The boundary ACL as the renderer applies it inbound: deny these destinations, then permit these sources."""

    deny: tuple[Net, ...]
    permit_sources: tuple[Net, ...]

    def allows(self, src: Addr, dst: Addr) -> bool:
        if any(dst.version == n.version and dst in n for n in self.deny):
            return False
        return any(src.version == n.version and src in n for n in self.permit_sources)


@dataclass(frozen=True)
class Port:
    """An interface in the VPN instance: a VLAN interface (its addresses and, on a department VLAN, its inbound
    ACL) or a carrier-facing egress port (`egress`: the exit's name; `vlan` None)."""

    device: str
    name: str
    vlan: int | None
    department: str | None
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]
    acl: Acl | None = None
    egress: str | None = None

    @property
    def label(self) -> str:
        if self.egress is not None:
            return f"egress {self.egress} {self.device} {self.name}"
        return f"VLAN {self.vlan} ({self.department or 'interconnect'}) {self.device} {self.name}"

    def network(self, version: int) -> Net:
        return next(a.network for a in self.addresses if a.version == version)


@dataclass(frozen=True)
class Route:
    """One route: a prefix to a next hop (a carrier's next hop is on an egress port's connected subnet)."""

    prefix: Net
    next_hop: Addr
    source: str = "static"  # static | ospfv3


@dataclass(frozen=True)
class Node:
    name: str
    ports: tuple[Port, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Fabric:
    """The VPN instance's forwarding graph: every device's ports and routes."""

    nodes: dict[str, Node]

    def without_route(self, device: str, prefix: str) -> Fabric:
        """A copy where `device` lost its route(s) to `prefix`: how the tests take one hop away."""
        net = ipaddress.ip_network(prefix)
        node = self.nodes[device]
        kept = tuple(r for r in node.routes if r.prefix != net)
        return Fabric({**self.nodes, device: replace(node, routes=kept)})

    def without_port(self, device: str, port: str) -> Fabric:
        """A copy where `device` lacks one interface (an egress port not rendered, say)."""
        node = self.nodes[device]
        return Fabric({**self.nodes, device: replace(node, ports=tuple(p for p in node.ports if p.name != port))})

    def without_acl_deny(self, device: str, port: str) -> Fabric:
        """A copy where one department port's ACL no longer denies the management subnets."""
        node = self.nodes[device]
        ports = tuple(replace(p, acl=replace(p.acl, deny=())) if p.name == port and p.acl else p
                      for p in node.ports)
        return Fabric({**self.nodes, device: replace(node, ports=ports)})


@dataclass(frozen=True)
class Walk:
    """Where a packet went: `outcome` delivered | egress | dropped_acl | no_route | bad_next_hop | loop."""

    outcome: str
    path: tuple[str, ...]
    stopped_at: str
    missing: str = ""


@dataclass(frozen=True)
class Failure:
    check: str
    family: int
    source: str
    destination: str
    stopped_at: str
    missing: str
    path: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "family": f"IPv{self.family}", "source": self.source,
                "destination": self.destination, "stopped_at": self.stopped_at, "missing": self.missing,
                "path": list(self.path)}


@dataclass
class Verification:
    failures: list[Failure] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


# --- building the graph from the renderer's intents ------------------------------------------------------


def _net(text: str) -> Net:
    return ipaddress.ip_network(text.lower(), strict=False)


def _acl(ctx: dict[str, Any], name: str) -> Acl | None:
    acl = ctx.get("acl")
    if acl is None or name not in acl["interfaces"]:
        return None
    deny = [_net(d["prefix"]) for d in acl["deny4"]] + [_net(d["prefix"]) for d in acl["deny6"]]
    permit = [_net(p["v4"]["prefix"]) for p in acl["permit"]] + [_net(p["v6"]["prefix"]) for p in acl["permit"]]
    return Acl(tuple(deny), tuple(permit))


def fabric_from_intents(contexts: dict[str, dict[str, Any]], inv: Inventory) -> Fabric:
    """The forwarding graph of the devices whose template values are given."""
    nodes: dict[str, Node] = {}
    for name, ctx in contexts.items():
        ports = tuple(Port(name, i["name"], i["vlan"], i["department"],
                           (ipaddress.ip_interface(i["ipv4"]["prefix"]),
                            ipaddress.ip_interface(i["ipv6"]["prefix"].lower())),
                           _acl(ctx, i["name"])) for i in ctx["interfaces"])
        ports += tuple(Port(name, e["name"], None, None, (ipaddress.ip_interface(e["ipv4"]["prefix"]),
                                                          ipaddress.ip_interface(e["ipv6"]["prefix"].lower())),
                            egress=e["egress"]) for e in ctx.get("egress", []))
        routes: list[Route] = []
        r = ctx.get("routes")
        if r:
            for hop in r["ipv4"]:
                routes.append(Route(_net("0.0.0.0/0"), ipaddress.ip_address(hop)))
            for hop in r["ipv6"]:
                routes.append(Route(_net("::/0"), ipaddress.ip_address(hop.lower())))
            for b in r.get("back", []):
                routes.append(Route(_net(b["subnet4"]["prefix"]), ipaddress.ip_address(b["hop4"])))
                routes.append(Route(_net(b["subnet6"]["prefix"]), ipaddress.ip_address(b["hop6"].lower())))
        nodes[name] = Node(name, ports, tuple(routes))
    return _with_ospfv3(Fabric(nodes), contexts)


def _with_ospfv3(fabric: Fabric, contexts: dict[str, dict[str, Any]]) -> Fabric:
    """Add the IPv6 routes OSPFv3 would teach: each participant imports its direct routes; adjacencies form on
    the interconnect VLANs named in its OSPFv3 section. Shortest path by hops; static routes stay preferred."""
    members = {n: set(c["ospfv3"]["interfaces"]) for n, c in contexts.items() if c.get("ospfv3")}
    links: dict[str, list[tuple[str, Addr]]] = {n: [] for n in members}
    for a in members:
        for b in members:
            if a == b:
                continue
            for pa in fabric.nodes[a].ports:
                for pb in fabric.nodes[b].ports:
                    if pa.name in members[a] and pb.name in members[b] and pa.network(6) == pb.network(6):
                        links[a].append((b, next(x.ip for x in pb.addresses if x.version == 6)))
    nodes = dict(fabric.nodes)
    for src in members:
        first: dict[str, Addr] = {}
        frontier = [(n, hop) for n, hop in links[src]]
        seen = {src}
        while frontier:
            nxt = []
            for n, hop in frontier:
                if n in seen:
                    continue
                seen.add(n)
                first[n] = hop
                nxt.extend((m, hop) for m, _ in links[n])
            frontier = nxt
        have = {r.prefix for r in nodes[src].routes} | {p.network(6) for p in nodes[src].ports}
        learned = []
        for n, hop in first.items():
            for p in fabric.nodes[n].ports:
                if p.network(6) not in have:
                    have.add(p.network(6))
                    learned.append(Route(p.network(6), hop, source="ospfv3"))
        nodes[src] = replace(nodes[src], routes=nodes[src].routes + tuple(learned))
    return Fabric(nodes)


def build_fabric(inv: Inventory, plan: AddressPlan, baseline: Baseline | None = None) -> Fabric:
    """The city's forwarding graph: every device the plan covers (golden networks are never in the VPN)."""
    names = select_devices(inv, None).names
    return fabric_from_intents(intents(inv, plan, names, baseline), inv)


# --- forwarding ------------------------------------------------------------------------------------------


def _lookup(node: Node, dst: Addr) -> Route | Port | None:
    """Longest-prefix match: a connected port wins a tie, then a static route, then OSPFv3."""
    best: tuple[int, int, Route | Port] | None = None
    for p in node.ports:
        net = p.network(dst.version)
        if dst in net and (best is None or (net.prefixlen, 2) > best[:2]):
            best = (net.prefixlen, 2, p)
    for r in node.routes:
        if r.prefix.version == dst.version and dst in r.prefix:
            rank = 1 if r.source == "static" else 0
            if best is None or (r.prefix.prefixlen, rank) > best[:2]:
                best = (r.prefix.prefixlen, rank, r)
    return None if best is None else best[2]


def walk(fabric: Fabric, start: str, dst: Addr, src: Addr | None = None, ingress: Port | None = None,
         back: bool = False) -> Walk:
    """Forward a packet to `dst` from device `start` (entering by `ingress`, whose ACL applies), hop by hop.

    `back`: a reply on its way down to a department VLAN; a default route leads away from it, so a device
    with nothing better is where the return route is missing."""
    if ingress is not None and ingress.acl is not None and src is not None and not ingress.acl.allows(src, dst):
        return Walk("dropped_acl", (start,), start, f"the boundary ACL on {ingress.name} denies it")
    path: list[str] = []
    here = start
    for _ in range(MAX_HOPS):
        if here in path:
            loop = " -> ".join([*path[path.index(here):], here])
            return Walk("loop", tuple(path), here, f"forwarding loop toward {dst}: {loop}")
        path.append(here)
        node = fabric.nodes[here]
        found = _lookup(node, dst)
        if found is None or (back and isinstance(found, Route) and found.prefix.prefixlen == 0):
            extra = " (only the default route, which leads away from it)" if found is not None else ""
            return Walk("no_route", tuple(path), here, f"no IPv{dst.version} route to {dst}{extra}")
        if isinstance(found, Port):
            return Walk("delivered", tuple(path), here)
        exit_port = next((p for p in node.ports if p.egress is not None and found.next_hop in p.network(dst.version)),
                         None)
        if exit_port is not None:  # the next hop is the carrier's router, on this egress port's link
            return Walk("egress", tuple(path), here, exit_port.egress)
        nxt = next((n for n in fabric.nodes.values() for p in n.ports
                    if any(a.ip == found.next_hop for a in p.addresses)), None)
        on_link = any(found.next_hop in p.network(dst.version) for p in node.ports)
        if nxt is None or not on_link:
            why = "no device in the VPN has it" if nxt is None else "it is on no connected subnet here"
            return Walk("bad_next_hop", tuple(path), here, f"route {found.prefix} via {found.next_hop}: {why}")
        here = nxt.name
    return Walk("loop", tuple(path), here, f"forwarding loop toward {dst}")


def _host(net: Net) -> Addr:
    """A host address inside `net` no interface uses: the last usable one."""
    return net.broadcast_address - 1 if net.version == 4 else net.network_address + (1 << 32) - 7


def _sources(fabric: Fabric) -> Iterator[Port]:
    for node in fabric.nodes.values():
        yield from (p for p in node.ports if p.department is not None)


def verify_fabric(fabric: Fabric, inv: Inventory) -> Verification:
    """Every check on every department VLAN, in both families."""
    result = Verification()
    cloud = [s.prefix for s in inv.subnets.values() if s.kind == "cloud"]
    mgmt = [s.prefix for s in inv.subnets.values() if s.kind == "management"]
    exits = sorted({e.device for e in inv.extranet.egress} & set(fabric.nodes)) if inv.extranet else []

    def fail(check: str, fam: int, port: Port, dst: str, w: Walk) -> None:
        result.failures.append(Failure(check, fam, port.label, dst, w.stopped_at, w.missing, w.path))

    for port in _sources(fabric):
        for fam in (4, 6):
            subnet = port.network(fam)
            src = _host(subnet)
            result.checked += 1
            w = walk(fabric, port.device, EGRESS_PROBE[fam], src, port)
            if w.outcome != "egress":
                fail("egress", fam, port, f"egress ({EGRESS_PROBE[fam]})", w)
            for c in (c for c in cloud if c.version == fam):
                result.checked += 1
                w = walk(fabric, port.device, _host(c), src, port)
                if w.outcome not in ("egress", "delivered"):
                    fail("cloud", fam, port, f"cloud {c}", w)
            for exit_device in exits:
                result.checked += 1
                w = walk(fabric, exit_device, src, back=True)
                if w.outcome != "delivered" or subnet not in {p.network(fam) for p in fabric.nodes[w.stopped_at].ports}:
                    fail("return", fam, port, f"{subnet} from {exit_device}", w)
            for m in (m for m in mgmt if m.version == fam):
                result.checked += 1
                w = walk(fabric, port.device, _host(m), src, port)
                if w.outcome not in ("dropped_acl", "no_route"):
                    why = f"reached by way of {w.outcome}: no ACL on {port.name} denies {m}"
                    fail("isolation", fam, port, f"management {m}", replace(w, missing=why))
    return result


def verify(inv: Inventory, plan: AddressPlan, baseline: Baseline | None = None) -> Verification:
    """Build the city's forwarding graph from the intended configs and run every check."""
    return verify_fabric(build_fabric(inv, plan, baseline), inv)


def summary_lines(result: Verification, limit: int = 10) -> Iterable[str]:
    """Short lines naming the first failures, for an error message."""
    for f in result.failures[:limit]:
        yield (f"{f.check} IPv{f.family}: {f.source} -> {f.destination}: stops at {f.stopped_at}: {f.missing}")
    if len(result.failures) > limit:
        yield f"... and {len(result.failures) - limit} more"
