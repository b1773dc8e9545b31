"""`invoke report.progress`: the programme's milestones per department as of a date (督查通报).

Parses the options, calls progress/service.py, writes the reports, prints the lagging departments and the
findings. Exit codes: 0 written, nobody lags and nothing found; 1 written with departments lagging (进度滞后) or a
finding (a leased line still carrying traffic after its cancellation date); 2 bad input.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from invoke import task
from rich.markup import escape
from rich.table import Table

from jiyue.cli import HELP, PROBLEMS, console, fail, load_inventory, out_dir
from jiyue.i18n import bilingual
from jiyue.store import Store


@task(help={"inventory": HELP["inventory"], "store": HELP["store"], "out": HELP["out"],
            "as_of": "report date YYYY-MM-DD: everything recomputed from the store as it stood at the end of that "
                     "day (default: now)",
            "lang": "zh (default) or en", "format": "comma-separated: xlsx,html,json (default: all)",
            "policy": "lagging rule and measure settings YAML (default: progress/policy.yaml)",
            "no_timeline": "leave out the timeline over past runs (faster on a long history)"})
def progress(c, inventory=None, store=None, out=None, as_of=None, lang="zh", format="xlsx,html,json", policy=None,
             no_timeline=False):
    """Write the progress report: every milestone's measure per department (done/total), the timeline over past
    runs, the lagging departments (进度滞后) and the findings (leased lines still carrying traffic after their
    cancellation date), as Excel, HTML and JSON."""
    from progress.report import FORMATS, write_reports
    from progress.service import ProgressError, load_policy
    from progress.service import progress as compute

    formats = tuple(f.strip() for f in format.split(",") if f.strip())
    if lang not in ("zh", "en") or not formats or any(f not in FORMATS for f in formats):
        raise fail(f"--lang is zh or en; --format is a comma-separated subset of {','.join(FORMATS)}")
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise fail(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}") from None
    inv = load_inventory(inventory)
    try:
        result = compute(inv, Store(store), day, load_policy(Path(policy) if policy else None),
                         timeline=not no_timeline)
    except ProgressError as exc:
        raise fail(str(exc)) from None
    for path in write_reports(result, out_dir(out), formats, lang):
        console.print(f"wrote {path}")
    table = Table(title=f"progress as of {result.as_of:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for column in ("milestone", "measure", "due", "done", "lagging"):
        table.add_column(column)
    for m in result.milestones:
        pct = f" ({m.count.percent:g} %)" if m.count.percent is not None else ""
        table.add_row(escape(m.milestone.name), m.milestone.measure.value, str(m.milestone.due),
                      f"{m.count.done}/{m.count.total}{pct}",
                      escape(", ".join(d.department for d in m.lagging) or bilingual(m.note, lang)),
                      style="red" if m.lagging else None)
    console.print(table)
    for _, finding in result.findings:
        console.print(f"[bold red]finding[/] {escape(bilingual(finding.message, lang))}")
    if result.lagging or result.findings:
        raise fail(f"{len(result.lagging)} department milestone(s) lagging (进度滞后), {len(result.findings)} "
                   "finding(s) (leased lines still carrying traffic after their cancellation date): see the report's "
                   "进度滞后通报 and 问题发现", code=PROBLEMS)
