"""`invoke baseline.*`: the graded-protection (等保 2.0) baseline of hosts and network devices: check, report,
remediate."""

from __future__ import annotations

from collections import Counter

from invoke import task
from rich.table import Table

from audit.baseline import devices as device_path
from audit.baseline import engine, model
from audit.baseline.checks import FAIL, NEEDS_EVIDENCE, PASS
from jiyue.cli import HELP, PROBLEMS, console, fail, limit_devices, limit_hosts, load_inventory, out_dir
from jiyue.store import Store

PROFILE_HELP = "profile: level2, level3 or a YAML file overriding catalog parameters (default: level3's)"


def _catalog_and_profile(profile: str | None, level: int | None) -> tuple[model.Catalog, model.Profile]:
    try:
        catalog = model.load_catalog()
        return catalog, model.load_profile(profile, catalog)
    except model.CatalogError as exc:
        raise fail(str(exc)) from None


def _level(level) -> int | None:
    if level in (None, ""):
        return None
    if str(level) not in ("2", "3"):
        raise fail(f"--level is 2 or 3, not {level!r}")
    return int(level)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
            "level": "judge every selected host at this level (default: its system's level in the inventory)",
            "profile": PROFILE_HELP, "workers": "hosts checked at once (default 100)",
            "timeout": "seconds per host (default 60)",
            "trust_on_first_use": "accept and record unknown host keys (changed keys are still refused)"})
def check(c, inventory=None, limit=None, store=None, level=None, profile=None, workers=100, timeout=60,
          trust_on_first_use=False):
    """Check every host and network device against its level's baseline over SSH (read-only, one session
    each); store the run."""
    lv = _level(level)
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit)
    devices = limit_devices(inv, limit)
    catalog, prof = _catalog_and_profile(profile, lv)
    levels = {**engine.host_levels(inv, hosts, lv), **device_path.device_levels(inv, devices, lv)}
    if not any(levels.values()):
        raise fail("none of the selected hosts or devices belongs to (or carries) a system of level 2 or 3: "
                   "give --level 2 or --level 3")
    options = engine.Options(workers=int(workers), timeout=float(timeout), trust_on_first_use=trust_on_first_use)
    run_id, results, _ = device_path.check(inv, hosts, devices, prof, catalog, lv, options, store=Store(store))
    table = Table(title=f"baseline run {run_id} (profile {prof.name})", title_justify="left")
    for column in ("host / device", "level", "os / platform", PASS, FAIL, NEEDS_EVIDENCE, "failed checks"):
        table.add_column(column)
    failed_hosts = 0
    for r in results:
        if not r.ok:
            table.add_row(r.target, str(levels[r.target]), "", "", "", "", f"[red]{r.error_kind}: {r.error}[/]")
            continue
        counts = Counter(row["status"] for row in r.value["rows"])
        failed = sorted({row["check"] for row in r.value["rows"] if row["status"] == FAIL})
        failed_hosts += bool(failed)
        table.add_row(r.target, str(r.value["level"]), r.value.get("os") or "", str(counts[PASS]),
                      f"[red]{counts[FAIL]}[/]" if counts[FAIL] else "0", str(counts[NEEDS_EVIDENCE]),
                      ", ".join(failed))
    console.print(table)
    skipped = [h for h, v in levels.items() if not v and h in inv.hosts]
    if skipped:
        console.print(f"{len(skipped)} hosts not checked: their system has no level 2 or 3 (use --level to check them)")
    skipped = [d for d, v in levels.items() if not v and d in inv.devices]
    if skipped:
        console.print(f"{len(skipped)} devices not checked ({', '.join(skipped)}): they carry no system of level 2 "
                      "or 3 (use --level to check them)")
    unreachable = [r for r in results if not r.ok]
    console.print(f"{len(results) - len(unreachable)} hosts and devices checked, {failed_hosts} with failed checks, "
                  f"{len(unreachable)} not reachable. Evidence and remediation: invoke baseline.report; "
                  "fixable items: invoke baseline.remediate")
    if failed_hosts or unreachable:
        raise fail(f"{failed_hosts} hosts or devices fail their baseline, {len(unreachable)} could not be checked",
                   code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "out": HELP["out"], "lang": "zh (default) or en",
            "format": "comma-separated: xlsx,html,json,junit (default: all)",
            "run": "the run to report (default: the latest baseline run)"})
def report(c, inventory=None, store=None, out=None, lang="zh", format="xlsx,html,json,junit", run=None):
    """Write the latest baseline run as Excel (Chinese headers), HTML with charts, JSON and JUnit XML."""
    from audit.baseline.report import FORMATS, BaselineReport, NoRun, write_reports

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    inv = load_inventory(inventory)
    catalog = model.load_catalog()
    try:
        rep = BaselineReport.latest(inv, catalog, Store(store), lang=lang, run_id=int(run) if run else None)
    except NoRun as exc:
        raise fail(str(exc)) from None
    for path in write_reports(rep, out_dir(out), formats):
        console.print(f"wrote {path}")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "apply": HELP["apply"],
            "level": "judge every selected host at this level (default: its system's level)", "profile": PROFILE_HELP})
def remediate(c, inventory=None, limit=None, store=None, level=None, profile=None, apply=False):
    """Fix the failed, fixable checks with playbooks/baseline_remediate.yml (--check --diff unless --apply)."""
    from audit.baseline import remediate as rem

    lv = _level(level)
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit)
    catalog, prof = _catalog_and_profile(profile, lv)
    db = Store(store)
    _, results, _ = engine.check(inv, hosts, prof, catalog, lv, store=db)
    fixes, families = rem.planned_fixes(results)
    if not fixes:
        console.print("nothing to fix: no host has a failed check the playbook handles")
        return
    for host, checks in sorted(fixes.items()):
        console.print(f"{host}: {', '.join(checks)}")
    outcome = rem.run(inv, fixes, families, prof, catalog, apply=apply)
    for host, tasks in sorted(outcome.changed.items()):
        console.print(f"[bold]{host}[/]: {'changed' if apply else 'would change'}: {'; '.join(tasks)}")
        if not apply:
            for diff in outcome.diffs.get(host, [])[:10]:
                console.print(diff, markup=False, highlight=False)
    for line in outcome.failures:
        console.print(f"[red]{line}[/]")
    if not outcome.ok:
        raise fail("remediation failed on some hosts (see above); nothing else was changed there", code=PROBLEMS)
    if not apply:
        console.print("dry run (--check --diff): nothing changed. Run again with --apply to change the hosts.")
        return
    _, after, _ = engine.check(inv, sorted(fixes), prof, catalog, lv, store=db)
    left = {r.target: sorted({row["check"] for row in r.value["rows"] if row["status"] == FAIL} & set(fixes[r.target]))
            for r in after if r.ok}
    still = {h: c for h, c in left.items() if c}
    total = sum(len(v) for v in fixes.values())
    console.print(f"re-checked {len(after)} hosts: {total - sum(len(v) for v in still.values())} of {total} "
                  "fixable failures are gone")
    if still:
        raise fail(f"still failing after remediation: {still}", code=PROBLEMS)
