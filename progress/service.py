"""The progress engine: each milestone's measure per department as of a date, the lagging rule, the timeline.

`progress(inv, store, as_of)` recomputes everything from the store as it stood at `as_of` (`Store.as_of`):
a report dated in the past shows what was known then, not what was learned later. The timeline is the same
computation at each earlier day the store has a run on. The command line (progress/tasks.py) and the demo
call this; progress/report.py writes what it returns.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from audit.zombies import load_policy as load_audit_policy
from inventory.model import ALL_DEPARTMENTS, Inventory, Milestone, Programme
from jiyue.store import Store, StoreSnapshot
from lines import service as lines_service
from lines.model import LinesPlan, LinesProgress
from progress.measures import REGISTRY, Facts
from progress.model import Count, DepartmentProgress, Item, MilestoneProgress, ProgressResult, Ranking, TimelinePoint

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy.yaml"
RULES = ("linear", "due")


class ProgressError(ValueError):
    """Bad input for the progress report (no programme declared, a bad policy file): the message says what to do."""


def load_policy(path: Path | None = None) -> dict[str, Any]:
    """progress/policy.yaml (or an auditor's copy), checked so that a mistyped rule fails loudly."""
    path = path or DEFAULT_POLICY
    try:
        policy = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProgressError(f"{path}: cannot read the progress policy: {exc}") from None
    lagging = (policy or {}).get("lagging") if isinstance(policy, dict) else None
    if not isinstance(lagging, dict) or lagging.get("rule") not in RULES:
        raise ProgressError(f"{path}: lagging.rule must be one of {', '.join(RULES)}")
    for key in ("tolerance_pct", "min_elapsed_pct"):
        if not isinstance(lagging.get(key, 0), int | float) or not 0 <= lagging.get(key, 0) <= 100:
            raise ProgressError(f"{path}: lagging.{key} is a percentage, 0-100")
    try:
        ZoneInfo(str(policy.get("timezone", "UTC")))
    except (KeyError, ValueError):
        raise ProgressError(f"{path}: timezone {policy.get('timezone')!r} is not a known time zone") from None
    measures = policy.get("measures")
    needed = {"coverage_levels", "baseline_levels", "failing_statuses"}
    if not isinstance(measures, dict) or not needed <= set(measures):
        raise ProgressError(f"{path}: measures needs coverage_levels, baseline_levels and failing_statuses")
    return policy


def end_of_day(day: date, policy: dict[str, Any]) -> datetime:
    """The last moment of `day` in the policy's time zone, in UTC: what "as of 2026-03-31" means."""
    zone = ZoneInfo(str(policy.get("timezone", "UTC")))
    return datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC) - timedelta(microseconds=1)


def local_day(at: datetime, policy: dict[str, Any]) -> date:
    return at.astimezone(ZoneInfo(str(policy.get("timezone", "UTC")))).date()


def covered(inv: Inventory, milestone: Milestone) -> set[str]:
    """The departments a milestone covers: all, or each listed one with every unit below it (a county's
    government covers its bureaus and towns)."""
    if milestone.departments == ALL_DEPARTMENTS:
        return set(inv.departments) | {""}
    children: dict[str | None, list[str]] = defaultdict(list)
    for d in inv.departments.values():
        children[d.parent].append(d.code)
    out: set[str] = set()
    stack = list(milestone.departments)
    while stack:
        code = stack.pop()
        if code not in out:
            out.add(code)
            stack += children.get(code, [])
    return out


def expected_share(milestone: Milestone, programme: Programme, day: date) -> float:
    """The share a steady pace from the milestone's start reaches by `day`: 0 at the start, 1 at the due date."""
    start = milestone.start or programme.start
    span = (milestone.due - start).days
    return min(max((day - start).days / span, 0.0), 1.0) if span > 0 else 1.0


def judge_lag(count: Count, milestone: Milestone, programme: Programme, day: date,
              policy: dict[str, Any]) -> tuple[float | None, bool, str]:
    """(expected share, lagging?, why) of one department on one milestone by `day`, after policy `lagging`."""
    rule = policy["lagging"]
    share = count.share
    expected = expected_share(milestone, programme, day)
    if share is None:
        return expected, False, ""
    if day > milestone.due and share < 1:
        return 1.0, True, (f"已逾期（{milestone.due}），完成 {100 * share:.0f}% / past due ({milestone.due}), "
                           f"{100 * share:.0f} % done")
    if rule["rule"] != "linear" or 100 * expected < float(rule.get("min_elapsed_pct", 0)):
        return expected, False, ""
    floor = expected - float(rule.get("tolerance_pct", 0)) / 100
    if share < floor:
        return expected, True, (f"完成 {100 * share:.0f}%，按进度应达 {100 * expected:.0f}% / "
                                f"{100 * share:.0f} % done, {100 * expected:.0f} % expected by now")
    return expected, False, ""


def _count(items: list[Item]) -> Count:
    return Count(sum(i.done for i in items), len(items))


def _milestone(inv: Inventory, milestone: Milestone, items: list[Item], day: date,
               policy: dict[str, Any], facts: Facts) -> MilestoneProgress:
    programme = inv.programme
    assert programme is not None
    scope = covered(inv, milestone)
    mine = [i for i in items if i.department in scope]
    by_dept: dict[str, list[Item]] = defaultdict(list)
    for item in mine:
        by_dept[item.department].append(item)
    order = {code: n for n, code in enumerate(inv.departments)}
    departments = []
    for code in sorted(by_dept, key=lambda c: (order.get(c, len(order)), c)):
        count = _count(by_dept[code])
        expected, lagging, why = judge_lag(count, milestone, programme, day, policy)
        departments.append(DepartmentProgress(code, count, expected, lagging, why, tuple(by_dept[code])))
    note, findings, lines = "", [], None
    if milestone.measure == "leased_lines":
        lines = in_scope(facts.lines, scope)
        findings = list(lines.findings)
        saved, total = lines.annual_cost_saved, lines.annual_cost_total
        note = (f"年节约专线费用 {saved:,.2f} 元（共 {total:,.2f} 元） / annual cost saved: {saved:,.2f} of "
                f"{total:,.2f} yuan" if lines.total else "清单未声明互联网专线 / no lines declared")
    return MilestoneProgress(milestone, _count(mine), expected_share(milestone, programme, day), departments,
                             note=note, lines=lines, findings=findings)


def in_scope(lp: LinesProgress, scope: set[str]) -> LinesProgress:
    """The lines measure of the departments a milestone covers: their rows, costs, findings and lines."""
    rows = tuple(d for d in lp.departments if d.department in scope)
    mine = {c.line for c in lp.cancellations if c.department in scope}
    return LinesProgress(rows, sum(d.done for d in rows), sum(d.total for d in rows),
                         sum((d.annual_cost_saved for d in rows), Decimal(0)),
                         sum((d.annual_cost_total for d in rows), Decimal(0)),
                         tuple(f for f in lp.findings if f.line in mine), lp.probed_at,
                         tuple(c for c in lp.cancellations if c.line in mine),
                         {k: v for k, v in lp.carrying.items() if k in mine})


def _counts(inv: Inventory, facts: Facts) -> dict[int, Count]:
    """Each milestone's city-wide count at one moment (the timeline's points)."""
    assert inv.programme is not None
    cache: dict[str, list[Item]] = {}
    out = {}
    for n, m in enumerate(inv.programme.milestones):
        if m.measure not in cache:
            cache[m.measure] = REGISTRY[m.measure](facts)
        scope = covered(inv, m)
        out[n] = _count([i for i in cache[m.measure] if i.department in scope])
    return out


def timeline_days(store: Store | StoreSnapshot, as_of: datetime, policy: dict[str, Any]) -> list[date]:
    """The days before `as_of` with a run in the store (the last `timeline.max_points` - 1), then `as_of`'s own."""
    day = local_day(as_of, policy)
    days = sorted({local_day(at, policy) for _, at in store.as_of(as_of).run_times()} - {day})
    keep = max(int(policy.get("timeline", {}).get("max_points", 12)) - 1, 0)
    return [*(days[-keep:] if keep else []), day]


def progress(inv: Inventory, store: Store, as_of: date | datetime | None = None,
             policy: dict[str, Any] | None = None, timeline: bool = True,
             lines_plan: LinesPlan | None = None) -> ProgressResult:
    """Every milestone of the inventory's programme, counted as of `as_of` (a day: its end in the policy's time
    zone; default now), per department, with the lagging departments flagged, the leased lines' findings and,
    with `timeline`, each milestone's city-wide count at every earlier day the store has a run on. The leased
    lines are judged against `lines_plan` (default: `lines.plan` from the default plan files)."""
    policy = policy or load_policy()
    if inv.programme is None:
        raise ProgressError("the inventory declares no programme: add a `programme:` section with its milestones "
                            "(see the README, report.progress)")
    if as_of is None:
        at = datetime.now(UTC)
    elif isinstance(as_of, datetime):
        at = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    else:
        at = end_of_day(as_of, policy)
    day = local_day(at, policy)
    snapshot = StoreSnapshot(store)  # read once: the timeline views the same records at many moments
    audit_policy = load_audit_policy()  # the zombie rules, as the audit applies them (audit/policy.yaml)
    lines_plan = lines_plan or _lines_plan(inv, day)
    facts = Facts(inv, snapshot, at, policy, audit_policy, lines_plan)
    items: dict[str, list[Item]] = {}
    milestones = []
    for m in inv.programme.milestones:
        if m.measure not in items:
            items[m.measure] = REGISTRY[m.measure](facts)
        milestones.append(_milestone(inv, m, items[m.measure], day, policy, facts))
    if timeline:
        points: dict[int, list[TimelinePoint]] = defaultdict(list)
        for d in timeline_days(snapshot, at, policy):
            then = facts if d == day else Facts(inv, snapshot, end_of_day(d, policy), policy, audit_policy,
                                                 lines_plan)
            for n, count in _counts(inv, then).items():
                points[n].append(TimelinePoint(d, count))
        for n, mp in enumerate(milestones):
            mp.timeline = points[n]
    return ProgressResult(inv, at, policy, milestones, rank(milestones), store=store.url)


def _lines_plan(inv: Inventory, day: date) -> LinesPlan | None:
    """The lines plan (its cancellation dates read once from the default migration and network plans) when a
    milestone counts leased lines; every moment of the timeline is judged against it."""
    assert inv.programme is not None
    if not any(m.measure == "leased_lines" for m in inv.programme.milestones):
        return None
    return lines_service.plan_or_dates(inv, day)


def rank(milestones: list[MilestoneProgress]) -> list[Ranking]:
    """Departments over every milestone covering them: the highest share done first, fewer lags breaking ties."""
    done: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    lags: dict[str, int] = defaultdict(int)
    for m in milestones:
        for d in m.departments:
            done[d.department] += d.count.done
            total[d.department] += d.count.total
            seen[d.department] += 1
            lags[d.department] += d.lagging
    codes = sorted(total, key=lambda c: (-(done[c] / total[c]) if total[c] else 1, lags[c], c))
    return [Ranking(n + 1, c, Count(done[c], total[c]), seen[c], lags[c]) for n, c in enumerate(codes)]
