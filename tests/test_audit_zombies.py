"""Zombie verdicts on the seeded lab: every intended zombie found by its criterion, every other system active.

The lab's hosts carry real evidence (access logs, wtmp, package logs, os-release, running
services, live traffic, TCP connections: tests/lab/seed.py). Utilisation needs weeks of history,
so thirty earlier runs are seeded into the store and marked `seeded` (tests/lab/history.py); the
last run is a real collection.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.collect import KIND, Options, collect
from audit.zombies import ACTIVE, NO_DATA, ZOMBIE, Judge
from jiyue.store import Store
from tests.lab.history import seed_history

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
    _, results = collect(demo, sorted(demo.hosts), Options(), store=store, progress=False)
    assert [r.target for r in results if not r.ok] == []
    judge = Judge(demo, store)
    return store, judge, {v.system: v for v in judge.judge_all()}


def _explain(verdict) -> str:
    return "; ".join(f"{c.number} {c.key}={c.outcome}: {c.summary}" for c in verdict.criteria)


def test_every_seeded_zombie_is_found_with_its_criterion_and_evidence(judged):
    _, _, verdicts = judged
    for system, disposition in dispositions().items():
        verdict = verdicts[system]
        if disposition.startswith("zombie-"):
            number = int(disposition.split("-")[1])
            assert verdict.verdict == ZOMBIE and number in verdict.met, f"{system}: {_explain(verdict)}"
            criterion = verdict.criteria[number - 1]
            assert criterion.numbers and (criterion.evidence or number == 2), system
            assert verdict.window_start and verdict.window_end and verdict.runs == 31


def test_every_other_system_is_active(judged):
    _, _, verdicts = judged
    wrong = {s: _explain(verdicts[s]) for s, d in dispositions().items()
             if not d.startswith("zombie-") and verdicts[s].verdict != ACTIVE}
    assert wrong == {}


def test_measured_connections_confirm_declared_dependencies(judged, demo):
    _, judge, _ = judged
    measured = {(dependency, dependent) for dependency, deps in judge.dependents.items()
                for dependent, how in deps.items() if "TCP" in how}
    declared = {(dep, s.id) for s in demo.systems.values() for dep in s.depends_on}
    assert declared & measured, "no declared dependency was seen on the wire"


def test_seeded_history_is_marked_and_the_real_run_is_not(judged):
    store, _, _ = judged
    records = store.history(KIND)
    assert sum(r.seeded for r in records) == 30 * len({r.target for r in records})
    latest = max(records, key=lambda r: r.at)
    assert not latest.seeded


def test_a_short_history_is_said_so_not_guessed(seeded, demo, tmp_path):
    store = Store(f"sqlite:///{tmp_path}/history.sqlite")
    collect(demo, sorted(demo.hosts), Options(), store=store, progress=False)
    verdicts = {v.system: v for v in Judge(demo, store).judge_all()}
    for system, disposition in dispositions().items():
        idle = verdicts[system].criteria[2]
        assert idle.outcome == "insufficient", system
        if disposition in ("cloud", "website", "golden", "classified", "idc"):
            assert verdicts[system].verdict == NO_DATA, f"{system}: {_explain(verdicts[system])}"
    # what one snapshot does prove is still reported: an end-of-life OS
    assert verdicts["zjj-wxzj"].verdict == ZOMBIE and 4 in verdicts["zjj-wxzj"].met
