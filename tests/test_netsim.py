"""The simulated network devices, driven by netmiko's own drivers over real SSH in the lab.

The sample city's devices are only read here (other tests push to them); changes go to this module's
own devices, one per platform, started beside them in the lab's simulator. Timers run at 1/60 speed
(a device minute is a second), so automatic rollbacks happen within the test.
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hier_config import Platform as HCPlatform
from hier_config import get_hconfig
from netmiko import ConnectHandler
from netmiko.exceptions import ConfigInvalidException, ReadTimeout

from inventory.model import Platform
from lab.netsim import DeviceSpec, Netsim
from lab.netsim.baseline import device_config, weak_devices
from lab.netsim.config import Config
from lab.netsim.fakeswitches import start_fake_switch
from lab.netsim.grammar import PLATFORMS, load
from lab.netsim.lab import netsim, start_devices

# netmiko error_pattern per vendor (the vendors' error text, as netmiko's drivers match it)
ERROR = {"huawei_vrp": "Error:", "huawei_vrpv8": "Error:", "hp_comware": "% Unrecognized command",
         "cisco_ios": "% Invalid input", "ruijie_os": "% Invalid input"}
SHOW_RUN = {"huawei_vrp": "display current-configuration", "huawei_vrpv8": "display current-configuration",
            "hp_comware": "display current-configuration", "cisco_ios": "show running-config",
            "ruijie_os": "show running-config"}
HC = {"huawei_vrp": HCPlatform.HUAWEI_VRP, "huawei_vrpv8": HCPlatform.HUAWEI_VRP, "hp_comware": HCPlatform.HP_COMWARE5,
      "cisco_ios": HCPlatform.CISCO_IOS, "ruijie_os": HCPlatform.CISCO_IOS}
SCALE = 1 / 60  # a device minute lasts a second

# A realistic extranet change per platform, as jiyue renders it: VPN instance / VRF, an access VLAN interface
# bound to it with IPv4 and IPv6 addresses, default routes, an ACL6 on the interface.
CHANGE = {
    "huawei_vrp": ["ipv6", "ip vpn-instance EXTRANET", "ipv4-family", "route-distinguisher 65010:100", "quit",
                   "ipv6-family", "quit", "quit", "acl ipv6 number 3000",
                   "rule 5 permit ipv6 source 2001:db8:8000:200::/56", "quit",
                   "interface Vlanif120", "description fgw extranet", "ip binding vpn-instance EXTRANET",
                   "ip address 10.80.4.1 255.255.255.0", "ipv6 enable", "ipv6 address 2001:db8:8000:200::1/64",
                   "traffic-filter inbound ipv6 acl 3000", "quit",
                   "ip route-static vpn-instance EXTRANET 0.0.0.0 0 10.80.4.254",
                   "ipv6 route-static vpn-instance EXTRANET :: 0 2001:db8:8000:200::ffff"],
    "hp_comware": ["ip vpn-instance EXTRANET", "route-distinguisher 65010:100", "quit", "acl ipv6 advanced 3000",
                   "rule 5 permit ipv6 source 2001:db8:8000:200::/56", "quit", "interface Vlan-interface120",
                   "description fgw extranet", "ip binding vpn-instance EXTRANET", "ip address 10.80.4.1 255.255.255.0",
                   "ipv6 address 2001:db8:8000:200::1/64", "packet-filter ipv6 3000 inbound", "quit",
                   "ip route-static vpn-instance EXTRANET 0.0.0.0 0 10.80.4.254",
                   "ipv6 route-static vpn-instance EXTRANET :: 0 2001:db8:8000:200::ffff"],
    "cisco_ios": ["ipv6 unicast-routing", "vrf definition EXTRANET", "rd 65010:100", "address-family ipv4",
                  "exit-address-family", "address-family ipv6", "exit-address-family", "exit",
                  "ipv6 access-list EXTRANET-IN", "permit ipv6 2001:db8:8000:200::/56 any", "exit",
                  "interface Vlan120", "description fgw extranet", "vrf forwarding EXTRANET",
                  "ip address 10.80.4.1 255.255.255.0", "ipv6 enable", "ipv6 address 2001:db8:8000:200::1/64",
                  "ipv6 traffic-filter EXTRANET-IN in", "exit", "ip route vrf EXTRANET 0.0.0.0 0.0.0.0 10.80.4.254",
                  "ipv6 route vrf EXTRANET ::/0 2001:db8:8000:200::ffff"],
}
CHANGE["huawei_vrpv8"] = [line for line in CHANGE["huawei_vrp"] if line != "ipv6"]
CHANGE["ruijie_os"] = [line.replace("interface Vlan120", "interface VLAN 120") for line in CHANGE["cisco_ios"]
                       if line != "ipv6 unicast-routing"]
EXPECTED = {  # lines the device prints afterwards, in its own canonical form
    "huawei_vrp": ["interface Vlanif120", " ip binding vpn-instance EXTRANET", " ipv6 address 2001:DB8:8000:200::1/64",
                   "ipv6 route-static vpn-instance EXTRANET :: 0 2001:DB8:8000:200::FFFF"],
    "hp_comware": ["interface Vlan-interface120", " ip binding vpn-instance EXTRANET",
                   " ipv6 address 2001:DB8:8000:200::1/64", " packet-filter ipv6 3000 inbound"],
    "cisco_ios": ["interface Vlan120", " vrf forwarding EXTRANET", " ipv6 address 2001:DB8:8000:200::1/64",
                  " exit-address-family", "ipv6 route vrf EXTRANET ::/0 2001:DB8:8000:200::FFFF"],
    "ruijie_os": ["interface VLAN 120", " vrf forwarding EXTRANET", " ipv6 address 2001:DB8:8000:200::1/64"],
}
EXPECTED["huawei_vrpv8"] = EXPECTED["huawei_vrp"]
NEGATE = {"huawei_vrp": ["interface Vlanif120", "undo description"], "hp_comware": ["interface Vlan-interface120",
          "undo description"], "cisco_ios": ["interface Vlan120", "no description"],
          "ruijie_os": ["interface VLAN 120", "no description"]}
NEGATE["huawei_vrpv8"] = NEGATE["huawei_vrp"]
SHORT = {"huawei_vrp": "vrp", "huawei_vrpv8": "vrp8", "hp_comware": "cmw", "cisco_ios": "ios", "ruijie_os": "rgos"}


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sims(lab):
    """One device per platform for this module (198.18.30.201-205), plus Cisco and Ruijie devices whose user
    lands in user EXEC and needs `enable` with a secret."""
    password = secrets.token_urlsafe(12)
    specs = {p: DeviceSpec(name=f"t-{SHORT[p]}", platform=p, address=f"198.18.30.{201 + i}", password=password)
             for i, p in enumerate(PLATFORMS)}
    specs["cisco_enable"] = DeviceSpec(name="t-ios-en", platform="cisco_ios", address="198.18.30.206",
                                       password=password, secret="en-" + password, privilege=1)
    specs["ruijie_enable"] = DeviceSpec(name="t-rgos-en", platform="ruijie_os", address="198.18.30.207",
                                        password=password, secret="en-" + password, privilege=1)
    sim = start_devices(lab, list(specs.values()))
    yield sim, specs
    sim.stop([s.name for s in specs.values()])


def fresh(sims, platform: str) -> tuple[Netsim, DeviceSpec]:
    """The module's device of a platform as new, its timers at 1/60 speed."""
    sim, specs = sims
    spec = specs[platform]
    sim.reset(spec.name)
    sim.set_time_scale(spec.name, SCALE)
    return sim, spec


def connect(sim: Netsim, spec: DeviceSpec, **extra):
    """netmiko with the device's own driver, host key verified against the simulator's known_hosts."""
    if spec.platform == "hp_comware":
        # netmiko turns command-echo checks off for Comware (its terminal width cannot be set) and then waits 2 s
        # per line; the simulator echoes like a device with a wide terminal, so they can stay on.
        extra.setdefault("global_cmd_verify", True)
    return ConnectHandler(device_type=Platform(spec.platform).netmiko_device_type, host=spec.address, port=spec.port,
                          username=spec.username, password=spec.password, secret=spec.secret or "",
                          ssh_strict=True, system_host_keys=False, alt_host_keys=True,
                          alt_key_file=str(sim.known_hosts), conn_timeout=10, **extra)


def wait_for(predicate, timeout: float = 15.0) -> bool:
    """Poll until `predicate()` holds (the device's own timer fires it); False after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def hier_config_text(platform: str, text: str) -> str:
    """Comware prints top-level commands one space in and separates blocks with `#`; hier-config's Comware
    driver wants neither (a robust client has to do this for real Comware devices too)."""
    if platform != "hp_comware":
        return text
    out, top = [], True
    for line in text.splitlines():
        if line.strip() == "#":
            top = True
            continue
        if top and line.startswith(" ") and not line.startswith("  "):
            out.append(line[1:])
            continue
        top = False
        out.append(line)
    return "\n".join(out)


# --- without SSH: grammar, configs, baseline --------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_printed_config_loads_back_to_itself(demo, platform):
    """What a device prints, loaded again (as a reload or `configure replace` does), prints the same."""
    for device in (d for d in demo.devices.values() if d.platform.value == platform):
        first = Config(load(platform))
        assert first.load(device_config(demo, device)) == []
        again = Config(load(platform))
        assert again.load(first.render()) == []
        assert again.render() == first.render()


def test_unknown_lines_and_negation_follow_the_grammar():
    config = Config(load("huawei_vrp"))
    assert config.apply([], "interface Vlanif100").path == ["interface Vlanif100"]
    assert config.apply(["interface Vlanif100"], "description one").changed
    assert config.apply(["interface Vlanif100"], "description two").changed  # replaces, never two descriptions
    node = config.resolve(["interface Vlanif100"])[-1]
    assert [c.text for c in node.children] == ["description two"]
    bad = config.apply(["interface Vlanif100"], "ipv6 address 2001:DB8::1/64")
    assert not bad.ok and bad.message == "Error: Please enable IPv6 on the interface first."
    assert not config.apply([], "frobnicate now").ok
    assert not config.apply(["interface Vlanif100"], "undo ip").ok  # `undo ip` would not wipe every ip line
    assert config.apply(["interface Vlanif100"], "undo description").changed
    assert config.apply([], "undo interface Vlanif100").changed
    assert config.root.children == []
    # ACL rules typed without a number get the next multiple of 5; typing the same rule again changes nothing
    acl = config.apply([], "acl ipv6 number 3000").path
    assert config.apply(acl, "rule permit ipv6 source 2001:DB8::/56").changed
    assert not config.apply(acl, "rule permit ipv6 source 2001:DB8::/56").changed
    config.apply(acl, "rule deny ipv6")
    assert [c.text for c in config.resolve(acl)[-1].children] == ["rule 5 permit ipv6 source 2001:DB8::/56",
                                                                 "rule 10 deny ipv6"]


def _entries(config: Config, path: list[str]) -> list[str]:
    return [c.text for c in config.resolve(path)[-1].children]


@pytest.mark.parametrize("platform,header,form", [
    ("cisco_ios", "ip access-list standard A", "{n} {body}"),
    ("cisco_ios", "ipv6 access-list A6", "sequence {n} {body}"),
    ("ruijie_os", "ip access-list extended A", "{n} {body}"),
    ("ruijie_os", "ipv6 access-list A6", "{n} {body}"),
])
def test_ios_and_rgos_acl_entries_carry_sequence_numbers(platform, header, form):
    """IOS-XE and RGOS number ACL entries and print the numbers: an entry typed without one gets the last
    number + 10, entries stay in number order, `no N` removes entry N and `no <body>` the entry with that
    body, a number in use is refused."""
    config = Config(load(platform))
    acl = config.apply([], header).path
    body = "permit 10.0.0.0 0.0.0.255" if "ipv6" not in header else "permit ipv6 2001:DB8::/64 any"
    other = "permit 10.1.1.5" if "ipv6" not in header else "permit ipv6 2001:DB8:1::/64 any"
    deny = "deny any" if "standard" in header else ("deny ip any any" if "ipv6" not in header else "deny ipv6 any any")
    seq = "sequence " if form.startswith("sequence") else ""
    assert config.apply(acl, f"{seq}5 {body}").ok and config.apply(acl, f"{seq}1000 {deny}").ok
    assert config.apply(acl, other).ok  # typed without a number: after the last
    assert _entries(config, acl) == [form.format(n=5, body=body), form.format(n=1000, body=deny),
                                     form.format(n=1010, body=other)]
    taken = config.apply(acl, f"{seq}5 {other}")
    assert not taken.ok and taken.message == "% Duplicate sequence number"
    assert config.apply(acl, f"{seq}7 {deny.replace('deny', 'permit')}").ok  # inserted in number order
    assert _entries(config, acl)[1] == form.format(n=7, body=deny.replace("deny", "permit"))
    assert config.apply(acl, f"no {seq}1010").changed and config.apply(acl, f"no {body}").changed
    assert _entries(config, acl) == [form.format(n=7, body=deny.replace("deny", "permit")),
                                     form.format(n=1000, body=deny)]
    again = Config(load(platform))
    assert again.load(config.render()) == [] and again.render() == config.render()  # the numbers survive a reload


@pytest.mark.parametrize("platform,iface,vpn,bind,sub", [
    ("huawei_vrp", "interface Vlanif120", "ip vpn-instance E", "ip binding vpn-instance E", "sub"),
    ("huawei_vrpv8", "interface Vlanif120", "ip vpn-instance E", "ip binding vpn-instance E", "sub"),
    ("hp_comware", "interface Vlan-interface120", "ip vpn-instance E", "ip binding vpn-instance E", "sub"),
    ("cisco_ios", "interface Vlan120", "vrf definition E", "vrf forwarding E", "secondary"),
    ("ruijie_os", "interface VLAN 120", "vrf definition E", "vrf forwarding E", "secondary"),
])
def test_a_primary_address_replaces_only_the_primary_and_a_vpn_binding_removes_every_address(
        platform, iface, vpn, bind, sub):
    config = Config(load(platform))
    config.apply([], "ipv6")  # VRP5's global switch; other platforms refuse it, which changes nothing
    config.apply([], vpn)
    path = config.apply([], iface).path
    lines = ["ip address 10.1.1.1 255.255.255.0", f"ip address 10.7.7.1 255.255.255.0 {sub}"]
    if platform in ("cisco_ios", "ruijie_os"):
        lines += ["ipv6 enable", "ipv6 address FE80::1 link-local"]
    elif platform != "hp_comware":
        lines += ["ipv6 enable"]
    lines += ["ipv6 address 2001:DB8::1/64"]
    for line in lines:
        assert config.apply(path, config.grammar.normalise(line)).ok, (platform, line)
    assert config.apply(path, "ip address 10.2.2.1 255.255.255.0").changed
    kept = _entries(config, path)
    assert "ip address 10.2.2.1 255.255.255.0" in kept and f"ip address 10.7.7.1 255.255.255.0 {sub}" in kept
    assert "ip address 10.1.1.1 255.255.255.0" not in kept
    assert config.apply(path, bind).ok
    assert not [line for line in _entries(config, path) if re.match(r"ipv6? address ", line)], platform


def test_huawei_and_h3c_acl_rules_are_edited_by_number_and_nat_uses_an_acl():
    for platform, header in (("huawei_vrp", "acl number 2001"), ("huawei_vrpv8", "acl number 2001"),
                             ("hp_comware", "acl basic 2001")):
        config = Config(load(platform))
        acl = config.apply([], header).path
        assert config.apply(acl, "rule 5 permit source 10.0.0.0 0.0.0.255").ok
        assert config.apply(acl, "rule 5 deny source 10.0.0.0 0.0.0.255").changed  # rule 5 edited, not doubled
        config.apply(acl, "rule 1 permit source 10.1.1.5 0")
        assert _entries(config, acl) == ["rule 1 permit source 10.1.1.5 0", "rule 5 deny source 10.0.0.0 0.0.0.255"]
        assert config.apply(acl, "undo rule 5").changed
        iface = "interface GigabitEthernet1/0/1" if platform == "hp_comware" else "interface Vlanif100"
        path = config.apply([], iface).path
        assert config.apply(path, "nat outbound 2001").ok, platform


def test_weak_baseline_devices_are_seeded_as_recorded(demo):
    weak = weak_devices()
    assert set(weak) == {"sj-hj1", "qs-jr1"} and set(weak) <= set(demo.devices)
    configs = {name: device_config(demo, d) for name, d in demo.devices.items()}
    assert "telnet server enable" in configs["sj-hj1"] and "protocol inbound all" in configs["sj-hj1"]
    assert "idle-timeout 0 0" in configs["sj-hj1"] and "snmp-agent group v3" not in configs["sj-hj1"]
    assert "enable service telnet-server" in configs["qs-jr1"] and "exec-timeout 0 0" in configs["qs-jr1"]
    assert "logging server" not in configs["qs-jr1"] and "ntp server" not in configs["qs-jr1"]
    for name, text in configs.items():
        if name not in weak:  # every other device passes: SSH only, timeouts, SNMPv3, syslog, NTP
            assert not re.search(r"^(telnet server enable|enable service telnet-server)$", text, re.M), name
            assert not re.search(r"(idle|exec)-timeout 0 0", text), name
            assert re.search(r"snmp-(agent|server) group", text) and re.search(r"ntp", text), name


# --- the sample city's devices in the lab ------------------------------------------------------------------


def test_demo_devices_answer_netmiko_with_verified_host_keys(lab, demo):
    sim = netsim(lab)

    def show(device) -> str:
        creds = demo.credentials_for(device)
        conn = ConnectHandler(device_type=device.platform.netmiko_device_type, host=str(device.address),
                              username=creds.username, password=creds.password.resolve(demo.root),
                              ssh_strict=True, system_host_keys=False, alt_host_keys=True,
                              alt_key_file=str(lab.known_hosts), conn_timeout=10,
                              **({"global_cmd_verify": True} if device.platform == "hp_comware" else {}))
        try:
            return conn.send_command(SHOW_RUN[device.platform.value])
        finally:
            conn.disconnect()

    devices = list(demo.devices.values())
    with ThreadPoolExecutor(len(devices)) as pool:
        shown_all = list(pool.map(show, devices))
    for device, shown in zip(devices, shown_all, strict=True):
        platform = device.platform.value
        assert shown.strip() == sim.running_config(device.name).strip(), device.name
        parsed = get_hconfig(HC[platform], hier_config_text(platform, shown))
        vlan_interfaces = [i.name for i in device.interfaces if i.vlan and not i.golden_network]
        for name in vlan_interfaces:
            spaced = re.sub(r"^VLAN(\d+)$", r"VLAN \1", name)
            section = parsed.get_child(equals=f"interface {spaced}")
            assert section is not None and section.get_child(startswith="description "), (device.name, name)
        assert not list(parsed.config_to_get_to(parsed).all_children())


def test_lab_status_lists_the_devices(lab, demo):
    statuses = lab.device_status(sorted(demo.devices))
    assert [s.name for s in statuses if not s.up] == []
    assert all(s.ssh_banner.startswith("SSH-2.0-") for s in statuses)


# --- every platform: show, config with error_pattern, negation, save ------------------------------------------


ENTER = {"huawei_vrp": "system-view", "huawei_vrpv8": "system-view", "hp_comware": "system-view",
         "cisco_ios": "configure terminal", "ruijie_os": "configure terminal"}
LEAVE = {"huawei_vrp": "return", "huawei_vrpv8": "return", "hp_comware": "return", "cisco_ios": "end",
         "ruijie_os": "end"}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_config_rejects_show_and_save(sims, platform):
    sim, spec = fresh(sims, platform)
    conn = connect(sim, spec)
    try:
        with pytest.raises(ConfigInvalidException, match=re.escape(ERROR[platform])):
            conn.send_config_set([*CHANGE[platform], "frobnicate the network"], error_pattern=ERROR[platform])
        if platform == "huawei_vrpv8":
            assert "[*" in conn.find_prompt()  # uncommitted
            assert "Vlanif120" not in sim.running_config(spec.name)
            conn.send_config_set(["commit"], enter_config_mode=False, error_pattern=ERROR[platform])
        conn.exit_config_mode()
        shown = conn.send_command(SHOW_RUN[platform])
        for line in EXPECTED[platform]:
            assert line in shown.splitlines(), line
        assert "frobnicate" not in shown
        assert "description fgw extranet" in shown
        # netmiko's checks of the config mode cost 2 s each on Huawei and Ruijie: enter and leave by hand here
        commit = ["commit"] if platform == "huawei_vrpv8" else []
        conn.send_config_set([ENTER[platform], *NEGATE[platform], *commit, LEAVE[platform]], enter_config_mode=False,
                             exit_config_mode=False, error_pattern=ERROR[platform])
        assert "description fgw extranet" not in sim.running_config(spec.name)
        assert sim.startup_config(spec.name) != sim.running_config(spec.name)
        conn.save_config()
        assert sim.startup_config(spec.name) == sim.running_config(spec.name)
    finally:
        conn.disconnect()


@pytest.mark.parametrize("which", ["cisco_enable", "ruijie_enable"])
def test_enable_needs_the_secret(sims, which):
    sim, specs = sims
    spec = specs[which]
    conn = connect(sim, spec)  # netmiko's Ruijie driver enables by itself
    try:
        conn.enable()
        assert conn.find_prompt().endswith("#")
        assert "hostname" in conn.send_command("show running-config")
    finally:
        conn.disconnect()
    wrong = DeviceSpec(**{**spec.to_json(), "secret": "wrong"})
    if which == "ruijie_enable":
        with pytest.raises(ValueError, match="enable mode"):
            connect(sim, wrong)
    else:
        conn = connect(sim, wrong)
        try:
            with pytest.raises(ValueError, match="enable mode"):
                conn.enable()
        finally:
            conn.disconnect()


def test_errors_print_the_vendor_text_under_a_caret(sims):
    sim, spec = fresh(sims, "huawei_vrp")
    conn = connect(sim, spec)
    try:
        out = conn.send_command("display frobnicate", strip_command=False, strip_prompt=False)
        lines = out.splitlines()
        assert lines[-2] == "Error: Unrecognized command found at '^' position."
        assert lines[-3].index("^") == len("<t-vrp>display ")
    finally:
        conn.disconnect()
    sim, spec = fresh(sims, "cisco_ios")
    conn = connect(sim, spec)
    try:
        out = conn.send_command("show frobnicate", strip_command=False)
        assert "% Invalid input detected at '^' marker." in out
    finally:
        conn.disconnect()


# --- commit features ----------------------------------------------------------------------------------------


def test_vrp8_two_stage_commit_trial_and_rollback(sims):
    sim, spec = fresh(sims, "huawei_vrpv8")
    name = spec.name
    conn = connect(sim, spec)
    try:
        # leaving with uncommitted changes asks; answering n discards them
        conn.send_config_set(["interface LoopBack1", "description not committed"])
        conn.write_channel("return\n")
        conn.read_until_pattern(r"\[Y\(yes\)/N\(no\)/C\(cancel\)\]:")
        conn.write_channel("n\n")
        conn.read_until_pattern(r"<t-vrp8>")
        assert "LoopBack1" not in sim.running_config(name)
        # commit trial, not confirmed: rolled back by the device
        # (a second trial before confirming still goes back to before the first)
        conn.send_config_set(["interface LoopBack2", "description trial", "commit trial 60",
                              "interface LoopBack6", "commit trial 60"])  # enters system view
        assert "interface LoopBack2" in sim.running_config(name) and "interface LoopBack6" in sim.running_config(name)
        assert [d["pending_rollback"] for d in sim.status() if d["name"] == name] == ["trial"]
        assert wait_for(lambda: "LoopBack2" not in sim.running_config(name))
        assert "LoopBack6" not in sim.running_config(name)
        assert "automatic rollback (trial)" in sim.command_log(name)
        # commit trial, then commit: confirmed, nothing pending
        # VRP8's driver stays in system view: no need to check the mode again
        conn.send_config_set(["interface LoopBack3", "description confirmed", "commit trial 60", "commit"],
                             enter_config_mode=False)
        assert [d["pending_rollback"] for d in sim.status() if d["name"] == name] == [None]
        # abort trial goes back at once
        conn.send_config_set(["interface LoopBack4", "commit trial 60", "abort trial"], enter_config_mode=False)
        assert "LoopBack4" not in sim.running_config(name)
        assert "interface LoopBack3" in sim.running_config(name)
        # rollback configuration last 1, in user view, undoes the last commit point
        conn.send_config_set(["interface LoopBack5"], enter_config_mode=False)
        conn.commit()  # netmiko's own commit, which returns to user view
        assert "interface LoopBack5" in sim.running_config(name)
        conn.send_command("rollback configuration last 1", expect_string=r"<t-vrp8>")
        assert "LoopBack5" not in sim.running_config(name) and "interface LoopBack3" in sim.running_config(name)
    finally:
        conn.disconnect()


def test_comware_commit_delay_archive_and_replace(sims):
    sim, spec = fresh(sims, "hp_comware")
    name = spec.name
    conn = connect(sim, spec)
    try:
        conn.send_config_set(["configuration commit delay 1", "interface LoopBack1", "description delayed"])
        assert "interface LoopBack1" in sim.running_config(name)
        assert wait_for(lambda: "LoopBack1" not in sim.running_config(name))
        conn.send_config_set(["configuration commit delay 1", "interface LoopBack2", "quit", "configuration commit"])
        assert [d["pending_rollback"] for d in sim.status() if d["name"] == name] == [None]
        out = conn.send_command("archive configuration", expect_string=r"\[Y/N\]:")
        out += conn.send_command("y", expect_string=r"<t-cmw>")
        assert "flash:/archive/archive_1.cfg" in out
        conn.send_config_set(["interface LoopBack3"])
        assert "interface LoopBack3" in sim.running_config(name)
        conn.config_mode()
        conn.send_command("configuration replace file flash:/archive/archive_1.cfg", expect_string=r"\[Y/N\]:")
        out = conn.send_command("n", expect_string=r"\[t-cmw\]")
        assert "Succeeded in replacing" in out
        assert "LoopBack3" not in sim.running_config(name) and "interface LoopBack2" in sim.running_config(name)
    finally:
        conn.disconnect()


def test_ios_revert_timer_confirm_and_configure_replace(sims):
    sim, spec = fresh(sims, "cisco_ios")
    name = spec.name
    conn = connect(sim, spec)
    try:
        with pytest.raises(ValueError):  # no `archive path`: IOS refuses the revert timer
            conn.send_config_set(["interface Loopback1"], config_mode_command="configure terminal revert timer 1")
        conn.send_config_set(["archive", "path flash:archive", "maximum 14"])
        conn.send_config_set(["interface Loopback1", "description reverted"],
                             config_mode_command="configure terminal revert timer 1")
        assert "interface Loopback1" in sim.running_config(name)
        assert wait_for(lambda: "Loopback1" not in sim.running_config(name))
        conn.send_config_set(["interface Loopback2"], config_mode_command="configure terminal revert timer 1")
        conn.send_command("configure confirm")
        assert [d["pending_rollback"] for d in sim.status() if d["name"] == name] == [None]
        conn.send_command("archive config")
        archived = sim.flash_file(name, "flash:archive-3")  # two were written by the revert timers
        assert "interface Loopback2" in archived
        conn.send_config_set(["interface Loopback3"])
        out = conn.send_command("configure replace flash:archive-3 force")
        assert "Rollback Done" in out
        assert "Loopback3" not in sim.running_config(name) and "interface Loopback2" in sim.running_config(name)
    finally:
        conn.disconnect()


def test_ruijie_has_no_confirmed_commit(sims):
    sim, spec = fresh(sims, "ruijie_os")
    conn = connect(sim, spec)
    try:
        out = conn.send_command("configure terminal revert timer 1")
        assert "% Invalid input detected" in out
    finally:
        conn.disconnect()


# --- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["cisco_ios", "hp_comware"])
def test_fault_rejects_a_line_with_the_vendor_error(sims, platform):
    sim, spec = fresh(sims, platform)
    sim.set_faults(spec.name, reject=[r"^description "])
    conn = connect(sim, spec)
    try:
        interface = "interface Loopback7" if platform == "cisco_ios" else "interface LoopBack7"
        with pytest.raises(ConfigInvalidException, match=re.escape(ERROR[platform])):
            conn.send_config_set([interface, "description refused"], error_pattern=ERROR[platform])
        sim.clear_faults(spec.name)
        conn.send_config_set(["description accepted now"], error_pattern=ERROR[platform], enter_config_mode=False)
        assert "description accepted now" in sim.running_config(spec.name)
    finally:
        conn.disconnect()


def test_fault_drops_the_session_mid_push(sims):
    # immediate mode: what came before the drop is applied
    sim, spec = fresh(sims, "cisco_ios")
    sim.set_faults(spec.name, drop_after=3)
    conn = connect(sim, spec)
    lines = ["interface Loopback7", "description first", "ipv6 enable", "ipv6 address 2001:db8::7/64", "exit"]
    with pytest.raises((ReadTimeout, OSError, EOFError)):
        conn.send_config_set(lines, read_timeout=2)
    conn.disconnect()
    running = sim.running_config(spec.name)
    assert "description first" in running and "ipv6 enable" in running and "2001:DB8::7" not in running
    # VRP8 drops the uncommitted candidate with the session
    sim, spec = fresh(sims, "huawei_vrpv8")
    before = sim.running_config(spec.name)
    sim.set_faults(spec.name, drop_after=2)
    conn = connect(sim, spec)
    with pytest.raises((ReadTimeout, OSError, EOFError)):
        conn.send_config_set([*lines[:4], "commit"], read_timeout=2)
    conn.disconnect()
    assert sim.running_config(spec.name) == before
    assert "dropping the session" in sim.command_log(spec.name)


def test_fault_latency_is_tolerated(sims):
    sim, spec = fresh(sims, "cisco_ios")
    sim.set_faults(spec.name, latency_ms=150)
    conn = connect(sim, spec)
    try:
        assert "hostname t-ios" in conn.send_command("show running-config")
    finally:
        conn.disconnect()


def test_fault_stall_holds_answers_until_cleared(sims):
    # configuration only: the third config line goes unanswered (and is not applied); display still answers
    sim, spec = fresh(sims, "cisco_ios")
    sim.set_faults(spec.name, stall_after=2, stall_scope="config", config_latency_ms=50)
    conn = connect(sim, spec)
    try:
        with pytest.raises(ReadTimeout):
            conn.send_config_set(["interface Loopback7", "description first", "description second"], read_timeout=1)
        assert "stalling after 2 config lines" in sim.command_log(spec.name)
        other = connect(sim, spec)
        try:
            assert "description first" in other.send_command("show running-config")
        finally:
            other.disconnect()
        assert "description second" not in sim.running_config(spec.name)
    finally:
        conn.disconnect()
    # cleared: it answers again (a stall of everything, logins included, is the push tests' dead device)
    sim.clear_faults(spec.name)
    conn = connect(sim, spec)
    try:
        assert "hostname" in conn.send_command("show running-config")
    finally:
        conn.disconnect()


# --- a simulator nobody here wrote ---------------------------------------------------------------------------


def test_fake_switches_with_netmiko(lab):
    switch = start_fake_switch(lab, "198.18.30.250")
    try:
        conn = ConnectHandler(device_type="cisco_ios", host=switch.address, username=switch.username,
                              password=switch.password, secret="", ssh_strict=True, system_host_keys=False,
                              alt_host_keys=True, alt_key_file=str(switch.known_hosts), conn_timeout=10)
        try:
            conn.enable()  # only an empty enable secret gets through on Python 3
            assert conn.find_prompt() == "fake-sw1#"
            conn.send_config_set(["interface FastEthernet0/1", "description pushed by jiyue", "exit"],
                                 exit_config_mode=False)
            # no `end` on fake-switches: leave config mode with `exit`
            conn.send_command("exit", expect_string=r"fake-sw1#")
            assert "description pushed by jiyue" in conn.send_command("show running-config")
        finally:
            conn.disconnect()
    finally:
        switch.stop()
