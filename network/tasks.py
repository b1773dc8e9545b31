"""`invoke network.*`: plan the extranet addresses, render each device's intended config.

`plan` writes network/plans/<inventory>.yaml (network/plan.py) and its Excel/HTML views; `render` writes
reports/network/<device>.cfg from the plan (network/render.py). Exit codes: 0 done, 2 bad input (an
invalid inventory, a plan that disagrees with it, a golden-network device named, a value a vendor
would refuse).
"""

from __future__ import annotations

from pathlib import Path

from invoke import task

from jiyue.cli import HELP, console, err, fail, load_inventory, out_dir

PLAN_HELP = "the address plan file (default: network/plans/<inventory directory name>.yaml)"


@task(help={"inventory": HELP["inventory"], "out": HELP["out"], "plan": PLAN_HELP, "lang": "zh (default) or en"})
def plan(c, inventory=None, out=None, plan=None, lang="zh"):
    """Plan the extranet addresses: a subnet per VLAN, an address per VLAN interface; never renumbers."""
    from network import plan as planner
    from network.report import write_reports

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    inv = load_inventory(inventory)
    try:
        result, path = planner.plan_inventory(inv, Path(plan) if plan else None)
    except planner.PlanningError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        raise fail(f"{len(exc.problems)} problem(s) in the address plan's input; nothing was written") from None
    console.print(f"wrote {path}", highlight=False)
    for line in planner.summary(result):
        console.print(line, highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]note:[/] {warning.partition(' / ')[2] or warning}", highlight=False)
    for written in write_reports(inv, result, out_dir(out), lang=lang):
        console.print(f"wrote {written}", highlight=False)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"],
            "out": HELP["out"] + " (configs go to OUT/network/)", "plan": PLAN_HELP,
            "baseline": "management baseline data (default: network/baseline.yaml)"})
def render(c, inventory=None, limit=None, out=None, plan=None, baseline=None):
    """Render each device's intended extranet config (OUT/network/<device>.cfg); golden networks are never touched."""
    from network.model import PlanError, load_plan
    from network.plan import default_plan_path
    from network.render import RenderError, load_baseline, select_devices, write_configs
    from network.render import render as render_all

    inv = load_inventory(inventory)
    path = Path(plan) if plan else default_plan_path(inv)
    if not path.exists():
        raise fail(f"no address plan at {path}: write it with `invoke network.plan` (or give --plan)")
    try:
        loaded = load_plan(path, inv)
        rules = load_baseline(Path(baseline) if baseline else None)
        selection = select_devices(inv, limit)
        for name, why in selection.skipped.items():
            err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
        if not selection.names:
            raise fail("no device left to render")
        rendered = render_all(inv, loaded, selection.names, rules)
    except PlanError as exc:
        raise fail(str(exc)) from None
    except RenderError as exc:
        raise fail(str(exc)) from None
    target = out_dir(out) / "network"
    for written in write_configs(rendered, target):
        r = rendered[written.stem]
        console.print(f"wrote {written} ({len(r.lines)} lines: {', '.join(r.features)})", highlight=False)
