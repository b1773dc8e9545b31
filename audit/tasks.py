"""`invoke audit.*`: collect facts, judge zombies, write the archive; `invoke audit` does all three.

Each task parses its options, calls audit/service.py (or the collector), prints, and picks the exit
code: 0 done, 1 hosts could not be collected, 2 bad input.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from invoke import task
from rich.markup import escape
from rich.table import Table

from audit import service
from audit.archive import load_asset_rules, room_list
from audit.collect import CollectOptions
from audit.collect import collect as collect_hosts
from audit.model import ACTIVE, NO_DATA, REPLATFORM, SUSPECT, VERDICT_ORDER, ZOMBIE, AuditResult
from audit.zombies import load_policy
from inventory.model import Classification, Inventory
from jiyue.cli import BAD_INPUT, HELP, PROBLEMS, console, fail, jump_override, limit_hosts, load_inventory, out_dir
from jiyue.runner import Result
from jiyue.store import Store

VERDICT_STYLE = {ZOMBIE: "bold red", REPLATFORM: "magenta", SUSPECT: "yellow", ACTIVE: "green", NO_DATA: "dim"}
POLICY_HELP = "zombie policy YAML (default: audit/policy.yaml)"
ASSETS_HELP = "asset disposal and machine-room rules YAML (default: audit/assets.yaml)"


def _policy(path: str | None) -> dict[str, Any]:
    try:
        return load_policy(Path(path) if path else None)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the policy file: {exc}") from None


def _systems(inv: Inventory, limit: str | None) -> list[str] | None:
    return service.systems_on(inv, limit_hosts(inv, limit)) if limit else None


def _formats(lang: str, format: str) -> tuple[str, ...]:
    from audit.report import FORMATS  # the writers (openpyxl, Jinja2) load only for a task that writes

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    return formats


def _print_collection(results: list[Result], run_id: int | None) -> None:
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


def _print_verdicts(result: AuditResult) -> None:
    inv, verdicts = result.inventory, result.verdicts
    table = Table(title="zombie verdicts (criteria: 1 detached, 2 replaceable, 3 idle, 4 maintenance, 5 small)",
                  title_justify="left")
    for column in ("system", "name", "verdict", "met", "why"):
        table.add_column(column)
    for v in verdicts:
        why = "; ".join(c.summary.split(" / ")[-1] for c in v.criteria if c.outcome in ("met", "near", "insufficient"))
        table.add_row(v.system, inv.systems[v.system].name, f"[{VERDICT_STYLE[v.verdict]}]{v.verdict}[/]",
                      ",".join(map(str, v.met)), why)
    console.print(table)
    counts = {k: sum(v.verdict == k for v in verdicts) for k in VERDICT_ORDER}
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()) + ". Evidence: invoke audit.report")
    classified = sorted(s.id for s in inv.systems.values() if s.classification == Classification.classified)
    if classified:
        console.print(f"not judged: {len(classified)} classified (涉密) systems ({', '.join(classified)}), under "
                      "分级保护 and handled by the confidential bureau; the archive lists their declared fields only")


def _write(result: AuditResult, out: str | None, formats: tuple[str, ...], lang: str) -> None:
    from audit.report import write_reports

    for path in write_reports(result, out_dir(out), formats, lang):
        console.print(f"wrote {path}")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
            "workers": "hosts collected at once (default 100)", "timeout": "seconds per host (default 60)",
            "sample": "seconds of CPU/network sampling per host (default 1)",
            "trust_on_first_use": "accept and record unknown host keys (changed keys are still refused)",
            "include_classified": HELP["include_classified"], "jump": HELP["jump"]})
def collect(c, inventory=None, limit=None, store=None, workers=100, timeout=60, sample=1, trust_on_first_use=False,
            include_classified=False, jump=None):
    """Collect facts from every host over SSH (read-only, one session each) and store the run; hosts of
    classified (涉密) systems are left out."""
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit, include_classified)
    options = CollectOptions(workers=int(workers), timeout=float(timeout), sample_seconds=int(sample),
                             trust_on_first_use=trust_on_first_use, include_classified=include_classified,
                             jump=jump_override(inv, jump))
    run_id, results = collect_hosts(inv, hosts, options, store=Store(store))
    _print_collection(results, run_id)
    failed = sum(not r.ok for r in results)
    if failed:
        raise fail(f"{failed} hosts could not be collected", code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "policy": POLICY_HELP})
def zombies(c, inventory=None, limit=None, store=None, policy=None):
    """Judge every system by the five zombie criteria over the stored history; show verdicts."""
    inv = load_inventory(inventory)
    pol = _policy(policy)
    _print_verdicts(service.judge(inv, Store(store), pol, _systems(inv, limit)))


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "out": HELP["out"],
            "policy": POLICY_HELP, "assets": ASSETS_HELP, "lang": "zh (default) or en",
            "format": "comma-separated: xlsx,csv,json,html (default: all)"})
def report(c, inventory=None, limit=None, store=None, out=None, policy=None, assets=None, lang="zh",
           format="xlsx,csv,json,html"):
    """Write the archive (档案库), verdicts with evidence, integration list, machine rooms and asset list:
    Excel, CSV, JSON, HTML."""
    formats = _formats(lang, format)
    inv = load_inventory(inventory)
    pol = _policy(policy)
    try:
        rules = load_asset_rules(Path(assets)) if assets else None
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"cannot read the asset rules file: {exc}") from None
    result = replace(service.judge(inv, Store(store), pol, _systems(inv, limit)), asset_rules=rules)
    _write(result, out, formats, lang)
    for room in room_list(inv, rules):
        for finding in room.findings:
            console.print(f"[yellow]machine room finding[/] {escape(finding)}")


def _step(text: str) -> int:
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    try:
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except (ValueError, IndexError):
        raise fail(f"--step: a duration such as 1d, 6h or 300s, got {text!r}") from None


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
            "from": "the monitoring source declared in the inventory: prometheus (default) or zabbix",
            "days": "days back from now (default: the judgement window, audit/policy.yaml)",
            "step": "one reading per host per step, averaged by the source over the step (default 1d)",
            "policy": POLICY_HELP})
def history(c, from_="prometheus", inventory=None, limit=None, store=None, days=None, step="1d", policy=None):
    """Import each host's CPU, memory and network history from the inventory's monitoring source (Prometheus'
    node_exporter metrics, or Zabbix's "Linux by Zabbix agent" items) into the store, marked with its source;
    show each host's coverage and gaps."""
    from audit.monitoring import MonitoringError

    inv = load_inventory(inventory)
    pol = _policy(policy)
    hosts = limit_hosts(inv, limit) if limit else None
    try:
        result = service.import_history(inv, Store(store), from_, hosts, int(days) if days else None,
                                        _step(step), policy=pol)
    except ValueError as exc:
        raise fail(str(exc)) from None
    except MonitoringError as exc:
        raise fail(str(exc), code=BAD_INPUT if exc.bad_input else PROBLEMS) from None
    table = Table(title=f"{result.source} {result.url}: {result.since:%Y-%m-%d} – {result.until:%Y-%m-%d}",
                  title_justify="left")
    for column in ("host", "days", "first", "last", "gaps"):
        table.add_column(column)
    need = int(pol["observation"]["min_days"])
    for host, cov in sorted(result.coverage.items()):
        gaps = ", ".join(f"{a:%Y-%m-%d}–{b:%Y-%m-%d}" for a, b in cov.gaps[:3]) + (" …" if len(cov.gaps) > 3 else "")
        table.add_row(host, str(cov.days), f"{cov.first:%Y-%m-%d}" if cov.first else "-",
                      f"{cov.last:%Y-%m-%d}" if cov.last else "-", gaps,
                      style="dim" if cov.days == 0 else "yellow" if cov.days < need else None)
    console.print(table)
    short = sum(0 < cov.days < need for cov in result.coverage.values())
    none = sum(cov.days == 0 for cov in result.coverage.values())
    seeded = f" ({result.seeded} seeded)" if result.seeded else ""
    console.print(f"run {result.run_id}: {result.readings} readings{seeded} of {len(result.coverage)} hosts; "
                  f"{short} with under {need} days (idle: insufficient data), {none} without any")


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "out": HELP["out"],
            "limit": "subnets to scan: subnet_source, source, 'subnet_c*', comma-separated (default: all declared)",
            "rate": "packets a second nmap may send, at most (default: audit/discover.yaml, 300)",
            "format": "comma-separated: xlsx,html,json (default: all)", "lang": "zh (default) or en",
            "trust_on_first_use": "accept and record the unknown host keys of undeclared hosts (check them first)",
            "no_collect": "scan only: do not collect the undeclared hosts or propose drafts",
            "timeout": "seconds per collected host (default 60)", "jump": HELP["jump"],
            "policy": "ports and rates YAML (default: audit/discover.yaml)"})
def discover(c, inventory=None, limit=None, rate=None, store=None, out=None, format="xlsx,html,json", lang="zh",
             trust_on_first_use=False, no_collect=False, timeout=60, jump=None, policy=None):
    """Scan the declared subnets with nmap for undeclared hosts (未登记主机) and declared hosts that do not answer;
    collect the undeclared Linux hosts that accept the city's credentials and propose draft records for
    inventory.import. Classified (涉密) hosts' addresses are never scanned."""
    from audit import discover as engine
    from audit.discover_report import FORMATS, kind_of, write_reports

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    inv = load_inventory(inventory)
    try:
        pol = engine.load_policy(Path(policy) if policy else None)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise fail(f"cannot read the discovery policy: {exc}") from None
    if rate is not None and (not str(rate).isdigit() or int(rate) < 1):
        raise fail(f"--rate: packets a second, a positive whole number (got {rate!r})")
    options = engine.DiscoverOptions(rate=int(rate) if rate else None, collect=not no_collect,
                                     trust_on_first_use=trust_on_first_use, timeout=float(timeout),
                                     jump=jump_override(inv, jump), policy=pol)
    try:
        result = engine.discover(inv, engine.select_subnets(inv, limit), options, Store(store))
    except engine.DiscoverError as exc:
        raise fail(str(exc)) from None
    if result.excluded:
        console.print(f"{len(result.excluded)} classified (涉密) host addresses excluded from the scan (nmap "
                      "--exclude): never probed")
    table = Table(title=f"未登记主机 undeclared hosts: {len(result.undeclared)} of {len(result.found)} addresses "
                        f"answering in {', '.join(result.networks)}", title_justify="left")
    for column in ("address", "name", "open ports", "ssh banner", "reverse name", "finding", "collection"):
        table.add_column(column)
    for f in result.undeclared:
        finding = {"windows": "probable Windows server: out of scope for collection", "linux": "SSH host",
                   "other": "no SSH: not collected"}[kind_of(f)]
        table.add_row(f.address, f.name, ",".join(map(str, f.ports)), escape(f.ssh_banner), escape(f.reverse_name),
                      finding, escape(f.collection + (f": {f.collection_error}" if f.collection_error else "")),
                      style="yellow" if f.windows else None)
    console.print(table)
    if result.silent:
        console.print(f"declared but not answering: {', '.join(f'{s.name} ({s.address})' for s in result.silent)}",
                      highlight=False)
    for d in result.drafts:
        console.print(f"draft system {d.id}: hosts {', '.join(d.hosts)}; listens "
                      f"{', '.join(f'{s.host}:{s.port}' for s in d.services) or '-'}; depends on "
                      f"{', '.join(d.depends_on) or '-'}", highlight=False)
    for note in (n for n in result.notes if n.startswith("behind_jump:")):
        _, subnet, via = note.split(":", 2)
        console.print(f"not scanned: subnet {subnet} is reached through jump host {via} (堡垒机); nmap runs on this "
                      "machine and cannot reach it: run the discovery from a node inside it", highlight=False)
    if "host_key" in result.notes:
        console.print("undeclared hosts' host keys are in no known_hosts, so they were refused: check them, then "
                      "run again with --trust-on-first-use to accept and record them")
    for path in write_reports(result, out_dir(out), formats, lang):
        console.print(f"wrote {path}")
    if result.draft_file:
        console.print(f"Preview the drafts: invoke inventory.import --from-discovery {result.draft_file}"
                      + (f" --inventory {inventory}" if inventory else ""))
    console.print(f"run {result.run_id}: {len(result.found)} addresses answering, {len(result.undeclared)} "
                  f"undeclared ({len(result.windows)} probable Windows), {len(result.silent)} declared not "
                  f"answering, {len(result.drafts)} draft systems, {result.seconds} s")
    if result.undeclared or result.silent:
        raise fail("undeclared hosts or silent declared hosts found (see above): declare them, or find out why",
                   code=PROBLEMS)


@task(default=True, help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"],
                          "out": HELP["out"], "lang": "zh (default) or en",
                          "include_classified": HELP["include_classified"]})
def audit(c, inventory=None, limit=None, store=None, out=None, lang="zh", include_classified=False):
    """Collect, then write every report (unreachable hosts are reported; the rest are still judged)."""
    formats = _formats(lang, "xlsx,csv,json,html")
    inv = load_inventory(inventory)
    selected = limit_hosts(inv, limit, include_classified)  # says which classified hosts it leaves out
    hosts = selected if limit or include_classified else None  # None: every system is judged
    result = service.collect_and_judge(inv, Store(store), hosts, CollectOptions(include_classified=include_classified))
    _print_collection(result.collection, result.run_id)
    _write(result, out, formats, lang)
    _print_verdicts(result)
    if result.not_collected:
        raise fail("some hosts could not be collected (see above); the reports cover the others", code=PROBLEMS)
