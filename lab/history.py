"""Seeded history: the weeks of earlier collection runs a new lab has not lived through.

The idle-resources criterion needs utilisation over at least two weeks (audit/policy.yaml). A lab
started minutes ago has one real run, so the demo and the tests add one earlier run a day, marked
`seeded` in the store (`runs.seeded`), with utilisation that matches each system's scenario
profile: busy where the scenario sends live traffic, quiet elsewhere. Reports and verdicts never
hide that a window contains seeded runs: the store keeps the mark with every run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from inventory.model import Inventory
from jiyue.runner import Result
from jiyue.store import AUDIT_COLLECT, Store

SCENARIO = Path(__file__).resolve().parent / "scenario.yaml"

# CPU % of one core and network bytes/s, low and high, for hosts whose system is busy or quiet.
BUSY = {"cpu": (4.0, 15.0), "net": (20_000.0, 200_000.0)}
QUIET = {"cpu": (0.05, 0.5), "net": (2.0, 20.0)}


def profile_of(scenario: dict, system_id: str) -> dict:
    entry = scenario.get("systems", {}).get(system_id, scenario.get("default", "active"))
    name = entry if isinstance(entry, str) else entry.get("profile", scenario.get("default", "active"))
    return scenario["profiles"][name] | ({} if isinstance(entry, str) else entry)


def seed_history(store: Store, inv: Inventory, days: int = 30, now: datetime | None = None,
                 scenario_path: Path = SCENARIO) -> int:
    """Write one seeded run a day for `days` days before `now`; return runs written (0 if present)."""
    if any(r.seeded for r in store.history(AUDIT_COLLECT, list(inv.hosts))):
        return 0
    scenario = yaml.safe_load(scenario_path.read_text(encoding="utf-8"))
    now = now or datetime.now(UTC)
    rng = random.Random(20261122)
    busy = {h for s in inv.systems.values() if profile_of(scenario, s.id).get("live_traffic") for h in s.hosts}
    for day in range(days, 0, -1):
        at = now - timedelta(days=day, minutes=rng.randint(0, 120))
        results = []
        for host in inv.contactable_hosts():  # jiyue never collects a classified host: no past runs either
            level = BUSY if host in busy else QUIET
            sample = {"interval_s": 1.0, "cpu_pct_of_one_core": round(rng.uniform(*level["cpu"]), 2),
                      "net_bytes_per_s": round(rng.uniform(*level["net"]), 1)}
            results.append(Result(host, True, {"sample": sample, "cpu": {"count": 2}}, started=at))
        store.record(AUDIT_COLLECT, results, inventory=str(inv.root), started=at, seeded=True,
                     params={"seeded_by": "lab/history.py", "scenario": str(scenario_path.name)})
    return days
