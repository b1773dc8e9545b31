"""Benchmark: `audit.history --from prometheus` importing 90 days of 1,000 hosts, against the per-host loop.

Run from the checkout (no root, no lab): `.venv/bin/python bench/history.py [--hosts 1000] [--days 90]`.

It writes an inventory of `--hosts` hosts, backfills `--days` + 2 days of their node_exporter metrics (CPU,
memory, network; one sample every `--every` seconds, busy and quiet hosts as the lab's profiles) into a
Prometheus of its own with promtool, starts that Prometheus on a loopback port, then times:

- jiyue's import, `audit.service.import_history`: five `query_range` calls for every host at once (Prometheus
  aggregates each day with rate/avg_over_time), then one executemany into the store;
- the loop a user would write first: the same queries once per host (`{instance="…"}`), five requests a host;
- the store write alone, bulk (executemany) and row by row (one ORM object per reading).

Setup (generation, promtool, start) is timed apart and not part of the result. Nothing is asserted: this
measures; the README records what it printed, with the machine's load.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.orm import Session

import inventory
from audit import service
from audit.prometheus import DAY, QUERIES, Prometheus, duration, fetch
from bench.fleet import host_inventory
from jiyue.store import ReadingRow, Run, Store
from lab.hosts import Lab
from lab.prometheus import Backfill, create_blocks, start_prometheus, write_openmetrics


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - began, value


SELECTOR = re.compile(r"\b(node_\w+|jiyue_seeded)(\{([^}]*)\})?")


def per_host_loop(api: Prometheus, addresses: list[str], since: datetime, until: datetime) -> int:
    """The naive import: every query once per host, filtered by its instance label; return the points read."""
    points = 0
    start = datetime.fromtimestamp((since.timestamp() // DAY + 1) * DAY, UTC)
    end = datetime.fromtimestamp(until.timestamp() // DAY * DAY, UTC)
    for address in addresses:
        selector = f'instance="{address}:9100"'
        for template in QUERIES.values():
            # the host's matcher in every selector of the query
            query = SELECTOR.sub(lambda m, sel=selector: f"{m[1]}{{{sel}{',' + m[3] if m[3] else ''}}}",
                                 template.format(w=duration(DAY)))
            points += sum(len(s["values"]) for s in api.query_range(query, start, end, DAY))
    return points


def row_by_row(store: Store, rows: list[dict]) -> None:
    """The store write without executemany: one ORM object per reading, one transaction."""
    now = datetime.now(UTC)
    with Session(store.engine) as session, session.begin():
        run = Run(kind="bench.rowbyrow", started=now, finished=now, params={})
        session.add(run)
        session.flush()
        for r in rows:
            session.add(ReadingRow(run_id=run.id, source="prometheus", **r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--every", type=int, default=6 * 3600, help="seconds between backfilled samples")
    parser.add_argument("--loop-hosts", type=int, default=1000, help="hosts the per-host loop reads")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-history-") as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab", tag="jh")  # never started: the inventory only names its key paths
        inv_dir = host_inventory(root, lab, args.hosts, "198.19.120.0/21", "h")
        t0 = time.perf_counter()
        inv = inventory.load(inv_dir)
        names = sorted(inv.hosts)
        backfills = [Backfill(f"{inv.hosts[h].address}:9100", i % 4 == 0, args.days + 2, cpus=1)
                     for i, h in enumerate(names)]
        om = root / "backfill.om"
        with om.open("w", encoding="utf-8") as out:
            samples = write_openmetrics(out, backfills, datetime.now(UTC) - timedelta(hours=1), step=args.every)
        generated = time.perf_counter() - t0
        size_mb = om.stat().st_size / 1e6
        t_blocks, _ = timed(create_blocks, om, root / "prom" / "tsdb")
        om.unlink()
        t_start, prom = timed(start_prometheus, root / "prom", [])
        try:
            (inv_dir / "monitoring.yaml").write_text(f"monitoring:\n  prometheus: {{url: '{prom.url}'}}\n")
            inv = inventory.load(inv_dir)
            print(f"setup: {args.hosts} hosts, {samples:,} samples every {args.every} s over {args.days + 2} days "
                  f"({size_mb:.0f} MB OpenMetrics, written in {generated:.1f} s), promtool {t_blocks:.1f} s, "
                  f"Prometheus ready in {t_start:.1f} s", flush=True)
            store = Store(f"sqlite:///{root}/history.sqlite")
            gc.collect()
            t_import, result = timed(service.import_history, inv, store, days=args.days)
            t_again, _ = timed(service.import_history, inv, store, days=args.days)  # replaces the window
            gc.collect()
            tracemalloc.start()
            service.import_history(inv, store, days=args.days)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            api = Prometheus(inv.monitoring.prometheus)
            until = datetime.now(UTC)
            since = until - timedelta(days=args.days)
            t_fetch, rows = timed(fetch, inv, inv.monitoring.prometheus, names, since, until)
            loop_hosts = [str(inv.hosts[h].address) for h in names[:args.loop_hosts]]
            t_loop, points = timed(per_host_loop, api, loop_hosts, since, until)
            bulk_store = Store(f"sqlite:///{root}/bulk.sqlite")
            t_bulk, _ = timed(bulk_store.record_readings, "prometheus", rows, hosts=names, since=since, until=until)
            slow_store = Store(f"sqlite:///{root}/slow.sqlite")
            t_slow, _ = timed(row_by_row, slow_store, rows)
        finally:
            prom.stop()
    load_after = os.getloadavg()
    scale = args.hosts / max(len(loop_hosts), 1)
    print(f"\njiyue import (audit.history): {result.readings:,} readings of {args.hosts} hosts over {args.days} "
          f"days in {t_import:.2f} s (again, replacing the window: {t_again:.2f} s)")
    print("| what | time | requests |")
    print("|---|---|---|")
    print(f"| jiyue import, whole (fetch + store) | {t_import:.2f} s | {len(QUERIES)} |")
    print(f"| jiyue fetch alone | {t_fetch:.2f} s | {len(QUERIES)} |")
    print(f"| per-host loop, fetch alone ({len(loop_hosts)} hosts, {points:,} points) | {t_loop:.2f} s | "
          f"{len(QUERIES) * len(loop_hosts)} |")
    print(f"| store write, executemany | {t_bulk:.2f} s | |")
    print(f"| store write, row by row (ORM) | {t_slow:.2f} s | |")
    print(f"\nratios: per-host loop / jiyue fetch {t_loop * scale / t_fetch:.1f}x"
          f"{' (loop extrapolated to every host)' if scale != 1 else ''}; row by row / executemany "
          f"{t_slow / t_bulk:.1f}x")
    print(f"memory: peak {peak / 2**20:.0f} MB allocated during one import (tracemalloc), max RSS {rss_mb:.0f} MB")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"target under 10 s: {'met' if t_import < 10 else 'not met'}")


if __name__ == "__main__":
    main()
