"""The baseline's network-device checks on the lab's simulated devices (all five platforms).

The devices boot from lab/netsim: a compliant management baseline, except the devices listed
in its baseline.yaml under `weak`, whose flags name the weaknesses. The checks read each device's
running configuration over SSH (netmiko through jiyue/device.py) and must find exactly those
weaknesses, at level 2 and level 3, with the config lines as evidence.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit.baseline import devices as device_path
from audit.baseline import model, service
from audit.baseline.device_checks import KIND
from audit.baseline.device_evidence import rules
from audit.baseline.model import FAIL, NEEDS_EVIDENCE, NOT_APPLICABLE, PASS, REGISTRY
from jiyue.i18n import t
from jiyue.store import BASELINE_CHECK, Store
from lab.netsim.baseline import weak_devices

REPO = Path(__file__).resolve().parent.parent

# What each weakness flag of lab/netsim/baseline.yaml must fail (and nothing else).
FLAG_CHECKS = {
    "telnet": {"device.ssh_only"},
    "snmp_v2c": {"device.snmp_v3"},
    "idle_timeout": {"device.idle_timeout"},
    "syslog": {"device.syslog"},
    "ntp": {"device.ntp"},
    "lockout": {"device.lockout"},
    "password_policy": {"device.password_policy"},
}
# Checks a compliant device must *pass* (not merely "needs evidence"): the ones its config decides.
DECIDED = {"device.ssh_only", "device.snmp_v3", "device.lockout", "device.idle_timeout", "device.aaa",
           "device.default_accounts", "device.syslog", "device.ntp", "device.services", "device.mgmt_acl",
           "device.password_storage"}
CIPHERS = ("%^%#", "$9$", "$h$")  # the shapes of the simulated devices' stored secrets (netsim baseline._cipher)


@pytest.fixture(scope="module")
def catalog():
    return model.load_catalog()


def expected(catalog, device: str, level: int) -> set[tuple[str, str]]:
    checks = set().union(*(FLAG_CHECKS[flag] for flag in weak_devices().get(device, {})))
    return {(item.id, c) for item in catalog.items_at(level) if not item.not_applicable_for(KIND)
            for c in item.checks if c in checks}


def failed(result) -> set[tuple[str, str]]:
    return {(r["item"], r["check"]) for r in result.value["rows"] if r["status"] == FAIL}


# --- without the lab ---------------------------------------------------------------------------------


def test_every_item_is_decided_or_not_applicable_for_devices(catalog):
    from audit.baseline.engine import evaluate

    class Nothing:  # evaluate() only needs the rows' shape here: every device check raises on it
        pass

    for level in (2, 3):
        rows = evaluate(Nothing(), level, catalog.defaults(), catalog, kind=KIND)
        assert {r.item for r in rows} == {i.id for i in catalog.items_at(level)}
        for r in rows:
            assert r.status in (NOT_APPLICABLE, NEEDS_EVIDENCE), r  # a check that cannot read is never a pass
    device_checks = {c for c in REGISTRY.values() if c.kind == KIND}
    assert {c.id for c in device_checks} == {c for i in catalog.items for c in i.checks if c.startswith("device.")}
    for c in device_checks:
        for lang in ("zh", "en"):
            assert t(f"baseline.check.{c.id}", lang) and t(f"baseline.hint.{c.id}", lang)
    assert set(FLAG_CHECKS) >= {flag for flags in weak_devices().values() for flag in flags}


def test_every_platform_has_every_rule():
    keys = set(rules("huawei_vrp"))
    for platform in ("huawei_vrp", "huawei_vrpv8", "hp_comware", "cisco_ios", "ruijie_os"):
        assert set(rules(platform)) == keys, platform


def test_a_device_is_checked_at_the_highest_level_it_carries(demo):
    levels = device_path.device_levels(demo, sorted(demo.devices), None)
    # cores carry the city; dx-hj1 carries the county tax bureau's level-3 jinshui line; the town access
    # switch carries only level-1 systems, so it is checked only when --level says so
    assert levels == {"sj-hx1": 3, "sj-hx2": 3, "sj-hj1": 3, "gaj-jr1": 3, "swj-jr1": 3, "rsj-jr1": 3,
                      "dx-hj1": 3, "dxjyj-jr1": 2, "qs-jr1": None}
    assert set(device_path.device_levels(demo, ["qs-jr1"], 2).values()) == {2}
    with pytest.raises(service.NothingToCheck, match="give --level"):  # before any session is opened
        service.check(demo, [], ["qs-jr1"])


# --- on the lab ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def level3(lab, demo, catalog):
    return service.check(demo, [], sorted(demo.devices), level=3, profile=model.load_profile("level3", catalog),
                         catalog=catalog, progress=False).results


@pytest.fixture(scope="module")
def level2(lab, demo, catalog, tmp_path_factory):
    """Level 2, with one more device that does not answer (a port nothing listens on), stored."""
    gone = demo.devices["qs-jr1"].model_copy(update={"name": "gone-jr1", "port": 2299})
    inv = demo.model_copy(update={"devices": {**demo.devices, "gone-jr1": gone}})
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('devstore') / 'd.sqlite'}")
    run = service.check(inv, [], sorted(inv.devices), level=2, profile=model.load_profile("level2", catalog),
                        catalog=catalog, store=store, progress=False)
    return inv, store, run.run_id, run.results


def test_exactly_the_seeded_weaknesses_at_level_3(level3, catalog):
    assert len(level3) == 9 and all(r.ok for r in level3), [(r.target, r.error) for r in level3 if not r.ok]
    assert {r.value["platform"] for r in level3} == {"huawei_vrp", "huawei_vrpv8", "hp_comware", "cisco_ios",
                                                     "ruijie_os"}
    for r in level3:
        assert failed(r) == expected(catalog, r.target, 3), r.target
        assert {row["clause"][:5] for row in r.value["rows"]} == {"8.1.4"}
    assert {r.target for r in level3 if failed(r)} == set(weak_devices())


def test_compliant_devices_pass_what_their_config_decides(level3):
    for r in level3:
        if r.target in weak_devices():
            continue
        statuses = {row["check"]: row["status"] for row in r.value["rows"]}
        assert set(statuses.values()) <= {PASS, NEEDS_EVIDENCE, NOT_APPLICABLE}, r.target
        assert {c for c in DECIDED if statuses[c] != PASS} == set(), r.target
        # IOS has no local password aging: the AAA server's policy is the evidence
        assert statuses["device.password_policy"] == (NEEDS_EVIDENCE if r.value["platform"] == "cisco_ios" else PASS)


def test_evidence_is_the_deciding_line_with_the_device_name_and_no_secret(level3):
    rows = {(r.target, row["check"]): row for r in level3 for row in r.value["rows"]}
    telnet = rows[("sj-hj1", "device.ssh_only")]["evidence"]
    assert "sj-hj1: telnet server enable (telnet server on)" in telnet
    assert "sj-hj1: user-interface vty 0 4 › protocol inbound all" in telnet
    assert rows[("qs-jr1", "device.ssh_only")]["evidence"][-1] == "qs-jr1: line vty 0 4 › transport input telnet ssh"
    assert list(rows[("qs-jr1", "device.syslog")]["evidence"]) == [
        "qs-jr1: no remote log host in the running configuration"]
    assert list(rows[("sj-hj1", "device.idle_timeout")]["evidence"]) == [
        "sj-hj1: user-interface vty 0 4 › idle-timeout 0 0 (never times out)"]
    snmp = rows[("sj-hj1", "device.snmp_v3")]["evidence"]
    assert "sj-hj1: snmp-agent community read cipher ******" in snmp
    assert any(e.startswith("gaj-jr1: access-list 10 permit 198.18.30.0 0.0.0.255")
               for e in rows[("gaj-jr1", "device.mgmt_acl")]["evidence"])
    lockout = rows[("sj-hx2", "device.lockout")]
    assert "sj-hx2: password-control login-attempt 5 exceed lock-time 10" in lockout["evidence"]
    assert lockout["summary"] == "locked after 5 failures for 600 s"
    for (device, _), row in rows.items():
        assert all(e.startswith(f"{device}: ") for e in row["evidence"]), row
        assert not any(c in e for e in row["evidence"] for c in CIPHERS), row
        if row["status"] == FAIL:
            assert row["evidence"], row


def test_level_2_and_an_unreachable_device(level2, catalog):
    _, store, run_id, results = level2
    by_name = {r.target: r for r in results}
    gone = by_name.pop("gone-jr1")
    assert not gone.ok and gone.error_kind == "unreachable" and "gone-jr1" in gone.error
    assert len(by_name) == 9 and all(r.ok for r in by_name.values())
    for r in by_name.values():
        assert failed(r) == expected(catalog, r.target, 2), r.target
        assert all(row["clause"].startswith("7.1.4") for row in r.value["rows"]), r.target
    # level 3 only: two-factor authentication is not part of a level-2 assessment
    assert not any(row["item"] == "8.1.4.1 d" for r in by_name.values() for row in r.value["rows"])
    stored = {r.target: r.status for r in store.run_results(run_id)}
    assert stored == {**{n: "ok" for n in by_name}, "gone-jr1": "unreachable"}


def test_device_rows_in_the_reports(level2, tmp_path):
    import openpyxl

    from audit.baseline.report import write_reports

    inv, store, _, _ = level2
    write_reports(service.load_run(inv, store), tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "baseline.xlsx")
    ws = wb["检查结果"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    telnet = next(r for r in rows if r["主机"] == "qs-jr1" and r["结果"] == "不符合" and "Telnet" in r["检查项"])
    assert telnet["系统"] == "网络设备" and telnet["要求项"].startswith("7.1.4.1 c")
    assert "qs-jr1: enable service telnet-server" in telnet["证据"]
    assert "no enable service telnet-server" in telnet["整改建议"]
    assert "网络设备" in wb.sheetnames
    assert [c.value for c in wb["未核查主机"]["A"]][1:] == ["gone-jr1"]
    data = json.loads((tmp_path / "baseline.json").read_text())
    assert data["hosts"]["sj-hx2"]["os"] == "H3C Comware 7" and "gone-jr1" in data["not_checked"]


def test_the_verdict_follows_the_live_config(lab, demo, catalog):
    """Fix sj-hj1's telnet through a real session, check again: the check reads the device, not a copy."""
    from jiyue.device import open_session
    from lab.netsim.lab import netsim

    profile = model.load_profile("level3", catalog)
    try:
        with open_session(demo, "sj-hj1") as session:
            session.configure(["undo telnet server enable", "user-interface vty 0 4", "protocol inbound ssh"])
        results = service.check(demo, [], ["sj-hj1"], level=3, profile=profile, catalog=catalog,
                                progress=False).results
        statuses = {row["check"]: row["status"] for row in results[0].value["rows"]}
        assert statuses["device.ssh_only"] == PASS
        assert statuses["device.idle_timeout"] == FAIL and statuses["device.snmp_v3"] == FAIL  # still as seeded
    finally:
        netsim(lab).reset("sj-hj1")
    results = service.check(demo, [], ["sj-hj1"], level=3, profile=profile, catalog=catalog, progress=False).results
    assert {row["check"] for row in results[0].value["rows"] if row["status"] == FAIL} == {
        "device.ssh_only", "device.idle_timeout", "device.snmp_v3"}


def test_the_command_line_checks_hosts_and_devices_in_one_run(lab, tmp_path):
    store = f"sqlite:///{tmp_path / 'cli.sqlite'}"

    def jiyue(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "jiyue", *args], capture_output=True, text=True, cwd=REPO,
                              timeout=600)

    proc = jiyue("baseline.check", "--limit", "platform_ruijie_os:dsj-zwfw-db1", "--level", "2", "--store", store)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "qs-jr1" in proc.stdout and "device.ssh_only" in proc.stdout and "rsj-jr1" in proc.stdout
    records = Store(store).history(BASELINE_CHECK)
    assert {r.target for r in records} == {"qs-jr1", "rsj-jr1", "dsj-zwfw-db1"}
    assert len({r.run_id for r in records}) == 1  # hosts and devices: one run
    qs = next(r for r in records if r.target == "qs-jr1")
    assert qs.data["kind"] == KIND and qs.data["level"] == 2


# --- public-style running configurations (tests/fixtures/devices) -------------------------------------

FIXTURES = REPO / "tests" / "fixtures" / "devices"
PLATFORMS = ("huawei_vrp", "huawei_vrpv8", "hp_comware", "cisco_ios", "ruijie_os")
NAMES = {"huawei_vrp": "swj-jr1", "huawei_vrpv8": "sj-hx1", "hp_comware": "dx-hj1", "cisco_ios": "dxjyj-jr1",
         "ruijie_os": "rsj-jr1"}  # the sample city's device of that platform, so reports group them as devices
DUAL_STACK = {"management_networks": ["198.18.30.0/24", "2001:db8:30::/64"]}
SEEDED = "S3cr3t"  # every secret in the fixtures contains it


def fixture_config(platform: str) -> str:
    return (FIXTURES / f"{platform}.cfg").read_text(encoding="utf-8")


def edited(platform: str, *edits: tuple[str, str]) -> str:
    """The fixture with each (old, new) applied once; an edit that matches nothing is a broken test."""
    text = fixture_config(platform)
    for old, new in edits:
        assert old in text, (platform, old)
        text = text.replace(old, new, 1)
    return text


def judged(catalog, platform: str, config: str | None = None, context=DUAL_STACK) -> dict:
    params = model.load_profile("level3", catalog).params(catalog)
    return device_path.judge_device(NAMES[platform], platform, fixture_config(platform) if config is None else config,
                                    3, params, catalog, context)


def row(verdicts: dict, check: str) -> dict:
    return next(r for r in verdicts["rows"] if r["check"] == check)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_rule_can_read_a_secret(platform):
    """Masking happens before any rule reads the configuration: not one line a rule can match, on any
    platform, holds a seeded secret, and every line that held one still says where it was."""
    from audit.baseline.device_evidence import MASK, DeviceEvidence, mask

    config = fixture_config(platform)
    ev = DeviceEvidence(NAMES[platform], platform, config)
    readable = [n.text for _, n in ev.walk()] + ev.text_lines
    assert not [x for x in readable if SEEDED in x]
    seeded = [line for line in config.splitlines() if SEEDED in line]
    assert len(seeded) >= 6, platform
    for line in seeded:
        assert SEEDED not in mask(platform, line) and MASK in mask(platform, line), line


def test_no_report_holds_a_seeded_secret(demo, catalog, tmp_path):
    """Every device check on a device of each platform with its secrets seeded, every report format:
    the reports cite the secret-bearing lines that decided a verdict, masked, and hold no secret."""
    import zipfile

    from audit.baseline.report import FORMATS, write_reports
    from jiyue.runner import Result

    results = [Result(NAMES[p], True, judged(catalog, p)) for p in PLATFORMS]
    run = model.BaselineRun(inv=demo, catalog=catalog, profile="level3", results=results,
                            levels={r.target: 3 for r in results}, level=3)
    written = write_reports(run, tmp_path, FORMATS)
    assert {p.suffix for p in written} == {".xlsx", ".html", ".json", ".xml"}
    for path in written:
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                text = b"".join(z.read(n) for n in z.namelist()).decode("utf-8", "replace")
        else:
            text = path.read_text(encoding="utf-8")
        assert SEEDED not in text, path.name
        assert "******" in text, path.name  # the secret-bearing lines are there, masked
    data = json.loads((tmp_path / "baseline.json").read_text())
    snmp = data["hosts"]["dxjyj-jr1"]["rows"]
    evidence = next(r["evidence"] for r in snmp if r["check"] == "device.snmp_v3")
    assert "dxjyj-jr1: snmp-server host 10.0.0.9 version 2c ******" in evidence  # the line
    assert "dx-hj1: snmp-agent target-host trap address udp-domain 10.0.0.9 params securityname ****** v2c" in [
        e for r in data["hosts"]["dx-hj1"]["rows"] if r["check"] == "device.snmp_v3" for e in r["evidence"]]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_dual_stack_device_with_both_acls_passes(catalog, platform):
    verdict = row(judged(catalog, platform), "device.mgmt_acl")
    assert verdict["status"] == PASS, verdict
    assert "(IPv4 and IPv6)" in verdict["summary"]


# (platform, edits, the evidence line that must name the defect)
IPV6_DEFECTS = {
    "ios ipv6 acl permits any": (
        "cisco_ios", [(" permit ipv6 2001:DB8:30::/64 any", " permit ipv6 any any")],
        "dxjyj-jr1: ipv6 access-list MGMT6 › permit ipv6 any any (IPv6 ACL MGMT6 permits any source)"),
    "ruijie ipv6 acl permits ::/0": (
        "ruijie_os", [(" 10 permit ipv6 2001:DB8:30::/64 any", " 10 permit ipv6 ::/0 any")],
        "rsj-jr1: ipv6 access-list MGMT6 › 10 permit ipv6 ::/0 any (IPv6 ACL MGMT6 permits any source)"),
    "vrp acl ipv6 2001 is not acl number 2001": (
        "huawei_vrp", [(" rule 5 permit source 2001:DB8:30::/64", " rule 5 permit")],
        "swj-jr1: acl ipv6 number 2001 › rule 5 permit (IPv6 ACL 2001 permits any source)"),
    "vrp ipv6 acl undefined while acl number 2001 exists": (
        "huawei_vrp", [("acl ipv6 number 2001\n description management access\n rule 5 permit source "
                        "2001:DB8:30::/64\n", "")],
        "swj-jr1: user-interface vty 0 4 › acl ipv6 2001 inbound (IPv6 ACL 2001 is not defined or permits "
        "nothing: as good as no ACL)"),
    "comware ipv6 acl wider than the management network": (
        "hp_comware", [(" rule 5 permit source 2001:DB8:30::/64", " rule 5 permit source 2001:DB8:: 32")],
        "dx-hj1: acl ipv6 basic 2001 › rule 5 permit source 2001:DB8:: 32 (outside the IPv6 management "
        "networks 2001:db8:30::/64)"),
    "vrp8 ipv6 on, no ipv6 acl": (
        "huawei_vrpv8", [("ssh ipv6 server acl 2001\n", "")],
        "sj-hx1: user-interface vty 16 20 (no IPv6 ACL: IPv6 is on (interface Vlanif100 › ipv6 enable), so "
        "anybody may log in over IPv6 on this range)"),
    "ios access-class only, ipv6 on": (
        "cisco_ios", [(" ipv6 access-class MGMT6 in\n", ""), (" ipv6 access-class MGMT6 in\n", "")],
        "dxjyj-jr1: line vty 5 15 (no IPv6 ACL: IPv6 is on (interface Vlan200 › ipv6 address 2001:DB8:30::42/64), "
        "so anybody may log in over IPv6 on this range)"),
    "ruijie access-class only, ipv6 on": (
        "ruijie_os", [(" ipv6 access-class MGMT6 in\n", "")],
        "rsj-jr1: line vty 0 4 (no IPv6 ACL: IPv6 is on (interface VLAN 101 › ipv6 address 2001:DB8:30::33/64), "
        "so anybody may log in over IPv6 on this range)"),
    "comware ipv6 on, no ipv6 acl": (
        "hp_comware", [(" acl ipv6 2001 inbound\n", "")],
        "dx-hj1: line vty 0 63 (no IPv6 ACL: IPv6 is on (interface Vlan-interface100 › ipv6 address "
        "2001:DB8:30::41/64), so anybody may log in over IPv6 on this range)"),
}


@pytest.mark.parametrize("case", IPV6_DEFECTS)
def test_each_address_family_is_judged_by_its_own_acl(catalog, case):
    platform, edits, evidence = IPV6_DEFECTS[case]
    verdict = row(judged(catalog, platform, edited(platform, *edits)), "device.mgmt_acl")
    assert verdict["status"] == FAIL, verdict
    assert evidence in verdict["evidence"], verdict["evidence"]
    assert not any(e.endswith(("permits any source)", "as good as no ACL)")) and "IPv4" in e
                   for e in verdict["evidence"]), verdict["evidence"]  # the IPv4 ACL is fine and not blamed


def test_the_ssh_servers_acls_cover_every_range(catalog):
    """Comware's `ssh server acl` / `ssh server ipv6 acl ipv6 N` (VRP's `ssh ipv6 server acl N`: the VRP8
    fixture) limit every vty range at once; each family's is read from its own command."""
    config = edited("hp_comware", (" acl 2001 inbound\n acl ipv6 2001 inbound\n", ""),
                    (" ssh server enable\n",
                     " ssh server enable\n ssh server acl 2001\n ssh server ipv6 acl ipv6 2001\n"))
    verdict = row(judged(catalog, "hp_comware", config), "device.mgmt_acl")
    assert verdict["status"] == PASS, verdict
    assert {"dx-hj1: ssh server acl 2001", "dx-hj1: ssh server ipv6 acl ipv6 2001"} <= set(verdict["evidence"])
    wide = config.replace(" rule 5 permit source 2001:DB8:30::/64", " rule 5 permit source any")
    assert "dx-hj1: acl ipv6 basic 2001 › rule 5 permit source any (IPv6 ACL 2001 permits any source)" in row(
        judged(catalog, "hp_comware", wide), "device.mgmt_acl")["evidence"]


def test_a_device_without_ipv6_needs_no_ipv6_acl(catalog):
    config = edited("cisco_ios", (" ipv6 address 2001:DB8:30::42/64\n ipv6 enable\n", ""),
                    (" ipv6 access-class MGMT6 in\n", ""), (" ipv6 access-class MGMT6 in\n", ""))
    verdict = row(judged(catalog, "cisco_ios", config), "device.mgmt_acl")
    assert verdict["status"] == PASS and "(no IPv6 address on the device)" in verdict["summary"], verdict


def test_every_vty_range_the_device_shows_is_judged(catalog):
    """IOS prints `line vty 0 4` and `line vty 5 15` apart; VRP shows `user-interface vty 16 20`. A range
    left without an ACL is a finding on that range, even when another range has one."""
    ios = judged(catalog, "cisco_ios", edited("cisco_ios", (
        "line vty 5 15\n access-class 10 in\n ipv6 access-class MGMT6 in\n", "line vty 5 15\n")))
    acl = row(ios, "device.mgmt_acl")
    assert acl["status"] == FAIL
    assert [e for e in acl["evidence"] if "line vty 5 15" in e] == [
        "dxjyj-jr1: line vty 5 15 (no ACL limits who may log in on this range: every vty range the device shows "
        "needs one)",
        "dxjyj-jr1: line vty 5 15 (no IPv6 ACL: IPv6 is on (interface Vlan200 › ipv6 address 2001:DB8:30::42/64), "
        "so anybody may log in over IPv6 on this range)"]
    assert not any("line vty 0 4" in e for e in acl["evidence"])
    assert row(ios, "device.ssh_only")["status"] == PASS  # that range still says transport input ssh

    vrp = judged(catalog, "huawei_vrp", edited("huawei_vrp", (
        "user-interface vty 16 20\n acl 2001 inbound\n acl ipv6 2001 inbound\n authentication-mode aaa\n"
        " idle-timeout 10 0\n protocol inbound ssh\n", "user-interface vty 16 20\n authentication-mode aaa\n")))
    assert row(vrp, "device.mgmt_acl")["evidence"][0] == (
        "swj-jr1: user-interface vty 16 20 (no ACL limits who may log in on this range: every vty range the device "
        "shows needs one)")
    assert "swj-jr1: user-interface vty 16 20 (no inbound protocol line: the default 'all' accepts telnet)" in row(
        vrp, "device.ssh_only")["evidence"]
    assert row(vrp, "device.idle_timeout")["status"] == PASS  # no timeout line: VRP's default 10 minutes


def test_an_extended_acl_is_read_past_its_protocol(catalog):
    config = edited("cisco_ios", ("access-list 10 permit 198.18.30.0 0.0.0.255\n",
                                  "access-list 110 permit tcp 198.18.30.0 0.0.0.255 any eq 22\n"),
                    *[(" access-class 10 in\n", " access-class 110 in\n")] * 2)
    assert row(judged(catalog, "cisco_ios", config), "device.mgmt_acl")["status"] == PASS
    config = config.replace("permit tcp 198.18.30.0 0.0.0.255 any", "permit tcp any any")
    assert list(row(judged(catalog, "cisco_ios", config), "device.mgmt_acl")["evidence"]) == [
        "dxjyj-jr1: access-list 110 permit tcp any any eq 22 (IPv4 ACL 110 permits any source)"]


# --- on the lab: seeded secrets and IPv6 management over real sessions ------------------------------------

# What each device is given over a real session (the simulator prints it back in the vendor's format):
# a secret the device checks quote, IPv6 on the management interface, and one management-ACL defect.
LAB_SEEDS = {
    "dxjyj-jr1": ["snmp-server host 10.0.0.9 version 2c S3cr3tL1", "ipv6 unicast-routing", "interface Vlan200",
                  "ipv6 address 2001:DB8:30::42/64", "ipv6 access-list MGMT6", "permit ipv6 any any",
                  "line vty 0 4", "ipv6 access-class MGMT6 in"],
    "rsj-jr1": ["snmp-server host 10.0.0.9 traps version 2c S3cr3tL2", "interface VLAN101",
                "ipv6 address 2001:DB8:30::33/64"],
    "swj-jr1": ["snmp-agent target-host trap address udp-domain 10.0.0.9 params securityname S3cr3tL3 v2c",
                "snmp-agent community read S3cr3tL4", "ipv6", "interface Vlanif150", "ipv6 enable",
                "ipv6 address 2001:DB8:30::32/64", "acl ipv6 number 2000", "rule 5 permit", "user-interface vty 0 4",
                "acl ipv6 2000 inbound"],
    "dx-hj1": ["snmp-agent community read simple S3cr3tL5", "interface Vlan-interface100",
               "ipv6 address 2001:DB8:30::41/64", "acl ipv6 basic 2000", "rule 5 permit source 2001:DB8:30:: 64",
               "line vty 0 63", "acl ipv6 2000 inbound"],
    "sj-hx1": ["snmp-agent target-host trap address udp-domain 10.0.0.9 params securityname S3cr3tL6 v2c",
               "user-interface vty 16 20", "authentication-mode aaa", "idle-timeout 10 0", "protocol inbound ssh",
               "commit"],
}
LAB_MGMT_ACL = {
    "dxjyj-jr1": "dxjyj-jr1: ipv6 access-list MGMT6 › permit ipv6 any any (IPv6 ACL MGMT6 permits any source)",
    "rsj-jr1": "rsj-jr1: line vty 0 4 (no IPv6 ACL: IPv6 is on (interface VLAN 101 › ipv6 address 2001:DB8:30::33/64), "
               "so anybody may log in over IPv6 on this range)",
    "swj-jr1": "swj-jr1: acl ipv6 number 2000 › rule 5 permit (IPv6 ACL 2000 permits any source)",
    "dx-hj1": "dx-hj1: acl ipv6 basic 2000 › rule 5 permit source 2001:DB8:30:: 64 (no IPv6 management network is "
              "declared in the inventory)",
    "sj-hx1": "sj-hx1: user-interface vty 16 20 (no ACL limits who may log in on this range: every vty range the "
              "device shows needs one)",
}


@pytest.fixture(scope="module")
def seeded_devices(lab, demo, catalog, tmp_path_factory):
    """The five devices given LAB_SEEDS, checked at level 3 into a store, every report written; the devices
    are reset to their boot configuration before any other test sees them."""
    from audit.baseline.report import write_reports
    from jiyue.device import open_session
    from lab.netsim.lab import netsim

    out = tmp_path_factory.mktemp("seeded")
    store = Store(f"sqlite:///{out / 'store.sqlite'}")
    try:
        for name, lines in LAB_SEEDS.items():
            with open_session(demo, name) as session:
                session.configure(lines)
        run = service.check(demo, [], sorted(LAB_SEEDS), level=3, profile=model.load_profile("level3", catalog),
                            catalog=catalog, store=store, progress=False)
        written = write_reports(service.load_run(demo, store), out / "reports")
    finally:
        for name in LAB_SEEDS:
            netsim(lab).reset(name)
    return run.results, written, out / "store.sqlite"


def test_seeded_secrets_reach_no_report_and_no_store(seeded_devices):
    import zipfile

    results, written, store = seeded_devices
    assert len(written) == 4
    for path in [*written, store]:
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        else:
            data = path.read_bytes()
        assert SEEDED.encode() not in data, path.name
    snmp = {r.target: row(r.value, "device.snmp_v3") for r in results}
    assert {t: v["status"] for t, v in snmp.items()} == dict.fromkeys(LAB_SEEDS, FAIL)
    assert "dxjyj-jr1: snmp-server host 10.0.0.9 version 2c ******" in snmp["dxjyj-jr1"]["evidence"]
    assert "swj-jr1: snmp-agent target-host trap address udp-domain 10.0.0.9 params securityname ****** v2c" in snmp[
        "swj-jr1"]["evidence"]


def test_ipv6_management_and_vty_ranges_on_the_lab(seeded_devices):
    results, _, _ = seeded_devices
    for r in results:
        assert {c for _, c in failed(r)} == {"device.mgmt_acl", "device.snmp_v3"}, r.target
        assert LAB_MGMT_ACL[r.target] in row(r.value, "device.mgmt_acl")["evidence"], (
            r.target, row(r.value, "device.mgmt_acl")["evidence"])
