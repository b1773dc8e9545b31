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
