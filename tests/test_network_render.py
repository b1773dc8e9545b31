"""Rendering each device's intended config (`invoke network.render`): all five platforms, never a golden network,
never a smuggled line, and hier_config reads every config back into the hierarchy the templates meant.

Offline: the sample city's plan is built in memory; hier_config parses the text the way the push engine's diff does.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hier_config import Platform as HPlatform
from hier_config import get_hconfig

import inventory
from inventory.loader import InventoryError
from inventory.model import Platform, SubnetKind
from network import vendor
from network.model import save_plan
from network.plan import build_plan
from network.render import (
    FEATURES,
    GoldenNetworkError,
    RenderError,
    environment,
    render,
    render_device,
    select_devices,
    write_configs,
)

REPO = Path(__file__).resolve().parent.parent
HIER = {Platform.huawei_vrp: HPlatform.HUAWEI_VRP, Platform.huawei_vrpv8: HPlatform.HUAWEI_VRP,
        Platform.hp_comware: HPlatform.HP_COMWARE5, Platform.cisco_ios: HPlatform.CISCO_IOS,
        Platform.ruijie_os: HPlatform.CISCO_IOS}  # hier_config has no Ruijie: RGOS parses as IOS


@pytest.fixture(scope="module")
def plan(demo):
    return build_plan(demo)


@pytest.fixture(scope="module")
def rendered(demo, plan):
    return render(demo, plan, select_devices(demo, None).names)


def interface_block(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f"interface {name}")
    block = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        block.append(line.strip())
    return block


# --- the sample city -------------------------------------------------------------------------------------


def test_every_platform_renders_for_the_sample_city(demo, rendered):
    assert {r.platform for r in rendered.values()} == set(Platform)
    assert "swj-jr1" not in rendered  # 金税
    for name, r in rendered.items():
        assert r.text.endswith("\n") and r.lines == r.text.splitlines()
        assert len(r.line_features) == len(r.lines) and set(r.line_features) <= set(FEATURES)
        assert list(r.features) == [f for f in FEATURES if f in r.features]
        assert {"baseline", "vpn_instance", "interfaces", "routes"} <= set(r.features), name
        assert ("ospfv3" in r.features) == (name in demo.extranet.ospfv3.devices)
        for line in r.lines:  # one printable ASCII line each, no '?', as the device prints it
            assert re.fullmatch(r" *[\x21-\x3e\x40-\x7e][\x20-\x3e\x40-\x7e]*", line), line
        assert len(r.managed) == len(set(r.managed))  # each section once


def test_interfaces_are_bound_before_they_are_addressed(demo, plan, rendered):
    bind = {Platform.huawei_vrp: "ip binding vpn-instance", Platform.huawei_vrpv8: "ip binding vpn-instance",
            Platform.hp_comware: "ip binding vpn-instance", Platform.cisco_ios: "vrf forwarding",
            Platform.ruijie_os: "vrf forwarding"}
    for a in plan.addresses:
        r = rendered[a.device]
        name = vendor.printed_interface(r.platform, a.interface)
        block = interface_block(r.text, name)
        binding = next(i for i, line in enumerate(block) if line.startswith(bind[r.platform]))
        v4 = block.index(f"ip address {a.ipv4.ip} {a.ipv4.netmask}")
        v6 = block.index(f"ipv6 address {str(a.ipv6).upper()}")
        assert binding < v4 < v6 and block[binding].endswith("EGOV-EXTRANET")
        inbound = [line for line in block if "3001" in line or "JY-EXT-IN" in line]
        assert len(inbound) == (2 if a.department else 0), (a.device, a.interface)  # IPv4 and IPv6 ACL inbound


def test_default_routes_lead_to_the_egress_or_the_upstream_device(plan, rendered):
    core = rendered["sj-hx1"].features["routes"]
    assert "ip route-static vpn-instance EGOV-EXTRANET 0.0.0.0 0.0.0.0 203.0.113.1" in core
    assert "ipv6 route-static vpn-instance EGOV-EXTRANET :: 0 2001:DB8:FFFF:1::1" in core
    hop = plan.address("sj-hj1", "Vlanif101")  # gaj-jr1's upstream on the city access interconnect
    access = rendered["gaj-jr1"].features["routes"].splitlines()
    assert access == [f"ip route vrf EGOV-EXTRANET 0.0.0.0 0.0.0.0 {hop.ipv4.ip}",
                      f"ipv6 route vrf EGOV-EXTRANET ::/0 {str(hop.ipv6.ip).upper()}"]
    county = rendered["dx-hj1"].features["routes"]
    assert f"0.0.0.0 0 {plan.address('sj-hx2', 'Vlan-interface100').ipv4.ip}" in county


def test_boundary_acl_permits_only_the_planned_prefixes_and_keeps_departments_off_management(plan, rendered):
    acl = rendered["sj-hj1"].features["acl"]
    subnets = sorted((s for s in plan.subnets if s.department in {"szfb", "fgw", "zjj", "wjw", "jyj"}),
                     key=lambda s: s.vlan)
    for s in subnets:
        assert f"permit ip source {s.ipv4.network_address} {s.ipv4.hostmask}" in acl
        assert f"permit ipv6 source {str(s.ipv6).upper()}" in acl
    assert "rule 1 deny ip destination 198.18.30.0 0.0.0.255" in acl
    assert acl.index("rule 1 deny") < acl.index("permit ip source") < acl.index("rule 65000 deny ip")
    assert " description JY-EXT-IN jiyue" in acl.splitlines()  # the mark that the numbered ACL is jiyue's
    ruijie = rendered["rsj-jr1"].features["acl"]
    # each entry under the number the diff knows it by (hier_config would number them by position)
    assert " 1 deny ip any 198.18.30.0 0.0.0.255" in ruijie.splitlines()
    assert "permit ip 10.80.12.0 0.0.0.255 any" in ruijie and ruijie.splitlines()[4] == " 65000 deny ip any any"
    ios = rendered["sj-hx1"].features["baseline"].splitlines() if rendered["sj-hx1"].platform == "cisco_ios" else \
        next(r for r in rendered.values() if r.platform == "cisco_ios").features["baseline"].splitlines()
    assert " 1000 deny any" in ios and any(line.startswith(" 5 permit ") for line in ios)


def test_the_management_baseline_is_on_every_device(rendered):
    expect = {
        Platform.huawei_vrp: ["undo telnet server enable", "stelnet server enable", "info-center loghost 198.18.40.31",
                              "ntp-service unicast-server 198.18.40.32", "snmp-agent sys-info version v3",
                              " protocol inbound ssh", " idle-timeout 10 0", " acl 2001 inbound",
                              " local-aaa-user wrong-password retry-interval 5 retry-time 5 block-time 10"],
        Platform.huawei_vrpv8: ["undo telnet server enable", "ntp unicast-server 198.18.40.32",
                                "snmp-agent group v3 JIYUE-V3 privacy"],
        Platform.hp_comware: ["undo telnet server enable", "ssh server enable",
                              "password-control login-attempt 5 exceed lock-time 10", " acl 2001 inbound"],
        Platform.cisco_ios: ["ip ssh version 2", "logging host 198.18.40.31", "ntp server 198.18.40.32",
                             "snmp-server group JIYUE-V3 v3 priv", " transport input ssh", " exec-timeout 10 0",
                             " access-class JY-MGMT in", "login block-for 600 attempts 5 within 300"],
        Platform.ruijie_os: ["no enable service telnet-server", "logging server 198.18.40.31",
                             " transport input ssh"],
    }
    for r in rendered.values():
        baseline = r.features["baseline"].splitlines()
        for line in expect[r.platform]:
            assert line in baseline, (r.device, line)
        assert not any("community" in line for line in baseline)


def test_hier_config_parses_every_rendered_config_into_the_intended_hierarchy(rendered):
    for r in rendered.values():
        tree = get_hconfig(HIER[r.platform], r.text)
        tops = [c.text for c in tree.children]
        assert tops == r.managed, r.device
        for section in r.sections:
            node = tree.get_child(equals=section.header)
            # hier_config numbers IOS ACL entries and drops IPv6 `sequence N`: compare entries by their bodies
            below = {re.sub(r"^(sequence )?\d+ ", "", c.text) for c in node.all_children()}
            for line, _ in section.children:
                text = line.strip()
                if r.platform in ("cisco_ios", "ruijie_os"):
                    text = re.sub(r"^(sequence )?\d+ ", "", text)
                if text == "exit-address-family":  # hier_config folds it into the address-family section
                    continue
                assert text in below, (r.device, section.header, text)
                if line.startswith("  "):  # a third-level line sits under a second-level one
                    assert any(text in {g.text for g in child.children} for child in node.children), (r.device, text)


def test_vrp_nesting_survives_parsing(rendered):
    tree = get_hconfig(HPlatform.HUAWEI_VRP, rendered["sj-hj1"].text)
    family = tree.get_child(equals="ip vpn-instance EGOV-EXTRANET").get_child(equals="ipv4-family")
    assert [c.text for c in family.children] == ["route-distinguisher 65010:100"]


def test_configs_are_written_with_their_feature_map(rendered, tmp_path):
    paths = write_configs(rendered, tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{n}.cfg" for n in rendered)
    meta = yaml.safe_load((tmp_path / "sj-hx1.features.yaml").read_text(encoding="utf-8"))
    assert meta["platform"] == "huawei_vrpv8" and "interface Vlanif190" in meta["managed"]
    assert meta["features"]["routes"][0].startswith("ip route-static vpn-instance")


# --- golden networks -------------------------------------------------------------------------------------


def test_a_golden_device_is_refused_by_name_and_skipped_by_a_pattern(demo, plan):
    with pytest.raises(GoldenNetworkError, match=r"swj-jr1.*金税"):
        render_device(demo, plan, "swj-jr1")
    with pytest.raises(GoldenNetworkError, match=r"swj-jr1.*金税"):
        select_devices(demo, "swj-jr1")
    with pytest.raises(GoldenNetworkError, match="swj-jr1"):
        select_devices(demo, "sj-hj1,swj-jr1")
    broad = select_devices(demo, "platform_huawei_vrp")
    assert broad.names == ["sj-hj1"] and "金税" in broad.skipped["swj-jr1"]
    assert "swj-jr1" not in select_devices(demo, "all:!swj-jr1").names


def test_a_department_vlan_on_a_golden_interface_is_refused(demo, plan):
    devices = dict(demo.devices)
    rsj = devices["rsj-jr1"]
    interfaces = [i.model_copy(update={"golden_network": "金保"}) if i.name == "VLAN140" else i for i in rsj.interfaces]
    devices["rsj-jr1"] = rsj.model_copy(update={"interfaces": interfaces})
    tampered = demo.model_copy(update={"devices": devices})
    with pytest.raises(GoldenNetworkError, match=r"rsj-jr1 VLAN140.*金保"):
        render_device(tampered, plan, "sj-hj1")  # the whole inventory is refused, not only that device


def test_the_command_line_refuses_a_golden_device_and_renders_the_rest(demo, plan, tmp_path):
    plan_file = save_plan(plan, tmp_path / "plan.yaml")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "jiyue", "network.render", "--plan", str(plan_file),
                               "--out", str(tmp_path / "out"), *args], capture_output=True, text=True, cwd=REPO,
                              timeout=300)

    named = run("--limit", "swj-jr1")
    assert named.returncode == 2 and "swj-jr1" in named.stderr and "金税" in named.stderr
    assert not (tmp_path / "out" / "network").exists()
    broad = run("--limit", "devices")
    assert broad.returncode == 0, broad.stderr
    assert "skipped swj-jr1" in broad.stderr
    written = sorted(p.name for p in (tmp_path / "out" / "network").glob("*.cfg"))
    assert written == sorted(f"{n}.cfg" for n in demo.devices if n != "swj-jr1")


# --- injection -------------------------------------------------------------------------------------------


def test_a_newline_in_an_inventory_description_is_refused_at_its_line(tmp_path):
    root = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, root)
    path = root / "network.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("description: gaj extranet}", 'description: "gaj\\nuser-interface vty 0 4"}'),
                    encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        inventory.load(root)
    [problem] = info.value.problems
    assert problem.path.startswith("devices[gaj-jr1].interfaces[") and problem.path.endswith(".description")
    assert "control characters" in problem.message and problem.line > 1


def _with_interface_field(inv, device: str, interface: str, **update):
    d = inv.devices[device]
    interfaces = [i.model_construct(**{**i.model_dump(), **update}) if i.name == interface else i
                  for i in d.interfaces]
    return inv.model_copy(update={"devices": {**inv.devices, device: d.model_copy(update={"interfaces": interfaces})}})


@pytest.mark.parametrize("text", ["gaj\nline vty 0 15\n transport input telnet", "gaj\rno ip ssh version 2",
                                  "gaj\x1b[2K", "help?", "财政局接入", "gaj\u2028quit"])
def test_a_description_that_could_smuggle_a_command_is_refused_even_past_the_inventory(demo, plan, text):
    tampered = _with_interface_field(demo, "gaj-jr1", "Vlan130", description=text)  # model_construct skips checks
    with pytest.raises(RenderError, match=r"gaj-jr1 interface Vlan130 description"):
        render_device(tampered, plan, "gaj-jr1")


@pytest.mark.parametrize(("name", "reason"), [("EGOV\nEXTRANET", "control character"),
                                              ("EGOV EXTRANET", "must start with a letter"),
                                              ("E" * 32, "longer than 31")])
def test_a_bad_vpn_name_is_refused(demo, plan, name, reason):
    tampered = demo.model_copy(update={"extranet": demo.extranet.model_construct(
        **{**dict(demo.extranet), "vpn_instance": name})})
    with pytest.raises(RenderError, match=rf"sj-hj1 extranet.vpn_instance: .*{reason}"):
        render_device(tampered, plan, "sj-hj1")


def test_the_template_environment_cannot_print_a_line_it_was_not_given():
    env = environment()
    with pytest.raises(RenderError, match="control character"):
        env.from_string("description {{ v }}").render(v="ok\nreturn")
    with pytest.raises(RenderError, match="printed a list"):
        env.from_string("x {{ v }}").render(v=["a"])
    with pytest.raises(RenderError, match="printed None"):
        env.from_string("x {{ v }}").render(v=None)
    with pytest.raises(Exception, match="undefined"):
        env.from_string("x {{ missing }}").render()
    assert env.from_string("vlan {{ n }} {{ s }}").render(n=10, s="ok") == "vlan 10 ok"


def test_vendor_rules(demo):
    assert vendor.printed_interface(Platform.ruijie_os, "GigabitEthernet0/1") == "GigabitEthernet 0/1"
    assert vendor.printed_interface(Platform.hp_comware, "Vlan-interface300") == "Vlan-interface300"
    for platform, bad in ((Platform.huawei_vrp, "Vlan100"), (Platform.cisco_ios, "Vlanif100"),
                          (Platform.hp_comware, "Vlanif5000")):
        with pytest.raises(vendor.VendorRuleError):
            vendor.interface_name(platform, bad)
    assert vendor.route_distinguisher("65010:100") == "65010:100"
    assert vendor.route_distinguisher("4200000000:100") == "4200000000:100"
    for bad in ("4200000000:70000", "10.0.0.300:1", "65010", "65010:1 "):
        with pytest.raises(vendor.VendorRuleError):
            vendor.route_distinguisher(bad)
    with pytest.raises(vendor.VendorRuleError):
        vendor.acl_number(Platform.huawei_vrp, 4000, "advanced")
    with pytest.raises(vendor.VendorRuleError):
        vendor.acl_name(Platform.cisco_ios, "100")
    assert vendor.vpn_name(Platform.cisco_ios, "E" * 32) == "E" * 32


# --- data, not code --------------------------------------------------------------------------------------


def test_the_baseline_is_tuned_by_data_and_checked(demo, plan, tmp_path):
    from network.render import DEFAULT_BASELINE, load_baseline

    data = yaml.safe_load(DEFAULT_BASELINE.read_text(encoding="utf-8"))
    data["idle_timeout_minutes"] = 5
    data["acl"]["management"]["name"] = "OPS-ONLY"
    tuned = tmp_path / "baseline.yaml"
    tuned.write_text(yaml.safe_dump(data), encoding="utf-8")
    r = render_device(demo, plan, "gaj-jr1", load_baseline(tuned))
    assert " exec-timeout 5 0" in r.lines and " access-class OPS-ONLY in" in r.lines
    data["idle_timeout_minutes"] = 0  # 0 disables the timeout: graded protection forbids it
    tuned.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(RenderError, match="idle_timeout_minutes"):
        load_baseline(tuned)
    data["idle_timeout_minutes"] = 10
    data["acl"]["management"]["number"] = 3001  # an advanced number where a basic ACL belongs
    tuned.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(RenderError, match=r"sj-hj1 baseline acl.management: .*2000-2999"):
        render_device(demo, plan, "sj-hj1", load_baseline(tuned))


def test_without_management_services_the_baseline_cannot_be_rendered(demo, plan):
    tampered = demo.model_copy(update={"extranet": demo.extranet.model_copy(update={"management": None})})
    with pytest.raises(RenderError, match=r"extranet\.management"):
        render_device(tampered, plan, "gaj-jr1")


def test_a_golden_interface_beside_extranet_ones_is_left_alone(rendered):
    r = rendered["rsj-jr1"]
    assert "interface GigabitEthernet 0/2" not in r.lines and "GigabitEthernet0/2: golden network 金保" in r.skipped
    county = rendered["dx-hj1"]
    assert not any("GigabitEthernet1/0/24" in line for line in county.lines)


# --- the service the command line and the demo call -------------------------------------------------------


def test_the_service_plans_renders_and_writes_and_names_bad_input(demo, tmp_path):
    from network import service
    from network.report import write_reports

    with pytest.raises(service.NetworkInputError, match="no address plan at"):
        service.render(demo, tmp_path / "configs", plan_path=tmp_path / "missing.yaml")
    planned = service.plan(demo, tmp_path / "demo.yaml")
    assert planned.path == tmp_path / "demo.yaml" and planned.path.exists() and planned.inv is demo
    assert [p.name for p in write_reports(planned, tmp_path / "out")] == ["network-plan.xlsx", "network-plan.html"]

    result = service.render(demo, tmp_path / "configs", plan_path=planned.path)
    assert "swj-jr1" in result.skipped and "swj-jr1" not in result.rendered  # the golden device, with why
    assert sorted(p.name for p in result.written) == sorted(f"{n}.cfg" for n in result.rendered)
    for path in result.written:
        assert path.read_text(encoding="ascii") == result.rendered[path.stem].text
    only = service.render(demo, None, limit="role_core", plan_path=planned.path)
    assert only.written == [] and set(only.rendered) == {n for n, d in demo.devices.items() if d.role.value == "core"}
    with pytest.raises(service.NetworkInputError, match="matches no host, device or group"):
        service.render(demo, None, limit="no-such-device", plan_path=planned.path)
    configs, skipped = service.intended_configs(demo, "devices", plan_path=planned.path)
    assert configs == {n: r.lines for n, r in result.rendered.items()} and skipped == result.skipped


def test_without_ipv6_management_sources_the_vty_gets_a_deny_all_ipv6_acl(demo, plan):
    """A dual-stack device always gets an IPv6 vty ACL: with no IPv6 source it denies all, never none."""
    mgmt = demo.extranet.management
    v4 = [s for s in mgmt.sources if s.version == 4] or [s for s in mgmt.sources]
    tampered = demo.model_copy(update={"extranet": demo.extranet.model_copy(
        update={"management": mgmt.model_copy(update={"sources": v4})})})
    text = "\n".join(render_device(tampered, plan, "gaj-jr1").lines)
    assert re.search(r"(ipv6 access-class|acl ipv6) \S+ in", text), text


def test_ipv6_management_sources_fall_back_to_the_ipv6_management_subnets(demo, plan):
    """Sources declared for IPv4 only: the IPv6 vty ACL permits the IPv6 management subnets, as IPv4 would
    permit the IPv4 ones with nothing declared, rather than denying all."""
    mgmt = demo.extranet.management
    v4 = [s for s in mgmt.sources if s.version == 4]
    some = next(iter(demo.subnets.values()))
    extra = some.model_copy(update={"name": "management6", "kind": SubnetKind.management,
                                    "prefix": ipaddress.ip_network("2001:db8:30::/64"),
                                    "gateway": ipaddress.ip_address("2001:db8:30::1")})
    tampered = demo.model_copy(update={
        "subnets": {**demo.subnets, "management6": extra},
        "extranet": demo.extranet.model_copy(update={"management": mgmt.model_copy(update={"sources": v4})})})
    text = "\n".join(render_device(tampered, plan, "gaj-jr1").lines)
    assert re.search(r"permit\b.*2001:DB8:30::", text, re.IGNORECASE), text
    for source in v4:
        assert str(source.network_address) in text, text


# --- carrier-facing egress ports ---------------------------------------------------------------------------

# The routed-port line and the VPN binding of each platform (VRP `undo portswitch`, Comware `port link-mode route`,
# IOS and RGOS `no switchport`); the sample city's two cores are its exits, three more make every platform one.
ROUTED = {Platform.huawei_vrp: ("undo portswitch", "ip binding vpn-instance"),
          Platform.huawei_vrpv8: ("undo portswitch", "ip binding vpn-instance"),
          Platform.hp_comware: ("port link-mode route", "ip binding vpn-instance"),
          Platform.cisco_ios: ("no switchport", "vrf forwarding"),
          Platform.ruijie_os: ("no switchport", "vrf forwarding")}
MORE_EXITS = [("sj-hj1", "GigabitEthernet0/0/1", 1), ("gaj-jr1", "GigabitEthernet0/1", 2),
              ("rsj-jr1", "GigabitEthernet0/1", 3)]


@pytest.fixture(scope="module")
def exits(demo, plan):
    """The sample city with an egress on every platform, rendered on those five devices."""
    from inventory.model import Egress

    more = [Egress(name=f"test{n}", device=device, interface=iface, ipv4=f"192.0.2.{4 * n + 2}/30",
                   ipv6=f"2001:db8:fffe:{n}::2/64", ipv4_next_hop=f"192.0.2.{4 * n + 1}",
                   ipv6_next_hop=f"2001:db8:fffe:{n}::1") for device, iface, n in MORE_EXITS]
    ext = demo.extranet.model_copy(update={"egress": [*demo.extranet.egress, *more]})
    inv = demo.model_copy(update={"extranet": ext})
    return inv, render(inv, plan, [e.device for e in ext.egress])


def test_each_egress_port_is_a_routed_port_in_the_vpn_addressed_in_both_families(exits):
    inv, rendered = exits
    assert {r.platform for r in rendered.values()} == set(Platform)
    for e in inv.extranet.egress:
        r = rendered[e.device]
        mode, bind = ROUTED[r.platform]
        block = interface_block(r.text, vendor.printed_interface(r.platform, e.interface))
        declared = next(i for i in inv.devices[e.device].interfaces if i.name == e.interface)
        enable = [] if r.platform is Platform.hp_comware else ["ipv6 enable"]  # Comware 7 has none
        assert block == [mode, f"description {declared.description}", f"{bind} EGOV-EXTRANET",
                         f"ip address {e.ipv4.ip} {e.ipv4.netmask}", *enable,
                         f"ipv6 address {str(e.ipv6).upper()}"], (e.device, block)
        assert r.line_features[r.lines.index(f"interface {vendor.printed_interface(r.platform, e.interface)}")] \
            == "interfaces"
        routes = r.features["routes"]
        assert str(e.ipv4_next_hop) in routes and str(e.ipv6_next_hop).upper() in routes


def test_every_platforms_simulator_accepts_the_egress_port_lines(exits):
    """The lab's simulated devices (grammars written from the vendors' references) take every rendered line of
    an egress port, on the port as the device boots it (an uplink trunk), and show it as a routed port."""
    from lab.netsim.baseline import device_config
    from lab.netsim.config import Config
    from lab.netsim.grammar import load

    inv, rendered = exits
    for e in inv.extranet.egress:
        device, r = inv.devices[e.device], rendered[e.device]
        config = Config(load(device.platform.value))
        assert config.load(device_config(inv, device)) == [], e.device
        for feature in ("vpn_instance", "interfaces", "routes"):  # as a push sends them
            assert config.load(r.features[feature]) == [], (e.device, feature)
        name = vendor.printed_interface(r.platform, e.interface)
        shown = interface_block(config.render(), name)
        assert ROUTED[r.platform][0] in shown and f"ip address {e.ipv4.ip} {e.ipv4.netmask}" in shown, shown
        assert not [line for line in shown if "trunk" in line or line.startswith("port link-type")], shown


def test_an_egress_description_that_could_smuggle_a_command_is_refused(demo, plan):
    [first, *rest] = demo.extranet.egress
    bad = first.model_construct(**{**first.model_dump(), "description": "x\nline vty 0 4"})
    inv = demo.model_copy(update={"extranet": demo.extranet.model_copy(update={"egress": [bad, *rest]})})
    with pytest.raises(RenderError, match=r"sj-hx1 interface GE1/0/1 extranet.egress dianxin description"):
        render_device(inv, plan, "sj-hx1")
