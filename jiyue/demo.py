"""The main job on the sample city (`invoke demo`): every stage the toolkit has, end to end.

Later stages (audit, migration plan, network, baseline) join here as they arrive, so that one
command shows a new operator the whole flow on the lab.
"""

from __future__ import annotations

import re

from invoke import Exit

from inventory import export
from jiyue import ansible
from jiyue.cli import PROBLEMS, console, fail, load_inventory, out_dir
from tests.lab.hosts import Lab, LabError


def run(inventory: str | None, out: str | None) -> None:
    inv = load_inventory(inventory)
    console.rule("1. inventory")
    console.print(f"{len(inv.departments)} departments, {len(inv.systems)} systems, {len(inv.hosts)} hosts, "
                  f"{len(inv.devices)} network devices: valid")
    console.rule("2. lab")
    try:
        started = Lab().up(inv)
    except LabError as exc:
        raise fail(str(exc)) from None
    console.print(f"{len(inv.hosts)} lab hosts up ({len(started)} started now)")
    console.rule("3. exports")
    target = out_dir(out)
    for fmt in export.FORMATS:
        for path in export.write(inv, fmt, sorted(inv.hosts), sorted(inv.devices), target):
            console.print(f"wrote {path}")
    console.rule("4. Ansible reaches every host")
    proc = ansible.run("ansible", "all", "-i", str(target / "inventory" / "ansible.yml"), "-m", "ping", "-o",
                       "-f", "50")
    ok = sorted(set(re.findall(r"^(\S+) \| SUCCESS", proc.stdout, re.M)))
    bad = sorted(set(inv.hosts) - set(ok))
    console.print(f"ansible ping: {len(ok)} of {len(inv.hosts)} hosts answered")
    if bad:
        console.print(proc.stdout[-3000:], markup=False, highlight=False)
        raise Exit(f"unreachable: {', '.join(bad)}. Check them with: invoke lab.status", code=PROBLEMS)
    console.rule("next")
    console.print("invoke --list shows every task; invoke lab.down removes the lab.")
