"""Zombie verdicts on the seeded lab: every intended zombie found by its criterion, the busy systems on an
unmaintained stack re-platformed, every other system active; then the verdict rules on written histories.

The lab's hosts carry real evidence (access logs, wtmp, package logs, os-release, running
services, live traffic, TCP connections: lab/seed.py). Utilisation needs weeks of history,
so thirty earlier runs are seeded into the store and marked `seeded` (lab/history.py); the
last two runs are real collections.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from audit import service
from audit.collect import CollectOptions, collect
from audit.history import AuditView
from audit.model import INSUFFICIENT, MET, NOT_MET, REPLATFORM
from audit.zombies import ACTIVE, DEFAULT_POLICY, NO_DATA, ZOMBIE, Judge, load_policy
from jiyue.runner import Result
from jiyue.store import AUDIT_COLLECT, Store
from lab.history import seed_history
from migrations.model import Disposition
from migrations.plan import build_plan

DEMO_README = Path(__file__).resolve().parent.parent / "inventory" / "demo" / "README.md"


def dispositions() -> dict[str, str]:
    """The sample city's intended outcome per system, from its README table."""
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|.*?\| \*\*([a-z0-9-]+)\*\* \|", DEMO_README.read_text(), re.M)
    assert len(rows) >= 30
    return dict(rows)


@pytest.fixture(scope="module")
def judged(seeded, demo, tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('zombies')}/history.sqlite")
    assert seed_history(store, demo) == 30
    # Two real runs: the second also measures traffic between runs (counter deltas). It goes through the
    # service, as the demo runs it: every host collected, then every system judged.
    _, results = collect(demo, demo.contactable_hosts(), CollectOptions(), store=store, progress=False)
    assert [(r.target, r.error_kind, r.error) for r in results if not r.ok] == []
    result = service.collect_and_judge(demo, store, progress=False)
    assert [(r.target, r.error_kind, r.error) for r in result.not_collected] == []
    assert {r.target for r in result.collection} == set(demo.contactable_hosts()) and result.run_id is not None
    # classified systems are never judged (tests/test_audit_classified.py)
    assert [v.system for v in result.verdicts] == sorted(s for s, d in dispositions().items() if d != "classified")
    return store, result.judge, {v.system: v for v in result.verdicts}


def _explain(verdict) -> str:
    return "; ".join(f"{c.number} {c.key}={c.outcome}: {c.summary}" for c in verdict.criteria)


def test_every_seeded_zombie_is_found_with_its_criterion_and_evidence(judged):
    _, _, verdicts = judged
    for system, disposition in dispositions().items():
        verdict = verdicts.get(system)
        if disposition.startswith("zombie-"):
            number = int(disposition.split("-")[1])
            assert verdict.verdict == ZOMBIE and number in verdict.met, f"{system}: {_explain(verdict)}"
            criterion = verdict.criteria[number - 1]
            assert criterion.numbers and (criterion.evidence or number == 2), system
            assert verdict.window_start and verdict.window_end and verdict.runs == 32


# Yearly, outside its season: its hosts are quiet, and a month of samples does not cover a year.
SEASONAL = {"jyj-zsbm": NO_DATA}


def test_every_other_system_is_active_or_replatformed(judged):
    _, _, verdicts = judged
    expected = {s: REPLATFORM if d == "replatform" else SEASONAL.get(s, ACTIVE)
                for s, d in dispositions().items() if not d.startswith(("zombie-", "classified"))}
    wrong = {s: _explain(verdicts[s]) for s, want in expected.items() if verdicts[s].verdict != want}
    assert wrong == {}
    assert {s for s, d in dispositions().items() if d == "replatform"} == {"zjj-wxzj", "qszf-dagl"}


def test_the_sample_city_shows_the_new_outcomes(judged):
    """A busy system on an end-of-life OS, a yearly system off-season, a replacement that sits idle."""
    _, _, verdicts = judged
    wxzj = verdicts["zjj-wxzj"]
    assert wxzj.met == [4] and wxzj.verdict == REPLATFORM and wxzj.measured_frequency == "daily", _explain(wxzj)
    zsbm = verdicts["jyj-zsbm"]
    assert zsbm.window_days == 366 and zsbm.missing_days == 0, _explain(zsbm)
    assert zsbm.criteria[0].outcome == NOT_MET and zsbm.criteria[0].numbers["days_since_last_activity"] > 90
    assert zsbm.criteria[4].outcome == NOT_MET and zsbm.criteria[2].outcome == INSUFFICIENT
    xmk = verdicts["fgw-xmk"]
    assert xmk.criteria[1].outcome == NOT_MET and xmk.criteria[1].numbers["covered_by"] == ["fgw-hgjj"]
    assert verdicts["fgw-hgjj"].verdict == ZOMBIE and xmk.verdict == ACTIVE


def test_measured_connections_confirm_declared_dependencies(judged, demo):
    _, judge, _ = judged
    measured = {(dependency, dependent) for dependency, deps in judge.history.dependents.items()
                for dependent, how in deps.items() if "TCP" in how}
    declared = {(dep, s.id) for s in demo.systems.values() for dep in s.depends_on}
    assert declared & measured, "no declared dependency was seen on the wire"


def test_seeded_history_is_marked_and_the_real_run_is_not(judged):
    store, _, _ = judged
    records = store.history(AUDIT_COLLECT)
    assert sum(r.seeded for r in records) == 30 * len({r.target for r in records})
    latest = max(records, key=lambda r: r.at)
    assert not latest.seeded


def test_a_short_history_is_said_so_not_guessed(seeded, demo, tmp_path):
    store = Store(f"sqlite:///{tmp_path}/history.sqlite")
    collect(demo, demo.contactable_hosts(), CollectOptions(), store=store, progress=False)
    verdicts = {v.system: v for v in Judge(demo, store).judge_all()}
    for system, disposition in dispositions().items():
        if disposition == "classified":
            assert system not in verdicts
            continue
        idle = verdicts[system].criteria[2]
        assert idle.outcome == "insufficient", system
        if disposition in ("cloud", "website", "golden", "idc"):
            assert verdicts[system].verdict == NO_DATA, f"{system}: {_explain(verdicts[system])}"
    # what one snapshot does prove is still reported: an end-of-life OS ...
    # ... and a system still in use on it is re-platformed, not decommissioned
    assert verdicts["zjj-wxzj"].verdict == REPLATFORM and verdicts["zjj-wxzj"].met == [4]


HOSTILE_PROCESS = "=cmd|' /C calc"  # /proc/PID/comm keeps 15 bytes


def test_hostile_host_output_is_inert_in_every_report(judged, demo, lab, tmp_path):
    """A zombie's host runs a process named like a formula, logs HTML, keeps a cron line with bad bytes."""
    import csv
    import json

    import openpyxl

    from audit.report import write_reports

    store, _, _ = judged
    system = demo.systems["fgw-jgjc"]
    host = system.hosts[0]
    log = lab.path(host, system.log_paths[0])
    original_log = log.read_bytes()
    cron = lab.path(host, "/etc/cron.d/zz-hostile")
    script = lab.path(host, "/root/hostile.py")
    script.write_text(f"import socket, time\nopen('/proc/self/comm', 'w').write({HOSTILE_PROCESS!r})\n"
                      "s = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                      "s.bind(('0.0.0.0', 7))\ns.listen()\ntime.sleep(60)\n")
    pid = lab.exec(host, "python3 /root/hostile.py >/dev/null 2>&1 & echo $!").stdout.strip()
    try:
        with log.open("ab") as f:
            f.write(b'10.80.9.9 - - [22/Nov/2026:09:00:00 +0800] "GET /<script>alert(1)</script> HTTP/1.1" 200 5 '
                    b'"-" "<img src=x onerror=alert(1)>"\n')
        cron.write_bytes(b"0 3 * * * root @SUM(1+1) \xff\xfe /usr/bin/true\n")
        for _ in range(50):  # the listener names itself and binds
            if HOSTILE_PROCESS in lab.exec(host, "ss -H -tlnp").stdout:
                break
            time.sleep(0.1)
        _, results = collect(demo, [host], CollectOptions(), store=store, progress=False)
        assert results[0].ok
        assert any(p["process"] == HOSTILE_PROCESS for p in results[0].value["listening"])
        paths = write_reports(service.judge(demo, store), tmp_path)
    finally:
        lab.exec(host, f"kill {pid}")
        log.write_bytes(original_log)
        cron.unlink(missing_ok=True)
        script.unlink(missing_ok=True)
    book = openpyxl.load_workbook(next(p for p in paths if p.suffix == ".xlsx"))
    texts = [c.value for ws in book.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert any(HOSTILE_PROCESS in v for v in texts), "the hostile process name reached the asset list"
    assert all(c.data_type != "f" for ws in book.worksheets for row in ws.iter_rows() for c in row)
    assert not any(v.startswith(("=", "+", "-", "@")) for v in texts)
    with next(p for p in paths if p.suffix == ".csv").open(encoding="utf-8-sig", newline="") as f:
        assert not any(cell.startswith(("=", "+", "-", "@")) for row in csv.reader(f) for cell in row)
    json.loads(next(p for p in paths if p.suffix == ".json").read_text(encoding="utf-8"))
    html = next(p for p in paths if p.suffix == ".html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html
    assert "=cmd|&#39; /C calc" in html or "=cmd|&#x27; /C calc" in html


# --- the verdict rules on a written history (real SQLite store, no lab) ----------------------------------
#
# Each test writes the history a collector would have stored for one or two systems of the sample city
# (daily runs, each with the facts the probes return) and judges them at a fixed moment.

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
CENTOS7 = {"id": "centos", "id_like": ["rhel"], "version_id": "7", "name": "CentOS Linux",
           "pretty_name": "CentOS Linux 7 (Core)", "distribution": "CentOS"}
ANOLIS = {"id": "anolis", "id_like": ["rhel"], "version_id": "8.8", "name": "Anolis OS",
          "pretty_name": "Anolis OS 8.8", "distribution": "Anolis"}


def _day(back: int) -> str:
    return (NOW - timedelta(days=back)).date().isoformat()


def usage(request_days: list[int], per_day: int = 200, clients: int = 30, login_days: list[int] | None = None,
          updated: int = 10, os: dict | None = None, data_days: int | None = None, busy: bool = True,
          users: int = 6) -> dict:
    """One host's facts: requests on each of `request_days` (days back), logins, an update, a data change."""
    login_days = request_days if login_days is None else login_days
    newest = min(request_days + login_days, default=None)
    ips = [f"10.80.1.{i}" for i in range(1, clients + 1)]
    return {
        "os": os or ANOLIS, "cpu": {"count": 2},
        "sample": {"interval_s": 1.0, "cpu_pct_of_one_core": 20.0 if busy else 0.1,
                   "net_bytes_per_s": 200_000.0 if busy else 1.0},
        "logins": {"users_last": {f"user{i}": f"{_day(min(login_days))}T02:00:00+00:00" for i in range(users)}
                   if login_days else {}, "logins_per_day": {_day(d): 3 for d in login_days}, "sources": ["wtmp"]},
        "web": {"requests_per_day": {_day(d): [per_day, clients] for d in request_days},
                "clients_last_day": {ip: _day(min(request_days)) for ip in ips} if request_days else {},
                "last_request": f"{_day(min(request_days))}T03:00:00+00:00" if request_days else None,
                "logs": ["/var/log/app/access.log"], "found": ["/var/log/app/access.log"]},
        "packages": {"last_transaction": f"{_day(updated)}T01:00:00+00:00", "source": "yum", "detail": "update"},
        "data": {"/srv/app": {"exists": True, "files": 3, "bytes": 1000,
                              "last_modified": f"{_day(newest if data_days is None else data_days)}T00:30:00+00:00"}},
    }


def write_history(store: Store, inv, facts_by_system: dict[str, dict], days: int = 30) -> None:
    """One stored run a day for `days` days before NOW: each system's hosts with the given facts."""
    for back in range(days, -1, -1):
        at = NOW - timedelta(days=back, hours=1)
        results = [Result(host, True, facts, started=at) for sid, facts in facts_by_system.items()
                   for host in inv.systems[sid].hosts]
        store.record(AUDIT_COLLECT, results, inventory=str(inv.root), started=at)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path}/history.sqlite")


def test_busy_system_on_an_end_of_life_os_is_replatformed_not_a_zombie(demo, store):
    """zjj-wxzj: 150-400 requests a day on CentOS 7 (past 2024-06-30), no update for years."""
    write_history(store, demo, {"zjj-wxzj": usage(list(range(60)), os=CENTOS7, updated=800)})
    v = Judge(demo, store, now=NOW).judge(demo.systems["zjj-wxzj"])
    assert v.met == [4] and v.verdict == REPLATFORM, _explain(v)
    assert "verdict.rules[1]" in v.rule
    plan = build_plan(demo, AuditView.from_judge(Judge(demo, store, now=NOW)), systems=["zjj-wxzj"], now=NOW)
    (sp,) = [p for p in plan.systems if p.system == "zjj-wxzj"]
    assert sp.disposition == Disposition.replatform and "升级改造" in sp.rule
    assert any(o.id == "replatform-zjj-wxzj" for o in plan.work_orders)


def test_criterion_4_alone_never_decommissions_daily_use_whatever_the_policy_says(demo, store, tmp_path):
    write_history(store, demo, {"zjj-wxzj": usage(list(range(60)), os=CENTOS7, updated=800)})
    policy = load_policy()
    policy["verdict"]["rules"] = [{"finding": "zombie", "met": ["maintenance"]}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    v = Judge(demo, store, load_policy(path), now=NOW).judge(demo.systems["zjj-wxzj"])
    assert v.verdict == REPLATFORM and "criterion 4 alone" in v.rule, _explain(v)


def test_unmaintained_and_unused_is_a_zombie(demo, store):
    """Criterion 4 with criterion 5: a handful of requests a week on an end-of-life OS."""
    write_history(store, demo, {"zjj-wxzj": usage(list(range(0, 90, 7)), per_day=3, clients=2, os=CENTOS7,
                                                  updated=800, busy=False, users=2)}, days=90)
    v = Judge(demo, store, now=NOW).judge(demo.systems["zjj-wxzj"])
    assert v.verdict == ZOMBIE and {4, 5} <= set(v.met), _explain(v)


def test_changing_one_rule_in_a_policy_file_changes_the_verdict(demo, store, tmp_path):
    """An auditor drops criterion 3 from the zombie rule in a copy of the policy: the idle system is no zombie."""
    write_history(store, demo, {"fgw-hgjj": usage(list(range(60)), per_day=30, clients=12, busy=False)})
    assert Judge(demo, store, now=NOW).judge(demo.systems["fgw-hgjj"]).verdict == ZOMBIE
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    edited = text.replace("any_met: [detached, replaceable, idle, small]", "any_met: [detached, replaceable, small]")
    assert edited != text
    path = tmp_path / "policy.yaml"
    path.write_text(edited, encoding="utf-8")
    v = Judge(demo, store, load_policy(path), now=NOW).judge(demo.systems["fgw-hgjj"])
    assert v.verdict != ZOMBIE and 3 in v.met, _explain(v)


def test_a_policy_rule_naming_an_unknown_criterion_is_refused(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("any_met: [detached,", "any_met: [detachd,"),
                    encoding="utf-8")
    with pytest.raises(ValueError, match="detachd"):
        load_policy(path)


def test_yearly_system_outside_its_season_is_not_detached(demo, store):
    """jyj-zsbm (yearly): busy 120 days a year, quiet for the last 100. The 90-day window called it detached."""
    seasons = [d for d in range(100, 220)] + [d for d in range(465, 585)]
    write_history(store, demo, {"jyj-zsbm": usage(seasons, per_day=90, busy=False)})
    v = Judge(demo, store, now=NOW).judge(demo.systems["jyj-zsbm"])
    detached, small = v.criteria[0], v.criteria[4]
    assert detached.outcome == NOT_MET and detached.numbers["threshold_days"] == 366, _explain(v)
    assert small.outcome == NOT_MET and small.numbers["window_days"] == 366
    assert v.window_days == 366 and v.verdict != ZOMBIE and v.missing_days == 0
    # idle hosts off-season, but 30 days of samples do not cover a year: said so, with the days missing
    assert v.criteria[2].outcome == INSUFFICIENT and "336 days missing" in " ".join(
        e.value for e in v.criteria[2].evidence)
    assert v.verdict == NO_DATA
    # the old fixed window would have called it detached
    policy = load_policy()
    policy["frequency"]["cycle_days"]["yearly"] = 0
    assert Judge(demo, store, policy, now=NOW).judge(demo.systems["jyj-zsbm"]).criteria[0].outcome == MET


def test_a_history_shorter_than_the_declared_cycle_says_how_much_is_missing(demo, store):
    """A yearly system seen for 40 days, quiet: not "small", but insufficient data, 326 days missing."""
    write_history(store, demo, {"jyj-zsbm": usage([35], per_day=2, clients=2, login_days=[], busy=False, users=0)},
                  days=40)
    v = Judge(demo, store, now=NOW).judge(demo.systems["jyj-zsbm"])
    assert v.criteria[4].outcome == INSUFFICIENT and "326 days missing" in v.criteria[4].summary, _explain(v)
    assert v.verdict == NO_DATA and v.missing_days == 326
    from audit.archive import frequency_text
    assert "326" in frequency_text(v, "en")


def test_criterion_5_divides_by_the_window_not_by_the_days_since_the_first_request(demo, store):
    """Thirty requests in one hour on a system whose last login was 500 days ago: 0.3 a day, not 30."""
    facts = usage([0], per_day=30, clients=2, login_days=[500], data_days=500, busy=False, users=2)
    write_history(store, demo, {"fgw-jgjc": facts}, days=20)
    v = Judge(demo, store, now=NOW).judge(demo.systems["fgw-jgjc"])
    small = v.criteria[4]
    assert small.numbers["days"] == 90 and small.numbers["requests_per_day"] == round(30 / 90, 1), _explain(v)
    assert small.outcome == MET and v.verdict == ZOMBIE


def test_measured_frequency_far_below_the_declared_one_counts_toward_criterion_5(demo, store):
    """Declared daily, used one day a month by 8 clients: 'near' on its numbers, met with the frequency gap."""
    write_history(store, demo, {"gaj-hjyy": usage([1, 31, 61], per_day=150, clients=8, busy=True, users=2)}, days=90)
    v = Judge(demo, store, now=NOW).judge(demo.systems["gaj-hjyy"])
    small = v.criteria[4]
    assert small.numbers["declared_frequency"] == "daily" and small.numbers["measured_frequency"] == "monthly"
    assert small.outcome == MET and any(e.signal == "frequency_far_below" for e in small.evidence), _explain(v)
    assert v.measured_frequency == "monthly" and v.declared_frequency == "daily"


def test_a_replaceable_system_whose_replacement_is_idle_is_not_a_zombie(demo, store, tmp_path):
    """fgw-xmk declares that fgw-hgjj covers its function; fgw-hgjj sits idle, so it replaces nothing."""
    write_history(store, demo, {"fgw-xmk": usage(list(range(60))),
                                "fgw-hgjj": usage(list(range(60)), per_day=30, clients=12, busy=False)})
    judge = Judge(demo, store, now=NOW)
    replaceable = judge.judge(demo.systems["fgw-xmk"]).criteria[1]
    assert replaceable.outcome == NOT_MET and replaceable.numbers["covering_in_use"] == [], replaceable.summary
    # the same replacement in use makes it replaceable (nothing depends on fgw-xmk)
    busy = Store(f"sqlite:///{tmp_path}/busy.sqlite")
    write_history(busy, demo, {"fgw-xmk": usage(list(range(60))), "fgw-hgjj": usage(list(range(60)))})
    assert Judge(demo, busy, now=NOW).judge(demo.systems["fgw-xmk"]).criteria[1].outcome == MET


def test_the_archive_shows_declared_and_measured_frequency_and_the_replatform(demo, store, tmp_path):
    import csv
    import json

    from audit.report import write_reports

    write_history(store, demo, {"zjj-wxzj": usage(list(range(60)), os=CENTOS7, updated=800)})
    paths = write_reports(service.judge(demo, store, now=NOW), tmp_path, ("csv", "json", "html"))
    with next(p for p in paths if p.suffix == ".csv").open(encoding="utf-8-sig", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["系统编号"] == "zjj-wxzj")
    assert row["使用频度（申报）"] == "每月" and row["使用频度（实测）"].startswith("每日")
    assert row["僵尸判定"] == "重新部署/升级改造" and "verdict.rules[1]" in row["判定依据"]
    record = next(s for s in json.loads(next(p for p in paths if p.suffix == ".json").read_text(encoding="utf-8"))
                  ["systems"] if s["id"] == "zjj-wxzj")
    assert record["verdict"]["declared_frequency"] == "monthly" and record["verdict"]["measured_frequency"] == "daily"
    html = next(p for p in paths if p.suffix == ".html").read_text(encoding="utf-8")
    assert "停止运维但仍在使用" in html and 'id="sys-zjj-wxzj"' in html
