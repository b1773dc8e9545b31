"""The audit as functions that return results: collect, judge, and both; no printing, no exit codes.

The command line (audit/tasks.py) and the demo call these; `audit.report.write_reports` writes the
`AuditResult` they return. Collection failures are results too (`AuditResult.not_collected`): the
hosts that answered are judged all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from audit import prometheus, zabbix
from audit.collect import CollectOptions, collect
from audit.model import AuditResult
from audit.monitoring import DAY, Coverage, coverage
from audit.zombies import Judge, load_policy
from inventory.model import Inventory
from jiyue.store import ASSET_FREED, Store


def systems_on(inv: Inventory, hosts: Iterable[str]) -> list[str]:
    """The systems with a host among `hosts`, by id (a `--limit` selects systems through their hosts)."""
    selected = set(hosts)
    return sorted(s.id for s in inv.systems.values() if selected & set(s.hosts))


def judge(inv: Inventory, store: Store, policy: dict[str, Any] | None = None, systems: list[str] | None = None,
          now: datetime | None = None) -> AuditResult:
    """Judge `systems` (default: all) over the stored history, the policy's window back from `now`.

    Nothing is collected: a host is judged by what the store already holds.
    """
    judged = Judge(inv, store, policy, now)
    return AuditResult(inv, judged, judged.judge_all(systems), freed=freed_hosts(store, inv))


def freed_hosts(store: Store, inv: Inventory) -> dict[str, dict[str, Any]]:
    """Each inventory host's latest freed record (`ASSET_FREED`), with its time: the asset list's "freed"."""
    return {r.target: {**(r.data or {}), "at": r.at.isoformat()}
            for r in store.history(ASSET_FREED, list(inv.hosts), ok_only=True)}


def collect_and_judge(inv: Inventory, store: Store, hosts: list[str] | None = None,
                      options: CollectOptions | None = None, policy: dict[str, Any] | None = None,
                      console: Console | None = None, progress: bool = True) -> AuditResult:
    """Collect `hosts` (default: every host but those of classified systems, which jiyue never connects to
    by default) into the store, then judge their systems (all systems when no hosts were named) over the
    history, this run included."""
    targets = inv.contactable_hosts() if hosts is None else hosts
    run_id, results = collect(inv, targets, options or CollectOptions(), store=store, console=console,
                              progress=progress)
    systems = None if hosts is None else systems_on(inv, targets)
    return replace(judge(inv, store, policy, systems), collection=results, run_id=run_id)


# --- history from the city's monitoring (audit.history) -------------------------------------------

SOURCES = (prometheus.SOURCE, zabbix.SOURCE)  # what `audit.history --from` reads


@dataclass
class HistoryImport:
    """One import: its stored run, how many readings, and each host's coverage of the window."""

    source: str
    url: str
    run_id: int
    readings: int
    since: datetime
    until: datetime
    coverage: dict[str, Coverage]
    seeded: int  # readings of days the source itself marks as seeded (the lab's backfill)


def history_days(inv: Inventory, policy: dict[str, Any] | None = None) -> int:
    """The judgement window the import must cover: the policy's, or the longest declared cycle."""
    policy = policy or load_policy()
    cycles = policy.get("frequency", {}).get("cycle_days", {})
    longest = max([int(cycles.get(str(s.frequency), 0) or 0) for s in inv.systems.values()], default=0)
    return max(int(policy["observation"]["window_days"]), longest)


def import_history(inv: Inventory, store: Store, source: str = prometheus.SOURCE, hosts: list[str] | None = None,
                   days: int | None = None, step: int = DAY, now: datetime | None = None,
                   policy: dict[str, Any] | None = None) -> HistoryImport:
    """Read `hosts`' (default: every host jiyue may judge) utilisation over the judgement window from the
    inventory's monitoring source and store it, marked with the source. ValueError if the inventory
    declares no such source; audit.monitoring.MonitoringError if the server cannot answer. Every source's
    rows are stored and covered the same way: only the fetching differs."""
    if source not in SOURCES:
        raise ValueError(f"--from: one of {', '.join(SOURCES)}")
    declared = getattr(inv.monitoring, source, None) if inv.monitoring else None
    if declared is None:
        raise ValueError(f"the inventory declares no monitoring.{source} (see the README: monitoring)")
    fetch = prometheus.fetch if source == prometheus.SOURCE else zabbix.fetch
    targets = inv.contactable_hosts() if hosts is None else [h for h in hosts if h in inv.contactable_hosts()]
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days or history_days(inv, policy))
    rows = fetch(inv, declared, targets, since, until, step)
    run_id = store.record_readings(source, rows, hosts=targets, since=since, until=until, inventory=str(inv.root),
                                   params={"url": declared.url, "since": since.isoformat(),
                                           "until": until.isoformat(), "step": step})
    times: dict[str, list[datetime]] = {h: [] for h in targets}
    for r in rows:
        times[r["host"]].append(r["at"])
    return HistoryImport(source, declared.url, run_id, len(rows), since, until,
                         {h: coverage(h, t, since, until, step) for h, t in times.items()},
                         sum(r["seeded"] for r in rows))
