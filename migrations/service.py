"""The migration domain's service: plan a migration, open a plan's engine, run or rehearse a wave.

What `migrations/tasks.py` (the command line) and the demo call. Every function returns results and
never prints nor exits; bad input raises `MigrationInputError` (exit 2 on the command line), a plan that
fails its own checks `PlanUnsafe` (a planner bug: exit 1), the engine its own errors
(`migrations.engine.MigrationError`, `LockedError`, `Refused`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from rich.console import Console

from audit.history import AuditView
from audit.zombies import Judge
from inventory.model import Inventory
from jiyue.store import Store
from migrations import plan as planner
from migrations.engine import DEFAULT_CUTOVERS, DEFAULT_PARALLEL, Migrator
from migrations.model import MigrationOutcome, Plan, PlanError, PlannedMigration, load_plan

DEFAULT_PLANNING_NAME = "migrations/planning.yaml"


class MigrationInputError(ValueError):
    """What was asked cannot be planned or run as given (bad planning data, no plan file, a --limit of nothing)."""


class PlanUnsafe(Exception):
    """The planner made a plan that fails its own checks: never written."""


def plan_migration(inv: Inventory, store: Store, *, planning_path: Path | None = None, start: date | None = None,
                   hosts: Iterable[str] | None = None, limit: str | None = None,
                   plan_path: Path | None = None) -> PlannedMigration:
    """Plan where every system goes (or the systems of `hosts`, which the pattern `limit` selected) from the
    inventory and the audit history in `store`, and write the plan file (default: migrations/plans/<inventory
    dir>-<digest>.yaml), keeping the statuses of the work orders of the plan it replaces."""
    try:
        rules = planner.load_planning(planning_path)
    except planner.PlanningError as exc:
        raise MigrationInputError(f"planning data: {exc}") from None
    systems = None
    if hosts is not None:
        chosen = set(hosts)
        systems = sorted(s.id for s in inv.systems.values() if chosen & set(s.hosts))
        if not systems:
            raise MigrationInputError(f"--limit {limit!r} selects no host of any system")
    judge = Judge(inv, store)
    audit = AuditView.from_judge(judge, judge.judge_all(systems=sorted(inv.systems)),
                                         percentile=rules.sizing.percentile)
    path = plan_path or planner.default_plan_path(inv)
    previous = planner.read_previous(path)
    foreign = inv.foreign_plan(str(previous.get("inventory"))) if previous else None
    if foreign:  # its work-order statuses are another city's
        raise MigrationInputError(f"{path}: {foreign}")
    plan = planner.build_plan(inv, audit, rules, start=start, systems=systems, previous=previous, limit=limit,
                              planning_path=str(planning_path) if planning_path else DEFAULT_PLANNING_NAME)
    problems = plan.check(inv)
    if problems:
        raise PlanUnsafe("the plan failed its own checks: " + "; ".join(problems))
    return PlannedMigration(inv, plan, rules, planner.write_plan(plan, path, previous))


def load_migration_plan(inv: Inventory, path: Path | None = None) -> Plan:
    """The plan file (default: the inventory's), checked again against the inventory."""
    path = path or planner.default_plan_path(inv)
    if not path.exists():
        raise MigrationInputError(f"no plan at {path}: write one with `invoke migrate.plan` (or give --plan)")
    try:
        return load_plan(path, inv)
    except (PlanError, ValueError) as exc:
        raise MigrationInputError(f"{path}: {exc}") from None


def migrator(inv: Inventory, store: Store, *, plan: Plan | None = None, apply: bool = False,
             workdir: Path | str | None = None, parallel: int = DEFAULT_PARALLEL, cutovers: int = DEFAULT_CUTOVERS,
             console: Console | None = None, progress: bool = True, observers: Sequence[object] = (),
             jump: str | None = None) -> Migrator:
    """The engine for the inventory's plan (or `plan`): `run_wave`, `run_system`, `resume`, `rollback`,
    `decommission`, `take_offline` (a zombie), `status`, `next_wave`. Without `apply` every run is a rehearsal;
    `jump` is a run's `--jump NAME|none` (jiyue.cli.jump_override)."""
    return Migrator(inv, plan or load_migration_plan(inv), store, apply=apply, workdir=workdir, parallel=parallel,
                    cutovers=cutovers, console=console, progress=progress, observers=observers, jump=jump)


def run_wave(inv: Inventory, store: Store, wave: int, *, apply: bool = False, plan: Plan | None = None,
             workdir: Path | str | None = None, parallel: int = DEFAULT_PARALLEL, cutovers: int = DEFAULT_CUTOVERS,
             console: Console | None = None, progress: bool = True,
             observers: Sequence[object] = ()) -> list[MigrationOutcome]:
    """Migrate (or, without `apply`, rehearse) a wave's cloud rehosts: each system's result, downtime and
    client outage (`migrator` says what the other arguments are)."""
    return migrator(inv, store, plan=plan, apply=apply, workdir=workdir, parallel=parallel, cutovers=cutovers,
                    console=console, progress=progress, observers=observers).run_wave(wave)
