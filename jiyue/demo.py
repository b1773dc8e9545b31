"""The main job on the sample city (`invoke demo`): every stage the toolkit has, end to end.

Later stages (the migration run, network, baseline) join here as they arrive, so that one command
shows a new operator the whole flow on the lab.
"""

from __future__ import annotations

import re

from invoke import Context, Exit

from audit import collect as collector
from audit.baseline import engine as baseline_engine
from audit.baseline import model as baseline_model
from audit.baseline.report import BaselineReport
from audit.baseline.report import write_reports as write_baseline_reports
from audit.report import write_reports
from audit.zombies import Judge
from inventory import export
from jiyue import ansible
from jiyue.cli import PROBLEMS, console, fail, load_inventory, out_dir
from jiyue.store import Store
from migrations import tasks as migrate_tasks
from tests.lab.baseline_seed import seed_baseline
from tests.lab.history import seed_history
from tests.lab.hosts import Lab, LabError
from tests.lab.seed import seed as seed_lab


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
    console.rule("5. migration plan: dispositions, targets, waves, work orders")
    migrate_tasks.plan(Context(), inventory=inventory, store=store, out=str(target))
    console.rule("6. graded protection (等保 2.0): every host against its system's level")
    seed_baseline(lab, inv)
    catalog = baseline_model.load_catalog()
    _, checked, _ = baseline_engine.check(inv, sorted(inv.hosts), baseline_model.load_profile(None, catalog), catalog,
                                          store=history)
    failing = {r.target: sorted({row["check"] for row in r.value["rows"] if row["status"] == "fail"})
               for r in checked if r.ok}
    console.print(f"checked {len(checked)} hosts of level-2 and level-3 systems; "
                  f"{sum(bool(v) for v in failing.values())} fail some check (the lab seeds them on purpose)")
    for path in write_baseline_reports(BaselineReport.latest(inv, catalog, history), target):
        console.print(f"wrote {path}")
    unreachable = sorted(set(inv.hosts) - set(ok)) + failed
    if unreachable:
        console.print(proc.stdout[-3000:], markup=False, highlight=False)
        raise Exit(f"unreachable: {', '.join(unreachable)}. Check them with: invoke lab.status", code=PROBLEMS)
    console.rule("next")
    console.print(f"Open {target}/archive.html, {target}/baseline.html or their .xlsx. invoke --list shows every task; "
                  "invoke lab.down removes the lab.")
