"""What the sample city's devices hold before jiyue touches them, rendered from the inventory.

Each device boots with its inventory hostname and interfaces (descriptions, trunks on uplinks, access
ports), golden-network interfaces already configured in their own VPN (so a push that touches them
shows up), and a management baseline: SSH, AAA with lockout and password policy, vty timeouts and ACL,
SNMPv3, syslog, NTP, time zone. The devices named in `baseline.yaml` under `weak` get the listed
weaknesses instead, for the graded-protection checks to find. Templates: `baseline/<platform>.j2`.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import secrets
from pathlib import Path
from typing import Any

import jinja2
import yaml

from inventory.model import Device, GoldenNetwork, Inventory, SecretRef, SubnetKind
from lab.netsim.device import DeviceSpec

HERE = Path(__file__).parent
BASELINE = HERE / "baseline.yaml"
VLAN_INTERFACE = re.compile(r"^(Vlanif|Vlan-interface|Vlan|VLAN)(\d+)$")
GOLDEN_VLAN_BASE = 3900  # access VLAN of a golden-network port that declares none: 3900 + the network's index
GOLDEN_RD_ASN = 65099


@functools.cache
def settings() -> dict[str, Any]:
    return yaml.safe_load(BASELINE.read_text(encoding="utf-8"))


def weak_devices() -> dict[str, dict[str, str]]:
    """Device name -> {weakness flag: what is wrong}: the failures the graded-protection checks must find."""
    return settings().get("weak") or {}


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "baseline"), undefined=jinja2.StrictUndefined,
                          trim_blocks=True, keep_trailing_newline=True, autoescape=False)  # device configs, not HTML


def _golden_index(g: GoldenNetwork) -> int:
    return list(GoldenNetwork).index(g) + 1


def _golden_vpn(g: GoldenNetwork) -> str:
    return g.name.upper()


def _cipher(platform: str, host: str, kind: str) -> str:
    """A stand-in for the device's stored hash: the shape a real one has, derived from nothing secret."""
    digest = hashlib.sha256(f"{host}:{kind}".encode()).hexdigest()[:40]
    if platform.startswith("huawei"):
        return f"%^%#{digest}%^%#"
    if platform == "hp_comware":
        return f"$h$6${digest}"
    return f"$9${digest}"


def _interface_lines(device: Device, vlans: dict[str, int]) -> list[dict[str, Any]]:
    platform = device.platform.value
    out = []
    for iface in device.interfaces:
        lines: list[str] = []
        svi = VLAN_INTERFACE.match(iface.name)
        if svi and iface.golden_network:
            vlan = int(svi.group(2))
            vpn = _golden_vpn(iface.golden_network)
            cisco_like = platform in ("cisco_ios", "ruijie_os")
            bind = f"vrf forwarding {vpn}" if cisco_like else f"ip binding vpn-instance {vpn}"
            lines = [bind, f"ip address 10.250.{vlan % 256}.1 255.255.255.0"]
        elif not svi:
            access = iface.vlan
            if iface.golden_network:
                access = access or vlans.get(iface.golden_network.value) or GOLDEN_VLAN_BASE + _golden_index(
                    iface.golden_network)
            if access:
                lines = {
                    "huawei_vrp": ["port link-type access", f"port default vlan {access}"],
                    "huawei_vrpv8": ["port link-type access", f"port default vlan {access}"],
                    "hp_comware": ["port link-mode bridge", f"port access vlan {access}"],
                }.get(platform, ["switchport mode access", f"switchport access vlan {access}"])
            else:  # an uplink or peer link: a trunk
                lines = {
                    "huawei_vrp": ["port link-type trunk", "port trunk allow-pass vlan 2 to 4094"],
                    "huawei_vrpv8": ["port link-type trunk", "port trunk allow-pass vlan 2 to 4094"],
                    "hp_comware": ["port link-mode bridge", "port link-type trunk", "port trunk permit vlan all"],
                }.get(platform, ["switchport mode trunk"])
        out.append({"name": iface.name, "description": iface.description, "lines": lines})
    return out


def device_config(inv: Inventory, device: Device) -> str:
    """The configuration a sample-city device boots with, in its vendor's syntax."""
    platform = device.platform.value
    golden_svis = {i.golden_network.value: int(m.group(2)) for i in device.interfaces
                   if i.golden_network and (m := VLAN_INTERFACE.match(i.name))}
    vlans: set[int] = {i.vlan for i in device.interfaces if i.vlan}
    interfaces = _interface_lines(device, golden_svis)
    for iface in interfaces:
        for line in iface["lines"]:
            m = re.search(r"(?:default|access) vlan (\d+)$", line)
            if m:
                vlans.add(int(m.group(1)))
    goldens = sorted({i.golden_network for i in device.interfaces if i.golden_network and VLAN_INTERFACE.match(i.name)},
                     key=_golden_index)
    subnet = next((s for s in inv.subnets.values() if s.kind == SubnetKind.management and device.address in s.prefix),
                  None)
    network = subnet.prefix if subnet else ipaddress.ip_network(f"{device.address}/24", strict=False)
    creds = inv.credentials_for(device)
    weak = {flag: True for flag in weak_devices().get(device.name, {})}
    text = _env.get_template(f"{platform}.j2").render(
        host=device.name,
        user=creds.username,
        vlans=sorted(vlans),
        servers=settings()["servers"],
        weak=_Flags(weak),
        mgmt={"network": str(network.network_address), "wildcard": str(network.hostmask)},
        golden_vpns=[{"vpn": _golden_vpn(g), "rd": f"{GOLDEN_RD_ASN}:{_golden_index(g)}"} for g in goldens],
        interfaces=interfaces,
        cipher=lambda kind: _cipher(platform, device.name, kind),
    )
    return "\n".join(line for line in text.splitlines() if line.strip()) + "\n"


class _Flags(dict):
    """Weakness flags: an unlisted flag is simply off."""

    def __getattr__(self, name: str) -> bool:
        return bool(self.get(name))


def resolve_secret(ref: SecretRef, inv: Inventory, lab_state: Path) -> str:
    """Read a device secret; a missing secret *file* inside the lab's state dir is created with a fresh random
    value (the lab owns it: the sample city's devices get a password nobody has to set). Anything else
    missing is an error naming the reference."""
    try:
        return ref.resolve(inv.root)
    except LookupError:
        if ref.file is None:
            raise
        path = (Path(inv.root) / Path(ref.file).expanduser()).resolve()
        if not path.is_relative_to(lab_state.resolve()):
            raise
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = secrets.token_urlsafe(18)
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
        return value


def device_specs(inv: Inventory, lab_state: Path, names: list[str] | None = None) -> list[DeviceSpec]:
    """One spec per inventory device (or per name in `names`), with its credentials resolved now."""
    specs = []
    for device in inv.devices.values():
        if names is not None and device.name not in names:
            continue
        creds = inv.credentials_for(device)
        password = resolve_secret(creds.password, inv, lab_state)
        secret = resolve_secret(creds.secret, inv, lab_state) if creds.secret else None
        specs.append(DeviceSpec(name=device.name, platform=device.platform.value, address=str(device.address),
                                port=device.port, username=creds.username, password=password, secret=secret,
                                config=device_config(inv, device)))
    return specs
