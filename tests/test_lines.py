"""Leased lines and business private networks: validation, the cancellation plan, the join render (and the
simulated devices' grammar accepting it), and the egress probe on the lab's two uplinks (real hosts)."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from invoke import Context, Exit

import inventory
from inventory.loader import InventoryError
from inventory.model import BoundaryDevice, Join, LeasedLine, Measure, PrivateNetwork
from jiyue.store import Store
from lab.netsim.baseline import device_config
from lab.netsim.config import Config
from lab.netsim.grammar import load as grammar
from lab.uplinks import uplinks_up
from lines import plan as lines_plan
from lines import service
from lines.egress import classify, parse_route, parse_trace
from lines.model import EgressPath, LineStatus
from lines.report import write_reports
from migrations.plan import build_plan as build_migration_plan
from migrations.plan import load_planning, private_network
from network.joins import JoinError, planned_joins
from network.plan import build_plan as build_address_plan
from network.render import RenderError, render_device
from progress import report as progress_report
from progress import service as progress_service
from progress import tasks as progress_tasks

REPO = Path(__file__).resolve().parent.parent
START = date(2027, 1, 4)  # waves on Saturday nights from 9 January 2027
NOW = datetime(2027, 1, 1, tzinfo=UTC)

BAD = """\
leased_lines:
  - id: bad-line-1
    department: nosuch
    carrier: 中国电信示范市分公司
    circuit_id: SFS-DX-2019-0417
    bandwidth_mbps: 10
    annual_cost: 1000
    contract_end: 2027-01-01
    purpose: 测试
    hosts: [szfb-jmwj-app1, no-such-host]
  - id: bad-line-2
    department: fgw
    carrier: 中国电信
    circuit_id: SFS-DX-2019-0417
    bandwidth_mbps: 0
    annual_cost: 1000
    contract_end: 2027-01-01
    purpose: 测试
    hosts: [fgw-oa-app1]
  - id: bad-line-3
    department: fgw
    carrier: 中国联通
    circuit_id: LT-1
    bandwidth_mbps: 10
    annual_cost: 1000
    contract_end: 2027-01-01
    purpose: 测试
private_networks:
  - id: bad-net-1
    name: 金盾
    department: gaj
    owner: national
    owner_name: 公安部
    qualifies: true
    golden_network: 金盾
    boundary_devices: [{name: r1, address: 10.80.8.254}]
  - id: bad-net-2
    name: 测试专网
    department: fgw
    owner: provincial
    owner_name: 省发改委
    qualifies: true
    systems: [fgw-oa]
    prefixes: [172.21.0.0/24]
    boundary_devices: [{name: r1, address: 10.80.4.254}]
    join: {vlan: 160}
"""


@pytest.fixture(scope="module")
def sample(demo):
    """The sample city's migration plan (waves from 9 January 2027), its planning and its address plan."""
    planning = load_planning()
    return (build_migration_plan(demo, planning=planning, start=START, now=NOW), planning, build_address_plan(demo))


def _policy() -> lines_plan.Policy:
    return lines_plan.load_policy()


def test_the_sample_city_declares_two_lines_and_one_private_network(demo):
    assert sorted(demo.leased_lines) == ["jyj-lt-01", "wjw-dx-01"]
    [net] = demo.private_networks.values()
    assert net.id == "zjj-gjj-net" and net.qualifies and net.join == Join(vlan=160)
    assert demo.extranet.internet_probe.address == ipaddress.ip_address("192.0.2.80")
    # the record decides the migration's routing of its system (no second model of the private network)
    assert "VLAN 160" in private_network(demo, demo.systems["zjj-gjj"]).reason
    stays = demo.model_copy(update={"private_networks": {net.id: net.model_copy(
        update={"qualifies": False, "reason": "省厅未同意", "join": None})}})
    routed = private_network(stays, stays.systems["zjj-gjj"])
    assert not routed.joins_extranet and "省厅未同意" in routed.reason


def test_every_bad_line_and_network_is_reported_with_its_file_and_line(tmp_path: Path):
    root = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, root)
    (root / "more-lines.yaml").write_text(BAD, encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        inventory.load(root)
    found = [(p.line, p.path, p.message) for p in caught.value.problems if p.file.name == "more-lines.yaml"]
    text = "\n".join(f"{line} {path}: {message}" for line, path, message in found)
    assert "3 leased_lines[bad-line-1].department: unknown department 'nosuch'" in text
    assert "10 leased_lines[bad-line-1].hosts[0]: host 'szfb-jmwj-app1' belongs to a classified" in text
    assert "10 leased_lines[bad-line-1].hosts[1]: unknown host 'no-such-host'" in text
    assert "5 leased_lines[bad-line-1].circuit_id: circuit SFS-DX-2019-0417 of 中国电信示范市分公司 is already " \
        "leased line 'wjw-dx-01'" in text
    assert "15 leased_lines[bad-line-2].bandwidth_mbps: Input should be greater than or equal to 1" in text
    assert "20 leased_lines[bad-line-3]: hosts, subnets: name the hosts or subnets" in text  # it serves nothing
    assert "private_networks[bad-net-1]" in text and "金盾" in text and "never joins the extranet" in text
    assert "system 'fgw-oa' declares zone intranet, not private" in text
    assert "VLAN 160 is no extranet VLAN of department 'fgw' (its VLANs: 120)" in text
    assert all(p.file.name == "more-lines.yaml" for p in caught.value.problems)  # the sample city itself is clean


def test_a_line_is_cancelled_after_its_last_system_moves_outside_blackouts(demo, sample):
    migration, planning, address_plan = sample
    src = lines_plan.Sources(migration, planning, address_plan)
    result = service.plan_lines(demo, src, today=date(2027, 1, 1))
    by_line = {c.line: c for c in result.cancellations}
    wjw = by_line["wjw-dx-01"]
    # wjw-jkda and wjw-jtys move in wave 2 (16-17 January); 7 days' verification is Sunday 24: Monday 25
    assert wjw.status is LineStatus.planned and wjw.last_move == date(2027, 1, 17)
    assert wjw.date == date(2027, 1, 25) and wjw.early  # before the contract's end (30 June 2027)
    assert by_line["jyj-lt-01"].status is LineStatus.cancelled and by_line["jyj-lt-01"].date == date(2026, 11, 30)

    # jyj-zsbm moves in wave 4 (ends 31 January): +7 days is 7 February, inside 春节 2027 (3-14 February)
    line = demo.leased_lines["jyj-lt-01"].model_copy(update={"cancelled_on": None})
    held = lines_plan.cancellation(demo, line, migration, planning, _policy())
    assert held.last_move == date(2027, 1, 31) and held.date == date(2027, 2, 15) and "春节 2027" in held.reason

    # a line serving a golden network's front end waits: the system stays, the line has no date
    golden = LeasedLine(id="gaj-line", department="gaj", carrier="中国移动", circuit_id="X-1", bandwidth_mbps=10,
                        annual_cost=Decimal(100), contract_end=date(2027, 1, 1), purpose="测试",
                        subnets=[ipaddress.ip_network("198.18.10.41/32")])
    waits = lines_plan.cancellation(demo, golden, migration, planning, _policy())
    assert waits.status is LineStatus.waiting and waits.date is None and "gaj-jd" in waits.reason
    # without a migration plan nothing is dated but what the carrier confirmed
    bare = service.plan_lines(demo, lines_plan.Sources(), today=date(2027, 1, 1))
    assert [c.status for c in bare.cancellations] == [LineStatus.cancelled, LineStatus.waiting]


# One private network joining on a department VLAN of each platform (the sample city's zjj on VRP5 sj-hj1).
JOINS = {
    "huawei_vrpv8": ("sj-hx1", "dsj", 190, "10.80.28.254", "172.22.0.0/24"),
    "hp_comware": ("dx-hj1", "dxzf", 300, "10.81.0.254", "172.22.1.0/24"),
    "cisco_ios": ("gaj-jr1", "gaj", 130, "10.80.8.254", "172.22.2.0/24"),
    "ruijie_os": ("rsj-jr1", "rsj", 140, "10.80.12.254", "172.22.3.0/24"),
}


def _with_joins(demo, address_plan):
    nets = dict(demo.private_networks)
    for platform, (_, dept, vlan, hop, prefix) in JOINS.items():
        subnet6 = address_plan.subnet(dept, vlan).ipv6
        nets[f"pn-{dept}"] = PrivateNetwork(
            id=f"pn-{dept}", name=f"{platform} 专网", department=dept, owner="provincial", owner_name="省厅",
            qualifies=True, prefixes=[ipaddress.ip_network(prefix), ipaddress.ip_network("2001:db8:9000:1::/64")],
            boundary_devices=[BoundaryDevice(name="r", address=ipaddress.ip_address(hop)),
                              BoundaryDevice(name="r6", address=subnet6[0xfe])],
            join=Join(vlan=vlan))
    return demo.model_copy(update={"private_networks": nets})


def test_a_qualifying_network_joins_through_its_vlan_on_every_platform_and_the_devices_accept_it(demo, sample):
    _, _, address_plan = sample
    hj1 = render_device(demo, address_plan, "sj-hj1")
    assert "rule 1701 permit ip source 172.20.16.0 0.0.0.255" in hj1.features["acl"]
    assert "ip route-static vpn-instance EGOV-EXTRANET 172.20.16.0 255.255.255.0 10.80.16.254" in hj1.features["routes"]
    city = _with_joins(demo, address_plan)
    texts = {"huawei_vrp": (demo.devices["sj-hj1"], hj1.text)}
    for platform, (device, _, vlan, hop, prefix) in JOINS.items():
        r = render_device(city, address_plan, device)
        net = ipaddress.ip_network(prefix)
        assert str(net.network_address) in r.features["acl"] and hop in r.features["routes"], platform
        assert "2001:DB8:9000:1::" in r.features["routes"] and f"{100 + 10 * vlan + 1}" in r.features["acl"]
        texts[platform] = (city.devices[device], r.text)
    for platform, (device, text) in texts.items():
        config = Config(grammar(platform))
        assert config.load(device_config(demo, device)) == [], platform
        refused = config.load(text)  # only the baseline's removals of what the device does not have may be refused
        assert all(line.startswith(("no ", "undo ")) for line in refused), (platform, refused)
        running = config.render()
        joined = [line.strip() for line in text.splitlines() if "172.2" in line or "2001:DB8:9000:1::" in line]
        assert len(joined) >= 2 and all(line in running for line in joined), (platform, joined)

    # a boundary device outside the VLAN's planned subnet: refused at the record's line, nothing rendered
    zjj = demo.private_networks["zjj-gjj-net"]
    wrong = zjj.model_copy(update={"boundary_devices": [BoundaryDevice(name="r", address="10.80.99.1")]})
    wrong._origin = zjj._origin
    bad = demo.model_copy(update={"private_networks": {zjj.id: wrong}})
    with pytest.raises(JoinError) as caught:
        planned_joins(bad, address_plan)
    problem, unrouted = caught.value.problems  # and so its prefix has no next hop
    assert "172.20.16.0/24: no boundary device" in unrouted.message
    assert problem.file.name == "lines.yaml" and problem.path == "private_networks[zjj-gjj-net].boundary_devices[0]" \
        ".address" and "10.80.16.0/24" in problem.message
    with pytest.raises(RenderError, match=r"lines\.yaml"):
        render_device(bad, address_plan, "sj-hj1")
    rows = service.plan_lines(demo, lines_plan.Sources(None, None, address_plan)).joins
    assert rows[0].joins and rows[0].device == "sj-hj1" and rows[0].interface == "Vlanif160"


def test_the_probe_reads_routes_and_traces_of_either_tool(demo):
    assert parse_route('[{"dst":"192.0.2.80","gateway":"198.18.10.254","dev":"eth0","prefsrc":"198.18.10.81"}]') \
        == {"gateway": "198.18.10.254", "dev": "eth0", "src": "198.18.10.81"}
    assert parse_route("192.0.2.80 via 198.18.40.11 dev eth0 src 198.18.10.91 uid 0")["gateway"] == "198.18.40.11"
    assert parse_route("") == {}
    trace = "tool=traceroute\ntraceroute to 192.0.2.80\n 1  10.0.0.1  0.2 ms\n 2  *\n 3  198.18.40.11  1 ms\n"
    hops, reached, tool = parse_trace(trace, "192.0.2.80")
    assert (hops, reached, tool) == (["10.0.0.1", "*", "198.18.40.11"], False, "traceroute")
    assert classify(demo, {"dev": "eth0"}, hops) == (EgressPath.extranet, None, "198.18.40.11")
    assert classify(demo, {}, ["*"]) == (EgressPath.none, None, None)
    assert classify(demo, {"gateway": "10.9.9.9"}, ["10.9.9.9"])[0] is EgressPath.unknown
    # the egress gateway itself (zwy-wg, the extranet's first hop) routes straight out: it is the extranet's egress
    assert classify(demo, {"gateway": "100.64.255.2"}, ["192.0.2.80"], "zwy-wg") == (EgressPath.extranet, None,
                                                                                      "198.18.40.11")


PROBED = ["wjw-jkda-app1", "wjw-jtys-app1", "jyj-zsbm-app1", "zjj-gjj-app1"]
AFTER = date(2027, 2, 1)  # past wjw-dx-01's date (25 January) and jyj-lt-01's (30 November 2026)


@pytest.fixture(scope="module")
def probed(lab, demo, sample, tmp_path_factory):
    """One real `lines.egress` run on the lab's two uplinks into the module's store, judged as of AFTER: the
    probe test and the progress report's test read the same records."""
    assert uplinks_up(lab, demo) == ["wjw-dx-01"]  # again, as every `lab.up` does: rebuilt, not doubled
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('lines') / 'history.sqlite'}")
    migration, planning, address_plan = sample
    planned = service.plan_lines(demo, lines_plan.Sources(migration, planning, address_plan), today=AFTER)
    result = service.probe_egress(demo, PROBED, store, service.EgressOptions(timeout=20), planned, AFTER,
                                  progress=False)
    return store, planned, result


def test_the_probe_tells_the_leased_line_from_the_extranet_egress_on_the_lab(probed, demo, tmp_path: Path):
    store, planned, result = probed
    after = AFTER
    assert result.failed == {}
    for host in ("wjw-jkda-app1", "wjw-jtys-app1"):  # served by the line the lab keeps in use
        f = result.facts[host]
        assert (f["path"], f["line"], f["via"]) == ("line", "wjw-dx-01", "198.18.10.254"), f
        assert f["route"]["gateway"] == "198.18.10.254" and f["hops"][0] == "198.18.10.254" and f["reached"]
    for host in ("jyj-zsbm-app1", "zjj-gjj-app1"):  # jyj's line is cancelled: through the gateway, like the rest
        f = result.facts[host]
        assert (f["path"], f["via"], f["hops"][0], f["reached"]) == ("extranet", "198.18.40.11", "198.18.40.11",
                                                                      True), f
    [finding] = result.findings
    assert finding.line == "wjw-dx-01" and finding.hosts == ("wjw-jkda-app1", "wjw-jtys-app1")
    stored = store.history("lines.egress")
    assert sorted(r.target for r in stored) == sorted(PROBED) and all(r.status == "ok" for r in stored)

    # the progress report's measure, from the store alone
    progress = service.progress(demo, store, after, planned)
    assert (progress.done, progress.total, progress.annual_cost_saved) == (1, 2, Decimal("43200"))
    assert {d.department: (d.done, d.total) for d in progress.departments} == {"jyj": (1, 1), "wjw": (0, 1)}
    assert [f.line for f in progress.findings] == ["wjw-dx-01"] and progress.probed_at
    assert progress.carrying == {"wjw-dx-01": ("wjw-jkda-app1", "wjw-jtys-app1")}
    assert service.progress(demo, store, date(2027, 1, 20), planned).findings == ()  # before its date: no finding
    assert service.progress(demo, store, date(2026, 11, 1), planned).done == 0  # before the carrier cancelled jyj's

    paths = write_reports(result, tmp_path / "out", lang="en")
    assert [p.name for p in paths] == ["leased-lines.xlsx", "leased-lines.html", "leased-lines.json"]
    data = json.loads((tmp_path / "out" / "leased-lines.json").read_text(encoding="utf-8"))
    assert data["findings"][0]["line"] == "wjw-dx-01" and data["egress"]["wjw-jkda-app1"]["path"] == "line"
    html = (tmp_path / "out" / "leased-lines.html").read_text(encoding="utf-8")
    assert "wjw-dx-01" in html and "<script" not in html
    zh = write_reports(result, tmp_path / "zh")[1]
    screenshot(zh, tmp_path, "leased-lines.png")


def screenshot(page: Path, work: Path, name: str) -> None:
    """Headless Chromium renders the page; the picture is kept under reports/test-screenshots/."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is required (Debian package: chromium, fonts: fonts-noto-cjk)")
    png = work / name
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={work / 'profile'}",
                           f"--screenshot={png}", "--window-size=1400,2000", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert png.exists() and png.stat().st_size > 20_000, \
        f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    keep = REPO / "reports" / "test-screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, keep / name)


def test_the_progress_report_shows_the_lines_the_probe_found(probed, demo, tmp_path: Path, capsys):
    """report.progress's leased-lines milestone from the lab probe's records: lines cancelled per department (the
    lines module's reading), the annual cost saved, and the line still carrying traffic past its date, flagged in
    every format and counted in the exit code."""
    store, planned, _ = probed
    result = progress_service.progress(demo, store, AFTER, timeline=False, lines_plan=planned)
    m = next(x for x in result.milestones if x.milestone.measure == Measure.leased_lines)
    assert {d.department: (d.count.done, d.count.total) for d in m.departments} == {"wjw": (0, 1), "jyj": (1, 1)}
    assert "43,200.00" in m.note and "129,600.00" in m.note
    assert [(f.line, f.hosts) for f in m.findings] == [("wjw-dx-01", ("wjw-jkda-app1", "wjw-jtys-app1"))]
    assert [f.line for _, f in result.findings] == ["wjw-dx-01"]
    [wjw] = [i for d in m.departments for i in d.items if i.subject == "wjw-dx-01"]
    assert not wjw.done and "still carries traffic: wjw-jkda-app1" in wjw.why
    before = progress_service.progress(demo, store, date(2027, 1, 20), timeline=False, lines_plan=planned)
    assert before.findings == [] and by_measure(before).lines.carrying  # in use, but its date has not come

    out = progress_report.write_reports(result, tmp_path / "zh")
    data = json.loads((tmp_path / "zh" / "progress.json").read_text(encoding="utf-8"))
    assert [f["line"] for f in data["findings"]] == ["wjw-dx-01"]
    block = next(x for x in data["milestones"] if x["measure"] == "leased_lines")["leased_lines"]
    assert (block["done"], block["total"], block["annual_cost_saved"]) == (1, 2, 43200.0)
    assert {x["line"]: x["finding"] for x in block["lines"]} == {"wjw-dx-01": True, "jyj-lt-01": False}
    wb = openpyxl.load_workbook(tmp_path / "zh" / "progress.xlsx")
    rows = list(wb["问题发现"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[2]) for r in rows] == [("wjw-dx-01", "wjw")]
    sheet = wb[m.milestone.name]
    wjw_row = next(r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == "wjw")
    assert "wjw-dx-01" in wjw_row[-1]  # the department's findings column
    html = next(p for p in out if p.suffix == ".html").read_text(encoding="utf-8")
    assert 'id="findings"' in html and html.count("wjw-jkda-app1") >= 2
    screenshot(next(p for p in out if p.suffix == ".html"), tmp_path, "progress-leased-lines.png")

    # the command line: a finding alone (nobody lags: a milestone just begun) makes exit 1. A copy of the city in
    # which the carrier confirmed wjw's line cancelled three days ago, while the lab's hosts still leave by it.
    today = date.today()
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    lines_yaml = city / "lines.yaml"
    lines_yaml.write_text(lines_yaml.read_text(encoding="utf-8").replace(
        "    next_hop: 198.18.10.254 ", f"    cancelled_on: {today - timedelta(days=3)}\n    next_hop: 198.18.10.254 "),
        encoding="utf-8")
    (city / "programme.yaml").write_text(
        f"programme:\n  start: {today - timedelta(days=30)}\n  milestones:\n    - name: 撤销部门互联网专线\n"
        f"      measure: leased_lines\n      start: {today - timedelta(days=1)}\n"
        f"      due: {today + timedelta(days=365)}\n", encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(Exit) as caught:
        progress_tasks.progress(Context(), inventory=str(city), store=store.url, out=str(tmp_path / "cli"),
                                format="json")
    said = " ".join(capsys.readouterr().err.split())
    assert caught.value.code == 1 and "0 department milestone(s) lagging" in said and "1 finding(s)" in said
    data = json.loads((tmp_path / "cli" / "progress.json").read_text(encoding="utf-8"))
    [finding] = data["findings"]
    assert finding["line"] == "wjw-dx-01" and finding["status"] == "cancelled"


def by_measure(result, measure: Measure = Measure.leased_lines):
    return next(m for m in result.milestones if m.milestone.measure == measure)
