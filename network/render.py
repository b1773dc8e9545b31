"""Render each extranet device's intended config (`invoke network.render`): the lines jiyue manages.

Python API (the push engine's entry points; stable)::

    from network.render import render, render_device, select_devices, load_baseline, RenderError

    sel = select_devices(inv, "devices:!core")     # Selection(names=[...], skipped={name: reason})
    out = render(inv, plan, sel.names)              # {device name: Rendered}; RenderError on bad input
    r = render_device(inv, plan, "sj-hj1")          # one device
    r.text            # the config as the device prints it (indentation included), newline-terminated
    r.lines           # r.text's lines
    r.features        # {feature: config text of that feature alone (with its section headers)}
    r.line_features   # the feature each line of r.lines came from (a shared header: the one declaring it)
    r.sections        # tuple[Section]: header (top-level line), features, children [(line, feature)]
    r.managed         # the top-level lines jiyue manages on this device: diff only under these

Features, each a template `network/templates/<platform>/<feature>.j2`, in push order: `baseline`
(SSH only, syslog, NTP, SNMPv3 only, vty ACL, idle timeout, login lockout: network/baseline.yaml plus
extranet.management), `vpn_instance` (the extranet VPN instance/VRF: RD, IPv4 and IPv6 families),
`acl` (the boundary ACLs: a department VLAN may send only from its planned prefixes, never to the
management network; applied inbound on each department VLAN interface), `ospfv3` (where
extranet.ospfv3 lists the device: adjacencies on interconnect VLANs only, department VLANs advertised
as direct/connected routes, so a department can neither form an adjacency nor inject a route),
`interfaces` (VLAN interfaces bound to the VPN first, then their
IPv4 and IPv6 addresses from the plan; on an egress device its carrier-facing port from `extranet.egress`,
turned routed, bound and addressed on the carrier link), `routes` (IPv4 and IPv6 default routes in the VPN:
to the carrier's next hops on an egress device, else to the `upstream` device's address on the interconnect
VLAN both share; return routes to the department VLANs below, tagged as jiyue's: network/scope.yaml
`return_routes`). A section several features touch (an interface: addresses, ACL, OSPFv3) is printed
once, where its declaring feature puts it, its lines in feature order (binding before addresses).

Safety: every value is checked against the platform's rules before rendering (`network.vendor`), and
the templates render through a strict Jinja environment: an undefined name is an error, and every
printed value passes `finalize`, which refuses anything but an int or a single-line printable-ASCII
argument. So no value can add a line (a newline in a description cannot smuggle a command); the
output is checked once more line by line.

Golden networks (金字工程) are never rendered. `render_device` and `render` refuse a golden
device (GoldenNetworkError, naming it and its network); `select_devices` refuses a --limit that names
one explicitly (a term that is exactly its name) and skips, with the reason, golden devices a broader
term (a group, a wildcard, a regex, `all`) selects. A department VLAN on a golden interface is refused
by the planner and here (the inventory asks for something policy forbids).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, Undefined
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inventory.groups import PatternError, pattern_terms, select_targets
from inventory.model import Device, Inventory, Platform
from network import vendor
from network.floors import Floor
from network.joins import JoinError, PlannedJoin, joins_on
from network.model import AddressPlan
from network.plan import Managed, PlanningError, managed_interfaces
from network.scope import scope_data

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
DEFAULT_BASELINE = HERE / "baseline.yaml"

# Push order of the top-level sections (what a section needs comes before it); and the order of a shared
# section's lines (an interface: binding and addresses first, then ACL and OSPFv3).
FEATURES = ("baseline", "vpn_instance", "acl", "ospfv3", "interfaces", "routes")
LINE_ORDER = ("baseline", "vpn_instance", "interfaces", "acl", "ospfv3", "routes")


class RenderError(ValueError):
    """Bad input for rendering; the message names the device, interface and field."""


class GoldenNetworkError(RenderError):
    """An attempt to render a device or interface of a national golden network."""


# --- baseline.yaml ---------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AclId(_Model):
    number: int  # Huawei, H3C
    name: str  # Cisco, Ruijie


class BaselineAcls(_Model):
    management: AclId
    boundary_ipv4: AclId
    boundary_ipv6: AclId


class Baseline(_Model):
    idle_timeout_minutes: int = Field(ge=1, le=35791)
    login_attempts: int = Field(ge=1, le=10)
    login_window_minutes: int = Field(ge=1, le=1440)
    lockout_minutes: int = Field(ge=1, le=1440)
    snmp_group: str
    acl: BaselineAcls
    vty: dict[Platform, str]
    # which way each threshold is stricter and how platforms print it: the diff reads them (network/floors.py)
    floors: dict[str, Floor] = Field(default_factory=dict)
    floor_lines: list[str] = Field(default_factory=list)


def load_baseline(path: Path | None = None) -> Baseline:
    path = path or DEFAULT_BASELINE
    try:
        return Baseline.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise RenderError(f"baseline {path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"baseline {path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise RenderError(f"baseline {path}: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))) from None


# --- the result ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One top-level line and the lines under it, each with the feature that produced it."""

    header: str
    feature: str  # the feature that declares the section (puts it in its place)
    children: tuple[tuple[str, str], ...] = ()  # (line as printed, indentation included; feature)

    @property
    def features(self) -> tuple[str, ...]:
        seen = dict.fromkeys([self.feature, *(f for _, f in self.children)])
        return tuple(seen)


@dataclass(frozen=True)
class Rendered:
    device: str
    platform: Platform
    sections: tuple[Section, ...]
    skipped: tuple[str, ...] = field(default=())  # interfaces left alone (golden network), for people

    @property
    def lines(self) -> list[str]:
        out: list[str] = []
        for s in self.sections:
            out.append(s.header)
            out.extend(line for line, _ in s.children)
        return out

    @property
    def line_features(self) -> list[str]:
        out: list[str] = []
        for s in self.sections:
            out.append(s.feature)
            out.extend(f for _, f in s.children)
        return out

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def features(self) -> dict[str, str]:
        """Each feature's own lines, with the headers of the sections they sit in: a config fragment each."""
        out: dict[str, list[str]] = {}
        for s in self.sections:
            for feature in s.features:
                lines = [line for line, f in s.children if f == feature]
                if lines or feature == s.feature:
                    out.setdefault(feature, []).extend([s.header, *lines])
        return {f: "\n".join(out[f]) + "\n" for f in FEATURES if f in out}

    @property
    def managed(self) -> list[str]:
        return [s.header for s in self.sections]


# --- device selection ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    names: list[str]
    skipped: dict[str, str]  # golden-network devices a broad pattern selected: name -> why they are left alone


def select_devices(inv: Inventory, limit: str | None) -> Selection:
    """Devices a --limit selects, golden-network devices taken out.

    Naming a golden device explicitly (a term that is exactly its name) is an error; a broader term
    (a group, wildcard, regex, `all`) that sweeps one in skips it with the reason."""
    try:
        names = select_targets(inv, limit, list(inv.devices))
    except PatternError as exc:
        raise RenderError(str(exc)) from None
    for term in pattern_terms(limit or ""):
        body = term.lstrip("&")
        if term.startswith("!"):
            continue
        device = inv.devices.get(body)
        if device is not None and device.golden_network:
            raise GoldenNetworkError(f"--limit names {device.name}, which is part of the golden network "
                                     f"{device.golden_network}: jiyue never renders or pushes a change to it "
                                     "(盘政办发〔2017〕144号: golden networks follow the state's deployment)")
    skipped = {n: f"part of the golden network {inv.devices[n].golden_network}: left alone (盘政办发〔2017〕144号)"
               for n in names if inv.devices[n].golden_network}
    return Selection([n for n in names if n not in skipped], skipped)


# --- the strict template environment ---------------------------------------------------------------------


def _finalize(value: Any) -> Any:
    """Every printed value: an int, or one printable-ASCII argument. Anything else stops the render."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined: raises UndefinedError naming the missing value
    if isinstance(value, bool) or value is None:
        raise RenderError(f"a template printed {value!r}: only text and numbers reach a config")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return vendor.argument(value, "rendered value")
        except vendor.VendorRuleError as exc:
            raise RenderError(str(exc)) from None
    raise RenderError(f"a template printed a {type(value).__name__}: only text and numbers reach a config")


@cache
def environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, finalize=_finalize,
                       autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


_LINE = re.compile(r"^( *)([\x21-\x3e\x40-\x7e][\x20-\x3e\x40-\x7e]*)$")


def _parse(text: str, feature: str, where: str) -> list[tuple[str, list[str]]]:
    """Top-level lines and the (indented) lines under each; refuse any line that is not printable ASCII."""
    sections: list[tuple[str, list[str]]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None or line != line.rstrip():
            raise RenderError(f"{where}: template {feature} line {n} is not one printable line: {line!r}")
        if not m.group(1):
            sections.append((line, []))
        elif not sections:
            raise RenderError(f"{where}: template {feature} line {n} is indented under nothing: {line!r}")
        else:
            sections[-1][1].append(line)
    return sections


def _merge(parts: Mapping[str, list[tuple[str, list[str]]]]) -> tuple[Section, ...]:
    """One section per top-level line; the declaring feature (first in LINE_ORDER) places it (FEATURES order)."""
    found: dict[str, dict[str, list[str]]] = {}
    first: dict[str, tuple[int, int]] = {}
    for feature in FEATURES:
        for header, children in parts.get(feature, []):
            found.setdefault(header, {}).setdefault(feature, []).extend(children)
    for header, by_feature in found.items():
        declaring = min(by_feature, key=LINE_ORDER.index)
        index = next(n for n, (h, _) in enumerate(parts[declaring]) if h == header)
        first[header] = (FEATURES.index(declaring), index)
    sections = []
    for header in sorted(found, key=first.__getitem__):
        by_feature = found[header]
        declaring = FEATURES[first[header][0]]
        children = tuple((line, f) for f in LINE_ORDER for line in by_feature.get(f, []))
        sections.append(Section(header, declaring, children))
    return tuple(sections)


# --- building the validated context ----------------------------------------------------------------------


def _where(device: Device, iface: str | None = None, fld: str | None = None) -> str:
    origin = getattr(device, "_origin", None)
    place = f"{origin.file}:{origin.line()}: " if origin is not None else ""
    text = f"{place}device {device.name}"
    if iface:
        text += f" interface {iface}"
    if fld:
        text += f" {fld}"
    return text


def _check(call, where: str, *args):
    try:
        return call(*args)
    except vendor.VendorRuleError as exc:
        raise RenderError(f"{where}: {exc}") from None


def _v6(value: ipaddress.IPv6Address | ipaddress.IPv6Interface | ipaddress.IPv6Network) -> str:
    return str(value).upper()  # as Huawei, H3C and IOS print IPv6


def _v4net(net: ipaddress.IPv4Network) -> dict[str, Any]:
    return {"network": str(net.network_address), "mask": str(net.netmask), "wildcard": str(net.hostmask),
            "length": net.prefixlen, "prefix": str(net)}


def _v6net(net: ipaddress.IPv6Network) -> dict[str, Any]:
    return {"network": _v6(net.network_address), "length": net.prefixlen, "prefix": _v6(net)}


def _dotted(area: int) -> str:
    return str(ipaddress.IPv4Address(area))


class _Context:
    """The values one device's templates may print, each checked against the platform's rules."""

    def __init__(self, inv: Inventory, plan: AddressPlan, device: Device, managed: list[Managed],
                 baseline: Baseline) -> None:
        self.inv, self.plan, self.device, self.baseline = inv, plan, device, baseline
        self.platform = device.platform
        self.ext = inv.extranet
        self.mine = [m for m in managed if m.device.name == device.name]
        self.managed = managed

    def build(self) -> dict[str, Any]:
        d, p = self.device, self.platform
        ext = self.ext
        vpn = {"name": _check(vendor.vpn_name, _where(d, fld="extranet.vpn_instance"), p, ext.vpn_instance),
               "rd": _check(vendor.route_distinguisher, _where(d, fld="extranet.rd"), ext.rd)}
        interfaces = [self._interface(m) for m in self.mine]
        try:
            self.joins: list[PlannedJoin] = joins_on(self.inv, self.plan, d.name)
        except JoinError as exc:
            raise RenderError("; ".join(map(str, exc.problems))) from None
        return {"device": {"name": d.name, "platform": str(p)}, "vpn": vpn, "interfaces": interfaces,
                "egress": self._egress(),
                "acl": self._acl(interfaces), "ospfv3": self._ospfv3(interfaces), "routes": self._routes(),
                "baseline": self._baseline()}

    def _interface(self, m: Managed) -> dict[str, Any]:
        d, iface = self.device, m.interface
        name = _check(vendor.printed_interface, _where(d, iface.name, "name"), self.platform, iface.name)
        text = None
        if iface.description is not None:
            text = _check(vendor.description, _where(d, iface.name, "description"), self.platform, iface.description)
        address = self.plan.address(d.name, iface.name)
        if address is None or (address.department, address.vlan) != (m.department, m.vlan):
            raise RenderError(f"{_where(d, iface.name)}: no address planned for VLAN {m.vlan}: run "
                              "`invoke network.plan` first")
        return {"name": name, "inventory_name": iface.name, "description": text, "vlan": m.vlan,
                "department": m.department, "kind": "department" if m.department else "interconnect",
                "ipv4": {"address": str(address.ipv4.ip), "mask": str(address.ipv4.netmask),
                         "length": address.ipv4.network.prefixlen, "prefix": str(address.ipv4)},
                "ipv6": {"address": _v6(address.ipv6.ip), "length": 64, "prefix": _v6(address.ipv6)},
                "subnet4": _v4net(address.ipv4.network), "subnet6": _v6net(address.ipv6.network)}

    def _egress(self) -> list[dict[str, Any]]:
        """The device's carrier-facing ports: routed ports in the VPN, addressed on the carrier link."""
        d, p = self.device, self.platform
        out = []
        for e in (e for e in self.ext.egress if e.device == d.name):
            where = _where(d, e.interface)
            declared = next((i for i in d.interfaces if i.name == e.interface), None)
            if declared is not None and declared.golden_network:
                raise GoldenNetworkError(f"{where}: egress {e.name} names an interface of the golden network "
                                         f"{declared.golden_network}")
            _check(vendor.routed_port, f"{where} extranet.egress {e.name} interface", p, e.interface)
            name = _check(vendor.printed_interface, f"{where} name", p, e.interface)
            text = e.description or (declared.description if declared is not None else None) or f"{e.name} egress"
            text = _check(vendor.description, f"{where} extranet.egress {e.name} description", p, text)
            for hop, address in ((e.ipv4_next_hop, e.ipv4), (e.ipv6_next_hop, e.ipv6)):
                if hop not in address.network:
                    raise RenderError(f"{where}: extranet.egress {e.name}: next hop {hop} is outside {address.network}")
            out.append({"name": name, "inventory_name": e.interface, "egress": e.name, "description": text,
                        "ipv4": {"address": str(e.ipv4.ip), "mask": str(e.ipv4.netmask),
                                 "length": e.ipv4.network.prefixlen, "prefix": str(e.ipv4)},
                        "ipv6": {"address": _v6(e.ipv6.ip), "length": e.ipv6.network.prefixlen,
                                 "prefix": _v6(e.ipv6)},
                        "hop4": str(e.ipv4_next_hop), "hop6": _v6(e.ipv6_next_hop)})
        return out

    def _acl_ids(self) -> dict[str, Any]:
        acls, p, d = self.baseline.acl, self.platform, self.device
        if p in vendor.CISCO_LIKE:
            return {k: _check(vendor.acl_name, _where(d, fld=f"baseline acl.{k}"), p, getattr(acls, k).name)
                    for k in ("management", "boundary_ipv4", "boundary_ipv6")}
        return {"management": _check(vendor.acl_number, _where(d, fld="baseline acl.management"), p,
                                     acls.management.number, "basic"),
                "boundary_ipv4": _check(vendor.acl_number, _where(d, fld="baseline acl.boundary_ipv4"), p,
                                        acls.boundary_ipv4.number, "advanced"),
                "boundary_ipv6": _check(vendor.acl_number, _where(d, fld="baseline acl.boundary_ipv6"), p,
                                        acls.boundary_ipv6.number, "advanced")}

    def _acl_names(self, role: str) -> dict[str, str]:
        """The names jiyue's numbered ACLs carry in their description: the mark that they are jiyue's."""
        acls, d = self.baseline.acl, self.device
        keys = {"name4": "management", "name6": "management"} if role == "management" else \
            {"name4": "boundary_ipv4", "name6": "boundary_ipv6"}
        return {k: _check(vendor.acl_name, _where(d, fld=f"baseline acl.{v}.name"), self.platform,
                          getattr(acls, v).name) for k, v in keys.items()}

    def _acl(self, interfaces: list[dict[str, Any]]) -> dict[str, Any] | None:
        departments = [i for i in interfaces if i["kind"] == "department"]
        if not departments:
            return None
        mgmt = sorted((s.prefix for s in self.inv.subnets.values() if s.kind == "management"),
                      key=lambda n: (n.version, n))
        if len(mgmt) > 9:
            raise RenderError(f"{_where(self.device)}: more than 9 management subnets for the boundary ACL")
        ids = self._acl_ids()
        vlans = sorted({i["vlan"]: i for i in departments}.values(), key=lambda i: i["vlan"])
        return {"ipv4": ids["boundary_ipv4"], "ipv6": ids["boundary_ipv6"], **self._acl_names("boundary"),
                # rule IDs: 1-9 management denies, 20 DHCP / link-local ND, 100 + 10 x VLAN the permits, 65000 deny
                "deny4": [{"rule": n, **_v4net(net)} for n, net in enumerate(
                    (x for x in mgmt if x.version == 4), 1)],
                "deny6": [{"rule": n, **_v6net(net)} for n, net in enumerate(
                    (x for x in mgmt if x.version == 6), 1)],
                "permit": [{"rule": 100 + 10 * i["vlan"], "vlan": i["vlan"], "v4": i["subnet4"], "v6": i["subnet6"]}
                           for i in vlans],
                "interfaces": [i["name"] for i in departments],
                # business private networks joining through a VLAN here: their prefixes as sources, after the VLAN's
                "joined4": self._joined(4), "joined6": self._joined(6)}

    def _joined(self, family: int) -> list[dict[str, Any]]:
        out = []
        for j in self.joins:
            nets = [n for n in j.prefixes if n.version == family]
            for k, net in enumerate(nets, 1):
                out.append({"rule": 100 + 10 * j.vlan + k, "vlan": j.vlan, "network": j.network,
                            **({"v4": _v4net(net)} if family == 4 else {"v6": _v6net(net)})})
        return out

    def _ospfv3(self, interfaces: list[dict[str, Any]]) -> dict[str, Any] | None:
        o = self.ext.ospfv3
        if o is None or self.device.name not in o.devices:
            return None
        if self.device.address.version != 4:
            raise RenderError(f"{_where(self.device, fld='address')}: OSPFv3 needs an IPv4 router ID")
        return {"process": o.process, "area": o.area, "area_dotted": _dotted(o.area),
                "router_id": str(self.device.address),
                "interfaces": [i["name"] for i in interfaces if i["kind"] == "interconnect"]}

    def _hop_on_shared(self, neighbour: str):
        """The plan address of `neighbour` on the lowest interconnect VLAN it shares with this device, or None."""
        mine = {m.vlan for m in self.mine if m.department is None}
        theirs = {m.vlan: m for m in self.managed if m.device.name == neighbour and m.department is None}
        shared = sorted(mine & set(theirs))
        return self.plan.address(neighbour, theirs[shared[0]].interface.name) if shared else None

    def _chain(self, name: str) -> list[str]:
        """`name` and its upstream devices, nearest first (a loop stops the walk)."""
        chain: list[str] = []
        while name is not None and name not in chain and name in self.inv.devices:
            chain.append(name)
            name = self.inv.devices[name].upstream
        return chain

    def _return_routes(self) -> list[dict[str, Any]]:
        """Static routes back to every department VLAN not connected here, so replies find their way down.

        A VLAN behind a downstream device: via the child on the path to it. On a device without upstream
        (an egress core): a VLAN in another core's tree goes to the nearest device of that tree sharing an
        interconnect VLAN with this one. Elsewhere the default route up covers it."""
        d = self.device
        connected = {(m.department, m.vlan) for m in self.mine}
        out: list[dict[str, Any]] = []
        for s in self.plan.subnets:
            if s.department is None or s.key in connected:
                continue
            owners = sorted({a.device for a in self.plan.addresses if (a.department, a.vlan) == s.key})
            hop = None
            for owner in owners:
                chain = self._chain(owner)
                if d.name in chain:
                    child = chain[chain.index(d.name) - 1]
                    hop = self._hop_on_shared(child)
                elif d.upstream is None:
                    hop = next((h for h in map(self._hop_on_shared, chain) if h is not None), None)
                if hop is not None:
                    break
            if hop is None:
                continue
            out.append({"subnet4": _v4net(s.ipv4), "subnet6": _v6net(s.ipv6), "hop4": str(hop.ipv4.ip),
                        "hop6": _v6(hop.ipv6.ip), "via": hop.device, "label": s.label})
        return out

    def _routes(self) -> dict[str, Any] | None:
        result = self._default_routes()
        back = self._return_routes()
        joins4 = [{"subnet4": _v4net(n), "hop4": str(j.hop4), "network": j.network}
                  for j in self.joins for n in j.prefixes if n.version == 4]
        joins6 = [{"subnet6": _v6net(n), "hop6": _v6(j.hop6), "network": j.network}
                  for j in self.joins for n in j.prefixes if n.version == 6]
        if result is None and not back and not joins4 and not joins6:
            return None
        tag = _check(vendor.simple_name, _where(self.device, fld="network/scope.yaml return_routes.tag"),
                     str(scope_data()["return_routes"]["tag"]), "return route tag", 30)
        return {"ipv4": [], "ipv6": [], "via": "", **(result or {}), "back": back, "tag": tag, "joins4": joins4,
                "joins6": joins6}

    def _default_routes(self) -> dict[str, Any] | None:
        d, ext = self.device, self.ext
        egress = [e for e in ext.egress if e.device == d.name]
        if egress:
            return {"ipv4": [str(e.ipv4_next_hop) for e in egress], "ipv6": [_v6(e.ipv6_next_hop) for e in egress],
                    "via": ", ".join(e.name for e in egress)}
        if d.upstream is None:
            if self.mine:
                raise RenderError(f"{_where(d, fld='upstream')}: the device has extranet VLANs but no route out: "
                                  "give `upstream` (the device its default routes point to) or make it an egress")
            return None
        up = self.inv.devices[d.upstream]
        if up.golden_network:
            raise GoldenNetworkError(f"{_where(d, fld='upstream')}: {up.name} is part of the golden network "
                                     f"{up.golden_network}")
        mine = {m.vlan for m in self.mine if m.department is None}
        theirs = {m.vlan: m for m in self.managed if m.device.name == up.name and m.department is None}
        shared = sorted(mine & set(theirs))
        if not shared:
            raise RenderError(f"{_where(d, fld='upstream')}: {d.name} and its upstream {up.name} share no "
                              "interconnect VLAN (a VLAN interface without a department on both)")
        hop = self.plan.address(up.name, theirs[shared[0]].interface.name)
        if hop is None:
            raise RenderError(f"{_where(d, fld='upstream')}: no address planned for {up.name} "
                              f"{theirs[shared[0]].interface.name}: run `invoke network.plan` first")
        return {"ipv4": [str(hop.ipv4.ip)], "ipv6": [_v6(hop.ipv6.ip)], "via": up.name}

    def _baseline(self) -> dict[str, Any]:
        d, p, b = self.device, self.platform, self.baseline
        mgmt = self.ext.management
        if mgmt is None:
            raise RenderError(f"{_where(d)}: the management baseline needs extranet.management (syslog_hosts, "
                              "ntp_servers): graded protection asks for a remote log server and time source")
        # Per address family: the declared sources of that family, else the management subnets of that family.
        subnets = [s.prefix for s in self.inv.subnets.values() if s.kind == "management"]
        sources = [s for family in (4, 6) for s in ([x for x in mgmt.sources if x.version == family]
                                                     or [x for x in subnets if x.version == family])]
        if not sources:
            raise RenderError(f"{_where(d)}: no management sources: give extranet.management.sources or a "
                              "management subnet (the vty ACL would lock everyone out)")
        vty = b.vty.get(p)
        if vty is None or not re.match(r"^[0-9]{1,3} [0-9]{1,3}$", vty):
            raise RenderError(f"{_where(d)}: baseline vty.{p} must be 'FIRST LAST', got {vty!r}")
        return {"syslog": [_v6(a) if a.version == 6 else str(a) for a in mgmt.syslog_hosts],
                "ntp": [_v6(a) if a.version == 6 else str(a) for a in mgmt.ntp_servers],
                "sources4": [{"rule": 5 * n, **_v4net(s)} for n, s in enumerate(
                    (s for s in sources if s.version == 4), 1)],
                "sources6": [{"rule": 5 * n, **_v6net(s)} for n, s in enumerate(
                    (s for s in sources if s.version == 6), 1)],
                "acl": self._acl_ids()["management"], "acl_name": self._acl_names("management")["name4"],
                "snmp_group": _check(vendor.simple_name, _where(d, fld="baseline snmp_group"), b.snmp_group,
                                     "SNMP group"),
                "idle": b.idle_timeout_minutes, "attempts": b.login_attempts,
                "window": b.login_window_minutes, "window_s": b.login_window_minutes * 60,
                "lockout": b.lockout_minutes, "lockout_s": b.lockout_minutes * 60, "vty": vty}


# --- rendering -------------------------------------------------------------------------------------------


def _managed(inv: Inventory) -> list[Managed]:
    try:
        return managed_interfaces(inv)
    except PlanningError as exc:
        problems = [p for p in exc.problems]
        cls = GoldenNetworkError if any("golden network" in str(p) for p in problems) else RenderError
        raise cls("; ".join(map(str, problems))) from None


def _check_plan(inv: Inventory, plan: AddressPlan) -> None:
    problems = plan.check(inv)
    if problems:
        raise RenderError("the address plan disagrees with the inventory: " + "; ".join(problems)
                          + " (run `invoke network.plan`)")


def _device(inv: Inventory, name: str) -> Device:
    device = inv.devices.get(name)
    if device is None:
        raise RenderError(f"no device named {name!r} in the inventory")
    if device.golden_network:
        raise GoldenNetworkError(f"{_where(device)} is part of the golden network {device.golden_network}: "
                                 "jiyue never renders a change to it (盘政办发〔2017〕144号)")
    return device


def _render_one(inv: Inventory, plan: AddressPlan, device: Device, managed: list[Managed],
                baseline: Baseline) -> Rendered:
    context = _Context(inv, plan, device, managed, baseline).build()
    wanted = {"baseline": True, "vpn_instance": True, "acl": context["acl"] is not None,
              "ospfv3": context["ospfv3"] is not None,
              "interfaces": bool(context["interfaces"] or context["egress"]),
              "routes": context["routes"] is not None}
    parts: dict[str, list[tuple[str, list[str]]]] = {}
    env = environment()
    for feature in FEATURES:
        if not wanted[feature]:
            continue
        template = f"{device.platform}/{feature}.j2"
        try:
            text = env.get_template(template).render(**context)
        except RenderError as exc:
            raise RenderError(f"{_where(device)}: {template}: {exc}") from None
        except TemplateError as exc:
            raise RenderError(f"{_where(device)}: {template}: {exc}") from None
        parts[feature] = _parse(text, feature, _where(device))
    skipped = tuple(f"{i.name}: golden network {i.golden_network}" for i in device.interfaces if i.golden_network)
    return Rendered(device.name, device.platform, _merge(parts), skipped)


def render_device(inv: Inventory, plan: AddressPlan, device_name: str, baseline: Baseline | None = None) -> Rendered:
    """The intended config of one device; RenderError (GoldenNetworkError for a golden one) on bad input."""
    return render(inv, plan, [device_name], baseline)[device_name]


def render(inv: Inventory, plan: AddressPlan, names: Iterable[str], baseline: Baseline | None = None
           ) -> dict[str, Rendered]:
    """The intended config of each named device, in the order given. Nothing is rendered when any fails."""
    devices, managed, baseline = _prepare(inv, plan, names, baseline)
    return {d.name: _render_one(inv, plan, d, managed, baseline) for d in devices}


def _prepare(inv: Inventory, plan: AddressPlan, names: Iterable[str], baseline: Baseline | None
             ) -> tuple[list[Device], list[Managed], Baseline]:
    """What rendering and the reachability check both start from, each input checked first."""
    names = list(names)
    if inv.extranet is None:
        raise RenderError("the inventory has no extranet section: nothing to render")
    devices = [_device(inv, n) for n in names]
    managed = _managed(inv)
    _check_plan(inv, plan)
    baseline = baseline or load_baseline()
    return devices, managed, baseline


def write_configs(rendered: Mapping[str, Rendered], out: Path) -> list[Path]:
    """reports/network/<device>.cfg: the intended config, then <device>.features.yaml: which feature made what."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, r in rendered.items():
        path = out / f"{name}.cfg"
        path.write_text(r.text, encoding="ascii")
        meta = {"device": name, "platform": str(r.platform), "managed": r.managed,
                "features": {f: t.splitlines() for f, t in r.features.items()}, "skipped": list(r.skipped)}
        (out / f"{name}.features.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False),
                                                   encoding="utf-8")
        paths.append(path)
    return paths


def intents(inv: Inventory, plan: AddressPlan, names: Iterable[str], baseline: Baseline | None = None
            ) -> dict[str, dict[str, Any]]:
    """The checked values each named device's templates print (interfaces, ACLs, OSPFv3, routes), by device.

    What the reachability check (network/reach.py) reads: the same structured data the configs are
    rendered from, so the check proves what is pushed, not a second model of it."""
    devices, managed, baseline = _prepare(inv, plan, names, baseline)
    return {d.name: _Context(inv, plan, d, managed, baseline).build() for d in devices}
