"""Benchmark: the migration planner on a generated city of 10,000 systems, against networkx's own waves.

Run from the checkout (no lab, no root): `.venv/bin/python bench/plan.py [--systems 10000] [--deps 50000]
[--pool 300] [--departments 100] [--repeat 3]`.

The city is written as inventory YAML under a temporary directory and loaded by `inventory.load` (with every
cross-record check), as `invoke migrate.plan` loads a city; the load is timed apart. Each department holds
`systems / departments` systems of one package family, one or two hosts each (an application host, and a
database host for every third system), each system with its own service port; categories cycle through
the seven of the archive, and each system declares the zone its category belongs to (Hezhou's rule: the
internal-office categories on the intranet, the others on the extranet or, for public services, the
internet). Dependencies: `deps` declared edges, each system depending on systems up to 200 places before it
(a layered city: platforms first), plus one mutual dependency in every hundred systems, so that groups
which must move together exist. The cloud pool has `pool` hosts (half dpkg, half rpm) of one large flavor;
the change windows are planning.yaml's Saturday night plus a Wednesday night, its blackout dates kept, and
the per-wave limits raised for a city of this size (40 systems, 80 hosts, 5 TB a wave), as a planner of
such a city would set them in a copy of planning.yaml.

Reported, best of `--repeat` runs (wall time, and the process's own CPU time): the whole `build_plan` and
each of its six stages (so a slow stage is named), the peak memory Python allocated during one plan
(tracemalloc, a run of its own, since tracing slows it) and the process's maximum RSS, the machine's load
average and CPU count. Compared in the same run, on the same graph: the wave part (jiyue's `move_groups` +
`schedule_waves`: strongly connected groups, dependency order, priorities, limits, change windows) against
what a user would write with networkx alone, `nx.condensation` + `nx.topological_generations` cut into
waves of at most 40 systems (no priorities, no host or data limits, no windows). Nothing is asserted; the
target is under 2 s for the plan. Audit history is empty (a city planned before its first collection:
sizes are the declared defaults, nothing is decommissioned), so the numbers measure the planner, not the
store.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import networkx as nx
import yaml
from rich.console import Console
from rich.table import Table

import inventory
from audit.history import AuditView
from inventory.model import Inventory
from migrations import plan as planner
from migrations.model import Disposition

CATEGORIES = ("internal_office", "coordination", "management", "supervision", "decision",
              "social_management", "public_service")
ZONE_OF = {"social_management": "extranet", "public_service": "internet"}  # the rest: intranet
START = date(2027, 1, 4)
NOW = datetime(2027, 1, 1, tzinfo=UTC)
WAVE_SYSTEMS = 40


def city(root: Path, systems: int, deps: int, pool: int, departments: int, seed: int = 12) -> Path:
    """Write the generated city under `root/inventory` (city.yaml and one file per department)."""
    rng = random.Random(seed)
    inv_dir = root / "inventory"
    (inv_dir / "departments").mkdir(parents=True)
    per_dept = -(-systems // departments)
    city_doc: dict[str, Any] = {
        "defaults": {"ssh": {"user": "root", "key": "id_ed25519", "known_hosts": "known_hosts"}},
        "departments": [{"code": f"d{d:03d}", "name": f"部门{d:03d}", "level": "city"} for d in range(departments)],
        "subnets": [{"name": "src", "kind": "source", "prefix": "10.0.0.0/16", "gateway": "10.0.0.1"},
                    {"name": "cloud", "kind": "cloud", "prefix": "10.1.0.0/22", "gateway": "10.1.0.1"}],
        "hosts": [{"name": "gw", "address": "10.1.0.2", "os_family": "debian", "os": "Debian 12", "role": "gateway"}],
        "cloud": {"flavors": [{"name": "c96m384", "vcpus": 96, "memory_gb": 384, "disk_gb": 8000}],
                  "zones": ["intranet", "extranet", "internet"], "pool": [], "gateway": "gw"},
    }
    for p in range(pool):
        family = "debian" if p % 2 == 0 else "redhat"
        city_doc["hosts"].append({"name": f"pool{p:03d}", "address": f"10.1.{1 + p // 250}.{1 + p % 250}",
                                  "os_family": family, "os": "Debian 12" if family == "debian" else "openEuler 22.03",
                                  "role": "cloud"})
        # Every zone holds both families: intranet 4 in 10, extranet 5 in 10, internet 1 in 10.
        zone = ("intranet", "intranet", "extranet", "extranet", "internet", "extranet", "intranet", "extranet",
                "intranet", "extranet")[(p // 2) % 10]
        city_doc["cloud"]["pool"].append({"host": f"pool{p:03d}", "flavor": "c96m384", "zone": zone})

    # Declared dependencies: every system on a few of the 200 before it, then mutual pairs.
    depends: list[set[int]] = [set() for _ in range(systems)]
    edges = 0
    while edges < deps - systems // 100:
        i = rng.randrange(1, systems)
        j = rng.randrange(max(0, i - 200), i)
        if j not in depends[i]:
            depends[i].add(j)
            edges += 1
    for i in range(50, systems, 100):
        j = next(iter(sorted(depends[i])), i - 1)  # i needs j; now j needs i too
        depends[j].add(i)

    address = 10
    for d in range(departments):
        family = "debian" if d % 2 == 0 else "redhat"
        os_ = "Kylin V10 SP2" if family == "redhat" else "UOS 20"
        records: dict[str, list] = {"systems": [], "hosts": []}
        for i in range(d * per_dept, min(systems, (d + 1) * per_dept)):
            sid = f"s{i:05d}"
            hosts = [f"{sid}-app"] + ([f"{sid}-db"] if i % 3 == 0 else [])
            for h in hosts:
                records["hosts"].append({"name": h, "address": f"10.0.{address // 250}.{1 + address % 250}",
                                         "os_family": family, "os": os_, "role": "db" if h.endswith("-db") else "app"})
                address += 1
            category = CATEGORIES[i % len(CATEGORIES)]
            records["systems"].append({
                "id": sid, "name": f"系统{i:05d}", "department": f"d{d:03d}", "function": "业务办理",
                "category": category, "scope": {"user_units": [f"部门{d:03d}"], "declared_users": 20},
                "frequency": "daily", "approval": {"department": "市发展和改革委员会", "date": "2018-05-01"},
                "funding": {"source": "财政拨款", "amount": 100000}, "build_year": 2018, "vendor": "承建单位",
                "classification": "non_classified",
                "protection": {"level": 2, "filing_number": f"21110000{i:05d}-0001"},
                "zone": ZONE_OF.get(category, "intranet"), "hosts": hosts,
                "services": [{"name": "app", "host": hosts[0], "port": 10000 + i}]
                + ([{"name": "db", "host": hosts[1], "port": 30000 + i}] if len(hosts) > 1 else []),
                "depends_on": [f"s{j:05d}" for j in sorted(depends[i])],
                "priority": {"urgency": 1 + i % 5, "importance": 1 + (i // 5) % 5},
            })
        (inv_dir / "departments" / f"d{d:03d}.yaml").write_text(
            yaml.dump(records, allow_unicode=True, sort_keys=False, Dumper=yaml.CSafeDumper), encoding="utf-8")
    (inv_dir / "city.yaml").write_text(yaml.dump(city_doc, allow_unicode=True, sort_keys=False,
                                                 Dumper=yaml.CSafeDumper), encoding="utf-8")
    return inv_dir


def planning() -> planner.Planning:
    """planning.yaml with the wave limits of a large city and a second weekly window."""
    data = yaml.safe_load(planner.DEFAULT_PLANNING.read_text(encoding="utf-8"))
    data["waves"] = {"max_systems": WAVE_SYSTEMS, "max_hosts": 2 * WAVE_SYSTEMS, "max_data_gb": 5000}
    data["change_windows"].append({"weekday": "wednesday", "start": "22:00", "hours": 8})
    return planner.Planning.model_validate(data)


def stages(inv: Inventory, rules: planner.Planning) -> tuple[dict[str, float], Any]:
    """build_plan's six stages, each timed (the same calls in the same order as `planner.build_plan`)."""
    audit, warnings, times = AuditView(), [], {}
    scope = sorted(inv.systems)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        return out

    decided = timed("1 dispositions", lambda: planner.decide_all(inv, audit, rules, warnings))
    edges = planner.dependency_edges(inv, audit)
    plans = timed("2 system plans", lambda: planner.system_plans(inv, audit, scope, decided, edges, warnings))
    groups, needs = timed("3 move groups", lambda: planner.move_groups(inv, plans, edges))
    provider = planner.PoolProvider(inv, rules)
    placed, shortfalls = timed("4 placement", lambda: planner.place_groups(
        inv, audit, rules, provider, plans, groups, needs, warnings))
    _, waves = timed("5 waves", lambda: planner.schedule_waves(rules, plans, groups, needs, placed, START, NOW,
                                                              warnings))
    timed("6 work orders", lambda: planner.plan_work_orders(inv, audit, plans, scope, decided, edges, None,
                                                           START, warnings))
    return times, (plans, waves, shortfalls)


def jiyue_waves(inv: Inventory, rules: planner.Planning) -> Callable[[], int]:
    """jiyue's wave part alone, every group placed: strongly connected groups, then waves within the limits and
    windows. The system plans it starts from are made before the clock starts (`best` times the returned call)."""
    audit = AuditView()
    edges = planner.dependency_edges(inv, audit)
    decided = planner.decide_all(inv, audit, rules, [])

    def waves() -> int:
        plans = prepared.pop()
        groups, needs = planner.move_groups(inv, plans, edges)
        _, out = planner.schedule_waves(rules, plans, groups, needs, set(groups), START, NOW, [])
        return len(out)

    prepared = [planner.system_plans(inv, audit, sorted(inv.systems), decided, edges, []) for _ in range(8)]
    return waves


def networkx_waves(inv: Inventory) -> int:
    """The peer: what a user would write with networkx alone for the same graph and the same systems a wave."""
    graph = nx.DiGraph()
    graph.add_nodes_from(inv.systems)
    graph.add_edges_from((dep, s.id) for s in inv.systems.values() for dep in s.depends_on)  # provider first
    condensed = nx.condensation(graph)
    waves = 0
    for generation in nx.topological_generations(condensed):
        members = sum(len(condensed.nodes[n]["members"]) for n in generation)
        waves += -(-members // WAVE_SYSTEMS)
    return waves


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float, Any]:
    """Best and median wall time, best CPU time (this process's own: on a shared machine the wall time also
    counts the other work the CPUs were doing), and the last result."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(times), statistics.median(times), min(cpu), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--deps", type=int, default=50_000)
    parser.add_argument("--pool", type=int, default=300)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-plan-") as tmp:
        t0 = time.perf_counter()
        inv_dir = city(Path(tmp), args.systems, args.deps, args.pool, args.departments)
        generated = time.perf_counter() - t0
        t0 = time.perf_counter()
        inv = inventory.load(inv_dir)
        loaded = time.perf_counter() - t0
    rules = planning()
    n_edges = sum(len(s.depends_on) for s in inv.systems.values())
    console.print(f"city: {len(inv.systems)} systems, {len(inv.hosts) - args.pool - 1} source hosts, {n_edges} "
                  f"dependencies, {args.pool} pool hosts, {len(inv.departments)} departments "
                  f"(written in {generated:.2f} s, loaded and checked in {loaded:.2f} s)")

    def plan() -> Any:
        return planner.build_plan(inv, AuditView(), rules, start=START, now=NOW)

    plan_best, plan_median, plan_cpu, result = best(plan, args.repeat)
    stage_runs = [stages(inv, rules)[0] for _ in range(args.repeat)]
    stage_best = {k: min(r[k] for r in stage_runs) for k in stage_runs[0]}
    wave_best, wave_median, wave_cpu, jiyue_n = best(jiyue_waves(inv, rules), min(args.repeat, 8))
    nx_best, nx_median, nx_cpu, nx_n = best(lambda: networkx_waves(inv), args.repeat)

    gc.collect()
    tracemalloc.start()
    plan()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    counts: dict[str, int] = {}
    for sp in result.systems:
        counts[sp.disposition] = counts.get(sp.disposition, 0) + 1
    rehost = counts.get(Disposition.cloud_rehost, 0)
    console.print(f"plan: {len(result.waves)} waves, {rehost} cloud rehosts, "
                  f"{len({sf.system for sf in result.awaiting_capacity})} systems awaiting capacity, "
                  f"{len(result.work_orders)} work orders")

    table = Table(title=f"migrate.plan on {len(inv.systems)} systems (best of {args.repeat})")
    for col in ("what", "best", "median", "CPU"):
        table.add_column(col, justify="right" if col != "what" else "left")
    table.add_row("build_plan (whole)", f"{plan_best:.2f} s", f"{plan_median:.2f} s", f"{plan_cpu:.2f} s")
    for name, seconds in stage_best.items():
        table.add_row(f"  stage {name}", f"{seconds:.3f} s", "", "")
    table.add_row(f"waves: jiyue ({jiyue_n} waves, limits, windows)", f"{wave_best:.3f} s", f"{wave_median:.3f} s",
                  f"{wave_cpu:.3f} s")
    table.add_row(f"waves: networkx generations ({nx_n} waves)", f"{nx_best:.3f} s", f"{nx_median:.3f} s",
                  f"{nx_cpu:.3f} s")
    console.print(table)
    load_after = os.getloadavg()
    console.print(f"memory: peak {peak / 2**20:.0f} MB allocated during one plan (tracemalloc), "
                  f"max RSS {rss_mb:.0f} MB (the inventory included)")
    console.print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, "
                  f"{load_after[0]:.1f} after; jiyue / networkx for the waves: {wave_best / nx_best:.1f}x; "
                  f"target under 2 s: {'met' if plan_best < 2 else 'not met'} in wall time, "
                  f"{'met' if plan_cpu < 2 else 'not met'} in CPU time")


if __name__ == "__main__":
    main()
