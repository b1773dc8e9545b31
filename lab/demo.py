"""The main job on the sample city (`invoke demo`): every stage the toolkit has, end to end.

Each stage is a function of its own, so that one
command shows a new operator the whole flow on the lab.
"""

from __future__ import annotations

import re
from pathlib import Path

from invoke import Context, Exit
from rich.table import Table

from audit import collect as collector
from audit.baseline import tasks as baseline_tasks
from audit.report import write_reports
from audit.zombies import Judge
from inventory import export
from inventory.model import Inventory
from jiyue import ansible
from jiyue.cli import PROBLEMS, console, fail, load_inventory, out_dir
from jiyue.store import Store
from lab.baseline_seed import seed_baseline
from lab.history import seed_history
from lab.hosts import Lab, LabError
from lab.seed import seed as seed_lab
from migrations import tasks as migrate_tasks
from migrations.engine import Migrator
from migrations.model import Disposition, load_plan
from migrations.plan import default_plan_path
from network import tasks as network_tasks


def run(inventory: str | None, out: str | None, store: str | None = None) -> None:
    inv = load_inventory(inventory)
    console.rule("1. inventory")
    console.print(f"{len(inv.departments)} departments, {len(inv.systems)} systems, {len(inv.hosts)} hosts, "
                  f"{len(inv.devices)} network devices: valid")
    console.rule("2. lab: start the hosts, give them a past, start their services")
    lab, history = Lab(), Store(store)
    try:
        started = lab.up(inv)
        seeded = seed_lab(lab, inv)
    except LabError as exc:
        raise fail(str(exc)) from None
    console.print(f"{len(inv.hosts)} lab hosts up ({len(started)} started now)")
    for line in seeded.summary():
        console.print(line, highlight=False)
    days = seed_history(history, inv)
    console.print(f"store {history.url}: " + (f"{days} earlier daily runs written, marked seeded" if days
                                               else "seeded history already present"))
    console.rule("3. exports, and Ansible reaches every host")
    target = out_dir(out)
    for fmt in export.FORMATS:
        for path in export.write(inv, fmt, sorted(inv.hosts), sorted(inv.devices), target):
            console.print(f"wrote {path}")
    proc = ansible.run("ansible", "all", "-i", str(target / "inventory" / "ansible.yml"), "-m", "ping", "-o",
                       "-f", "50")
    ok = sorted(set(re.findall(r"^(\S+) \| SUCCESS", proc.stdout, re.M)))
    console.print(f"ansible ping: {len(ok)} of {len(inv.hosts)} hosts answered")
    console.rule("4. audit: collect, judge, write the archive")
    _, results = collector.collect(inv, sorted(inv.hosts), store=history)
    failed = [r.target for r in results if not r.ok]
    console.print(f"collected {len(results) - len(failed)} of {len(results)} hosts")
    judge = Judge(inv, history)
    verdicts = judge.judge_all()
    for verdict in (v for v in verdicts if v.verdict == "zombie"):
        console.print(f"zombie {verdict.system} {inv.systems[verdict.system].name}: criteria "
                      f"{', '.join(map(str, verdict.met))}")
    for path in write_reports(inv, judge, verdicts, target):
        console.print(f"wrote {path}")
    problems = migration_plan(inventory, store, target)
    problems += migration_run(inv, history, target)
    problems += network(inventory, store, target)
    baseline(lab, inventory, inv, store, target)
    unreachable = sorted(set(inv.hosts) - set(ok)) + failed
    if unreachable:
        console.print(proc.stdout[-3000:], markup=False, highlight=False)
        raise Exit(f"unreachable: {', '.join(unreachable)}. Check them with: invoke lab.status", code=PROBLEMS)
    if problems:
        raise Exit("; ".join(problems), code=PROBLEMS)
    console.rule("next")
    console.print(f"Open {target}/archive.html, {target}/network-push.html, {target}/baseline.html (or the .xlsx). "
                  "invoke --list shows every task; "
                  "invoke lab.down removes the lab.")


def migration_plan(inventory: str | None, store: str | None, target: Path) -> list[str]:
    """Plan the migration; systems awaiting cloud capacity are a problem to report, not a reason to stop: the
    planned waves can still move. Returns the problems."""
    console.rule("5. migration plan: dispositions, targets, waves, work orders")
    try:
        migrate_tasks.plan(Context(), inventory=inventory, store=store, out=str(target))
    except Exit as exc:
        if exc.code != PROBLEMS:
            raise
        return [exc.message or "the plan has problems (above): some cloud rehosts await capacity"]
    return []


def migration_run(inv: Inventory, history: Store, target: Path) -> list[str]:
    """Rehearse the next wave (check mode: nothing changes), then migrate it for real on the lab, then write
    the archive again: it shows the new locations. The next wave is the first with a cloud rehost not
    migrated yet (wave 1 on a fresh store; a migrated system is never moved twice). Returns the problems."""
    console.rule("6. migration: rehearse the next wave, then run it (--apply) on the lab")
    plan = load_plan(default_plan_path(inv), inv)
    rehearsal = Migrator(inv, plan, history, apply=False, console=console)
    rehosts = {w.number: [s for s in w.systems if plan.system(s).disposition == Disposition.cloud_rehost]
               for w in plan.waves}
    wave = next((n for n, systems in sorted(rehosts.items())
                 if any(rehearsal.migrated_by(s) is None for s in systems)), None)
    if wave is None:
        console.print("every wave's cloud rehosts are migrated already (invoke migrate.status)")
        return []
    console.print(f"wave {wave}: {', '.join(rehosts[wave])}; rehearsal first (check mode, nothing changes)")
    rehearsed = rehearsal.run_wave(wave)
    _outcomes(f"wave {wave}: rehearsal", rehearsed)
    bad = [f"{o.system} {o.result}: {o.message}" for o in rehearsed if not o.ok]
    if bad:
        return [f"the rehearsal of wave {wave} failed, nothing was migrated", *bad]
    migrated = Migrator(inv, plan, history, apply=True, console=console).run_wave(wave)
    _outcomes(f"wave {wave}: migrated (downtime = freeze to verified; client outage = freeze to the gateway "
              "on the target)", migrated)
    judge = Judge(inv, history)
    for path in write_reports(inv, judge, judge.judge_all(), target):
        console.print(f"wrote {path} (with the new locations)")
    return [f"{o.system} {o.result}: {o.message}" for o in migrated if not o.ok]


def _outcomes(title: str, outcomes: list) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("system", "result", "downtime s", "client outage s", "now on"):
        table.add_column(column)
    for o in outcomes:
        colour = "green" if o.ok else "red"
        table.add_row(o.system, f"[{colour}]{o.result}[/]", "" if o.downtime_s is None else f"{o.downtime_s:.1f}",
                      "" if o.outage_s is None else f"{o.outage_s:.1f}", o.message)
    console.print(table)


def network(inventory: str | None, store: str | None, target: Path) -> list[str]:
    """Plan the extranet addresses, render every device's config, push it to the lab's simulated devices
    (a canary first) and push again: the second push must find nothing to change. Returns the problems."""
    console.rule("7. network: extranet address plan, configs rendered, pushed (--apply), pushed again (no-op)")
    network_tasks.plan(Context(), inventory=inventory, out=str(target))
    network_tasks.render(Context(), inventory=inventory, out=str(target))
    try:
        network_tasks.push(Context(), inventory=inventory, apply=True, canary="1", store=store, out=str(target))
        console.print("[bold]second push (dry run): nothing may be left to change[/]")
        again = network_tasks.push(Context(), inventory=inventory, store=store, out=str(target))
    except Exit as exc:
        if exc.code != PROBLEMS:
            raise
        return [f"network push: {exc.message}"]
    left = [o.device for o in again.outcomes if o.lines]
    return [f"network: after the push, {', '.join(left)} still differ from the rendered config"] if left else []


def baseline(lab: Lab, inventory: str | None, inv: Inventory, store: str | None, target: Path) -> None:
    """Check every host and device against its level's baseline and write the reports. The lab seeds
    failures on purpose, so the check's exit 1 is the expected finding here (shown, not a problem of the
    demo); reachability was proven by the earlier stages."""
    console.rule("8. graded protection (等保 2.0): every host and device against its level")
    seed_baseline(lab, inv)
    try:
        baseline_tasks.check(Context(), inventory=inventory, store=store)
    except Exit as exc:
        if exc.code != PROBLEMS:
            raise
        console.print(f"[yellow]{exc.message}[/] (the lab seeds these on purpose: lab/baseline.yaml)")
    baseline_tasks.report(Context(), inventory=inventory, store=store, out=str(target))
