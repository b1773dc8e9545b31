"""The progress report (report.progress): each measure from the store of real lab runs, the lagging rule, as-of,
the timeline, the reports (the HTML rendered by headless Chromium) and the programme's validation.

One store for the module, filled by the real engines on the session's lab: the sample city's 30 earlier daily
runs (lab/history.py, as the demo writes them), a collection of a few systems' hosts (audit.collect), a
graded-protection check of two hosts, and a push of the town's VLAN to its two devices (the devices are put back
afterwards). The migration engine's location and freed-host records, which need a whole migration to be made,
are written in the shape the engine writes them (migrations/engine.py `_record_location`, `_record_freed`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from invoke import Context, Exit

import inventory
from audit.baseline import service as baseline
from audit.collect import CollectOptions, collect
from inventory.model import Measure, Milestone, Programme
from jiyue import i18n
from jiyue.runner import Result, StoreRecorder
from jiyue.store import ASSET_FREED, MIGRATE_LOCATION, NETWORK_PUSH, Store
from lab.history import seed_history
from lab.netsim.lab import netsim
from network.plan import build_plan
from network.push import Pusher, PushOptions
from network.render import render
from progress import service
from progress import tasks as progress_tasks
from progress.model import Count
from progress.report import write_reports

REPO = Path(__file__).resolve().parent.parent
COLLECTED = ["dsj-gxjh-app1", "dsj-gxjh-db1", "fgw-hgjj-app1", "fgw-hgjj-db1", "szfb-web-app1", "qszf-nyfw-app1"]
CHECKED = ["dsj-gxjh-app1", "szfb-web-app1"]
TOWN_DEVICES = ["dx-hj1", "qs-jr1"]  # qszf's VLAN 320: its gateway and its access switch


def by_measure(result, measure: Measure):
    return next(m for m in result.milestones if m.milestone.measure == measure)


def items(milestone) -> dict[str, bool]:
    return {i.subject: i.done for d in milestone.departments for i in d.items}


@pytest.fixture(scope="module")
def city(seeded, lab, demo, tmp_path_factory):
    """The store of the lab runs, and the moments between them (for as-of)."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('progress') / 'history.sqlite'}")
    seed_history(store, demo)
    before = datetime.now(UTC)
    _, results = collect(demo, COLLECTED, CollectOptions(), store=store, progress=False)
    assert all(r.ok for r in results), [(r.target, r.error) for r in results if not r.ok]
    collected = datetime.now(UTC)
    checked = baseline.check(demo, CHECKED, store=store, progress=False)
    assert not checked.not_checked(), [(r.target, r.error) for r in checked.not_checked()]
    rendered = render(demo, build_plan(demo), TOWN_DEVICES)
    pusher = Pusher(demo, {n: r.lines for n, r in rendered.items()},
                    PushOptions(apply=True, backups=tmp_path_factory.mktemp("backups"), progress=False))
    recorder = StoreRecorder(store, NETWORK_PUSH, inventory=str(demo.root), rows=pusher.store_rows)
    try:
        pushed = pusher.run(TOWN_DEVICES, observers=[recorder])
    finally:
        for name in TOWN_DEVICES:
            netsim(lab).reset(name)
    assert {o.status for o in pushed.outcomes} <= {"applied", "unchanged"}, [(o.device, o.reason)
                                                                               for o in pushed.outcomes]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    store.record(MIGRATE_LOCATION, [Result("dsj-zwfw", True, {
        "system": "dsj-zwfw", "hosts": {"dsj-zwfw-app1": "zwy-07"}, "what": "migrated", "run_key": "t", "at": now})],
        inventory=str(demo.root))
    store.record(MIGRATE_LOCATION, [Result("fgw-xyxx", True, {
        "system": "fgw-xyxx", "hosts": {}, "what": "rolled_back", "run_key": "t", "at": now})],
        inventory=str(demo.root))
    freed = [Result(h, True, {"host": h, "system": s, "department": demo.systems[s].department, "cause": cause,
                              "signed_off_by": "测试", "freed_at": now})
             for s, cause in (("fgw-hgjj", "zombie"), ("szfb-web", "website")) for h in demo.systems[s].hosts]
    store.record(ASSET_FREED, freed, inventory=str(demo.root))
    return {"store": store, "before": before, "collected": collected, "checked": checked,
            "now": service.progress(demo, store)}


def test_each_measure_counts_what_the_lab_runs_stored(city, demo):
    result = city["now"]
    archived = items(by_measure(result, Measure.archived))
    assert all(archived[s] for s in ("dsj-gxjh", "fgw-hgjj", "szfb-web", "qszf-nyfw"))  # every host collected
    assert archived["szfb-jmwj"] and archived["gaj-qbyp"]  # classified: archived with the declared fields only
    assert not archived["fgw-oa"] and not archived["szfb-oa"]  # their hosts were never collected
    assert sum(archived.values()) == 6 and len(archived) == len(demo.systems)

    zombies = items(by_measure(result, Measure.zombies_decommissioned))
    assert zombies["fgw-hgjj"] is True  # judged zombie from the lab's collection, its hosts freed
    assert all(not done for s, done in zombies.items() if s != "fgw-hgjj")

    # The exchange platform's collection saw its clients' connections on the wire: the systems that depend on it.
    exchange = items(by_measure(result, Measure.exchange))
    clients = {s.id for s in demo.systems.values() if "dsj-gxjh" in s.depends_on}
    assert {s for s, done in exchange.items() if done} == clients
    assert "dsj-gxjh" not in exchange and "gaj-jd" not in exchange and "szfb-jmwj" not in exchange

    migrated = by_measure(result, Measure.migrated)
    done = items(migrated)
    assert done["dsj-zwfw"] and not done["fgw-xyxx"]
    why = {i.subject: i.why for d in migrated.departments for i in d.items}
    assert "rolled back" in why["fgw-xyxx"]
    assert "szfb-web" not in done and "szfb-dzyz" not in done and "fgw-hgjj" not in done  # other routes

    assert items(by_measure(result, Measure.websites)) == {"szfb-web": True, "gaj-web": False, "jyj-web": False,
                                                           "dxzf-web": False}

    coverage = items(by_measure(result, Measure.extranet_coverage))
    assert coverage == {"qszf": True, "qsc": False, "dlsq": False}  # the villages have no allocation yet

    hosts = items(by_measure(result, Measure.baseline))
    for r in city["checked"].checked():
        assert hosts[r.target] == (not city["checked"].failed_checks(r)), r.target
    assert not any(done for h, done in hosts.items() if h not in CHECKED)
    assert "qszf-nyfw-app1" not in hosts  # a level-1 system: not checked against the baseline

    # the lines module's measure (tests/test_lines.py probes the lab's uplinks): jyj's line is cancelled
    lines = by_measure(result, Measure.leased_lines)
    assert lines.count == Count(1, 2) and "43,200.00" in lines.note and lines.findings == []
    assert lines.lines is not None and lines.lines.probed_at is None  # this store holds no egress probe


def test_as_of_recomputes_from_the_store_as_it_stood(city, demo):
    store = city["store"]
    at_collection = service.progress(demo, store, city["collected"], timeline=False)
    assert sum(items(by_measure(at_collection, Measure.archived)).values()) == 6
    assert not any(items(by_measure(at_collection, Measure.baseline)).values())  # checked later
    assert items(by_measure(at_collection, Measure.extranet_coverage))["qszf"] is False  # pushed later
    assert not any(items(by_measure(at_collection, Measure.migrated)).values())
    assert items(by_measure(at_collection, Measure.zombies_decommissioned))["fgw-hgjj"] is False  # freed later
    earlier = service.progress(demo, store, city["before"], timeline=False)
    assert sum(items(by_measure(earlier, Measure.archived)).values()) == 2  # only the classified systems
    assert not any(items(by_measure(earlier, Measure.exchange)).values())
    yesterday = service.progress(demo, store, date.today() - timedelta(days=1), timeline=False)
    assert yesterday.as_of < city["before"]
    with pytest.raises(RuntimeError, match="read-only"):
        store.as_of(city["before"]).record(MIGRATE_LOCATION, [])


def test_the_timeline_recomputes_each_past_run_day(city):
    result = city["now"]
    archived = by_measure(result, Measure.archived)
    points = archived.timeline
    assert len(points) == result.policy["timeline"]["max_points"]  # 30 seeded days: the last 11, and today
    assert [p.at for p in points] == sorted({p.at for p in points})
    assert points[-1].count == archived.count and points[-1].at == service.local_day(result.as_of, result.policy)
    assert all(p.count.done == 2 for p in points[:-1])  # seeded runs carry samples, not the archive's facts


def _milestone(due: date, start: date) -> tuple[Milestone, Programme]:
    m = Milestone(name="m", due=due, measure=Measure.migrated, start=start)
    return m, Programme(start=date(2026, 1, 1), milestones=[m])


def test_the_lagging_rule_and_its_policy():
    policy = service.load_policy()
    m, p = _milestone(date(2026, 12, 31), date(2026, 1, 1))
    mid = date(2026, 7, 2)  # half the time gone: 50 % expected
    expected, lagging, why = service.judge_lag(Count(3, 10), m, p, mid, policy)
    assert round(expected, 2) == 0.5 and lagging and "expected" in why  # 30 % < 50 % - 15
    assert not service.judge_lag(Count(4, 10), m, p, mid, policy)[1]  # within the tolerance (Kaiping's 明显)
    assert not service.judge_lag(Count(0, 10), m, p, date(2026, 2, 1), policy)[1]  # too early to call
    assert not service.judge_lag(Count(0, 0), m, p, date(2027, 1, 1), policy)[1]  # nothing to count
    assert service.judge_lag(Count(9, 10), m, p, date(2027, 1, 1), policy)[1]  # past due below 100 %
    assert not service.judge_lag(Count(10, 10), m, p, date(2027, 1, 1), policy)[1]
    due_only = {**policy, "lagging": {**policy["lagging"], "rule": "due"}}
    assert not service.judge_lag(Count(0, 10), m, p, date(2026, 12, 1), due_only)[1]
    assert service.judge_lag(Count(0, 10), m, p, date(2027, 1, 1), due_only)[1]


def test_a_policy_with_an_unknown_rule_is_refused(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text((service.DEFAULT_POLICY.read_text(encoding="utf-8")).replace("rule: linear", "rule: gut"))
    with pytest.raises(service.ProgressError, match=r"lagging\.rule"):
        service.load_policy(bad)


def test_a_milestone_covers_the_units_below_its_departments(demo):
    m = Milestone(name="m", due=date(2027, 1, 1), measure=Measure.extranet_coverage, departments=["dxzf"])
    assert service.covered(demo, m) == {"dxzf", "dxjyj", "qszf", "qsc", "dlsq"}


# --- the reports ------------------------------------------------------------------------------------


def test_reports_in_excel_json_and_html_rendered_by_chromium(city, demo, tmp_path):
    result = city["now"]
    zh = write_reports(result, tmp_path / "zh")
    en = write_reports(result, tmp_path / "en", ("json", "html"), "en")
    assert sorted(p.name for p in zh) == ["progress.html", "progress.json", "progress.xlsx"] and len(en) == 2
    assert "Lagging departments" in (tmp_path / "en" / "progress.html").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(tmp_path / "zh" / "progress.xlsx")
    names = [m.name for m in demo.programme.milestones]
    assert wb.sheetnames == ["汇总排名", "里程碑总览", *names, "明细", "问题发现", "进度变化"]
    summary = wb["汇总排名"]
    assert [c.value for c in summary[1]][:3] == ["排名", "部门代码", "部门"]
    assert [summary.cell(r, 1).value for r in range(2, summary.max_row + 1)] == list(range(1, summary.max_row))
    sheet = wb["电子政务外网覆盖镇村"]
    rows = {sheet.cell(r, 1).value: [c.value for c in sheet[r]] for r in range(2, sheet.max_row + 1)}
    assert rows["qszf"][2:4] == [1, 1] and rows["qsc"][2:4] == [0, 1]
    data = json.loads((tmp_path / "zh" / "progress.json").read_text(encoding="utf-8"))
    coverage = next(m for m in data["milestones"] if m["measure"] == "extranet_coverage")
    assert (coverage["done"], coverage["total"]) == (1, 3) and len(coverage["timeline"]) >= 2
    assert data["lagging_rule"]["rule"] == "linear"

    html = (tmp_path / "zh" / "progress.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<polyline" in html and i18n.t("progress.lagging", "zh") in html
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is required (Debian package: chromium, fonts: fonts-noto-cjk)")
    png = tmp_path / "progress.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
                           f"--screenshot={png}", "--window-size=1400,2400",
                           (tmp_path / "zh" / "progress.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert png.exists() and png.stat().st_size > 20_000, \
        f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    keep = REPO / "reports" / "test-screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, keep / "progress.png")


def test_the_command_line_as_of_and_bad_input(city, demo, tmp_path):
    invoke = str(REPO / ".venv/bin/invoke")
    proc = subprocess.run([invoke, "report.progress", "--store", city["store"].url, "--out", str(tmp_path),
                           "--as-of", (date.today() - timedelta(days=2)).isoformat(), "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr  # departments lag: the finding is the exit code
    assert "进度滞后" in proc.stderr
    data = json.loads((tmp_path / "progress.json").read_text(encoding="utf-8"))
    assert data["as_of"] < city["before"].isoformat()
    with pytest.raises(Exit) as bad:
        progress_tasks.progress(Context(), store=city["store"].url, as_of="2026-13-01")
    assert bad.value.code == 2
    with pytest.raises(Exit) as bad:
        progress_tasks.progress(Context(), store=city["store"].url, format="pdf")
    assert bad.value.code == 2


# --- the programme in the inventory -------------------------------------------------------------------


def test_programme_errors_name_file_line_and_field(tmp_path):
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    city_yaml = city / "city.yaml"
    city_yaml.write_text(re.sub(r"\ncatalog:.*\n  exchange_platform: .*", "", city_yaml.read_text(encoding="utf-8")),
                         encoding="utf-8")
    (city / "programme.yaml").write_text("""programme:
  start: 2026-01-01
  milestones:
    - name: 建档
      measure: exchange
      due: 2025-12-01
      departments: [nosuch, fgw, fgw]
    - name: 建档
      measure: archived
      due: 2026-06-30
""", encoding="utf-8")
    with pytest.raises(inventory.InventoryError) as exc:
        inventory.load(city)
    found = {(p.line, p.path): p.message for p in exc.value.problems}
    assert "exchange_platform" in found[(5, "programme.milestones[0].measure")]
    assert "not after the programme's start" in found[(6, "programme.milestones[0].due")]
    assert "unknown department 'nosuch'" in found[(7, "programme.milestones[0].departments[0]")]
    assert "listed twice" in found[(7, "programme.milestones[0].departments[2]")]
    assert "already declared" in found[(8, "programme.milestones[1].name")]
    assert all(str(p.file).endswith("programme.yaml") for p in exc.value.problems)
    (city / "programme.yaml").write_text("programme:\n  start: 2026-01-01\n  milestones:\n"
                                         "    - {name: x, measure: zombiez, due: 2026-13-01}\n", encoding="utf-8")
    with pytest.raises(inventory.InventoryError) as exc:
        inventory.load(city)
    paths = {p.path for p in exc.value.problems}
    assert {"programme.milestones[0].measure", "programme.milestones[0].due"} <= paths
    assert all(p.line == 4 for p in exc.value.problems)


def test_the_village_level(demo):
    assert demo.departments["qsc"].level == "village" and demo.departments["qsc"].parent == "qszf"
    assert i18n.t("level.village", "zh") == "村（居）级"
