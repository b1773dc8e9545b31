"""What a push may change on a device, checked on the device: lines nobody asked jiyue to manage stay,
jiyue's ACLs are changed with the vendor's own commands and converge, an ACL jiyue did not create is
never rewritten, the baseline is a floor, and a VPN binding that removes addresses shows what it loses
before --apply.

The oracle is the simulated device's own running configuration (lab/netsim over real SSH); the pure
tests at the top pin the diff's commands for the same cases.
"""

from __future__ import annotations

import os
import re
import secrets

import pytest

from inventory.model import Device, DeviceCredentials, DeviceRole, Platform, SecretRef
from jiyue.device import DeviceError
from jiyue.platforms import cli
from lab.netsim import DeviceSpec
from lab.netsim.baseline import device_config
from lab.netsim.lab import start_devices
from network.diff import diff, missing_lines
from network.plan import build_plan
from network.push import APPLIED, DRY_RUN, REFUSED, UNCHANGED, Pusher, PushOptions
from network.render import render, select_devices

# --- the diff's commands -----------------------------------------------------------------------------------


def _diff(platform: str, running: str, intended: str):
    return diff("x", platform, cli(platform).config_text(running), intended)


def test_secondary_link_local_and_other_ipv6_addresses_are_out_of_scope():
    for platform, extra in (("huawei_vrp", [" ip address 10.7.7.1 255.255.255.0 sub"]),
                            ("hp_comware", [" ip address 10.7.7.1 255.255.255.0 sub"]),
                            ("cisco_ios", [" ip address 10.7.7.1 255.255.255.0 secondary",
                                           " ipv6 address FE80::1 link-local", " ipv6 address 2001:DB8:FF::1/64"])):
        iface = {"huawei_vrp": "Vlanif110", "hp_comware": "Vlan-interface110", "cisco_ios": "Vlan110"}[platform]
        running = "\n".join([f"interface {iface}", " ip address 10.9.9.1 255.255.255.0", *extra,
                             " ipv6 address 2001:DB8::1/64", ""])
        d = _diff(platform, running, f"interface {iface}\n ip address 10.80.0.1 255.255.255.0\n"
                                     " ipv6 address 2001:DB8::1/64\n")
        assert "ip address 10.80.0.1 255.255.255.0" in d.remediation, (platform, d.remediation)
        assert not [line for line in d.remediation if line.startswith(("undo ipv6", "no ipv6"))
                    or "10.7.7.1" in line], (platform, d.remediation)


def test_acl_entries_are_removed_by_their_own_number_in_the_vendors_form():
    mgmt4 = "ip access-list standard JY-MGMT\n 5 permit 10.0.0.0 0.0.0.255\n 1000 deny any\n"
    mgmt6 = "ipv6 access-list JY-MGMT6\n sequence 5 permit ipv6 2001:DB8::/64 any\n sequence 1000 deny ipv6 any any\n"
    extra6 = " sequence 7 permit ipv6 2001:DB8:1::/64 any\n"
    ios = _diff("cisco_ios", mgmt4 + " 1010 permit 10.1.1.5\n" + mgmt6 + extra6, mgmt4 + mgmt6)
    assert ios.remediation == ["ip access-list standard JY-MGMT", "no 1010", "exit",
                               "ipv6 access-list JY-MGMT6", "no sequence 7", "exit"]
    # an entry printed without a number is known, and removed, by its body; a missing one is added under its number
    plain = _diff("cisco_ios", "ip access-list standard JY-MGMT\n permit 10.1.1.5\n deny any\n",
                  "ip access-list standard JY-MGMT\n 5 permit 10.0.0.0 0.0.0.255\n 1000 deny any\n")
    assert plain.remediation == ["ip access-list standard JY-MGMT", "no permit 10.1.1.5",
                                 "5 permit 10.0.0.0 0.0.0.255", "exit"]
    vrp_acl = "acl number 2001\n description JY-MGMT jiyue\n rule 5 permit source 10.0.0.0 0.0.0.255\n rule 1000 deny\n"
    vrp = _diff("huawei_vrp", vrp_acl + " rule 7 permit source 10.1.1.5 0\n", vrp_acl)
    assert vrp.remediation == ["acl number 2001", "undo rule 7", "quit"]


NAT_RUNNING = """\
acl number 2001
 rule 5 permit source 192.168.0.0 0.0.255.255
acl number 2002
 rule 5 permit source 10.0.0.0 0.0.0.255
interface GigabitEthernet0/0/1
 nat outbound 2001
user-interface vty 0 4
 acl 2001 inbound
"""
MGMT_INTENDED = """\
acl number 2001
 description JY-MGMT jiyue
 rule 5 permit source 198.18.30.0 0.0.0.255
 rule 1000 deny
user-interface vty 0 4
 acl 2001 inbound
"""


def test_an_acl_number_jiyue_did_not_create_is_left_alone_and_jiyue_takes_a_free_one():
    d = _diff("huawei_vrp", NAT_RUNNING, MGMT_INTENDED)
    assert not [line for line in d.remediation if re.search(r"\b200[12]\b", line)], d.remediation
    assert d.remediation[:4] == ["acl number 2003", "description JY-MGMT jiyue", "rule 5 permit source 198.18.30.0 "
                                 "0.0.0.255", "rule 1000 deny"] and "acl 2003 inbound" in d.remediation
    assert any("2001" in n and "nat outbound 2001" in n and "2003" in n for n in d.notes), d.notes
    assert d.shown[0].startswith("# ") and "not jiyue's" in d.shown[0]
    # once there, jiyue's ACL is known by its description wherever it is: verification finds it, nothing to do
    after = NAT_RUNNING.replace("user-interface vty 0 4\n acl 2001 inbound\n", "acl number 2003\n description "
                                "JY-MGMT jiyue\n rule 5 permit source 198.18.30.0 0.0.0.255\n rule 1000 deny\n"
                                "user-interface vty 0 4\n acl 2003 inbound\n")
    assert _diff("huawei_vrp", after, MGMT_INTENDED).empty
    assert not missing_lines("huawei_vrp", cli("huawei_vrp").config_text(after), MGMT_INTENDED)
    # no free number of the kind: refused, saying what to change
    full = "".join(f"acl number {n}\n rule 5 permit\n" for n in range(2000, 3000))
    with pytest.raises(DeviceError, match=r"no number 2000-2999 is free.*baseline.yaml") as exc:
        _diff("huawei_vrp", full, MGMT_INTENDED)
    assert exc.value.kind == "refused"


def test_a_named_acl_someone_else_uses_is_refused():
    running = ("ip access-list standard JY-MGMT\n 10 permit 192.168.0.0 0.0.255.255\n"
               "snmp-server community x RO JY-MGMT\n")
    with pytest.raises(DeviceError, match=r"JY-MGMT that jiyue did not create.*snmp-server community.*baseline.yaml"):
        _diff("cisco_ios", running, "ip access-list standard JY-MGMT\n 5 permit 10.0.0.0 0.0.0.255\n 1000 deny any\n")


def test_thresholds_are_floors_a_stricter_device_keeps_its_value():
    comware = _diff("hp_comware",
                    "password-control login-attempt 3 exceed lock-time 5\nline vty 0 63\n idle-timeout 5 0\n",
                    "password-control login-attempt 5 exceed lock-time 10\nline vty 0 63\n idle-timeout 10 0\n")
    # attempts stay 3 (stricter), the weaker lock time is raised to the baseline's 10; the idle timeout stays 5
    assert comware.remediation == ["password-control login-attempt 3 exceed lock-time 10"], comware.remediation
    assert any("login attempts: 3" in n for n in comware.notes)
    ios = _diff("cisco_ios", "login block-for 900 attempts 3 within 600\nline vty 0 15\n exec-timeout 0 0\n",
                "login block-for 600 attempts 5 within 300\nline vty 0 15\n exec-timeout 10 0\n")
    assert ios.remediation == ["line vty 0 15", "exec-timeout 10 0", "exit"], ios.remediation  # 0 0 never times out
    vrp = _diff("huawei_vrp", "aaa\n local-aaa-user wrong-password retry-interval 10 retry-time 6 block-time 30\n",
                "aaa\n local-aaa-user wrong-password retry-interval 5 retry-time 5 block-time 10\n")
    assert "local-aaa-user wrong-password retry-interval 10 retry-time 5 block-time 30" in vrp.remediation


def test_a_vpn_binding_resends_what_it_removes_and_names_what_is_lost():
    d = _diff("cisco_ios", "vrf definition E\ninterface Vlan310\n ip address 10.81.4.2 255.255.255.0\n"
                           " ip address 10.7.7.1 255.255.255.0 secondary\n ipv6 address FE80::1 link-local\n",
              "vrf definition E\ninterface Vlan310\n vrf forwarding E\n ip address 10.81.4.2 255.255.255.0\n")
    assert d.remediation == ["interface Vlan310", "vrf forwarding E", "ip address 10.81.4.2 255.255.255.0", "exit"]
    lost = [n for n in d.notes if "not put back" in n]
    assert len(lost) == 2 and "10.7.7.1" in lost[0] and "FE80::1 link-local" in lost[1]


RETURN = {  # a renumbered VLAN's old return route (jiyue's, tagged), the new one, and an operator's own route
    "huawei_vrp": ("ip route-static vpn-instance E 10.80.4.0 255.255.255.0 10.83.255.3 description jiyue-return",
                   "ip route-static vpn-instance E 10.80.5.0 255.255.255.0 10.83.255.3 description jiyue-return",
                   "undo ip route-static vpn-instance E 10.80.4.0 255.255.255.0 10.83.255.3",
                   "ip route-static vpn-instance E 10.99.0.0 255.255.0.0 10.83.255.9"),
    "hp_comware": ("ipv6 route-static vpn-instance E 2001:DB8:8000:200:: 64 2001:DB8:8000:FF00::3 description "
                   "jiyue-return",
                   "ipv6 route-static vpn-instance E 2001:DB8:8000:201:: 64 2001:DB8:8000:FF00::3 description "
                   "jiyue-return",
                   "undo ipv6 route-static vpn-instance E 2001:DB8:8000:200:: 64 2001:DB8:8000:FF00::3",
                   "ipv6 route-static vpn-instance E 2001:DB8:99:: 48 2001:DB8:8000:FF00::9"),
    "cisco_ios": ("ip route vrf E 10.80.4.0 255.255.255.0 10.83.255.3 name jiyue-return",
                  "ip route vrf E 10.80.5.0 255.255.255.0 10.83.255.3 name jiyue-return",
                  "no ip route vrf E 10.80.4.0 255.255.255.0 10.83.255.3",
                  "ip route vrf E 10.99.0.0 255.255.0.0 10.83.255.9"),
    "ruijie_os": ("ipv6 route vrf E 2001:DB8:8000:200::/64 2001:DB8:8000:FF00::3 description jiyue-return",
                  "ipv6 route vrf E 2001:DB8:8000:201::/64 2001:DB8:8000:FF00::3 description jiyue-return",
                  "no ipv6 route vrf E 2001:DB8:8000:200::/64 2001:DB8:8000:FF00::3",
                  "ipv6 route vrf E 2001:DB8:99::/48 2001:DB8:8000:FF00::9"),
}


@pytest.mark.parametrize("platform", sorted(RETURN))
def test_a_renumbered_vlans_old_return_route_goes_by_the_vendors_removal_form_and_others_stay(platform):
    """jiyue's return routes carry its tag, so the scope owns them by pattern: the old one is removed by its
    destination and next hop (the removal form takes no description), an untagged route is never touched."""
    old, new, removal, theirs = RETURN[platform]
    d = _diff(platform, "\n".join([old, theirs, ""]), new + "\n")
    assert d.remediation == [new, removal], d.remediation
    assert not _diff(platform, "\n".join([new, theirs, ""]), new + "\n").remediation


ROUTED_PORT = {  # a carrier port as it boots (an uplink trunk), and the routed port jiyue renders
    "huawei_vrpv8": ("interface GE1/0/1\n description up\n port link-type trunk\n"
                     " port trunk allow-pass vlan 2 to 4094\n",
                     ["interface GE1/0/1", "undo portswitch", "description up", "ip binding vpn-instance E",
                      "ip address 203.0.113.2 255.255.255.252", "ipv6 enable", "ipv6 address 2001:DB8:FFFF:1::2/64"]),
    "hp_comware": ("interface GigabitEthernet1/0/1\n port link-mode bridge\n description up\n port link-type trunk\n",
                   ["interface GigabitEthernet1/0/1", "port link-mode route", "description up",
                    "ip binding vpn-instance E", "ip address 203.0.113.2 255.255.255.252",
                    "ipv6 address 2001:DB8:FFFF:1::2/64"]),
    "cisco_ios": ("interface GigabitEthernet0/1\n description up\n switchport mode trunk\n",
                  ["interface GigabitEthernet0/1", "no switchport", "description up", "vrf forwarding E",
                   "ip address 203.0.113.2 255.255.255.252", "ipv6 enable", "ipv6 address 2001:DB8:FFFF:1::2/64"]),
}


@pytest.mark.parametrize("platform", sorted(ROUTED_PORT))
def test_turning_a_carrier_port_routed_sends_the_whole_port_and_names_what_the_reset_drops(platform):
    running, rendered = ROUTED_PORT[platform]
    intended = "\n".join([rendered[0], *(f" {line}" for line in rendered[1:]), ""])
    d = _diff(platform, running, intended)
    assert d.remediation[:len(rendered)] == rendered, d.remediation  # the mode first, then every line of the port
    assert [n for n in d.notes if "trunk" in n and "resets the port" in n], d.notes
    done = "\n".join([rendered[0], *(f" {line}" for line in rendered[1:]), ""])
    assert not _diff(platform, done, intended).remediation  # the device shows it so: nothing more to do


def test_a_renumbered_carrier_link_replaces_its_addresses_and_keeps_the_link_local():
    """Under a routed port jiyue renders, the global IPv6 address is one slot (network/scope.yaml routed_ports)."""
    port = ["interface GigabitEthernet0/1", " no switchport", " vrf forwarding E"]
    running = "\n".join([*port, " ip address 203.0.113.2 255.255.255.252", " ipv6 enable",
                         " ipv6 address 2001:DB8:FFFF:1::2/64", " ipv6 address FE80::1 link-local", ""])
    intended = "\n".join([*port, " ip address 203.0.113.6 255.255.255.252", " ipv6 enable",
                          " ipv6 address 2001:DB8:FFFF:9::2/64", ""])
    d = _diff("cisco_ios", running, intended)
    assert d.remediation == ["interface GigabitEthernet0/1", "no ipv6 address 2001:DB8:FFFF:1::2/64",
                             "ip address 203.0.113.6 255.255.255.252", "ipv6 address 2001:DB8:FFFF:9::2/64", "exit"]


# --- on the devices ----------------------------------------------------------------------------------------

SOURCES = {"huawei_vrp": "sj-hj1", "huawei_vrpv8": "sj-hx1", "hp_comware": "dx-hj1", "cisco_ios": "dxjyj-jr1",
           "ruijie_os": "rsj-jr1"}  # the sample city's device whose rendered config each test device gets
NAMES = {p: f"t-scope-{i}" for i, p in enumerate(SOURCES)}


@pytest.fixture(scope="module")
def devices(lab, demo):
    """One device per platform (198.18.30.231-235), booted as the sample city's device of that platform,
    with that device's full rendered config as its intended one."""
    rendered = render(demo, build_plan(demo), select_devices(demo, None).names)
    password = secrets.token_urlsafe(12)
    os.environ["JIYUE_TEST_SCOPE_PASSWORD"] = password
    boot = {p: device_config(demo, demo.devices[src]) for p, src in SOURCES.items()}
    specs = [DeviceSpec(name=NAMES[p], platform=p, address=f"198.18.30.{231 + i}", password=password,
                        config=boot[p]) for i, p in enumerate(SOURCES)]
    sim = start_devices(lab, specs)
    creds = DeviceCredentials(username="netops", password=SecretRef(env="JIYUE_TEST_SCOPE_PASSWORD"))
    inv = demo.model_copy(update={"devices": {s.name: Device(
        name=s.name, platform=Platform(s.platform), address=s.address, site="test", role=DeviceRole.access,
        credentials=creds) for s in specs}})
    intended = {NAMES[p]: rendered[src].lines for p, src in SOURCES.items()}
    yield sim, inv, intended, rendered, boot
    sim.stop(list(NAMES.values()))


def _push(devices, tmp_path, platforms, apply=True):
    sim, inv, intended, _, _ = devices
    names = [NAMES[p] for p in platforms]
    options = PushOptions(apply=apply, backups=tmp_path / "b", known_hosts=sim.known_hosts, progress=False)
    return {o.platform: o for o in Pusher(inv, {n: intended[n] for n in names}, options).run(names).outcomes}


def _seed(devices, platforms, edit) -> None:
    """Each device as it boots, then `edit(platform, running config text)` loaded as its configuration."""
    sim, boot = devices[0], devices[4]
    for p in platforms:
        sim.reset(NAMES[p], config=boot[p])
        if edit is not None:
            sim.reset(NAMES[p], config=edit(p, sim.running_config(NAMES[p])))


def _under(text: str, header: str, lines: list[str]) -> str:
    """`lines` added at the end of the section `header` of a printed configuration (the section added first
    if missing), as an engineer typing them after what is there."""
    out = text.splitlines()
    if header not in out:
        return "\n".join([header, *lines, *out]) + "\n"
    at = out.index(header) + 1
    while at < len(out) and out[at].startswith(" ") and out[at].strip() not in ("#", "!"):
        at += 1
    return "\n".join([*out[:at], *lines, *out[at:]]) + "\n"


def _section(running: str, header: str) -> list[str]:
    lines = running.splitlines()
    at = lines.index(header)
    body = []
    for line in lines[at + 1:]:
        if not line.startswith(" ") or line.strip() in ("#", "!"):
            break
        body.append(line.strip())
    return body


def _iface(rendered, platform: str, department: bool = True) -> str:
    """A managed VLAN interface's header, as the device prints it: a department one (with the boundary ACL)."""
    r = rendered[SOURCES[platform]]
    return next(s.header for s in r.sections if s.header.startswith("interface ")
                and any(("access-group" in t or "filter" in t) for t, _ in s.children) == department)


def _ok(outcomes, status) -> None:
    bad = {p: (o.status, o.reason, o.rollback, o.diff) for p, o in outcomes.items() if o.status != status}
    assert not bad, bad


@pytest.mark.lab
def test_secondary_and_link_local_addresses_on_managed_interfaces_are_never_removed(devices, tmp_path):
    sim, _, _, rendered, _ = devices
    platforms = ["huawei_vrp", "hp_comware", "cisco_ios", "ruijie_os"]
    _seed(devices, platforms, None)
    _ok(_push(devices, tmp_path, platforms), APPLIED)  # the first push binds the VLAN interfaces to the VPN
    extra = {"huawei_vrp": [" ip address 10.7.7.1 255.255.255.0 sub"],
             "hp_comware": [" ip address 10.7.7.1 255.255.255.0 sub"],
             "cisco_ios": [" ip address 10.7.7.1 255.255.255.0 secondary", " ipv6 address FE80::1 link-local",
                           " ipv6 address 2001:DB8:FFFF::1/64"],
             "ruijie_os": [" ip address 10.7.7.1 255.255.255.0 secondary", " ipv6 address FE80::1 link-local"]}
    for p in platforms:  # an engineer adds addresses of their own beside jiyue's
        sim.reset(NAMES[p], config=_under(sim.running_config(NAMES[p]), _iface(rendered, p), extra[p]))
    again = _push(devices, tmp_path, platforms)
    _ok(again, UNCHANGED)  # nothing of theirs is negated, and nothing of jiyue's is missing
    for p in platforms:
        body = _section(sim.running_config(NAMES[p]), _iface(rendered, p))
        assert all(line.strip() in body for line in extra[p]), (p, body)


@pytest.mark.lab
def test_an_engineers_entry_in_jiyues_acl_goes_by_its_own_number_and_the_push_converges(devices, tmp_path):
    sim = devices[0]
    platforms = ["huawei_vrp", "hp_comware", "cisco_ios", "ruijie_os"]
    _seed(devices, platforms, None)
    _ok(_push(devices, tmp_path, platforms), APPLIED)
    mgmt = {"huawei_vrp": "acl number 2001", "hp_comware": "acl basic 2001", "cisco_ios": "ip access-list standard "
            "JY-MGMT", "ruijie_os": "ip access-list standard JY-MGMT"}
    theirs = {"huawei_vrp": " rule permit source 10.1.1.5 0", "hp_comware": " rule permit source 10.1.1.5 0",
              "cisco_ios": " permit 10.1.1.5", "ruijie_os": " permit 10.1.1.5"}
    ours = {}
    for p in platforms:  # typed without a number, as an engineer does: the device numbers it after jiyue's
        ours[p] = _section(sim.running_config(NAMES[p]), mgmt[p])
        sim.reset(NAMES[p], config=_under(sim.running_config(NAMES[p]), mgmt[p], [theirs[p]]))
        assert len(_section(sim.running_config(NAMES[p]), mgmt[p])) == len(ours[p]) + 1
    push = _push(devices, tmp_path, platforms)
    _ok(push, APPLIED)
    removal = {"huawei_vrp": "  undo rule 1005", "hp_comware": "  undo rule 1005", "cisco_ios": "  no 1010",
               "ruijie_os": "  no 1010"}
    for p in platforms:
        o = push[p]
        assert o.diff == [mgmt[p], removal[p]], (p, o.diff)  # exactly the engineer's entry, by its number
        assert _section(sim.running_config(NAMES[p]), mgmt[p]) == ours[p], p  # jiyue's own entries intact
    _ok(_push(devices, tmp_path, platforms), UNCHANGED)


@pytest.mark.lab
def test_an_acl_number_used_by_nat_is_never_rewritten_jiyue_takes_a_free_one(devices, tmp_path):
    sim = devices[0]
    platforms = ["huawei_vrp", "huawei_vrpv8", "hp_comware"]
    nat = {"huawei_vrp": ("acl number 2001", "interface GigabitEthernet0/0/1"),
           "huawei_vrpv8": ("acl number 2001", "interface Vlanif100"),
           "hp_comware": ("acl basic 2001", "interface GigabitEthernet1/0/1")}

    def with_nat(p: str, text: str) -> str:
        acl, iface = nat[p]
        text = _under(text, iface, [" nat outbound 2001"])
        return _under(text, acl, [" rule 5 permit source 192.168.0.0 0.0.255.255"])

    _seed(devices, platforms, with_nat)
    before = {p: _section(sim.running_config(NAMES[p]), nat[p][0]) for p in platforms}
    dry = _push(devices, tmp_path, platforms, apply=False)
    _ok(dry, DRY_RUN)
    for p, o in dry.items():
        assert any("ACL 2001 is not jiyue's" in line and "nat outbound 2001" in line for line in o.diff), (p, o.diff)
    _ok(_push(devices, tmp_path, platforms), APPLIED)
    for p in platforms:
        running = sim.running_config(NAMES[p])
        assert _section(running, nat[p][0]) == before[p], p  # the NAT's ACL exactly as it was
        assert "nat outbound 2001" in _section(running, nat[p][1])
        mine = nat[p][0].replace("2001", "2002")
        assert _section(running, mine)[0] == "description JY-MGMT jiyue", (p, running)
        assert re.search(r"^ acl 2002 inbound$", running, re.M) and not re.search(r"^ acl 2001 inbound$", running, re.M)
    _ok(_push(devices, tmp_path, platforms), UNCHANGED)


@pytest.mark.lab
def test_a_named_acl_someone_else_uses_is_refused_and_the_device_left_as_it_was(devices, tmp_path):
    sim = devices[0]
    _seed(devices, ["cisco_ios"], lambda p, text: _under(text, "ip access-list standard JY-MGMT",
                                                         [" 10 permit 192.168.0.0 0.0.255.255"])
          .replace("snmp-server group", "snmp-server community inside RO JY-MGMT\nsnmp-server group", 1))
    before = sim.running_config(NAMES["cisco_ios"])
    o = _push(devices, tmp_path, ["cisco_ios"])["cisco_ios"]
    assert o.status == REFUSED and "did not create" in o.reason and "baseline.yaml" in o.reason, o.reason
    assert sim.running_config(NAMES["cisco_ios"]) == before and not o.backup


@pytest.mark.lab
def test_a_device_already_stricter_than_the_baseline_keeps_its_settings(devices, tmp_path):
    sim = devices[0]
    platforms = ["hp_comware", "cisco_ios", "huawei_vrp"]

    def stricter(p: str, text: str) -> str:
        if p == "hp_comware":
            text = text.replace("password-control login-attempt 5 exceed lock-time 10",
                                "password-control login-attempt 3 exceed lock-time 5")
            return text.replace(" idle-timeout 10 0", " idle-timeout 5 0")
        if p == "cisco_ios":
            text = re.sub(r"login block-for \d+ attempts \d+ within \d+", "login block-for 900 attempts 3 within 600",
                          text)
            return _under(text, "line vty 0 4", [" exec-timeout 5 0"])  # the range the device shows
        return re.sub(r"(?m)^ idle-timeout 0 0$", " idle-timeout 3 0", text)  # VRP: the weak sample device's vty

    _seed(devices, platforms, stricter)
    _ok(_push(devices, tmp_path, platforms), APPLIED)
    comware = sim.running_config(NAMES["hp_comware"])
    assert "password-control login-attempt 3 exceed lock-time 10" in comware  # 3 kept; the weaker 5 raised to 10
    assert "idle-timeout 5 0" in _section(comware, "line vty 0 63")
    ios = sim.running_config(NAMES["cisco_ios"])
    assert "login block-for 900 attempts 3 within 600" in ios and " exec-timeout 5 0" in ios
    assert "exec-timeout 5 0" in _section(ios, "line vty 0 4")
    assert "idle-timeout 3 0" in _section(sim.running_config(NAMES["huawei_vrp"]), "user-interface vty 0 4")
    _ok(_push(devices, tmp_path, platforms), UNCHANGED)


@pytest.mark.lab
def test_binding_the_vpn_readds_the_planned_address_and_the_preview_shows_what_is_lost(devices, tmp_path):
    sim, _, intended, rendered, _ = devices
    platforms = ["huawei_vrp", "hp_comware", "cisco_ios", "ruijie_os"]
    secondary = {"huawei_vrp": "sub", "hp_comware": "sub", "cisco_ios": "secondary", "ruijie_os": "secondary"}
    planned = {}

    def addressed(p: str, text: str) -> str:
        header = _iface(rendered, p)
        planned[p] = next(line for line in intended[NAMES[p]][intended[NAMES[p]].index(header) + 1:]
                          if re.match(r"^ ip address \S+ \S+$", line))
        # the planned address already there, in the global table, beside an address jiyue does not manage
        return _under(text, header, [planned[p], f" ip address 10.7.7.1 255.255.255.0 {secondary[p]}"])

    _seed(devices, platforms, addressed)
    before = {p: sim.running_config(NAMES[p]) for p in platforms}
    dry = _push(devices, tmp_path, platforms, apply=False)
    _ok(dry, DRY_RUN)
    for p, o in dry.items():
        assert any("10.7.7.1" in line and "not put back" in line for line in o.diff), (p, o.diff)
        assert sim.running_config(NAMES[p]) == before[p]
    _ok(_push(devices, tmp_path, platforms), APPLIED)
    for p in platforms:
        body = _section(sim.running_config(NAMES[p]), _iface(rendered, p))
        assert planned[p].strip() in body and not any("10.7.7.1" in line for line in body), (p, body)
    _ok(_push(devices, tmp_path, platforms), UNCHANGED)
