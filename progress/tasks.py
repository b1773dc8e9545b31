"""`invoke report.progress`: the programme's milestones per department as of a date (督查通报).

Parses the options, calls progress/service.py, writes the reports, prints the lagging departments. Exit codes:
0 written and nobody lags, 1 written with departments lagging (进度滞后), 2 bad input.
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
    runs and the lagging departments (进度滞后), as Excel, HTML and JSON."""
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
    if result.lagging:
        raise fail(f"{len(result.lagging)} department milestone(s) lagging (进度滞后): see the report's 进度滞后通报",
                   code=PROBLEMS)
