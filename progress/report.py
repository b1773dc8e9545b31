"""The progress report (督查通报) as Excel, one self-contained HTML page with charts, and JSON. Stable names:

- `progress.xlsx`: 汇总排名 (departments ranked over every milestone), 里程碑总览, one sheet per milestone (each
  department's done/total, expected share, lagging flag and why, findings), 明细 (every item counted), 问题发现
  (leased lines still carrying traffic after their cancellation date) and 进度变化 (the timeline);
- `progress.html`: cards, each milestone's share per department (bars, lagging ones red, the expected share as a
  dashed line) and its timeline (a line chart), the lagging list with the rule, the findings, the ranking; the
  leased-lines milestone lists each line with its date, cost and the hosts still leaving by it;
- `progress.json`: the same figures for other tools.

Writers, escaping and formula neutralising are `jiyue.reports`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from jiyue import i18n, reports
from jiyue.i18n import bilingual, t
from lines.model import EgressFinding, LinesProgress
from progress.model import Count, MilestoneProgress, ProgressResult
from progress.service import expected_share

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
BASENAME = "progress"
FORMATS = ("xlsx", "html", "json")
DONE, LAGGING, OPEN, EXPECTED = "#2e8b57", "#c0392b", "#4e79a7", "#c0392b"


def _safe_url(url: str) -> str:
    """The store's URL without its password: reports never carry a secret."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return ""


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


class ProgressReport:
    """The result's tables and charts in one language, shared by the writers."""

    def __init__(self, result: ProgressResult, lang: str = "zh") -> None:
        self.r, self.lang = result, i18n.check_lang(lang)
        self.inv = result.inventory

    def t(self, key: str, **fmt: Any) -> str:
        return t(key, self.lang, **fmt)

    def dept(self, code: str) -> str:
        d = self.inv.departments.get(code)
        return d.name if d else code

    def level(self, code: str) -> str:
        d = self.inv.departments.get(code)
        return i18n.enum_label("level", d.level, self.lang) if d else ""

    def measure(self, m: MilestoneProgress) -> str:
        return i18n.enum_label("measure", m.milestone.measure, self.lang)

    def scope(self, m: MilestoneProgress) -> str:
        departments = m.milestone.departments
        return self.t("progress.all") if departments == "all" else "、".join(self.dept(c) for c in departments)

    def rule(self) -> str:
        lag = self.r.policy["lagging"]
        if lag["rule"] == "linear":
            return self.t("progress.rule.linear", tolerance=lag.get("tolerance_pct", 0),
                          min_elapsed=lag.get("min_elapsed_pct", 0))
        return self.t("progress.rule.due")

    def as_of(self) -> str:
        """The report's moment in the city's time zone (the policy's), as the people reading it count days."""
        zone = str(self.r.policy.get("timezone", "UTC"))
        return f"{self.r.as_of.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"

    def finding(self, f: EgressFinding) -> str:
        return bilingual(f.message, self.lang)

    def lines(self, m: MilestoneProgress) -> dict[str, Any] | None:
        """The leased lines of a `leased_lines` milestone: each line's status, date, cost and the hosts the newest
        probe still sees on it, the findings flagged."""
        lp = m.lines
        if lp is None:
            return None
        flagged = lp.finding_lines
        rows = [{"line": c.line, "department": c.department, "name": self.dept(c.department),
                 "status": self.t(f"lines.status.{c.status}"), "date": c.date or "", "cost": float(c.annual_cost),
                 "carrying": lp.carrying.get(c.line, ()), "finding": c.line in flagged}
                for c in lp.cancellations]
        probed = (self.t("progress.lines.probed", at=lp.probed_at) if lp.probed_at
                  else self.t("progress.lines.never_probed"))
        return {"rows": rows, "probed": probed, "saved": float(lp.annual_cost_saved),
                "total": float(lp.annual_cost_total)}

    # --- Excel -----------------------------------------------------------------------------------

    def sheets(self) -> list[reports.Sheet]:
        tr = self.t
        out = [reports.Sheet(tr("progress.sheet.summary"), [tr(k) for k in (
            "progress.col.rank", "progress.col.code", "progress.col.department", "progress.col.level",
            "progress.col.done", "progress.col.total", "progress.col.percent", "progress.col.milestone_count",
            "progress.col.lagging_count")], [
            [x.rank, x.department, self.dept(x.department), self.level(x.department), x.count.done, x.count.total,
             x.count.percent, x.milestones, x.lagging] for x in self.r.ranking])]
        out.append(reports.Sheet(tr("progress.sheet.milestones"), [tr(k) for k in (
            "progress.col.milestone", "progress.col.measure", "progress.col.start", "progress.col.due",
            "progress.col.scope", "progress.col.done", "progress.col.total", "progress.col.percent",
            "progress.col.expected", "progress.col.lagging", "progress.col.findings", "progress.col.note")], [
            [m.milestone.name, self.measure(m), m.milestone.start or self.inv.programme.start, m.milestone.due,
             self.scope(m), m.count.done, m.count.total, m.count.percent, _pct(m.expected),
             "、".join(self.dept(d.department) for d in m.lagging), len(m.findings) or "",
             bilingual(m.note, self.lang)]
            for m in self.r.milestones]))
        for m in self.r.milestones:
            rows = []
            for d in m.departments:
                open_items = [f"{i.subject}: {bilingual(i.why, self.lang)}" if i.why else i.subject
                              for i in d.items if not i.done]
                found = [self.finding(f) for f in m.findings if f.department == d.department]
                rows.append([d.department, self.dept(d.department), d.count.done, d.count.total, d.count.percent,
                             _pct(d.expected), tr("progress.lagging.yes") if d.lagging else "",
                             bilingual(d.reason, self.lang), "\n".join(open_items), "\n".join(found)])
            rows.append(["", tr("report.total"), m.count.done, m.count.total, m.count.percent, _pct(m.expected),
                         "", bilingual(m.note, self.lang), "", len(m.findings) or ""])
            out.append(reports.Sheet(m.milestone.name, [tr(k) for k in (
                "progress.col.code", "progress.col.department", "progress.col.done", "progress.col.total",
                "progress.col.percent", "progress.col.expected", "progress.col.lagging", "progress.col.reason",
                "progress.col.items", "progress.col.findings")], rows, total_rows=1))
        out.append(reports.Sheet(tr("progress.sheet.items"), [tr(k) for k in (
            "progress.col.milestone", "progress.col.code", "progress.col.department", "progress.col.subject",
            "progress.col.status", "progress.col.detail")], [
            [m.milestone.name, d.department, self.dept(d.department), i.subject,
             tr("progress.status.done" if i.done else "progress.status.open"), bilingual(i.why, self.lang)]
            for m in self.r.milestones for d in m.departments for i in d.items]))
        out.append(reports.Sheet(tr("progress.sheet.findings"), [tr(k) for k in (
            "progress.col.milestone", "progress.col.line", "progress.col.code", "progress.col.department",
            "progress.col.cancel_date", "progress.col.carrying", "progress.col.detail")], [
            [m.milestone.name, f.line, f.department, self.dept(f.department), f.date, "\n".join(f.hosts),
             self.finding(f)] for m, f in self.r.findings]))
        out.append(reports.Sheet(tr("progress.sheet.timeline"), [tr(k) for k in (
            "progress.col.milestone", "progress.col.date", "progress.col.done", "progress.col.total",
            "progress.col.percent")], [
            [m.milestone.name, p.at, p.count.done, p.count.total, p.count.percent]
            for m in self.r.milestones for p in m.timeline]))
        return out

    # --- HTML ------------------------------------------------------------------------------------

    def html_context(self) -> dict[str, Any]:
        milestones = []
        for n, m in enumerate(self.r.milestones):
            colours = [DONE if d.count.share == 1 else LAGGING if d.lagging else OPEN for d in m.departments]
            bars = reports.svg_bar_chart(
                [(self.dept(d.department), d.count.percent or 0.0) for d in m.departments],
                title=self.t("progress.chart.departments"), unit="%", colors=colours, max_value=100,
                threshold=_pct(m.expected) if m.expected is not None and m.departments else None,
                threshold_label=f"{self.t('progress.chart.expected')} {_pct(m.expected):g}%"
                if m.expected is not None else "") if m.departments else None
            line = reports.svg_line_chart(
                [f"{p.at:%m-%d}" for p in m.timeline],
                [(m.milestone.name, OPEN, [p.count.percent for p in m.timeline])],
                target=[100 * expected_share(m.milestone, self.inv.programme, p.at) for p in m.timeline],
                target_label=self.t("progress.chart.expected"),
                title=self.t("progress.chart.timeline"), height=200) if len(m.timeline) > 1 else None
            milestones.append({"n": n, "m": m, "measure": self.measure(m), "scope": self.scope(m), "bars": bars,
                               "line": line, "note": bilingual(m.note, self.lang), "lines": self.lines(m),
                               "findings": [self.finding(f) for f in m.findings],
                               "start": m.milestone.start or self.inv.programme.start,
                               "expected": _pct(m.expected),
                               "rows": [{"d": d, "name": self.dept(d.department), "level": self.level(d.department),
                                         "expected": _pct(d.expected), "reason": bilingual(d.reason, self.lang),
                                         "open": [(i.subject, bilingual(i.why, self.lang)) for i in d.items
                                                  if not i.done]}
                                        for d in m.departments]})
        overview = reports.svg_bar_chart(
            [(m.milestone.name, m.count.percent or 0.0) for m in self.r.milestones],
            title=self.t("progress.chart.milestones"), unit="%", max_value=100,
            colors=[DONE if m.count.share == 1 else LAGGING if m.lagging else OPEN for m in self.r.milestones])
        lagging = [{"milestone": m.milestone.name, "due": m.milestone.due, "code": d.department,
                    "name": self.dept(d.department), "count": d.count, "reason": bilingual(d.reason, self.lang)}
                   for m, d in self.r.lagging]
        return {"title": self.t("progress.title"),
                "subtitle": self.t("progress.subtitle", inventory=self.inv.root.name, as_of=self.as_of()),
                "milestones": milestones, "overview": overview, "lagging": lagging, "rule": self.rule(),
                "ranking": [{"x": x, "name": self.dept(x.department), "level": self.level(x.department)}
                            for x in self.r.ranking],
                "findings": [{"milestone": m.milestone.name, "line": f.line, "code": f.department,
                              "name": self.dept(f.department), "date": f.date, "hosts": f.hosts,
                              "message": self.finding(f)} for m, f in self.r.findings],
                "done_milestones": sum(m.count.share == 1 for m in self.r.milestones)}

    # --- JSON ------------------------------------------------------------------------------------

    def json(self) -> dict[str, Any]:
        def count(c: Count) -> dict[str, Any]:
            return {"done": c.done, "total": c.total, "percent": c.percent}

        def finding(f: EgressFinding) -> dict[str, Any]:
            return {"line": f.line, "department": f.department, "date": f.date, "hosts": list(f.hosts),
                    "status": str(f.status), "message": f.message}

        def lines(lp: LinesProgress) -> dict[str, Any]:
            return {"done": lp.done, "total": lp.total, "annual_cost_saved": float(lp.annual_cost_saved),
                    "annual_cost_total": float(lp.annual_cost_total), "probed_at": lp.probed_at,
                    "by_department": [{"department": d.department, "done": d.done, "total": d.total,
                                       "annual_cost_saved": float(d.annual_cost_saved),
                                       "annual_cost_total": float(d.annual_cost_total)} for d in lp.departments],
                    "lines": [{"line": c.line, "department": c.department, "status": str(c.status), "date": c.date,
                               "annual_cost": float(c.annual_cost), "carrying": list(lp.carrying.get(c.line, ())),
                               "finding": c.line in lp.finding_lines} for c in lp.cancellations]}

        return {
            "kind": "report.progress", "inventory": str(self.inv.root), "as_of": self.r.as_of,
            "lagging_rule": self.r.policy["lagging"], "store": _safe_url(self.r.store),
            "milestones": [{
                "name": m.milestone.name, "measure": m.milestone.measure.value, "due": m.milestone.due,
                "start": m.milestone.start or self.inv.programme.start, "departments": m.milestone.departments,
                **count(m.count), "expected_percent": _pct(m.expected), "note": m.note,
                "by_department": [{"department": d.department, **count(d.count), "expected_percent": _pct(d.expected),
                                   "lagging": d.lagging, "reason": d.reason,
                                   "items": [{"subject": i.subject, "done": i.done, "why": i.why} for i in d.items]}
                                  for d in m.departments],
                "timeline": [{"date": p.at, **count(p.count)} for p in m.timeline],
                "findings": [finding(f) for f in m.findings],
                **({"leased_lines": lines(m.lines)} if m.lines is not None else {})}
                for m in self.r.milestones],
            "findings": [{"milestone": m.milestone.name, **finding(f)} for m, f in self.r.findings],
            "ranking": [{"rank": x.rank, "department": x.department, **count(x.count), "milestones": x.milestones,
                         "lagging": x.lagging} for x in self.r.ranking],
        }


def write_reports(result: ProgressResult, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write `progress.{xlsx,html,json}` under `out` (`jiyue.reports.WriteReports`)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    return reports.write_report(ProgressReport(result, lang), Path(out), BASENAME, formats, "progress.html.j2",
                                lang=lang, search_paths=[TEMPLATES])
