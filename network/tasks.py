"""`invoke network.*`: plan the extranet addresses, render each device's intended config, diff, push.

Thin: each task parses its options, calls the domain's service (network/service.py), prints and picks
the exit code. `plan` writes network/plans/<inventory dir>-<digest>.yaml and its Excel/HTML views; `render` writes
reports/network/<device>.cfg from the plan. Exit codes: 0 done, 2 bad input (an invalid inventory, a
plan that disagrees with it, a golden-network device named, a value a vendor would refuse).

`diff` and `push` read each device's running configuration over SSH (jiyue.device), compute the
scoped remediation to the rendered config (network/diff.py) and, for `push --apply`, apply it with the
vendor's commit safety, verify, save, and roll back on failure (network/push.py). Their exit codes:
1 a device failed and is as it was before (rolled back and verified, or never changed: unreachable,
refused a login, not attempted); 3 (HALF_APPLIED) a device's rollback failed and it may be left
half-applied: the lines it differs from its backup by, and the `network.restore` command that brings it
back, are printed. `restore` brings one device back to a backup file (0 it equals the backup, 1 not).
"""

from __future__ import annotations

from pathlib import Path

from invoke import task
from rich.table import Table

from jiyue.cli import BAD_INPUT, HELP, PROBLEMS, console, err, fail, jump_override, load_inventory, out_dir
from jiyue.runner import DEFAULT_WORKERS
from jiyue.store import Store

HALF_APPLIED = 3  # exit code: a device may be left half-applied (a person must act), unlike 1
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
            "baseline": "management baseline data (default: network/baseline.yaml)",
            "force": "render even when the city fails the reachability check (network.verify)"})
def render(c, inventory=None, limit=None, out=None, plan=None, baseline=None, force=False):
    """Render each device's intended extranet config (OUT/network/<device>.cfg); golden networks are never touched.

    Refuses (exit 2) a plan whose city fails `network.verify`, naming the failures, unless --force."""
    from network import service

    inv = load_inventory(inventory)
    try:
        result = service.render(inv, out_dir(out) / "network", limit=limit, plan_path=Path(plan) if plan else None,
                                baseline=Path(baseline) if baseline else None, force=force)
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    for name, why in result.skipped.items():
        err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
    if not result.rendered:
        raise fail("no device left to render")
    for written in result.written:
        r = result.rendered[written.stem]
        console.print(f"wrote {written} ({len(r.lines)} lines: {', '.join(r.features)})", highlight=False)


@task(help={"inventory": HELP["inventory"], "plan": PLAN_HELP, "lang": "zh (default) or en",
            "format": "table (default) or json",
            "baseline": "management baseline data (default: network/baseline.yaml)"})
def verify(c, inventory=None, plan=None, lang="zh", format="table", baseline=None):
    """Prove the extranet VPN's reachability over the whole city's intended configs, both families: every
    department VLAN reaches the egress and the cloud, the way back exists, no management subnet is reachable.
    Exit 0 all hold, 1 a failure (printed with the device where forwarding stops and the missing hop), 2 bad input."""
    from network import reach_report, service

    if lang not in ("zh", "en"):
        raise fail("--lang is zh or en")
    if format not in reach_report.FORMATS:
        raise fail("--format is table or json")
    inv = load_inventory(inventory)
    try:
        result = service.verify(inv, Path(plan) if plan else None, Path(baseline) if baseline else None)
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    if format == "json":
        console.print_json(reach_report.as_json(result, lang))
    elif result.failures:
        console.print(reach_report.as_table(result, lang))
    if format == "table":
        console.print(reach_report.headline(result, lang), highlight=False)
    if not result.ok:
        raise fail(reach_report.headline(result, lang), code=PROBLEMS)


# --- diff and push -------------------------------------------------------------------------------------

INTENDED_HELP = ("directory of hand-written intended configs, <device>.cfg (default: render them from the "
                 "inventory and the address plan)")
TOFU_HELP = "accept and record unknown device host keys (changed keys are still refused)"
JUMP_HELP = HELP["jump"].replace("every host", "every device")
DEADLINE_HELP = ("seconds each device's reading, change and rollback may take (default and most: half its commit "
                 "timer, e.g. 300 for `commit trial 600`)")


def _options(*, apply=False, workers=None, canary=None, batch_size=None, max_fail_percent=None, backups=None,
             trust_on_first_use=False, deadline=None, jump=None):
    from network.push import DEFAULT_BACKUPS, PushOptions

    # Options without a typed default arrive as text, so a bad value is our message, not a traceback.
    try:
        percent = float(max_fail_percent) if max_fail_percent is not None else 0.0
        n_workers = int(workers) if workers is not None else DEFAULT_WORKERS
        seconds = float(deadline) if deadline is not None else None
    except ValueError:
        raise fail("--max-fail-percent, --workers and --deadline take numbers") from None
    if not 0 <= percent <= 100 or n_workers < 1 or (seconds is not None and seconds <= 0):
        raise fail("--max-fail-percent is 0-100, --workers at least 1 and --deadline more than 0")
    return PushOptions(apply=apply, workers=n_workers, canary=str(canary) if canary else None,
                       batch_size=str(batch_size) if batch_size else None, max_fail_percent=percent,
                       backups=Path(backups) if backups else DEFAULT_BACKUPS, trust_on_first_use=trust_on_first_use,
                       deadline=seconds, jump=jump)


def _show_diffs(run) -> None:
    for o in run.outcomes:
        if o.diff:
            console.rule(f"{o.device} ({o.platform}): {o.lines} line(s) to send", align="left")
            console.print("\n".join(o.diff), highlight=False, markup=False)


def _table(run, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("device", "platform", "batch", "outcome", "device now", "lines", "reason / rollback", "backup"):
        table.add_column(column)
    style = {"applied": "green", "unchanged": "green", "dry_run": "cyan", "failed": "red", "refused": "yellow",
             "not_attempted": "dim"}
    for o in run.outcomes:
        detail = "; ".join(x for x in (o.reason, o.rollback) if x)
        table.add_row(o.device, o.platform, "" if o.batch is None else str(o.batch + 1),
                      f"[{style.get(o.status, 'red')}]{o.status}[/]", _end_state(o), str(o.lines), detail,
                      o.backup or "", style="bold red" if o.restore else None)
    for name, why in run.skipped.items():
        table.add_row(name, "", "", "[yellow]skipped[/]", "unchanged", "0", why, "")
    console.print(table)


END_TEXT = {"changed": "changed as intended", "unchanged": "unchanged",
            "rolled_back": "rolled back to its backup (verified equal)",
            "rollback_failed": "ROLLBACK FAILED: may be left half-applied"}


def _end_state(o) -> str:
    return END_TEXT.get(o.end_state, o.end_state)


def exit_for(run) -> None:
    """Exit with what the devices really are: 0 as intended, 1 some not, but each as it was before (rolled back
    and verified, or never changed), HALF_APPLIED (3) when one may be half-applied (its lines and the restore
    command are printed)."""
    from network.push import APPLIED, DRY_RUN, REFUSED, ROLLBACK_FAILED, UNCHANGED

    bad = [o for o in run.outcomes if o.status not in (APPLIED, UNCHANGED, DRY_RUN, REFUSED)]
    left = [o for o in bad if o.end_state == ROLLBACK_FAILED]
    for o in left:
        err.rule(f"[bold red]{o.device}: ROLLBACK FAILED[/] ({o.platform})", align="left")
        err.print(o.rollback or "", highlight=False, markup=False, soft_wrap=True)
        if o.differs:
            err.print("it differs from its backup by ('-' only in the backup, '+' only on the device):",
                      highlight=False)
            err.print("\n".join(o.differs), highlight=False, markup=False)
        for note in o.notes:
            err.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
        err.print(f"to restore it once it answers (without --apply it only shows the lines): {o.restore}",
                  highlight=False, markup=False, soft_wrap=True)
    if not bad:
        return
    summary = (f"{len(bad)} of {len(run.outcomes)} devices did not reach their intended config: "
               + ", ".join(f"{o.device} ({o.kind or o.status}: {_end_state(o)})" for o in bad) + ".")
    if left:
        raise fail(f"{summary} {len(left)} device(s) may be LEFT HALF-APPLIED: "
                   f"{', '.join(o.device for o in left)}; restore them with the commands above.", code=HALF_APPLIED)
    raise fail(f"{summary} Every one of them is as it was before the push; fix the cause and push again.",
               code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "workers": "devices read at once (default 100)",
            "plan": PLAN_HELP, "intended": INTENDED_HELP, "trust_on_first_use": TOFU_HELP, "jump": JUMP_HELP})
def diff(c, inventory=None, limit=None, workers=None, plan=None, intended=None, trust_on_first_use=False, jump=None):
    """Show, per device, the lines a push would send (read-only: the running config against the rendered one)."""
    from network import service

    inv = load_inventory(inventory)
    options = _options(workers=workers, trust_on_first_use=trust_on_first_use, jump=jump_override(inv, jump))
    try:
        run = service.diff(inv, limit, options=options, intended_dir=Path(intended) if intended else None,
                           plan_path=Path(plan) if plan else None)
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    _show_diffs(run)
    _table(run, "diff (read-only)")
    exit_for(run)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "apply": HELP["apply"], "deadline": DEADLINE_HELP,
            "canary": "push these first and stop if any fails: a number of devices, or a --limit pattern",
            "batch_size": "then push in batches of N devices (or P%) (default: all at once)",
            "max_fail_percent": "stop after a batch whose failed share is more than this percentage (default 0: "
                                "any failure stops the later batches; Ansible's max_fail_percentage)",
            "workers": "devices pushed at once (default 100)", "backups": "where running configs are saved "
            "before a change (default: state/network-backups/<device>/<UTC time>.cfg)",
            "out": HELP["out"], "store": HELP["store"], "lang": "zh (default) or en",
            "format": "comma-separated: json,html,xlsx (default: json,html)", "plan": PLAN_HELP,
            "intended": INTENDED_HELP, "trust_on_first_use": TOFU_HELP, "jump": JUMP_HELP})
def push(c, inventory=None, limit=None, apply=False, canary=None, batch_size=None, max_fail_percent=None,
         workers=None, backups=None, out=None, store=None, lang="zh", format="json,html", plan=None,
         intended=None, trust_on_first_use=False, deadline=None, jump=None):
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
                       max_fail_percent=max_fail_percent, backups=backups, trust_on_first_use=trust_on_first_use,
                       deadline=deadline, jump=jump_override(inv, jump))
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
    exit_for(run)
    return run


@task(help={"inventory": HELP["inventory"], "device": "the device to restore", "apply": HELP["apply"],
            "backup": "the backup file (default: the device's newest under --backups)",
            "backups": "where push saved the backups (default: state/network-backups)",
            "trust_on_first_use": TOFU_HELP, "jump": JUMP_HELP})
def restore(c, device=None, inventory=None, backup=None, backups=None, apply=False, trust_on_first_use=False,
            jump=None):
    """Bring one device back to a backup push took: show the lines it differs by; --apply restores and verifies."""
    from network import service

    if not device:
        raise fail("--device names the device to restore")
    inv = load_inventory(inventory)
    options = _options(apply=apply, backups=backups, trust_on_first_use=trust_on_first_use,
                       jump=jump_override(inv, jump))
    try:
        outcome, lines = service.restore(inv, device, Path(backup) if backup else None, options=options)
    except service.NetworkInputError as exc:
        raise fail(str(exc)) from None
    except service.DeviceError as exc:
        raise fail(f"{device}: {exc}", code=PROBLEMS) from None
    if outcome.differs:
        console.rule(f"{device} ({outcome.platform}) differs from {outcome.backup} by ('-' only in the backup, "
                     "'+' only on the device)", align="left")
        console.print("\n".join(outcome.differs), highlight=False, markup=False)
    if lines and not apply:
        console.rule(f"the {len(lines)} line(s) --apply would send", align="left")
        console.print("\n".join(lines), highlight=False, markup=False)
        return
    console.print(f"{device}: {outcome.rollback}", highlight=False, markup=False)
    if outcome.end_state == "rollback_failed":
        raise fail(f"{device} still differs from its backup: run the command again once it answers", code=PROBLEMS)
