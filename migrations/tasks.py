"""`invoke migrate.*`: plan the migration (dispositions, targets, waves, work orders), then run it.

`plan` writes the plan (migrations/service.py, over the planner in migrations/plan.py); `run`, `status`,
`resume`, `rollback`, `decommission` and `unlock` carry out its cloud rehosts (the engine,
migrations/engine.py); `offline` takes its zombies offline (`rollback` brings one back within its grace
period, `decommission` frees its hosts after it). Without --apply every run is a rehearsal: the playbooks
run in check mode and nothing changes. Exit codes: 0 every system reached its goal, 1 a system was refused, rolled back,
failed or locked (or awaits capacity), 2 bad input.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from invoke import task
from rich.table import Table

from jiyue.cli import (
    BAD_INPUT,
    HELP,
    PROBLEMS,
    console,
    err,
    fail,
    jump_override,
    limit_hosts,
    load_inventory,
    out_dir,
)
from jiyue.store import Store

PLAN_HELP = "the plan file (default: migrations/plans/<inventory directory name>-<digest>.yaml)"


# --- plan -----------------------------------------------------------------------------------------------


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "out": HELP["out"],
            "start": "first day a wave may start, YYYY-MM-DD (default: the next change window)",
            "lang": "zh (default) or en", "plan": PLAN_HELP,
            "planning": "planning data (default: migrations/planning.yaml)"})
def plan(c, inventory=None, limit=None, store=None, out=None, start=None, lang="zh", plan=None, planning=None):
    """Plan the migration: where every system goes and why, cloud targets and sizes, waves, work orders."""
    from migrations.report import write_reports
    from migrations.service import MigrationInputError, PlanUnsafe, plan_migration

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    try:
        first = date.fromisoformat(start) if start else None
    except ValueError:
        raise fail(f"--start must be a date as YYYY-MM-DD, got {start!r}") from None
    inv = load_inventory(inventory)
    # Planning connects to nothing: a classified system is planned, as a hand-over to the confidential network.
    hosts = limit_hosts(inv, limit, include_classified=True) if limit else None
    try:
        planned = plan_migration(inv, Store(store), planning_path=Path(planning) if planning else None, start=first,
                                 hosts=hosts, limit=limit, plan_path=Path(plan) if plan else None)
    except MigrationInputError as exc:
        raise fail(str(exc)) from None
    except PlanUnsafe as exc:  # a planner bug, never an input: the unsafe plan is not written
        raise fail(str(exc), code=PROBLEMS) from None
    console.print(f"wrote {planned.path}")
    for written in write_reports(planned, out_dir(out), lang=lang):
        console.print(f"wrote {written}")
    _summary(planned.plan)
    if planned.awaiting_capacity:
        raise fail(f"{len(planned.awaiting_capacity)} cloud rehosts await capacity: see the plan's "
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

WORKDIR_HELP = "where runs keep the exported inventory, runner artifacts, testinfra checks (default: state/migrate)"
COMMON = {"inventory": HELP["inventory"], "plan": PLAN_HELP, "store": HELP["store"], "workdir": WORKDIR_HELP}
RUNS = {**COMMON, "jump": HELP["jump"]}  # the tasks that run playbooks on the hosts


def _count(option: str, value: int | str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        raise fail(f"--{option} must be a number, got {value!r}") from None
    if number < 1:
        raise fail(f"--{option} must be at least 1, got {number}")
    return number


def _migrator(inventory: str | None, plan: str | None, store: str | None, apply: bool, workdir: str | None,
              parallel: int | str | None = None, cutovers: int | str | None = None, jump: str | None = None):
    from migrations.engine import DEFAULT_CUTOVERS, DEFAULT_PARALLEL, MigrationError
    from migrations.plan import default_plan_path
    from migrations.service import MigrationInputError, load_migration_plan, migrator

    at_once = _count("parallel", parallel, DEFAULT_PARALLEL)
    cutting = _count("cutovers", cutovers, DEFAULT_CUTOVERS)
    inv = load_inventory(inventory)
    jump = jump_override(inv, jump)
    path = Path(plan) if plan else default_plan_path(inv)
    try:
        loaded = load_migration_plan(inv, path)
        return migrator(inv, Store(store), plan=loaded, apply=apply, workdir=workdir, parallel=at_once,
                        cutovers=cutting, jump=jump)
    except MigrationInputError as exc:
        raise fail(str(exc)) from None
    except (MigrationError, ValueError) as exc:
        raise fail(f"{path}: {exc}") from None


def _report(outcomes, apply: bool, what: str = "migration") -> None:
    table = Table(title=what if apply else "rehearsal (nothing changed; --apply to act)", title_justify="left")
    for column in ("system", "result", "downtime s", "client outage s", "steps run", "message"):
        table.add_column(column)
    for o in outcomes:
        colour = "green" if o.ok else "red"
        table.add_row(o.system, f"[{colour}]{o.result}[/]", "" if o.downtime_s is None else f"{o.downtime_s:.1f}",
                      "" if o.outage_s is None else f"{o.outage_s:.1f}", " ".join(o.steps_run), o.message)
    console.print(table)
    if outcomes:
        console.print(f"run {outcomes[0].run_key}", highlight=False)
    bad = [o for o in outcomes if not o.ok]
    if bad:
        raise fail(f"{len(bad)} of {len(outcomes)} systems did not reach their goal: "
                   + ", ".join(f"{o.system} ({o.result})" for o in bad), code=PROBLEMS)


def _engine_errors(call):
    from migrations.engine import LockedError, MigrationError, Refused

    try:
        return call()
    except (LockedError, Refused) as exc:
        raise fail(str(exc), code=PROBLEMS) from None
    except MigrationError as exc:
        raise fail(str(exc), code=BAD_INPUT) from None


PARALLEL_HELP = "systems migrating at once, each with its own journal and lock (default 4)"
CUTOVERS_HELP = ("of those, systems in their cutover (frozen) at once; the others wait their turn, still live "
                 "(default 1: each downtime as short as the machine allows)")


@task(help={**RUNS, "wave": "the wave's number in the plan", "system": "one system of the plan instead of a wave",
            "apply": HELP["apply"], "parallel": PARALLEL_HELP, "cutovers": CUTOVERS_HELP})
def run(c, wave=None, system=None, inventory=None, plan=None, store=None, apply=False, workdir=None, parallel=None,
        cutovers=None, jump=None):
    """Migrate a wave (or one system): precheck, pre-sync, freeze, final sync, verify, switch, verify, done."""
    if (wave is None) == (system is None):
        raise fail("give --wave N or --system ID")
    try:
        number = int(wave) if wave is not None else None
    except ValueError:
        raise fail(f"--wave must be a number, got {wave!r}") from None
    m = _migrator(inventory, plan, store, apply, workdir, parallel, cutovers, jump)
    outcomes = _engine_errors(lambda: m.run_wave(number) if number is not None else [m.run_system(system)])
    _report(outcomes, apply)


@task(help={**RUNS, "run_key": "the run to resume (default: the latest interrupted one)", "apply": HELP["apply"],
            "parallel": PARALLEL_HELP, "cutovers": CUTOVERS_HELP})
def resume(c, run_key=None, inventory=None, plan=None, store=None, apply=False, workdir=None, parallel=None,
           cutovers=None, jump=None):
    """Carry on an interrupted run where it stopped: finished steps are never repeated."""
    m = _migrator(inventory, plan, store, apply, workdir, parallel, cutovers, jump)
    _report(_engine_errors(lambda: m.resume(run_key)), apply)


@task(help={**RUNS, "system": "the system to bring back to its source (a zombie: back online)",
            "apply": HELP["apply"]})
def rollback(c, system, inventory=None, plan=None, store=None, apply=False, workdir=None, jump=None):
    """Bring a system back to its source (after a migration too: what the target received comes back)."""
    m = _migrator(inventory, plan, store, apply, workdir, jump=jump)
    _report([_engine_errors(lambda: m.rollback(system))], apply)


@task(help={**RUNS, "system": "the migrated system whose sources are removed (or the zombie whose hosts are freed)",
            "signed_off_by": "who signs the decommission off (required)",
            "force": "skip the grace period (tests, or an emergency with the sign-off on record)",
            "apply": HELP["apply"]})
def decommission(c, system, signed_off_by=None, inventory=None, plan=None, store=None, force=False, apply=False,
                 workdir=None, jump=None):
    """Remove a migrated system's data from its sources (a zombie's from its hosts, once its archive verifies again):
    after the grace period, with a sign-off; the hosts are recorded as freed assets."""
    if not signed_off_by:
        raise fail("--signed-off-by NAME is required: a decommission needs an explicit sign-off")
    m = _migrator(inventory, plan, store, apply, workdir, jump=jump)
    _report([_engine_errors(lambda: m.decommission(system, signed_off_by, force=force))], apply)


@task(help={**RUNS, "system": "the zombie to take offline (the plan decommissions it)",
            "signed_off_by": "who signs taking it offline off (required)", "apply": HELP["apply"]})
def offline(c, system, signed_off_by=None, inventory=None, plan=None, store=None, apply=False, workdir=None, jump=None):
    """Take a zombie offline: its route removed, services stopped, data archived and verified, hosts held for the
    grace period (`migrate.rollback` brings it back before; `migrate.decommission` frees the hosts after)."""
    if not signed_off_by:
        raise fail("--signed-off-by NAME is required: taking a system offline needs an explicit sign-off")
    m = _migrator(inventory, plan, store, apply, workdir, jump=jump)
    _report([_engine_errors(lambda: m.take_offline(system, signed_off_by))], apply, what="offline")


@task(help={**COMMON, "system": "the system whose lock to break",
            "force": "break it even if its process seems alive (it runs on another machine, or is hung)"})
def unlock(c, system, inventory=None, plan=None, store=None, force=False, workdir=None):
    """Break the stale lock of a run whose process died (a live run's lock is refused without --force). It never makes
    the dead run's system free for a new run: only `migrate.resume` (or `migrate.rollback`) ends that run."""
    m = _migrator(inventory, plan, store, False, workdir)
    if _engine_errors(lambda: m.break_lock(system, force=force)):
        console.print(f"lock on {system} broken; `migrate.resume --apply` carries on its run (a new `migrate.run` "
                      "stays refused until that run is over)")
    else:
        err.print(f"{system} was not locked")


@task(help=COMMON)
def status(c, inventory=None, plan=None, store=None, workdir=None):
    """Where every migrated system got to: last step, outcome, downtime, new location, lock."""
    m = _migrator(inventory, plan, store, False, workdir)
    rows = m.status()
    table = Table(title="migrations", title_justify="left")
    for column in ("system", "outcome", "last step", "status", "at", "downtime s", "location", "lock", "run"):
        table.add_column(column)
    for r in rows:
        location = ", ".join(f"{s}→{t}" for s, t in (r["location"] or {}).items())
        table.add_row(r["system"], r["outcome"], r["step"], r["status"], r["at"],
                      "" if r["downtime_s"] is None else f"{r['downtime_s']:.1f}", location, r["lock"] or "",
                      r["run_key"])
    console.print(table)
    if not rows:
        console.print("no migration has run yet")
