"""The baseline on the lab: exactly the seeded failures, with evidence, at level 2 and level 3."""

from __future__ import annotations

import pytest

from audit.baseline import model, service
from audit.baseline.model import FAIL, PASS
from lab.baseline_seed import expected_failures, load


@pytest.fixture(scope="module")
def catalog():
    return model.load_catalog()


@pytest.fixture(scope="module")
def inventory_levels(baseline_seeded, demo, catalog, tmp_path_factory):
    """One fleet run at each host's own level (hosts of level 2 and 3 systems)."""
    from jiyue.store import Store

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'h.sqlite'}")
    run = service.check(demo, demo.contactable_hosts(), profile=model.load_profile(None, catalog), catalog=catalog,
                        store=store, progress=False)
    return run.run_id, run.results, run.levels, store, run


@pytest.fixture(scope="module")
def all_level3(baseline_seeded, demo, catalog):
    return service.check(demo, demo.contactable_hosts(), level=3, profile=model.load_profile("level3", catalog),
                         catalog=catalog, progress=False).results


def _expected(catalog, host: str, level: int) -> set[tuple[str, str]]:
    checks = expected_failures(load(), host)
    return {(item.id, c) for item in catalog.items_at(level) for c in item.checks if c in checks}


def _failed(result) -> set[tuple[str, str]]:
    return {(r["item"], r["check"]) for r in result.value["rows"] if r["status"] == FAIL}


def test_exactly_the_seeded_failures_at_each_hosts_level(inventory_levels, catalog):
    _, results, levels, _, _ = inventory_levels
    assert all(r.ok for r in results), [(r.target, r.error) for r in results if not r.ok]
    assert {r.target for r in results} == {h for h, lv in levels.items() if lv}
    assert {levels[r.target] for r in results} == {2, 3}
    for r in results:
        assert _failed(r) == _expected(catalog, r.target, levels[r.target]), r.target
    # a level-2 host's seeded level-3-only faults (MAC, file modes) are not part of its assessment
    jyj = next(r for r in results if r.target == "jyj-web-app1")
    assert not _failed(jyj) and jyj.value["level"] == 2
    assert all(row["clause"].startswith("7.1.4") for row in jyj.value["rows"])


def test_exactly_the_seeded_failures_at_level_3_on_every_host(all_level3, catalog, demo):
    assert len(all_level3) == len(demo.contactable_hosts()) and all(r.ok for r in all_level3)  # classified: never
    for r in all_level3:
        assert _failed(r) == _expected(catalog, r.target, 3), r.target
    jyj = next(r for r in all_level3 if r.target == "jyj-web-app1")
    assert _failed(jyj) == {("8.1.4.2 g", "mac.enforcing"), ("8.1.4.2 f", "files.modes")}


def test_failures_carry_evidence_and_distribution_awareness(all_level3):
    by_host = {r.target: r.value for r in all_level3}
    rows = {(h, row["check"]): row for h, v in by_host.items() for row in v["rows"]}
    for (_, _), row in rows.items():
        if row["status"] == FAIL:
            assert row["evidence"], row
    # Kylin V10 (RPM based, ID_LIKE rhel) reads system-auth; UOS (ID uos) common-password
    assert by_host["dsj-zwfw-app1"]["family"] == "redhat" and by_host["dxzf-wgzl-app1"]["family"] == "debian"
    weak = rows[("dsj-zwfw-app1", "password.complexity")]
    assert "minlen 6" in weak["summary"] and any("/etc/pam.d/system-auth:" in e for e in weak["evidence"])
    assert any(e.startswith("/etc/login.defs:") and "99999" in e
               for e in rows[("dxzf-wgzl-app1", "password.aging")]["evidence"])
    assert by_host["qszf-dagl-app1"]["family"] == "debian"  # Kylin V4: ID kylin, ID_LIKE debian
    assert rows[("zjj-wxzj-app1", "login.lockout")]["summary"].startswith("pam_tally2: deny 10")
    # sshd and the login shells answered themselves (the collection runs as root), the files did not
    assert list(rows[("fgw-xyxx-app1", "ssh.root_login")]["evidence"]) == [
        "sshd -T -C user=root,addr=203.0.113.7,host=203.0.113.7: permitrootlogin yes",
        "sshd -T -C user=root,addr=198.18.30.1,host=198.18.30.1: permitrootlogin yes"]
    assert "/bin/bash -lc (login shell of root): umask 0022" in rows[("dxzf-wgzl-app1", "umask")]["evidence"]
    assert "/bin/bash -lc (login shell of sysadmin): TMOUT=600" in rows[("dsj-zwfw-db1", "session.tmout")]["evidence"]
    telnet = rows[("fgw-xyxx-app1", "ports.risky")]
    assert any(":23 listening" in e for e in telnet["evidence"])
    # the compliant hosts pass everything a host can show, and say what they saw
    compliant = by_host["dsj-zwfw-db1"]
    assert {row["status"] for row in compliant["rows"]} <= {PASS, "needs_evidence", "not_applicable"}
    assert rows[("dsj-zwfw-db1", "login.lockout")]["status"] == PASS


def test_the_run_is_stored(inventory_levels):
    run_id, results, _, store, _ = inventory_levels
    stored = store.run_results(run_id)
    assert {r.target for r in stored} == {r.target for r in results}
    assert all(r.data["rows"] for r in stored)


def test_reports_from_the_stored_run(inventory_levels, demo, catalog, tmp_path):
    import json
    import xml.etree.ElementTree as ET

    import openpyxl

    from audit.baseline.report import write_reports

    run_id, results, _, store, run = inventory_levels
    written = write_reports(service.load_run(demo, store), tmp_path)
    assert sorted(p.name for p in written) == ["baseline.html", "baseline.json", "baseline.junit.xml", "baseline.xlsx"]
    wb = openpyxl.load_workbook(tmp_path / "baseline.xlsx")
    ws = wb["检查结果"]
    header = [c.value for c in ws[1]]
    for h in ("控制点", "要求项", "检查项", "结果", "证据", "整改建议"):
        assert h in header
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    assert len(rows) == sum(len(r.value["rows"]) for r in results)
    failed = {(r["主机"], " ".join(r["要求项"].split(" ")[:2])) for r in rows if r["结果"] == "不符合"}
    expected = {(r.target, row["clause"]) for r in results for row in r.value["rows"] if row["status"] == "fail"}
    assert failed == expected
    weak = next(r for r in rows
                if r["主机"] == "dsj-zwfw-app1" and r["结果"] == "不符合" and "口令复杂度" in r["检查项"])
    assert "/etc/pam.d/system-auth:" in weak["证据"] and "pam_pwquality" in weak["整改建议"]
    summary = wb["汇总"]
    assert [c.value for c in summary[1]][:3] == ["系统", "等保级别", "主机数"]
    assert {r[1].value for r in summary.iter_rows(min_row=2)} == {"2", "3"}
    suites = ET.parse(tmp_path / "baseline.junit.xml").getroot()
    assert int(suites.get("failures")) == sum(row["status"] == "fail" for r in results for row in r.value["rows"])
    data = json.loads((tmp_path / "baseline.json").read_text())
    assert data["run"] == run_id and set(data["hosts"]) == {r.target for r in results}
    html = (tmp_path / "baseline.html").read_text()
    assert "<script" not in html and "<svg" in html and "不符合" in html
    # the run just checked reports exactly as the run read back from the store
    write_reports(run, tmp_path / "live", ("json",))
    assert json.loads((tmp_path / "live" / "baseline.json").read_text()) == data


def test_testinfra_path_gives_the_fleet_paths_verdicts(all_level3, demo, lab, tmp_path):
    """`pytest --hosts=…` on the generated suite agrees with the fleet path, check by check."""
    import subprocess

    from audit.baseline import testinfra as suite

    names = ["dsj-zwfw-app1", "fgw-xyxx-app1", "dxjyj-zhxy-app1", "zjj-wxzj-app1", "jyj-web-app1", "dsj-zwfw-db1"]
    address = {n: str(demo.hosts[n].address) for n in names}
    config = suite.ssh_config(tmp_path / "ssh_config", lab.key, lab.known_hosts)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(suite.command(list(address.values()), config, junit, level=3,
                                        inventory=str(demo.root)), capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # failed checks fail their tests
    testinfra = suite.verdicts(junit)
    fleet = {(address[r.target], row["item"], row["check"]): row["status"]
             for r in all_level3 if r.target in names for row in r.value["rows"]}
    assert len(fleet) > 6 * 40
    assert testinfra == fleet


def test_no_classified_host_is_checked_against_dengbao(lab, demo):
    """A classified (涉密) system is under 分级保护, not 等保: refused before any session, whatever the level."""
    from inventory.groups import ClassifiedRefused
    from tests.test_audit_classified import sessions

    hosts = ["szfb-oa-app1", "szfb-jmwj-app1"]
    before = {h: sessions(lab, h) for h in hosts}
    assert service.levels(demo, hosts) == {"szfb-oa-app1": 3, "szfb-jmwj-app1": None}  # 分保: no 等保 level
    with pytest.raises(ClassifiedRefused, match="asked to check against 等保 classified"):
        service.check(demo, hosts, level=3, progress=False)
    with pytest.raises(ClassifiedRefused, match="szfb-jmwj-app1"):
        service.remediate(demo, ["szfb-jmwj-app1"], progress=False)
    assert {h: sessions(lab, h) for h in hosts} == before
    # only the explicit override reaches it, and only at a level given for it
    run = service.check(demo, hosts, level=3, options=model.CheckOptions(include_classified=True), progress=False)
    assert sorted(r.target for r in run.results) == sorted(hosts) and all(r.ok for r in run.results)
    assert {h: sessions(lab, h) - before[h] for h in hosts} == dict.fromkeys(hosts, 1)


def test_the_hosts_sshd_and_login_shells_decide(baseline_seeded, lab, demo, catalog):
    """A Match block for the management source that lets root in with a password, a umask after `&&` and an
    ineffective `TMOUT=0` after `readonly TMOUT`: judged as the host's own sshd (`sshd -T -C`) and bash see them."""
    host = "zjj-gjj-app1"
    config, local = lab.path(host, "/etc/ssh/sshd_config"), lab.path(host, "/etc/profile.d/zz-local.sh")
    original = config.read_text()
    try:  # sshd -T reads the file; the running sshd is never reloaded with it
        config.write_text(f"{original}Match Address 198.18.30.0/24\n  PermitRootLogin yes\n"
                          "  PasswordAuthentication yes\n")
        local.write_text('[ "$(id -u)" = 0 ] && umask 022\nTMOUT=0\n')
        run = service.check(demo, [host], level=3, catalog=catalog, progress=False)
        rows = {r["check"]: r for r in run.results[0].value["rows"]}
    finally:
        config.write_text(original)
        local.unlink(missing_ok=True)
    root = rows["ssh.root_login"]
    assert root["status"] == FAIL and "from management source 198.18.30.0/24" in root["summary"]
    assert list(root["evidence"]) == ["sshd -T -C user=root,addr=198.18.30.1,host=198.18.30.1: permitrootlogin yes"]
    restricted = rows["mgmt.restricted"]  # AllowUsers keeps 203.0.113.7 out; the Match block is no restriction
    assert restricted["status"] == PASS
    assert restricted["evidence"][0] == "sshd admits none of root, sysadmin, secadmin, auditadmin from outside the " \
                                        "management networks (203.0.113.7)"
    umask = rows["umask"]
    assert umask["status"] == FAIL and umask["summary"] == "umask 022 is wider than 027"
    assert {"/bin/bash -lc (login shell of root): umask 0022",
            "/bin/bash -lc (login shell of sysadmin): umask 0027"} <= set(umask["evidence"])
    tmout = rows["session.tmout"]
    assert tmout["status"] == PASS and "/bin/bash -lc (login shell of root): TMOUT=600" in tmout["evidence"]
