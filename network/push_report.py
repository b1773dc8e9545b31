"""The push results report: JSON (everything), self-contained HTML, and optionally Excel.

Stable names under the output dir: `network-push.json`, `network-push.html`, `network-push.xlsx`.
Each device's row has its outcome, what the device ended as (changed, unchanged, rolled back and
verified, or ROLLBACK FAILED with the lines it differs from its backup by and the restore command), the
reason of a failure, what rolling back did, the backup file and the remediation it sent (or would send,
in a dry run). Writers and escaping are jiyue.reports'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jiyue import i18n, reports
from jiyue.i18n import t
from jiyue.store import NETWORK_PUSH
from network.push import APPLIED, DRY_RUN, FAILED, NOT_ATTEMPTED, REFUSED, UNCHANGED, PushRun

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
BASENAME = "network-push"
FORMATS = ("json", "html", "xlsx")
DEFAULT_FORMATS = ("json", "html")
STATUS_COLORS = {APPLIED: "#2e8b57", UNCHANGED: "#4e79a7", DRY_RUN: "#8e99a4", FAILED: "#c0392b",
                 REFUSED: "#e67e22", NOT_ATTEMPTED: "#bab0ac"}


def as_json(run: PushRun) -> dict[str, Any]:
    o = run.options
    return {
        "kind": NETWORK_PUSH, "run_id": run.run_id, "started": run.started, "inventory": run.inventory,
        "apply": o.apply, "workers": o.workers, "canary": o.canary, "batch_size": o.batch_size,
        "max_fail_percent": o.max_fail_percent, "jump": o.jump, "batches": run.staged.batches,
        "stopped_after_batch": None if run.staged.stopped_after is None else run.staged.stopped_after + 1,
        "counts": run.counts(), "end_states": run.end_states(), "devices": [x.as_dict() for x in run.outcomes],
    }


def _rows(run: PushRun, lang: str) -> list[dict[str, Any]]:
    rows = []
    for x in run.outcomes:
        rows.append({"device": x.device, "platform": x.platform, "batch": "" if x.batch is None else x.batch + 1,
                     "status": x.status, "status_label": t(f"push.status.{x.status}", lang),
                     "end_state": x.end_state, "end_label": t(f"push.end.{x.end_state}", lang),
                     "differs": x.differs, "restore": x.restore or "",
                     "color": STATUS_COLORS.get(x.status, "#999999"), "lines": x.lines, "safety": x.safety,
                     "reason": x.reason or "", "rollback": x.rollback or "", "backup": x.backup or "",
                     "seconds": round(sum(x.seconds.values()), 2), "diff": x.diff, "notes": "; ".join(x.notes)})
    return rows


COLUMNS = ("device", "platform", "batch", "status", "end_state", "lines", "safety", "reason", "rollback", "backup",
           "seconds")


def write_push_reports(run: PushRun, out: Path | str, formats: Sequence[str] = DEFAULT_FORMATS,
                       lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write `network-push.{json,html,xlsx}` (those of `formats`) under `out`; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = _rows(run, lang)
    headers = [t(f"push.col.{c}", lang) for c in COLUMNS]
    if "json" in formats:
        written.append(reports.write_json(out / f"{BASENAME}.json", as_json(run)))
    if "html" in formats:
        counts = run.counts()
        cards = [{"value": n, "label": t(f"push.status.{s}", lang), "color": STATUS_COLORS[s]}
                 for s, n in counts.items() if n or s in (APPLIED, FAILED)]
        stopped = ""
        if run.staged.stopped_after is not None:
            stopped = t("push.stopped", lang, batch=run.staged.stopped_after + 1,
                        percent=f"{run.options.max_fail_percent:g}")
        batches = " | ".join(", ".join(b) for b in run.staged.batches)
        chart = reports.svg_bar_chart([(r["device"], r["seconds"]) for r in rows if r["status"] != NOT_ATTEMPTED],
                                      title=t("push.chart", lang), value_format="{:,.2f}",
                                      colors=[r["color"] for r in rows if r["status"] != NOT_ATTEMPTED])
        context = {"title": t("push.title" if run.options.apply else "push.title_dry", lang),
                   "subtitle": t("push.subtitle", lang, inventory=run.inventory, devices=len(rows),
                                 workers=run.options.workers),
                   "cards": cards, "stopped": stopped, "batches_text": t("push.batches", lang, batches=batches),
                   "chart": chart, "headers": headers, "devices": rows}
        written.append(reports.write_html(out / f"{BASENAME}.html", "push.html.j2", context, lang=lang,
                                          search_paths=[TEMPLATES]))
    if "xlsx" in formats:
        main = reports.Sheet(t("push.sheet", lang), headers,
                             [[r[{"status": "status_label", "end_state": "end_label"}.get(c, c)] for c in COLUMNS]
                              for r in rows])
        lines = reports.Sheet(t("push.diff_sheet", lang), [t("push.col.device", lang), t("push.col.line", lang)],
                              [[r["device"], line] for r in rows for line in r["diff"]])
        written.append(reports.write_xlsx(out / f"{BASENAME}.xlsx", [main, lines]))
    return written
