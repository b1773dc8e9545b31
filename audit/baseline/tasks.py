"""`invoke baseline.*`: the graded-protection (等保 2.0) baseline of hosts and network devices: check, report,
remediate."""

from __future__ import annotations

from collections import Counter

from invoke import task
from rich.table import Table

from audit.baseline import model, service
from audit.baseline.model import FAIL, NEEDS_EVIDENCE, PASS, BaselineRun, Remediation
from jiyue.cli import HELP, PROBLEMS, console, fail, jump_override, limit_devices, limit_hosts, load_inventory, out_dir
from jiyue.store import Store

PROFILE_HELP = "profile: level2, level3 or a YAML file overriding catalog parameters (default: level3's)"


def _catalog_and_profile(profile: str | None) -> tuple[model.Catalog, model.Profile]:
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


def _print_run(run: BaselineRun) -> None:
    table = Table(title=f"baseline run {run.run_id} (profile {run.profile})", title_justify="left")
    for column in ("host / device", "level", "os / platform", PASS, FAIL, NEEDS_EVIDENCE, "failed checks"):
        table.add_column(column)
    for r in run.results:
        if not r.ok:
            table.add_row(r.target, str(run.levels[r.target]), "", "", "", "", f"[red]{r.error_kind}: {r.error}[/]")
            continue
        counts = Counter(row["status"] for row in r.value["rows"])
        table.add_row(r.target, str(r.value["level"]), r.value.get("os") or "", str(counts[PASS]),
                      f"[red]{counts[FAIL]}[/]" if counts[FAIL] else "0", str(counts[NEEDS_EVIDENCE]),
                      ", ".join(run.failed_checks(r)))
    console.print(table)
    skipped = [h for h in run.skipped() if h in run.inv.hosts]
    if skipped:
        console.print(f"{len(skipped)} hosts not checked: their system has no level 2 or 3 (use --level to check them)")
    skipped = [d for d in run.skipped() if d in run.inv.devices]
    if skipped:
        console.print(f"{len(skipped)} devices not checked ({', '.join(skipped)}): they carry no system of level 2 "
                      "or 3 (use --level to check them)")
    console.print(f"{len(run.checked())} hosts and devices checked, {len(run.with_failures())} with failed checks, "
                  f"{len(run.not_checked())} not reachable. Evidence and remediation: invoke baseline.report; "
                  "fixable items: invoke baseline.remediate")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
            "level": "judge every selected host at this level (default: its system's level in the inventory)",
            "profile": PROFILE_HELP, "workers": "hosts checked at once (default 100)",
            "timeout": "seconds per host (default 60)",
            "trust_on_first_use": "accept and record unknown host keys (changed keys are still refused)",
            "include_classified": HELP["include_classified"] + "; give --level too: 分保 has no 等保 level",
            "jump": HELP["jump"].replace("every host", "every host and device")})
def check(c, inventory=None, limit=None, store=None, level=None, profile=None, workers=100, timeout=60,
          trust_on_first_use=False, include_classified=False, jump=None):
    """Check every host and network device against its level's baseline over SSH (read-only, one session
    each); store the run. Hosts of classified (涉密) systems are under 分级保护, not 等保: left out."""
    lv = _level(level)
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit, include_classified)
    devices = limit_devices(inv, limit)
    catalog, prof = _catalog_and_profile(profile)
    options = model.CheckOptions(workers=int(workers), timeout=float(timeout), trust_on_first_use=trust_on_first_use,
                                 include_classified=include_classified, jump=jump_override(inv, jump))
    try:
        run = service.check(inv, hosts, devices, level=lv, profile=prof, catalog=catalog, options=options,
                            store=Store(store))
    except service.NothingToCheck as exc:
        raise fail(str(exc)) from None
    _print_run(run)
    if run.problems:
        raise fail(f"{len(run.with_failures())} hosts or devices fail their baseline, {len(run.not_checked())} "
                   "could not be checked", code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "out": HELP["out"], "lang": "zh (default) or en",
            "format": "comma-separated: xlsx,html,json,junit (default: all)",
            "run": "the run to report (default: the latest baseline run)"})
def report(c, inventory=None, store=None, out=None, lang="zh", format="xlsx,html,json,junit", run=None):
    """Write the latest baseline run as Excel (Chinese headers), HTML with charts, JSON and JUnit XML."""
    from audit.baseline.report import FORMATS, write_reports

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    inv = load_inventory(inventory)
    try:
        stored = service.load_run(inv, Store(store), int(run) if run else None)
    except service.NoRun as exc:
        raise fail(str(exc)) from None
    for path in write_reports(stored, out_dir(out), formats, lang):
        console.print(f"wrote {path}")


def _print_remediation(rem: Remediation) -> None:
    for host, fixes in sorted(rem.fixes.items()):
        console.print(f"{host}: {', '.join(fixes)}")
    for host, done in sorted(rem.hosts.items()):
        if done.changed:
            console.print(f"[bold]{host}[/]: {'changed' if rem.applied else 'would change'}: {'; '.join(done.tasks)}")
            if not rem.applied and done.diff:
                console.print(done.diff, markup=False, highlight=False)
    for line in rem.failures:
        console.print(f"[red]{line}[/]")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "apply": HELP["apply"],
            "level": "judge every selected host at this level (default: its system's level)", "profile": PROFILE_HELP,
            "jump": HELP["jump"]})
def remediate(c, inventory=None, limit=None, store=None, level=None, profile=None, apply=False, jump=None):
    """Fix the failed, fixable checks with playbooks/baseline_remediate.yml (--check --diff unless --apply)."""
    lv = _level(level)
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit)
    catalog, prof = _catalog_and_profile(profile)
    rem = service.remediate(inv, hosts, level=lv, profile=prof, catalog=catalog, store=Store(store), apply=apply,
                            jump=jump_override(inv, jump))
    if not rem.hosts:
        console.print("nothing to fix: no host has a failed check the playbook handles")
        return
    _print_remediation(rem)
    if not rem.ok:
        raise fail("remediation failed on some hosts (see above); nothing else was changed there", code=PROBLEMS)
    if not apply:
        console.print("dry run (--check --diff): nothing changed. Run again with --apply to change the hosts.")
        return
    after = rem.after.results if rem.after else []
    still = rem.still_failing
    total = sum(len(v) for v in rem.fixes.values())
    console.print(f"re-checked {len(after)} hosts: {total - sum(len(v) for v in still.values())} of {total} "
                  "fixable failures are gone")
    if still:
        raise fail(f"still failing after remediation: {still}", code=PROBLEMS)


@task(name="ssh-config", help={"inventory": HELP["inventory"], "limit": HELP["limit"], "out": HELP["out"],
                               "jump": HELP["jump"]})
def ssh_config(c, inventory=None, limit=None, out=None, jump=None):
    """Write the OpenSSH config of the selected hosts for the testinfra path (`pytest … --ssh-config=FILE`): each
    host's key and known_hosts, ProxyJump through its jump host (堡垒机), host keys checked; print the command."""
    from jiyue import sshconfig

    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit)
    path = sshconfig.write(inv, [inv.hosts[h] for h in hosts], out_dir(out) / sshconfig.SSH_CONFIG,
                           jump_override(inv, jump))
    console.print(f"wrote {path}")
    addresses = ",".join(f"ssh://{inv.ssh_for(inv.hosts[h]).address}" for h in hosts)
    console.print(f"pytest audit/baseline/testinfra --hosts={addresses} --ssh-config={path} --baseline-level 3 "
                  f"--baseline-inventory {inv.root}", markup=False, highlight=False, soft_wrap=True)
