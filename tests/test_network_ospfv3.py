"""OSPFv3 on every platform (issue 14): the test city tests/fixtures/city-ospf3 runs OSPFv3 on its VRP8 core,
its Comware aggregation and its Cisco IOS and Ruijie RGOS access switches.

The sample city lists only Huawei/H3C devices in `extranet.ospfv3.devices`, so nothing showed that the IOS
and RGOS templates rendered lines the devices refuse. Here the test city's rendered configs are pushed, over
SSH, to simulated devices booted from its inventory: every line must be accepted, the devices must show the
OSPFv3 process and the interface lines, and a second push must find nothing to do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import inventory
from jiyue.platforms import cli
from lab.netsim.baseline import device_config, device_specs
from lab.netsim.config import Config
from lab.netsim.grammar import load
from lab.netsim.lab import start_devices
from network.diff import diff, missing_lines
from network.plan import build_plan
from network.push import APPLIED, UNCHANGED, Pusher, PushOptions
from network.render import render, select_devices

CITY = Path(__file__).resolve().parent / "fixtures" / "city-ospf3"
VPN = "EGOV-EXTRANET"
# what each platform shows for jiyue's OSPFv3: the process header, lines under it, one interconnect interface
# and the line on it (interconnect VLAN 100 on the core and aggregation, 101 on the access switches)
SHOWN = {
    "o3-hx1": ("ospfv3 1 vpn-instance EGOV-EXTRANET", ["router-id 198.18.30.171", "import-route direct",
                                                        "area 0.0.0.0"],
               "interface Vlanif100", "ospfv3 1 area 0.0.0.0"),
    "o3-hj1": ("ospfv3 1 vpn-instance EGOV-EXTRANET", ["router-id 198.18.30.172", "import-route direct",
                                                        "area 0.0.0.0"],
               "interface Vlan-interface100", "ospfv3 1 area 0.0.0.0"),
    "o3-jr1": (f"ipv6 router ospf 1 vrf {VPN}", ["router-id 198.18.30.173", "redistribute connected"],
               "interface Vlan101", "ipv6 ospf 1 area 0"),
    "o3-jr2": (f"ipv6 router ospf 1 vrf {VPN}", ["router-id 198.18.30.174", "redistribute connected"],
               "interface VLAN 101", "ipv6 ospf 1 area 0"),
}


@pytest.fixture(scope="module")
def city():
    inv = inventory.load(CITY)
    return inv, render(inv, build_plan(inv), select_devices(inv, None).names)


def _section(text: str, header: str) -> list[str]:
    """The lines under `header` in a printed configuration, stripped ([] when the header is missing)."""
    lines = text.splitlines()
    if header not in lines:
        return []
    body = []
    for line in lines[lines.index(header) + 1:]:
        if not line.startswith(" ") or line.strip() in ("#", "!"):
            break
        body.append(line.strip())
    return body


# --- offline: the rendering and the grammar ----------------------------------------------------------------


def test_the_test_city_runs_ospfv3_on_ios_and_ruijie_beside_huawei_and_h3c(city):
    inv, rendered = city
    platforms = {inv.devices[n].platform.value for n in inv.extranet.ospfv3.devices}
    assert {"cisco_ios", "ruijie_os"} <= platforms and platforms & {"huawei_vrp", "huawei_vrpv8", "hp_comware"}
    for name, (header, _under, iface, line) in SHOWN.items():
        r = rendered[name]
        assert header in r.lines, (name, r.features.get("ospfv3"))
        assert "ospfv3" in r.features and line in _section(r.text, iface), (name, r.text)
        # adjacencies on interconnect VLANs only: no department VLAN carries the OSPFv3 line
        departments = [s.header for s in r.sections if s.header.startswith("interface ")
                       and any("access-group" in t or "traffic-filter" in t or "packet-filter" in t
                               for t, _ in s.children)]
        assert not [h for h in departments if line in _section(r.text, h)], name


@pytest.mark.parametrize("name", ["o3-jr1", "o3-jr2"])
def test_the_simulators_grammar_accepts_every_rendered_ospfv3_line(city, name):
    inv, rendered = city
    device = inv.devices[name]
    config = Config(load(device.platform.value))
    assert config.load(device_config(inv, device)) == []
    features = rendered[name].features  # the VRF and the addressed interfaces first, as a push sends them
    for feature in ("vpn_instance", "interfaces", "ospfv3"):
        assert config.load(features[feature]) == [], (feature, features[feature])
    shown = config.render()
    header, under, iface, line = SHOWN[name]
    assert under == _section(shown, header) and line in _section(shown, iface), shown


def test_a_changed_area_on_an_interface_is_replaced_and_another_process_is_left_alone(city):
    """The interface line's key is `ipv6 ospf <process> area`: jiyue's old area goes; a process jiyue does not
    render (the global `ipv6 router ospf 2`) is never negated."""
    inv, rendered = city
    for name in ("o3-jr1", "o3-jr2"):
        platform = inv.devices[name].platform.value
        iface = SHOWN[name][2]
        running = "\n".join(["ipv6 router ospf 2", " router-id 10.0.0.2", iface, " ipv6 ospf 1 area 5", ""])
        d = diff(name, platform, cli(platform).config_text(running), rendered[name].lines)
        assert "no ipv6 ospf 1 area 5" in d.remediation and "ipv6 ospf 1 area 0" in d.remediation, d.remediation
        assert not [line for line in d.remediation if "ospf 2" in line or "10.0.0.2" in line], d.remediation


# --- on the lab's simulated devices, over SSH ----------------------------------------------------------------


@pytest.fixture(scope="module")
def devices(lab, city):
    """The test city's four devices, booted from its inventory (198.18.30.171-174), stopped afterwards."""
    inv, rendered = city
    sim = start_devices(lab, device_specs(inv, lab.state_dir))
    yield sim, inv, {name: r.lines for name, r in rendered.items()}
    sim.stop(list(inv.devices))


def _push(devices, tmp_path, sub: str):
    sim, inv, intended = devices
    options = PushOptions(apply=True, backups=tmp_path / sub, known_hosts=sim.known_hosts, progress=False)
    return {o.device: o for o in Pusher(inv, intended, options).run(list(intended)).outcomes}


@pytest.mark.lab
def test_the_test_city_pushes_on_every_platform_shows_ospfv3_and_converges(devices, tmp_path):
    sim, inv, intended = devices
    first = _push(devices, tmp_path, "b1")
    bad = {n: (o.status, o.kind, o.reason, o.rollback) for n, o in first.items() if o.status != APPLIED}
    assert not bad, bad  # every line accepted: none refused, nothing rolled back
    for name, (header, under, iface, line) in SHOWN.items():
        platform = inv.devices[name].platform.value
        shown = sim.running_config(name)
        assert not missing_lines(platform, cli(platform).config_text(shown), intended[name]), name
        lines = [t.strip() for t in shown.splitlines()]
        assert header in lines, (name, shown)
        assert all(u in _section(shown, header) for u in under), (name, _section(shown, header))
        assert line in _section(shown, iface), (name, _section(shown, iface))
    again = _push(devices, tmp_path, "b2")
    assert {o.status for o in again.values()} == {UNCHANGED}, {n: o.diff for n, o in again.items() if o.diff}
    assert not (tmp_path / "b2").exists()
