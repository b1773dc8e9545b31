"""Benchmark: the migration engine's data copy against plain rsync, and the cutover downtime, on a lab of its own.

Run as root from the checkout: `.venv/bin/python bench/migrate.py [--gib 1] [--changed 0.01] [--repeat 2]`.

It starts a lab of its own (bridge `jmblab0`, 198.19.150.0/24, tag jmb, beside the other labs) with three
hosts: a source running one system (the lab's app behind its control script), a cloud target and the
gateway (nginx), seeded by lab/seed.py. The source's data path gets `--gib` GiB of files (1 MiB
each, random).

1. Copy: the engine's sync step (the pre-sync playbook's first pass, rsync run on the source through the
   forwarded agent) against one plain rsync of the same directories (data path and config dir) with the
   same options (the engine's RSYNC_OPTIONS: -a -H -S -X -A …), between the same two hosts, into an empty
   target each time, `--repeat` times each, alternating which goes first; best, median and total time of
   each. Every copy starts after a `sync`, so none pays for the previous one's writeback. Reported twice
   for the engine: rsync's own time inside the step, and the step's wall time (Ansible's start-up, both
   passes, the manifests taken while live).
2. Downtime: a full migration of the system (precheck, pre-sync, then `--changed` of the files are
   rewritten, then freeze, final sync, verification of every entry and every file's SHA-256, switch,
   functional verification). Downtime = freeze to verified; client outage = freeze to the gateway routing to the
   started target. With the time of each cutover step.

Nothing is asserted; the targets are 90 % of rsync's throughput and under 5 s of downtime. The lab and its
data are removed at the end (`--keep` keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

import inventory
from jiyue.store import Store
from lab.hosts import Lab
from lab.seed import seed
from migrations.engine import RSYNC_OPTIONS, Migrator
from migrations.model import Disposition, HostTarget, Plan, SystemPlan, Wave
from migrations.playbook import event_step

SYSTEM = "bench-app"
NET = "198.19.150"
RSYNC = [*RSYNC_OPTIONS, "--relative", "--no-implied-dirs"]  # as the engine's jiyue_sync runs rsync
DIRS = [f"/srv/{SYSTEM}/", f"/etc/app/{SYSTEM}/"]  # what the engine copies: the data path and the config dir
MIB = 1 << 20

INVENTORY = """\
defaults:
  ssh: {{user: root, key: {key}, known_hosts: {known_hosts}}}
departments:
  - {{code: bench, name: 基准测试局, level: city}}
subnets:
  - {{name: bench-src, kind: source, prefix: {net}.0/26, gateway: {net}.1}}
  - {{name: bench-cloud, kind: cloud, prefix: {net}.64/26, gateway: {net}.65}}
  - {{name: bench-svc, kind: service, prefix: {net}.128/26, gateway: {net}.129}}
cloud:
  flavors: [{{name: c8m16, vcpus: 8, memory_gb: 16, disk_gb: 200}}]
  zones: [extranet]
  pool: [{{host: bench-dst, flavor: c8m16, zone: extranet}}]
  gateway: bench-gw
hosts:
  - {{name: bench-src, address: {net}.10, os_family: debian, os: Debian 12, role: app}}
  - {{name: bench-dst, address: {net}.70, os_family: debian, os: Debian 12, role: cloud}}
  - {{name: bench-gw, address: {net}.130, os_family: debian, os: Debian 12, role: gateway}}
systems:
  - id: {system}
    name: 基准测试系统
    department: bench
    function: 迁移基准测试用的系统。
    category: public_service
    scope: {{user_units: [基准测试局], declared_users: 10}}
    frequency: daily
    approval: {{department: 基准测试局, date: 2020-01-01}}
    funding: {{source: 财政, amount: 1.00}}
    build_year: 2020
    vendor: 基准
    classification: non_classified
    protection: {{level: 2, filing_number: 21019999001-20001}}
    zone: extranet
    downtime_budget: 300
    hosts: [bench-src]
    services:
      - {{name: web, host: bench-src, port: 8080, health_url: "http://{net}.10:8080/health"}}
    data_paths: [/srv/{system}]
    log_paths: [/var/log/app/{system}/access.log]
"""


def make_plan(inv) -> Plan:
    now = datetime.now(UTC)
    s = inv.systems[SYSTEM]
    sp = SystemPlan(system=SYSTEM, name=s.name, department=s.department, disposition=Disposition.cloud_rehost,
                    rule="bench", urgency=3, importance=3, wave=1, downtime_budget_s=300,
                    targets=[HostTarget(source="bench-src", target="bench-dst", flavor="c8m16", need_vcpus=1,
                                        need_memory_gb=1, need_disk_gb=1)])
    return Plan(generated=now, inventory=str(inv.root), systems=[sp], work_orders=[],
                waves=[Wave(number=1, start=now, end=now + timedelta(hours=8), systems=[SYSTEM], hosts=1,
                            data_bytes=0)])


def fill(lab: Lab, gib: float) -> list[Path]:
    """`gib` GiB of 1 MiB files of random bytes under the source's data path (written from this machine)."""
    bulk = lab.path("bench-src", f"/srv/{SYSTEM}/bulk")
    bulk.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(int(gib * 1024)):
        path = bulk / f"{i // 100:03d}" / f"blob-{i:05d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(MIB))
        files.append(path)
    return files


def plain_rsync(lab: Lab, inv) -> float:
    """One rsync run on the source straight to the target: the same directories and options as the engine's, the
    lab key and the verified host key."""
    ssh = inv.ssh_for(inv.hosts["bench-dst"])
    e = shlex.join(["ssh", "-i", str(ssh.key), "-o", f"UserKnownHostsFile={ssh.known_hosts}",
                    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
    cmd = shlex.join(["rsync", *RSYNC, "-e", e, *DIRS, f"root@{ssh.address}:/"])
    began = time.perf_counter()
    proc = lab.exec("bench-src", cmd)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"plain rsync failed: {proc.stderr}")
    return seconds


def engine_copy(inv, plan: Plan, store: Store, work: Path) -> tuple[float, float]:
    """The engine's pre-sync step into an empty target: (rsync's own seconds of the first pass, step wall time)."""
    m = Migrator(inv, plan, store, apply=True, workdir=work, progress=False)
    _, details = m.run_steps(SYSTEM, ["precheck", "presync"])
    return float(details["presync"]["first_s"]), float(details["presync"]["seconds"])


def timeline(work: Path) -> list[tuple[float, str, str, str]]:
    """The last cutover run's task events, in seconds from the freeze (from ansible-runner's artifacts)."""
    runs = sorted((work / "runner" / SYSTEM / "artifacts").glob("cutover-*"), key=lambda d: d.stat().st_mtime)
    if not runs:
        return []
    events = sorted((json.loads(f.read_text()) for f in (runs[-1] / "job_events").glob("*.json")),
                    key=lambda e: e["counter"])
    frozen = next((e["created"] for e in events if e["event"] == "playbook_on_task_start"
                   and event_step(e) == "freeze"), None)  # the downtime starts with the freeze's first task
    if frozen is None:
        return []
    t0 = datetime.fromisoformat(frozen)
    kinds = {"playbook_on_task_start": "start", "runner_on_ok": "ok", "runner_on_failed": "FAILED",
             "runner_on_skipped": "skipped", "playbook_on_stats": "end"}
    return [((datetime.fromisoformat(e["created"]) - t0).total_seconds(), kinds[e["event"]],
             e["event_data"].get("host", ""), e["event_data"].get("task", "")) for e in events if e["event"] in kinds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="data set size in GiB")
    parser.add_argument("--changed", type=float, default=0.01, help="share of the files changed after the pre-sync")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    parser.add_argument("--timeline", action="store_true", help="print the cutover's tasks in time from the freeze")
    args = parser.parse_args()
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="jiyue-bench-migrate-"))
    lab = Lab(tmp / "lab", tag="jmb")
    inv_dir = tmp / "inventory"
    inv_dir.mkdir()
    (inv_dir / "bench.yaml").write_text(INVENTORY.format(key=lab.key, known_hosts=lab.known_hosts, net=NET,
                                                         system=SYSTEM), encoding="utf-8")
    try:
        inv = inventory.load(inv_dir)
        lab.up(inv)
        seed(lab, inv)
        console.print(f"bench lab up in {tmp}; writing {args.gib} GiB of data on bench-src ...")
        files = fill(lab, args.gib)
        size = sum(p.stat().st_size for p in lab.path("bench-src", f"/srv/{SYSTEM}").rglob("*") if p.is_file())
        plan = make_plan(inv)
        store = Store(f"sqlite:///{tmp / 'store.sqlite'}")

        def clean_target() -> None:
            lab.exec("bench-dst", f"rm -rf /srv/{SYSTEM} /etc/app/{SYSTEM} /var/lib/jiyue")

        rsync_times, ours, ours_wall = [], [], []

        def run_plain() -> None:
            clean_target()
            os.sync()
            rsync_times.append(plain_rsync(lab, inv))

        def run_engine() -> None:
            clean_target()
            os.sync()
            first, wall = engine_copy(inv, plan, store, tmp / "work")
            ours.append(first)
            ours_wall.append(wall)

        for i in range(args.repeat):
            for run in (run_plain, run_engine) if i % 2 == 0 else (run_engine, run_plain):
                run()
        clean_target()

        # Downtime: pre-sync, change a share of the files, then the cutover.
        m = Migrator(inv, plan, store, apply=True, workdir=tmp / "work", progress=False)
        key, _ = m.run_steps(SYSTEM, ["precheck", "presync"])
        changed = random.Random(7).sample(files, max(1, int(len(files) * args.changed)))
        for path in changed:
            path.write_bytes(os.urandom(MIB))
        outcome = m.resume(key)[0]
        steps = {e.step: e.detail.get("seconds") for e in store.journal_entries(run_key=key)
                 if e.status == "done"}
        final = next(e.detail for e in store.journal_entries(run_key=key)
                     if e.step == "final_sync" and e.status == "done")

        gib = size / (1 << 30)
        mib = size / MIB
        table = Table(title=f"copy of {gib:.2f} GiB ({len(files)} files) bench-src → bench-dst, {args.repeat} runs",
                      title_justify="left")
        for column in ("copy", "best s", "median s", "MiB/s (median)", "vs rsync: best", "median", "all copies"):
            table.add_column(column, justify="right" if column != "copy" else "left")
        ratios = {}
        for label, times in (("plain rsync (same options)", rsync_times),
                             ("engine sync step (rsync in the step)", ours),
                             ("engine sync step (step wall)", ours_wall)):
            best, median = min(times), statistics.median(times)
            ratios[label] = (min(rsync_times) / best, statistics.median(rsync_times) / median,
                             sum(rsync_times) / sum(times))
            table.add_row(label, f"{best:.2f}", f"{median:.2f}", f"{mib / median:.0f}",
                          *(f"{r:.2f}" for r in ratios[label]))
        console.print(table)
        console.print(f"all runs: rsync {[round(t, 2) for t in rsync_times]}, engine {[round(t, 2) for t in ours]}, "
                      f"engine step wall {[round(t, 2) for t in ours_wall]}", highlight=False)

        down = Table(title=f"cutover of {gib:.2f} GiB with {len(changed)} files ({args.changed:.0%}) changed "
                           f"since the pre-sync: {outcome.result}", title_justify="left")
        down.add_column("measure")
        down.add_column("seconds", justify="right")
        down.add_row("downtime: freeze → verified (target 5 s)", f"{outcome.downtime_s}")
        down.add_row("client outage: freeze → gateway on the target", f"{outcome.outage_s}")
        for step in ("freeze", "final_sync", "verify_data", "switch", "verify_function"):
            down.add_row(f"  step {step} (in the one cutover run)", f"{steps.get(step)}")
        down.add_row("  final sync: rsync's own time", f"{final.get('final_s')}")
        down.add_row("  final sync: data sent (MiB)", f"{final.get('final_bytes_sent', 0) / MIB:.1f}")
        verified = next(e.detail for e in store.journal_entries(run_key=key)
                        if e.step == "verify_data" and e.status == "done")
        down.add_row("  verify data: files hashed (the rest cached by the pre-sync)",
                     f"{verified.get('hashed_files')} of {2 * verified.get('files', 0)}")
        console.print(down)
        if outcome.result != "migrated":
            console.print(f"[red]the cutover did not finish: {outcome.message}[/]")
        if args.timeline:
            for at, kind, host, task in timeline(tmp / "work"):
                console.print(f"{at:7.2f} {kind:8} {host:10} {task}", highlight=False, markup=False)
        inside, whole = ratios["engine sync step (rsync in the step)"], ratios["engine sync step (step wall)"]
        console.print(f"ratios: engine copy / rsync throughput = {inside[2]:.2f} over all copies ({inside[0]:.2f} "
                      f"best, {inside[1]:.2f} median; rsync inside the step), {whole[2]:.2f} (whole step); "
                      f"downtime / 5 s target = {(outcome.downtime_s or 0) / 5:.2f}", highlight=False)
    finally:
        if not args.keep:
            lab.down()
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
