"""`invoke network.*`: plan the extranet addresses, render each device's intended config, diff, push.

Thin: each task parses its options, calls the domain's service (network/service.py), prints and picks
the exit code. `plan` writes network/plans/<inventory dir>-<digest>.yaml and its Excel/HTML views; `render` writes
reports/network/<device>.cfg from the plan. Exit codes: 0 done, 2 bad input (an invalid inventory, a
plan that disagrees with it, a golden-network device named, a value a vendor would refuse).

`diff` and `push` read each device's running configuration over SSH (jiyue.device), compute the
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
from jiyue.store import Store

PLAN_HELP = "the address plan file (default: network/plans/<inventory directory name>-<digest>.yaml)"


@task(help={"inventory": HELP["inventory"], "out": HELP["out"], "plan": PLAN_HELP, "lang": "zh (default) or en"})
def plan(c, inventory=None, out=None, plan=None, lang="zh"):
    """Plan the extranet addresses: a subnet per VLAN, an address per VLAN interface; never renumbers."""
    from network import service
    from network.plan import PlanningError, summary
    from network.report import write_reports

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    inv = load_inventory(inventory)
    try:
        result = service.plan(inv, Path(plan) if plan else None)
    except PlanningError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        raise fail(f"{len(exc.problems)} problem(s) in the address plan's input; nothing was written") from None
    console.print(f"wrote {result.path}", highlight=False)
    for line in summary(result.plan):
        console.print(line, highlight=False)
    for warning in result.plan.warnings:
        console.print(f"[yellow]note:[/] {warning.partition(' / ')[2] or warning}", highlight=False)
    for written in write_reports(result, out_dir(out), lang=lang):
        console.print(f"wrote {written}", highlight=False)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"],
            "out": HELP["out"] + " (configs go to OUT/network/)", "plan": PLAN_HELP,
            "baseline": "management baseline data (default: network/baseline.yaml)"})
def render(c, inventory=None, limit=None, out=None, plan=None, baseline=None):
    """Render each device's intended extranet config (OUT/network/<device>.cfg); golden networks are never touched."""
    from network import service

    inv = load_inventory(inventory)
    try:
        result = service.render(inv, out_dir(out) / "network", limit=limit, plan_path=Path(plan) if plan else None,
                                baseline=Path(baseline) if baseline else None)
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    for name, why in result.skipped.items():
        err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
    if not result.rendered:
        raise fail("no device left to render")
    for written in result.written:
        r = result.rendered[written.stem]
        console.print(f"wrote {written} ({len(r.lines)} lines: {', '.join(r.features)})", highlight=False)


# --- diff and push -------------------------------------------------------------------------------------

INTENDED_HELP = ("directory of hand-written intended configs, <device>.cfg (default: render them from the "
                 "inventory and the address plan)")
TOFU_HELP = "accept and record unknown device host keys (changed keys are still refused)"


def _options(*, apply=False, workers=None, canary=None, batch_size=None, max_fail_percent=None, backups=None,
             trust_on_first_use=False):
    from network.push import DEFAULT_BACKUPS, PushOptions

    # Options without a typed default arrive as text, so a bad value is our message, not a traceback.
    try:
        percent = float(max_fail_percent) if max_fail_percent is not None else 0.0
        n_workers = int(workers) if workers is not None else DEFAULT_WORKERS
    except ValueError:
        raise fail("--max-fail-percent and --workers take numbers") from None
    if not 0 <= percent <= 100 or n_workers < 1:
        raise fail("--max-fail-percent is 0-100 and --workers at least 1")
    return PushOptions(apply=apply, workers=n_workers, canary=str(canary) if canary else None,
                       batch_size=str(batch_size) if batch_size else None, max_fail_percent=percent,
                       backups=Path(backups) if backups else DEFAULT_BACKUPS, trust_on_first_use=trust_on_first_use)


def _show_diffs(run) -> None:
    for o in run.outcomes:
        if o.diff:
            console.rule(f"{o.device} ({o.platform}): {o.lines} line(s) to send", align="left")
            console.print("\n".join(o.diff), highlight=False, markup=False)


def _table(run, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("device", "platform", "batch", "outcome", "lines", "reason / rollback", "backup"):
        table.add_column(column)
    style = {"applied": "green", "unchanged": "green", "dry_run": "cyan", "failed": "red", "refused": "yellow",
             "not_attempted": "dim"}
    for o in run.outcomes:
        detail = "; ".join(x for x in (o.reason, o.rollback) if x)
        table.add_row(o.device, o.platform, "" if o.batch is None else str(o.batch + 1),
                      f"[{style.get(o.status, 'red')}]{o.status}[/]", str(o.lines), detail, o.backup or "")
    for name, why in run.skipped.items():
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
    from network import service

    inv = load_inventory(inventory)
    options = _options(workers=workers, trust_on_first_use=trust_on_first_use)
    try:
        run = service.diff(inv, limit, options=options, intended_dir=Path(intended) if intended else None,
                           plan_path=Path(plan) if plan else None)
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    _show_diffs(run)
    _table(run, "diff (read-only)")
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
    from network import service
    from network.push_report import FORMATS
    from network.report import write_reports

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    formats = tuple(f.strip() for f in str(format).split(",") if f.strip())
    if not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--format takes {', '.join(FORMATS)}", code=BAD_INPUT)
    inv = load_inventory(inventory)
    options = _options(apply=apply, workers=workers, canary=canary, batch_size=batch_size,
                       max_fail_percent=max_fail_percent, backups=backups, trust_on_first_use=trust_on_first_use)
    try:
        run = service.push(inv, limit, options=options, intended_dir=Path(intended) if intended else None,
                           plan_path=Path(plan) if plan else None, store=Store(store))
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    if not apply:
        _show_diffs(run)
    _table(run, "push" if apply else "push: dry run (nothing changed; --apply to change devices)")
    for path in write_reports(run, out_dir(out), formats, lang):
        console.print(f"wrote {path}")
    if run.staged.stopped_after is not None:
        err.print(f"[bold red]the rollout stopped after batch {run.staged.stopped_after + 1}[/]: failures passed "
                  f"--max-fail-percent {run.options.max_fail_percent:g}; {len(run.staged.not_attempted)} devices were "
                  "not attempted")
    _exit(run)
    return run
