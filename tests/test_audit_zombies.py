"""Zombie verdicts on the seeded lab: every intended zombie found by its criterion, every other system active.

The lab's hosts carry real evidence (access logs, wtmp, package logs, os-release, running
services, live traffic, TCP connections: lab/seed.py). Utilisation needs weeks of history,
so thirty earlier runs are seeded into the store and marked `seeded` (lab/history.py); the
last two runs are real collections.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from audit import service
from audit.collect import CollectOptions, collect
from audit.zombies import ACTIVE, NO_DATA, ZOMBIE, Judge
from jiyue.store import AUDIT_COLLECT, Store
from lab.history import seed_history

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


def test_every_other_system_is_active(judged):
    _, _, verdicts = judged
    wrong = {s: _explain(verdicts[s]) for s, d in dispositions().items()
             if not d.startswith(("zombie-", "classified")) and verdicts[s].verdict != ACTIVE}
    assert wrong == {}


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
    # what one snapshot does prove is still reported: an end-of-life OS
    assert verdicts["zjj-wxzj"].verdict == ZOMBIE and 4 in verdicts["zjj-wxzj"].met


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
