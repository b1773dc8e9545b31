"""`invoke audit.*`: collect facts, judge zombies, write the archive; `invoke audit` does all three."""

from __future__ import annotations

from pathlib import Path

from invoke import Exit, task
from rich.table import Table

from audit import collect as collector
from audit.zombies import ACTIVE, NO_DATA, SUSPECT, ZOMBIE, Judge, load_policy
from jiyue.cli import HELP, PROBLEMS, console, fail, limit_hosts, load_inventory, out_dir
from jiyue.store import Store

VERDICT_STYLE = {ZOMBIE: "bold red", SUSPECT: "yellow", ACTIVE: "green", NO_DATA: "dim"}


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
            "workers": "hosts collected at once (default 100)", "timeout": "seconds per host (default 60)",
            "sample": "seconds of CPU/network sampling per host (default 1)",
            "trust_on_first_use": "accept and record unknown host keys (changed keys are still refused)"})
def collect(c, inventory=None, limit=None, store=None, workers=100, timeout=60, sample=1, trust_on_first_use=False):
    """Collect facts from every host over SSH (read-only, one session each) and store the run."""
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit)
    options = collector.Options(workers=int(workers), timeout=float(timeout), sample_seconds=int(sample),
                                trust_on_first_use=trust_on_first_use)
    run_id, results = collector.collect(inv, hosts, options, store=Store(store))
    failed = [r for r in results if not r.ok]
    console.print(f"run {run_id}: {len(results) - len(failed)} of {len(results)} hosts collected")
    if failed:
        table = Table(title="hosts not collected", title_justify="left")
        for column in ("host", "reason", "detail"):
            table.add_column(column)
        for r in failed:
            table.add_row(r.target, r.error_kind or "error", r.error or "", style="red")
        console.print(table)
        console.print("Fix or start them (invoke lab.status in the lab), then collect again; the run is stored.")
        raise fail(f"{len(failed)} hosts could not be collected", code=PROBLEMS)


def _judge(inventory: str | None, store: str | None, policy: str | None):
    inv = load_inventory(inventory)
    try:
        pol = load_policy(Path(policy) if policy else None)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the policy file: {exc}") from None
    return inv, Judge(inv, Store(store), pol)


def _systems(inv, limit: str | None) -> list[str]:
    hosts = set(limit_hosts(inv, limit))
    return sorted(s.id for s in inv.systems.values() if not limit or hosts & set(s.hosts))


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
            "policy": "zombie policy YAML (default: audit/policy.yaml)"})
def zombies(c, inventory=None, limit=None, store=None, policy=None):
    """Judge every system by the five zombie criteria over the stored history; show verdicts."""
    inv, judge = _judge(inventory, store, policy)
    verdicts = judge.judge_all(_systems(inv, limit))
    table = Table(title="zombie verdicts (criteria: 1 detached, 2 replaceable, 3 idle, 4 maintenance, 5 small)",
                  title_justify="left")
    for column in ("system", "name", "verdict", "met", "why"):
        table.add_column(column)
    for v in verdicts:
        why = "; ".join(c.summary.split(" / ")[-1] for c in v.criteria if c.outcome in ("met", "near", "insufficient"))
        table.add_row(v.system, inv.systems[v.system].name, f"[{VERDICT_STYLE[v.verdict]}]{v.verdict}[/]",
                      ",".join(map(str, v.met)), why)
    console.print(table)
    counts = {k: sum(v.verdict == k for v in verdicts) for k in (ZOMBIE, SUSPECT, ACTIVE, NO_DATA)}
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()) + ". Evidence: invoke audit.report")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "out": HELP["out"],
            "policy": "zombie policy YAML (default: audit/policy.yaml)", "lang": "zh (default) or en",
            "format": "comma-separated: xlsx,csv,json,html (default: all)"})
def report(c, inventory=None, limit=None, store=None, out=None, policy=None, lang="zh", format="xlsx,csv,json,html"):
    """Write the archive (档案库), verdicts with evidence, integration and asset lists: Excel, CSV, JSON, HTML."""
    from audit.report import FORMATS, write_reports

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    inv, judge = _judge(inventory, store, policy)
    verdicts = judge.judge_all(_systems(inv, limit))
    for path in write_reports(inv, judge, verdicts, out_dir(out), lang=lang, formats=formats):
        console.print(f"wrote {path}")


@task(default=True, help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
                          "out": HELP["out"], "lang": "zh (default) or en"})
def audit(c, inventory=None, limit=None, store=None, out=None, lang="zh"):
    """Collect, then write every report (unreachable hosts are reported; the rest are still judged)."""
    try:
        collect(c, inventory=inventory, limit=limit, store=store)
        problems = False
    except Exit as exc:  # unreachable hosts: report on the others anyway, then exit 1
        if exc.code != PROBLEMS:
            raise
        problems = True
    report(c, inventory=inventory, limit=limit, store=store, out=out, lang=lang)
    zombies(c, inventory=inventory, limit=limit, store=store)
    if problems:
        raise fail("some hosts could not be collected (see above); the reports cover the others", code=PROBLEMS)
