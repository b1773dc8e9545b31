"""The lines domain's operations: plan the cancellations and joins, probe the hosts' egress, measure progress.

Each returns one result object and never prints. `progress` is what the progress report (`report.progress`)
calls for its "leased lines cancelled" measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console

from inventory.groups import refuse_classified
from inventory.model import Inventory
from jiyue import runner, ssh
from jiyue.store import LINES_EGRESS, Store
from lines import egress, plan
from lines.model import (
    DepartmentProgress,
    EgressFacts,
    EgressFinding,
    EgressPath,
    EgressResult,
    LineCancellation,
    LinesPlan,
    LinesProgress,
    LineStatus,
)
from migrations import plan as migration_planner
from migrations.model import PlanError as MigrationPlanError
from migrations.model import load_plan as load_migration_plan
from network import plan as network_planner
from network.model import PlanError as NetworkPlanError
from network.model import load_plan as load_network_plan

CITY_TZ = ZoneInfo("Asia/Shanghai")


class LinesInputError(ValueError):
    """What was asked cannot be done as given (a bad policy or plan file, no internet test address)."""


def today_local() -> date:
    return datetime.now(CITY_TZ).date()


def sources(inv: Inventory, migration_path: Path | None = None, network_path: Path | None = None,
            planning_path: Path | None = None) -> plan.Sources:
    """The migration plan, its planning file and the network plan, each from its default file when not given; a
    missing default file leaves that part waiting, a given one that is missing or bad is an error."""
    m_path = migration_path or migration_planner.default_plan_path(inv)
    n_path = network_path or network_planner.default_plan_path(inv)
    migration = network = None
    try:
        if migration_path is not None or m_path.exists():
            migration = load_migration_plan(m_path, inv)
        if network_path is not None or n_path.exists():
            network = load_network_plan(n_path, inv)
    except (MigrationPlanError, NetworkPlanError, ValueError) as exc:
        raise LinesInputError(str(exc)) from None
    try:
        planning = migration_planner.load_planning(planning_path) if planning_path else \
            migration_planner.planning_named(migration.planning if migration else None)
    except migration_planner.PlanningError as exc:
        raise LinesInputError(f"planning data: {exc}") from None
    return plan.Sources(migration, planning, network, str(m_path) if migration else "",
                        str(n_path) if network else "")


def plan_lines(inv: Inventory, src: plan.Sources | None = None, policy_path: Path | None = None,
               today: date | None = None) -> LinesPlan:
    """Every line's cancellation date and every private network's join."""
    try:
        policy = plan.load_policy(policy_path)
    except plan.PolicyError as exc:
        raise LinesInputError(str(exc)) from None
    return plan.build(inv, src if src is not None else sources(inv), policy, today or today_local())


def findings(lines_plan: LinesPlan, facts: dict[str, EgressFacts], today: date) -> list[EgressFinding]:
    """Lines still carrying traffic after their cancellation date: a probed host leaves by a line whose date
    (the carrier's cancellation, or the planned one) lies before `today`."""
    out = []
    for c in lines_plan.cancellations:
        if c.date is None or c.date >= today:
            continue
        hosts = tuple(sorted(h for h, f in facts.items() if f["path"] == EgressPath.line and f["line"] == c.line))
        if hosts:
            out.append(EgressFinding(c.line, c.department, c.date, hosts, c.status))
    return out


@dataclass(frozen=True)
class EgressOptions:
    workers: int = runner.DEFAULT_WORKERS
    timeout: float = 30.0
    trust_on_first_use: bool = False
    include_classified: bool = False
    jump: str | None = None


def probe_host(inv: Inventory, host: str, options: EgressOptions, pool: ssh.JumpPool | None = None) -> EgressFacts:
    script = egress.script_for(inv)
    try:
        target = ssh.Target.of(inv, host, options.jump)
    except LookupError as exc:
        raise ssh.SSHError("error", str(exc)) from exc
    out = ssh.run(target, script.text, timeout=options.timeout, trust_on_first_use=options.trust_on_first_use,
                  pool=pool)
    section = script.parse(out.stdout).get("egress")
    if section is None:
        raise ssh.SSHError("error", f"the egress probe's output is incomplete (exit {out.exit_status})")
    return egress.facts_of(inv, section, host)


def probe_egress(inv: Inventory, hosts: Sequence[str], store: Store | None = None,
                 options: EgressOptions = EgressOptions(), lines_plan: LinesPlan | None = None,
                 today: date | None = None, console: Console | None = None, progress: bool = True) -> EgressResult:
    """Probe every host's way out (unreachable hosts are results, never an abort), store the run, judge the lines."""
    if inv.extranet is None or inv.extranet.internet_probe is None:
        raise LinesInputError("the inventory declares no internet test address: add extranet.internet_probe "
                              "(address, extranet_hops)")
    if not options.include_classified:
        refuse_classified(inv, hosts, "asked to probe ")
    observers: list[object] = [runner.ProgressBar(console)] if progress else []
    recorder = None
    if store is not None:
        recorder = runner.StoreRecorder(store, LINES_EGRESS, inventory=str(inv.root),
                                        params={"hosts": len(hosts),
                                                "target": str(inv.extranet.internet_probe.address)})
        observers.append(recorder)
    pool = ssh.JumpPool()
    try:
        results = runner.run(list(hosts), lambda h: probe_host(inv, h, options, pool), workers=options.workers,
                             label="egress", observers=observers)
    finally:
        pool.close()
    facts = {r.target: r.value for r in results if r.ok}
    failed = {r.target: f"{r.error_kind or 'error'}: {r.error or ''}".strip() for r in results if not r.ok}
    today = today or today_local()
    lines_plan = lines_plan or plan_lines(inv, today=today)
    return EgressResult(inv, recorder.run_id if recorder else None, facts, failed, lines_plan,
                        findings(lines_plan, facts, today), today)


def latest_egress(store: Store, hosts: Sequence[str] | None = None) -> tuple[dict[str, EgressFacts], str | None]:
    """Each host's newest successful probe in the store, and when the newest was taken."""
    latest: dict[str, EgressFacts] = {}
    at: datetime | None = None
    for record in store.history(LINES_EGRESS, hosts, ok_only=True):
        if isinstance(record.data, dict) and "path" in record.data:
            latest[record.target] = record.data  # type: ignore[assignment]
            at = record.at if at is None or record.at > at else at
    return latest, at.astimezone(UTC).isoformat(timespec="seconds") if at else None


def plan_or_dates(inv: Inventory, today: date) -> LinesPlan:
    """The lines plan from the default plan files; when one of them is bad, the carrier's `cancelled_on` dates
    alone (a report must not fail because a plan file does)."""
    try:
        return plan_lines(inv, today=today)
    except LinesInputError:
        return plan_lines(inv, plan.Sources(), today=today)


def progress(inv: Inventory, store: Store | None = None, today: date | None = None,
             lines_plan: LinesPlan | None = None) -> LinesProgress:
    """The progress report's measure "leased lines cancelled": lines done/total per department (done: the
    carrier confirmed the cancellation, inventory `cancelled_on`, on or before `today`), the annual cost saved by
    them, the lines the store's newest egress probe still finds carrying traffic (`carrying`), and those among
    them past their cancellation date (findings). `store` may be a view of the past (`Store.as_of`): a report
    dated then reads the probes known then. Reads the default migration and network plans when no `lines_plan`
    is given; never connects to a host."""
    today = today or today_local()
    if lines_plan is None:
        lines_plan = plan_or_dates(inv, today)
    per: dict[str, list] = {}
    for c in lines_plan.cancellations:
        per.setdefault(c.department, []).append(c)
    rows = []
    for dept in sorted(per):
        cs = per[dept]
        done = [c for c in cs if cancelled_by(c, today)]
        rows.append(DepartmentProgress(dept, len(done), len(cs), sum((c.annual_cost for c in done), Decimal(0)),
                                       sum((c.annual_cost for c in cs), Decimal(0))))
    facts, at = latest_egress(store) if store is not None else ({}, None)
    carrying: dict[str, list[str]] = {}
    for host, f in sorted(facts.items()):
        if f["path"] == EgressPath.line and f["line"]:
            carrying.setdefault(str(f["line"]), []).append(host)
    return LinesProgress(tuple(rows), sum(r.done for r in rows), sum(r.total for r in rows),
                         sum((r.annual_cost_saved for r in rows), Decimal(0)),
                         sum((r.annual_cost_total for r in rows), Decimal(0)),
                         tuple(findings(lines_plan, facts, today)), at, tuple(lines_plan.cancellations),
                         {line: tuple(hosts) for line, hosts in carrying.items()})


def cancelled_by(c: LineCancellation, today: date) -> bool:
    """Done: the carrier confirmed the cancellation on a day that has come (a report dated earlier does not count
    it)."""
    return c.status is LineStatus.cancelled and (c.date is None or c.date <= today)
