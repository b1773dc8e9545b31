"""`invoke migrate.*`: plan the migration (dispositions, targets, waves, work orders), then run it.

`plan` is here; `run`, `status`, `resume` and `rollback` (the engine, `migrations/engine.py`) join this file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from invoke import task
from rich.table import Table

from jiyue.cli import HELP, PROBLEMS, console, fail, limit_hosts, load_inventory, out_dir
from jiyue.store import Store

STORE_HELP = "history store of the audit: an SQLAlchemy URL (default: $JIYUE_STORE or sqlite:///state/history.sqlite)"
PLAN_HELP = "the plan file (default: migrations/plans/<inventory directory name>.yaml)"


# --- plan -----------------------------------------------------------------------------------------------


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": STORE_HELP, "out": HELP["out"],
            "start": "first day a wave may start, YYYY-MM-DD (default: the next change window)",
            "lang": "zh (default) or en", "plan": PLAN_HELP,
            "planning": "planning data (default: migrations/planning.yaml)"})
def plan(c, inventory=None, limit=None, store=None, out=None, start=None, lang="zh", plan=None, planning=None):
    """Plan the migration: where every system goes and why, cloud targets and sizes, waves, work orders."""
    from audit.zombies import Judge
    from migrations import plan as planner
    from migrations.report import write_reports

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    try:
        first = date.fromisoformat(start) if start else None
    except ValueError:
        raise fail(f"--start must be a date as YYYY-MM-DD, got {start!r}") from None
    try:
        rules = planner.load_planning(Path(planning) if planning else None)
    except planner.PlanningError as exc:
        raise fail(f"planning data: {exc}") from None
    inv = load_inventory(inventory)
    systems = None
    if limit:
        hosts = set(limit_hosts(inv, limit))
        systems = sorted(s.id for s in inv.systems.values() if hosts & set(s.hosts))
        if not systems:
            raise fail(f"--limit {limit!r} selects no host of any system")
    judge = Judge(inv, Store(store))
    audit = planner.AuditView.from_judge(judge, judge.judge_all(systems=sorted(inv.systems)),
                                         percentile=rules.sizing.percentile)
    path = Path(plan) if plan else planner.default_plan_path(inv)
    previous = planner.read_previous(path)
    result = planner.build_plan(inv, audit, rules, start=first, systems=systems, previous=previous, limit=limit,
                                planning_path=str(Path(planning)) if planning else "migrations/planning.yaml")
    problems = result.check(inv)
    if problems:  # a planner bug, never an input: refuse to write an unsafe plan
        raise fail("the plan failed its own checks: " + "; ".join(problems), code=PROBLEMS)
    console.print(f"wrote {planner.write_plan(result, path, previous)}")
    for written in write_reports(inv, result, out_dir(out), lang=lang, planning=rules):
        console.print(f"wrote {written}")
    _summary(result)
    if result.awaiting_capacity:
        raise fail(f"{len({s.system for s in result.awaiting_capacity})} cloud rehosts await capacity: see the plan's "
                   "awaiting_capacity (what to request), then plan again", code=PROBLEMS)


def _summary(result) -> None:
    from migrations.plan import counts

    console.print(result.history, highlight=False)
    console.print(", ".join(f"{n} {d}" for d, n in counts(result).items()), highlight=False)
    table = Table(title="waves", title_justify="left")
    for column in ("wave", "start", "end", "systems", "hosts", "data GB"):
        table.add_column(column)
    for w in result.waves:
        table.add_row(str(w.number), f"{w.start:%Y-%m-%d %H:%M}", f"{w.end:%Y-%m-%d %H:%M}", ", ".join(w.systems),
                      str(w.hosts), f"{w.data_bytes / 1024**3:.1f}")
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


# --- run, status, resume, rollback: the migration engine (migrations/engine.py) -----------------------------
