"""`invoke lines.*`: plan the leased lines' cancellation and the private networks' joins, probe the egress.

Thin: parse the options, call lines/service.py, print, pick the exit code (0 done, 1 findings or hosts not
probed, 2 bad input).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from invoke import task
from rich.markup import escape
from rich.table import Table

from inventory.groups import ClassifiedRefused
from jiyue import i18n
from jiyue.cli import HELP, PROBLEMS, console, fail, jump_override, limit_hosts, load_inventory, out_dir
from jiyue.store import Store
from lines import service
from lines.model import EgressResult, LinesPlan

PLAN_HELP = {"plan": "the migration plan file (default: migrations/plans/<inventory>-<digest>.yaml, if any)",
             "network_plan": "the network address plan file (default: network/plans/<inventory>-<digest>.yaml, if any)",
             "planning": "the planning file whose blackouts apply (default: the one the migration plan names)",
             "policy": "lines policy YAML (default: lines/policy.yaml)",
             "today": "judge as of this date, YYYY-MM-DD (default: today, Beijing time)",
             "lang": "zh (default) or en", "format": "comma-separated: xlsx,html,json (default: all)"}


def _formats(lang: str, format: str) -> tuple[str, ...]:
    from lines.report import FORMATS

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    return formats


def _today(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise fail(f"--today: a date as YYYY-MM-DD, got {text!r}") from None


def _plan(inv, plan, network_plan, planning, policy, today) -> LinesPlan:
    try:
        src = service.sources(inv, Path(plan) if plan else None, Path(network_plan) if network_plan else None,
                              Path(planning) if planning else None)
        return service.plan_lines(inv, src, Path(policy) if policy else None, _today(today))
    except service.LinesInputError as exc:
        raise fail(str(exc)) from None


def _print_plan(result: LinesPlan, lang: str) -> None:
    table = Table(title="leased lines (互联网专线)", title_justify="left")
    for column in ("line", "department", "status", "date", "annual cost", "reason"):
        table.add_column(column)
    for c in result.cancellations:
        table.add_row(c.line, c.department, str(c.status), str(c.date or ""), f"{c.annual_cost:,.0f}",
                      escape(i18n.bilingual(c.reason, lang)))
    console.print(table)
    table = Table(title="business private networks (业务专网)", title_justify="left")
    for column in ("network", "department", "joins", "where", "reason"):
        table.add_column(column)
    for j in result.joins:
        table.add_row(j.network, j.department, "yes" if j.joins else "no",
                      f"{j.device} {j.interface}" if j.device else "", escape(i18n.bilingual(j.reason, lang)))
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]{escape(w)}[/]")


def _write(result: LinesPlan | EgressResult, out: str | None, formats: tuple[str, ...], lang: str) -> None:
    from lines.report import write_reports

    for path in write_reports(result, out_dir(out), formats, lang):
        console.print(f"wrote {path}")


@task(help={"inventory": HELP["inventory"], "out": HELP["out"], **PLAN_HELP})
def plan(c, inventory=None, plan=None, network_plan=None, planning=None, policy=None, today=None, out=None,
         lang="zh", format="xlsx,html,json"):
    """Date each leased line's cancellation (after the last system it serves has moved, outside blackouts) and
    show how each qualifying private network joins the extranet; write leased-lines.{xlsx,html,json}."""
    formats = _formats(lang, format)
    inv = load_inventory(inventory)
    result = _plan(inv, plan, network_plan, planning, policy, today)
    _print_plan(result, lang)
    _write(result, out, formats, lang)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "store": HELP["store"], "out": HELP["out"],
            "workers": "hosts probed at once (default 100)", "timeout": "seconds per host (default: lines/policy.yaml)",
            "trust_on_first_use": "accept and record unknown host keys (changed keys are still refused)",
            "include_classified": HELP["include_classified"], "jump": HELP["jump"], **PLAN_HELP})
def egress(c, inventory=None, limit=None, store=None, out=None, workers=100, timeout=None, trust_on_first_use=False,
           include_classified=False, jump=None, plan=None, network_plan=None, planning=None, policy=None, today=None,
           lang="zh", format="xlsx,html,json"):
    """Probe each host's way to the internet test address (route and trace, read-only, one session each), store
    it, and report the lines still carrying traffic after their cancellation date (exit 1)."""
    formats = _formats(lang, format)
    inv = load_inventory(inventory)
    hosts = limit_hosts(inv, limit, include_classified)
    lines_plan = _plan(inv, plan, network_plan, planning, policy, today)
    try:
        pol = service.plan.load_policy(Path(policy) if policy else None)
        options = service.EgressOptions(workers=int(workers), timeout=float(timeout or pol.timeout),
                                        trust_on_first_use=trust_on_first_use, include_classified=include_classified,
                                        jump=jump_override(inv, jump))
        result = service.probe_egress(inv, hosts, Store(store), options, lines_plan, lines_plan.today)
    except (service.LinesInputError, service.plan.PolicyError, ClassifiedRefused) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"egress towards {inv.extranet.internet_probe.address} (run {result.run_id})",
                  title_justify="left")
    for column in ("host", "path", "line", "via", "hops"):
        table.add_column(column)
    for host, f in sorted(result.facts.items()):
        style = "yellow" if f["path"] != "extranet" else None
        table.add_row(host, f["path"], f["line"] or "", f["via"] or "", " → ".join(f["hops"]), style=style)
    for host, why in sorted(result.failed.items()):
        table.add_row(host, "not probed", "", "", escape(why), style="red")
    console.print(table)
    _write(result, out, formats, lang)
    for finding in result.findings:
        console.print(f"[bold red]finding[/] {escape(i18n.bilingual(finding.message, lang))}")
    if result.findings or result.failed:
        raise fail(f"{len(result.findings)} lines still carry traffic after their cancellation date, "
                   f"{len(result.failed)} hosts not probed", code=PROBLEMS)
