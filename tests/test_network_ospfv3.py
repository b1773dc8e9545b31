"""OSPFv3 on every platform (issue 14): the test city tests/fixtures/city-ospf3 runs OSPFv3 on its VRP8 core,
its Comware aggregation and its Cisco IOS and Ruijie RGOS access switches.

The sample city lists only Huawei/H3C devices in `extranet.ospfv3.devices`, so nothing showed that the IOS
and RGOS templates rendered lines the devices refuse. Here the test city's rendered configs are pushed, over
SSH, to simulated devices booted from its inventory: every line must be accepted, the devices must show the
OSPFv3 process and the interface lines, and a second push must find nothing to do. The same devices then show
that renumbering replaces jiyue's lines (a department VLAN's return routes, the carrier link's addresses and
default routes) and leaves an operator's static routes alone.
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


# --- renumbering: the scope replaces jiyue's lines, never an operator's ------------------------------------

THEIRS = {  # static routes an operator put on the core and the aggregation, in the extranet VPN: never jiyue's
    "o3-hx1": [f"ip route-static vpn-instance {VPN} 10.99.0.0 255.255.0.0 10.90.255.2",
               f"ipv6 route-static vpn-instance {VPN} 2001:DB8:99:: 48 2001:DB8:9000:FF00::2"],
    "o3-hj1": [f"ip route-static vpn-instance {VPN} 10.99.0.0 16 10.90.255.1"],
}


def _renumbered(inv, plan):
    """VLAN 120 (sqga, behind o3-jr1) moved to the next /24 and /64 of its share, and the carrier link renumbered."""
    import ipaddress

    old = plan.subnet("sqga", 120)
    new4, new6 = ipaddress.ip_network("10.90.5.0/24"), ipaddress.ip_network("2001:db8:9000:201::/64")
    subnets = [s.model_copy(update={"ipv4": new4, "ipv6": new6}) if s.key == old.key else s for s in plan.subnets]
    addresses = [a.model_copy(update={"ipv4": ipaddress.ip_interface(f"{new4[1]}/24"),
                                      "ipv6": ipaddress.ip_interface(f"{new6[1]}/64")})
                 if (a.department, a.vlan) == old.key else a for a in plan.addresses]
    [egress] = inv.extranet.egress
    link = egress.model_copy(update={"ipv4": ipaddress.ip_interface("203.0.113.6/30"),
                                     "ipv4_next_hop": ipaddress.ip_address("203.0.113.5"),
                                     "ipv6": ipaddress.ip_interface("2001:db8:ffff:9::2/64"),
                                     "ipv6_next_hop": ipaddress.ip_address("2001:db8:ffff:9::1")})
    inv = inv.model_copy(update={"extranet": inv.extranet.model_copy(update={"egress": [link]})})
    return inv, plan.model_copy(update={"subnets": subnets, "addresses": addresses}), old


@pytest.mark.lab
def test_a_renumbered_vlan_and_carrier_link_replace_jiyues_lines_and_leave_an_operators_routes(devices, tmp_path):
    """Push, renumber, push again: the old return routes (jiyue's, by their tag) go with the vendor's removal
    form, the carrier port's old addresses and default routes are replaced, the operator's static routes stay;
    a third push finds nothing to do."""
    sim, inv, _ = devices
    first = _push(devices, tmp_path, "r1")
    assert {o.status for o in first.values()} <= {APPLIED, UNCHANGED}, {n: o.reason for n, o in first.items()}
    for name, lines in THEIRS.items():  # the operator adds routes of their own
        sim.reset(name, config=sim.running_config(name).replace("\nreturn", "\n" + "\n".join(lines) + "\nreturn"))
    moved, plan, old = _renumbered(inv, build_plan(inv))
    lines = {n: r.lines for n, r in render(moved, plan, select_devices(moved, None).names).items()}
    options = PushOptions(apply=True, backups=tmp_path / "r2", known_hosts=sim.known_hosts, progress=False)
    second = {o.device: o for o in Pusher(moved, lines, options).run(list(lines)).outcomes}
    bad = {n: (o.status, o.reason, o.rollback) for n, o in second.items() if o.status not in (APPLIED, UNCHANGED)}
    assert not bad, bad
    assert second["o3-hx1"].status == APPLIED and second["o3-hj1"].status == APPLIED
    for name in ("o3-hx1", "o3-hj1"):
        shown = [t.strip() for t in sim.running_config(name).splitlines()]
        routes = [t for t in shown if "route-static" in t]
        assert not [t for t in routes if f" {old.ipv4.network_address} " in t or
                    str(old.ipv6.network_address).upper() + " " in t], (name, routes)  # the old ones are gone
        assert [t for t in routes if " 10.90.5.0 " in t and t.endswith("jiyue-return")], (name, routes)
        assert all(t in shown for t in THEIRS[name]), (name, routes)  # the operator's stay
    port = _section(sim.running_config("o3-hx1"), "interface GE1/0/1")
    assert sorted(port) == sorted(["undo portswitch", "description uplink to dianxin egress",
                                   f"ip binding vpn-instance {VPN}", "ip address 203.0.113.6 255.255.255.252",
                                   "ipv6 enable", "ipv6 address 2001:DB8:FFFF:9::2/64"]), port
    defaults = [t for t in sim.running_config("o3-hx1").splitlines() if " 0.0.0.0 0.0.0.0 " in t or " :: 0 " in t]
    assert sorted(defaults) == [f"ip route-static vpn-instance {VPN} 0.0.0.0 0.0.0.0 203.0.113.5",
                                f"ipv6 route-static vpn-instance {VPN} :: 0 2001:DB8:FFFF:9::1"], defaults
    options = PushOptions(apply=True, backups=tmp_path / "r3", known_hosts=sim.known_hosts, progress=False)
    third = Pusher(moved, lines, options).run(list(lines)).outcomes
    assert {o.status for o in third} == {UNCHANGED}, {o.device: o.diff for o in third if o.diff}
