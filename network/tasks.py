"""`invoke network.*`: plan the extranet addresses, render each device's intended config.

`plan` writes network/plans/<inventory>.yaml (network/plan.py) and its Excel/HTML views; `render` writes
reports/network/<device>.cfg from the plan (network/render.py). Exit codes: 0 done, 2 bad input (an
invalid inventory, a plan that disagrees with it, a golden-network device named, a value a vendor
would refuse).

`diff` and `push` read each device's running configuration over SSH (network/session.py), compute the
scoped remediation to the rendered config (network/diff.py) and, for `push --apply`, apply it with the
vendor's commit safety, verify, save, and roll back on failure (network/push.py). Their exit code 1
means a device failed (rolled back), was unreachable or was not attempted.
"""

from __future__ import annotations

from pathlib import Path

from invoke import task
from rich.table import Table

from jiyue.cli import BAD_INPUT, HELP, PROBLEMS, console, err, fail, load_inventory, out_dir
from jiyue.runner import DEFAULT_WORKERS
from jiyue.store import NETWORK_PUSH, Store

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


# --- diff and push -------------------------------------------------------------------------------------

INTENDED_HELP = ("directory of hand-written intended configs, <device>.cfg (default: render them from the "
                 "inventory and the address plan)")
TOFU_HELP = "accept and record unknown device host keys (changed keys are still refused)"


def _intended(inv, limit: str | None, intended: str | None, plan: str | None = None
              ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each selected device's intended lines, and the devices left out with why (golden networks)."""
    from network.render import RenderError, render, select_devices

    try:
        selection = select_devices(inv, limit)
    except RenderError as exc:
        raise fail(str(exc)) from None
    if intended:
        folder = Path(intended)
        configs = {}
        for name in selection.names:
            path = folder / f"{name}.cfg"
            if path.exists():
                configs[name] = path.read_text(encoding="utf-8").splitlines()
        if not configs:
            raise fail(f"{folder} holds no <device>.cfg for the selected devices")
        return configs, selection.skipped
    from network.model import PlanError, load_plan
    from network.plan import default_plan_path

    path = Path(plan) if plan else default_plan_path(inv)
    if not path.exists():
        raise fail(f"no address plan at {path}: make it with `invoke network.plan`, then run this again")
    try:
        rendered = render(inv, load_plan(path, inv), selection.names)
    except (PlanError, RenderError) as exc:
        raise fail(f"cannot render the intended configs: {exc}") from None
    return {name: r.lines for name, r in rendered.items()}, selection.skipped


def _pusher(inv, configs, *, apply=False, workers=None, canary=None, batch_size=None,
            max_fail_percent=None, backups=None, trust_on_first_use=False):
    from network.push import DEFAULT_BACKUPS, Options, Pusher

    # Options without a typed default arrive as text, so a bad value is our message, not a traceback.
    try:
        percent = float(max_fail_percent) if max_fail_percent is not None else 0.0
        n_workers = int(workers) if workers is not None else DEFAULT_WORKERS
    except ValueError:
        raise fail("--max-fail-percent and --workers take numbers") from None
    if not 0 <= percent <= 100 or n_workers < 1:
        raise fail("--max-fail-percent is 0-100 and --workers at least 1")
    options = Options(apply=apply, workers=n_workers, canary=str(canary) if canary else None,
                      batch_size=str(batch_size) if batch_size else None, max_fail_percent=percent,
                      backups=Path(backups) if backups else DEFAULT_BACKUPS, trust_on_first_use=trust_on_first_use)
    return Pusher(inv, configs, options)


def _show_diffs(run) -> None:
    for o in run.outcomes:
        if o.diff:
            console.rule(f"{o.device} ({o.platform}): {o.lines} line(s) to send", align="left")
            console.print("\n".join(o.diff), highlight=False, markup=False)


def _table(run, skipped: dict[str, str], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("device", "platform", "batch", "outcome", "lines", "reason / rollback", "backup"):
        table.add_column(column)
    style = {"applied": "green", "unchanged": "green", "dry_run": "cyan", "failed": "red", "refused": "yellow",
             "not_attempted": "dim"}
    for o in run.outcomes:
        detail = "; ".join(x for x in (o.reason, o.rollback) if x)
        table.add_row(o.device, o.platform, "" if o.batch is None else str(o.batch + 1),
                      f"[{style.get(o.status, 'red')}]{o.status}[/]", str(o.lines), detail, o.backup or "")
    for name, why in skipped.items():
        table.add_row(name, "", "", "[yellow]skipped[/]", "0", why, "")
    console.print(table)


def _exit(run) -> None:
    from network.push import APPLIED, DRY_RUN, REFUSED, UNCHANGED

    bad = [o for o in run.outcomes if o.status not in (APPLIED, UNCHANGED, DRY_RUN, REFUSED)]
    if bad:
        raise fail(f"{len(bad)} of {len(run.outcomes)} devices did not reach their intended config: "
                   + ", ".join(f"{o.device} ({o.kind or o.status})" for o in bad)
                   + ". Failed devices were rolled back to their backup; fix the cause and push again.",
                   code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "workers": "devices read at once (default 100)",
            "plan": PLAN_HELP, "intended": INTENDED_HELP, "trust_on_first_use": TOFU_HELP})
def diff(c, inventory=None, limit=None, workers=None, plan=None, intended=None, trust_on_first_use=False):
    """Show, per device, the lines a push would send (read-only: the running config against the rendered one)."""
    inv = load_inventory(inventory)
    configs, skipped = _intended(inv, limit, intended, plan)
    run = _pusher(inv, configs, workers=workers, trust_on_first_use=trust_on_first_use).run(list(configs), "diff")
    _show_diffs(run)
    _table(run, skipped, "diff (read-only)")
    _exit(run)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "apply": HELP["apply"],
            "canary": "push these first and stop if any fails: a number of devices, or a --limit pattern",
            "batch_size": "then push in batches of N devices (or P%) (default: all at once)",
            "max_fail_percent": "stop after a batch whose failed share is more than this percentage (default 0: "
                                "any failure stops the later batches; Ansible's max_fail_percentage)",
            "workers": "devices pushed at once (default 100)", "backups": "where running configs are saved "
            "before a change (default: state/network-backups/<device>/<UTC time>.cfg)",
            "out": HELP["out"], "store": HELP["store"], "lang": "zh (default) or en",
            "format": "comma-separated: json,html,xlsx (default: json,html)", "plan": PLAN_HELP,
            "intended": INTENDED_HELP, "trust_on_first_use": TOFU_HELP})
def push(c, inventory=None, limit=None, apply=False, canary=None, batch_size=None, max_fail_percent=None,
         workers=None, backups=None, out=None, store=None, lang="zh", format="json,html", plan=None,
         intended=None, trust_on_first_use=False):
    """Push the rendered configs: dry run unless --apply; backup, commit safety, verify, save, roll back on failure."""
    from network.push import results_for_store
    from network.push_report import FORMATS, write_reports

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    formats = tuple(f.strip() for f in str(format).split(",") if f.strip())
    if not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--format takes {', '.join(FORMATS)}", code=BAD_INPUT)
    inv = load_inventory(inventory)
    configs, skipped = _intended(inv, limit, intended, plan)
    pusher = _pusher(inv, configs, apply=apply, workers=workers, canary=canary, batch_size=batch_size,
                     max_fail_percent=max_fail_percent, backups=backups, trust_on_first_use=trust_on_first_use)
    try:
        pusher.batches(list(configs))
    except ValueError as exc:
        raise fail(str(exc)) from None
    run = pusher.run(list(configs))
    run.run_id = Store(store).record(NETWORK_PUSH, results_for_store(run), inventory=str(inv.root),
                                     params={"apply": apply, "limit": limit, "canary": canary,
                                             "batch_size": batch_size, "max_fail_percent": max_fail_percent,
                                             "workers": run.options.workers}, started=run.started)
    if not apply:
        _show_diffs(run)
    _table(run, skipped, "push" if apply else "push: dry run (nothing changed; --apply to change devices)")
    for path in write_reports(run, out_dir(out), inventory=str(inv.root), lang=lang, formats=formats):
        console.print(f"wrote {path}")
    if run.staged.stopped_after is not None:
        err.print(f"[bold red]the rollout stopped after batch {run.staged.stopped_after + 1}[/]: failures passed "
                  f"--max-fail-percent {run.options.max_fail_percent:g}; {len(run.staged.not_attempted)} devices were "
                  "not attempted")
    _exit(run)
    return run
