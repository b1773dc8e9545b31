"""`invoke catalog.*`: the information resource catalog (政务信息资源目录): its report, the candidates collection
proposes, and requests for shared data with their 10-working-day answering clock."""

from __future__ import annotations

from invoke import task
from rich.table import Table

from catalog import report, service
from catalog.model import PolicyError
from catalog.service import CatalogError
from jiyue.cli import HELP, PROBLEMS, console, err, fail, load_inventory, out_dir
from jiyue.i18n import t
from jiyue.store import Store

ALL_FORMATS = ",".join(report.FORMATS)
ON = "the day (YYYY-MM-DD, default: today in the city's time zone)"


def _calendar() -> service.WorkCalendar:
    try:
        return service.WorkCalendar.load()
    except PolicyError as exc:
        raise fail(str(exc)) from None


def _day(value: str | None, option: str):
    try:
        return service.parse_day(value, option)
    except CatalogError as exc:
        raise fail(str(exc)) from None


@task(name="report", help={"inventory": HELP["inventory"], "out": HELP["out"], "store": HELP["store"],
            "lang": "zh (default) or en",
            "format": f"comma-separated subset of {','.join(report.FORMATS)} (default: all)",
            "as_of": "the day the requests' clocks are read on (default: today)"})
def report_(c, inventory=None, out=None, store=None, lang="zh", format=ALL_FORMATS, as_of=None):
    """Write the catalog (catalog.xlsx with Chinese headers in the documents' field order, catalog.json,
    catalog.html): the declared resources, the candidates collection proposes, the share requests. Exit 1 when a
    request is overdue."""
    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in report.FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(report.FORMATS)}")
    inv = load_inventory(inventory)
    result = service.build(inv, Store(store), _day(as_of, "--as-of"), _calendar())
    for path in report.write_reports(result, out_dir(out), formats, lang):
        console.print(f"wrote {path}")
    console.print(f"{len(result.entries)} resources catalogued, {len(result.candidates)} candidates, "
                  f"{len(result.requests)} requests")
    overdue = [r for r in result.requests if r.overdue]
    if overdue:
        raise fail(f"{len(overdue)} request(s) past the {result.as_of} clock: "
                   f"{', '.join(f'#{r.id} {r.resource} (due {r.due})' for r in overdue)}", code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "store": HELP["store"]})
def candidates(c, inventory=None, store=None):
    """List the resources collection proposes and no declared resource covers: databases listening, data paths
    holding files, connections to the exchange platform (from the store's latest collection of each host)."""
    inv = load_inventory(inventory)
    found, collected = service.measured_candidates(inv, Store(store))
    if not collected:
        raise fail("the store holds no collection: run invoke audit.collect first", code=PROBLEMS)
    table = Table(title=f"{len(found)} candidate resources (候选资源), not yet catalogued", title_justify="left")
    for column in ("部门 department", "系统 system", "发现方式 found by", "建议名称 name", "位置 location",
                   "依据 evidence"):
        table.add_column(column)
    for x in found:
        table.add_row(x.department, x.system, t(f"catalog.kind.{x.kind}"), x.name, x.location, x.evidence)
    console.print(table)
    if found:
        console.print("Catalogue them on the survey's 资源目录 sheet (invoke inventory.survey), then inventory.import")


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "resource": "<system>/<resource name>, or the "
            "name alone when one system declares it", "by": "the requesting department's code", "on": ON,
            "purpose": "what the data is for (用途)", "apply": "log the request (without it: a preview)"})
def request(c, resource, by, inventory=None, store=None, on=None, purpose="", apply=False):
    """Log a department's request for a catalogued resource's data; the answer is due in 10 working days."""
    inv = load_inventory(inventory)
    try:
        plan = service.request(inv, Store(store), resource, by, _day(on, "--on"), purpose, apply, _calendar())
    except CatalogError as exc:
        raise fail(str(exc)) from None
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    head = f"request #{plan.id} logged" if plan.id is not None else "预览，未记录 preview only (--apply logs it)"
    console.print(f"{head}: {plan.by} asks {plan.entry.key} on {plan.on}; the answer is due by {plan.due}",
                  highlight=False, markup=False)


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "id": "the request number (catalog.requests)",
            "decision": "granted or refused", "on": ON, "note": "the answer's text (a refusal's reason: required)",
            "apply": "record the answer (without it: a preview)"})
def answer(c, id, decision, inventory=None, store=None, on=None, note="", apply=False):
    """Record the answer to a share request, once; says whether it came within the 10 working days."""
    inv = load_inventory(inventory)
    try:
        status = service.answer(inv, Store(store), int(id), decision, _day(on, "--on"), note, apply, _calendar())
    except (CatalogError, ValueError) as exc:
        raise fail(str(exc)) from None
    head = "answer recorded" if apply else "预览，未记录 preview only (--apply records it)"
    console.print(f"{head}: #{status.id} {status.resource} {status.decision} on {status.answered_on}, "
                  f"{status.working_days} working days (due {status.due}): {t(f'catalog.state.{status.state}')}",
                  highlight=False, markup=False)


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "as_of": "read the clocks on this day "
            "(default: today)", "open": "only requests not yet answered"})
def requests(c, inventory=None, store=None, as_of=None, open=False):
    """List the share requests with their due day and state; overdue ones flagged (exit 1 when any is)."""
    inv = load_inventory(inventory)
    statuses = service.request_statuses(inv, Store(store), _day(as_of, "--as-of"), _calendar())
    if open:
        statuses = [s for s in statuses if s.answered_on is None]
    table = Table(title=f"{len(statuses)} share requests (共享申请)", title_justify="left")
    for key in report.REQUEST_COLUMNS:
        table.add_column(f"{t(f'catalog.req.{key}')} {t(f'catalog.req.{key}', 'en').lower()}")
    for s in statuses:
        state = t(f"catalog.state.{s.state}")
        table.add_row(str(s.id), s.resource + (" (no longer catalogued)" if s.unknown_resource else ""), s.by,
                      str(s.on), str(s.due), str(s.answered_on or ""),
                      t(f"catalog.decision.{s.decision}") if s.decision else "", str(s.working_days),
                      f"[bold red]{state}[/]" if s.overdue else state, s.note)
    console.print(table)
    overdue = [s for s in statuses if s.state == "overdue"]
    if overdue:
        err.print(f"{len(overdue)} request(s) overdue: answer them with invoke catalog.answer --id N --decision …",
                  highlight=False, markup=False)
        raise fail("overdue share requests", code=PROBLEMS)
