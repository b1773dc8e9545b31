"""The audit as functions that return results: collect, judge, and both; no printing, no exit codes.

The command line (audit/tasks.py) and the demo call these; `audit.report.write_reports` writes the
`AuditResult` they return. Collection failures are results too (`AuditResult.not_collected`): the
hosts that answered are judged all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from rich.console import Console

from audit.collect import CollectOptions, collect
from audit.model import AuditResult
from audit.zombies import Judge
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
