"""The audit reports: the archive (档案库) with zombie verdicts, the integration list and the asset
list, as Excel, CSV, JSON and one self-contained HTML page. Stable names under the output dir:

- `archive.xlsx`: 城市汇总 (city summary) first, one sheet per department, then 整合共享清单, 机房腾退 (the
  machine rooms and their findings) and 资产清单 (everything the consolidation frees, with its route);
- `archive.csv`: every system, the department sheets' columns;
- `archive.json`: every system with all its fields and its verdict (every criterion's outcome,
  numbers and evidence), the integration and asset lists, the machine rooms, the thresholds used;
- `archive.html`: overview, verdicts by department, utilisation, the dependency graph, evidence
  per zombie; static (no scripts) and self-contained (no external resources).

Writers and escaping are `jiyue.reports`'; rows are `audit.archive`'s. `write_reports` follows
`jiyue.reports.WriteReports`: it writes the `AuditResult` the audit service returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit import archive
from audit.archive import ARCHIVE_COLUMNS
from audit.history import declared_dependents
from audit.model import REPLATFORM, SUSPECT, VERDICT_ORDER, ZOMBIE, AuditResult, Verdict
from inventory.model import Classification
from jiyue import i18n, reports
from jiyue.i18n import t

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
FORMATS = ("xlsx", "csv", "json", "html")
BASENAME = "archive"
ASSET_HTML_COLUMNS = ("assets.kind", "assets.name", "assets.address", "assets.accountable", "assets.system",
                      "assets.cause", "assets.stage", "assets.os", "assets.listening", "assets.disposal",
                      "assets.disposal_reason")
VERDICT_COLORS = {"zombie": "#c0392b", "replatform": "#8e44ad", "suspect": "#e67e22", "active": "#2e8b57",
                  "insufficient_data": "#8e99a4"}


def _flatten(numbers: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"hosts": {"a": {"cpu": 1}}} -> [("hosts.a.cpu", 1)]; lists joined."""
    out: list[tuple[str, Any]] = []
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, name + ".") if value else [(name, "—")]
        elif isinstance(value, list | tuple):
            out.append((name, ", ".join(str(v) for v in value) or "—"))
        else:
            out.append((name, value))
    return out


def _verdict_json(v: Verdict) -> dict[str, Any]:
    data = asdict(v)
    data["met"] = v.met
    for c, cj in zip(v.criteria, data["criteria"], strict=True):
        cj["number"] = c.number
    return data


class AuditReport:
    """Everything the audit writes, computed once and shared by the formats."""

    def __init__(self, result: AuditResult, lang: str = i18n.DEFAULT_LANG) -> None:
        inv, judge = result.inventory, result.judge
        self.inv, self.judge, self.verdicts, self.lang = inv, judge, list(result.verdicts), i18n.check_lang(lang)
        self.by_id = archive.verdicts_by_system(self.verdicts)
        self.facts = judge.history.facts()
        self.collected_at = judge.history.collected_at()
        self.dependents = judge.history.dependents
        self.generated_at = datetime.now(UTC)
        self.today = judge.now.date()
        self.records = archive.archive_records(inv, self.verdicts, self.facts, lang, self.dependents,
                                               locations=judge.history.locations)
        self.summary = archive.summary(inv, self.verdicts)
        self.integration = archive.integration_list(inv, self.verdicts)
        rules = result.asset_rules or archive.load_asset_rules()
        self.assets = archive.asset_list(inv, self.verdicts, self.facts, self.today, self.collected_at, lang,
                                         judge.history.locations, result.freed, rules)
        self.rooms = archive.room_list(inv, rules)

    # --- tables -----------------------------------------------------------------------------------

    def headers(self) -> list[str]:
        return archive.archive_headers(self.lang)

    def rows(self, department: str | None = None) -> list[list[Any]]:
        ids = [s.id for s in archive.ordered_systems(self.inv) if department is None or s.department == department]
        by_id = {r["id"]: r for r in self.records}
        return [[by_id[i][c] for c in ARCHIVE_COLUMNS] for i in ids]

    def sheets(self) -> list[reports.Sheet]:
        lang = self.lang
        formats = {ARCHIVE_COLUMNS.index("funding_amount"): "#,##0.00"}
        headers, rows = archive.summary_rows(self.summary, lang)
        out = [reports.Sheet(t("summary.sheet", lang), headers, rows, total_rows=1)]
        for row in self.summary:
            out.append(reports.Sheet(row["name"], self.headers(), self.rows(row["department"]),
                                     number_formats=formats))
        headers, rows = archive.integration_rows(self.inv, self.integration, self.verdicts, lang)
        out.append(reports.Sheet(t("integration.sheet", lang), headers, rows))
        headers, rows = archive.room_rows(self.rooms, lang)
        out.append(reports.Sheet(t("rooms.sheet", lang), headers, rows))
        headers, rows = archive.asset_rows(self.assets, lang)
        out.append(reports.Sheet(t("assets.sheet", lang), headers, rows))
        return out

    # --- JSON -------------------------------------------------------------------------------------

    def json(self) -> dict[str, Any]:
        systems = []
        for s in archive.ordered_systems(self.inv):
            v = self.by_id.get(s.id)
            record = next(r for r in self.records if r["id"] == s.id)
            # A classified system's row is declared only: no edge measured on the wire either.
            deps = declared_dependents(self.inv) if s.classification == Classification.classified else self.dependents
            hosts = []
            for h in s.hosts:
                f = self.facts.get(h) or {}
                host = self.inv.hosts.get(h)
                hosts.append({"name": h, "address": str(host.address) if host else None,
                              "os_declared": host.os if host else None,
                              "os_measured": f.get("os", {}).get("pretty_name"),
                              "collected": bool(f), "last_collected": self.collected_at.get(h),
                              **archive.host_resources(f)})
            systems.append({
                "id": s.id,
                "archive": {c: record[c] for c in ARCHIVE_COLUMNS},
                "inventory": s.model_dump(mode="json"),
                "measured": archive.measured(v),
                "hosts": hosts,
                "dependents": dict(sorted(deps.get(s.id, {}).items())),
                "verdict": _verdict_json(v) if v else None,
            })
        return {
            "generated_at": self.generated_at,
            "language": self.lang,
            "inventory": str(self.inv.root),
            "window": {"since": self.judge.since, "until": self.judge.now,
                       "days": self.judge.policy["observation"]["window_days"]},
            "policy": self.judge.policy,
            "columns": {c: t(f"archive.{c}", self.lang) for c in ARCHIVE_COLUMNS},
            "summary": {"departments": self.summary, "totals": archive.summary_totals(self.summary)},
            "systems": systems,
            "integration": [asdict(e) | {"reasons": [t(k, self.lang, **a) for k, a in e.reasons]}
                            for e in self.integration],
            "assets": [asdict(a) | {"reasons": [t(k, self.lang, **x) for k, x in a.reasons]} for a in self.assets],
            "machine_rooms": [asdict(r) for r in self.rooms],
        }

    # --- HTML -------------------------------------------------------------------------------------

    def _graph(self):
        inv, lang = self.inv, self.lang
        depts = [d for d in inv.departments if any(s.department == d for s in inv.systems.values())]
        colors = dict(zip(depts, reports.palette(len(depts)), strict=True))
        nodes = []
        for s in archive.ordered_systems(inv):
            v = self.by_id.get(s.id)
            verdict = t(f"verdict.{v.verdict}", lang) if v else ""
            dept = inv.departments.get(s.department)
            nodes.append(reports.GraphNode(s.id, f"{s.id} {s.name}", s.department,
                                           f"{s.id} {s.name} — {dept.name if dept else s.department} — {verdict}",
                                           emphasis=v is not None and v.verdict == ZOMBIE))
        edges = [reports.GraphEdge(s.id, dep, "declared", f"{s.id} → {dep}: depends_on")
                 for s in inv.systems.values() for dep in s.depends_on]
        declared = {(e.source, e.target) for e in edges}
        for provider, deps in sorted(self.dependents.items()):
            for dependent, how in sorted(deps.items()):
                if (dependent, provider) not in declared:
                    edges.append(reports.GraphEdge(dependent, provider, "measured", f"{dependent} → {provider}: {how}"))
        return reports.svg_graph(
            nodes, edges, group_colors=colors, group_labels={d: inv.departments[d].name for d in depts},
            edge_labels={"declared": t("html.edge_declared", lang), "measured": t("html.edge_measured", lang)},
            isolated_label=t("html.isolated", lang), title=t("html.dependencies", lang), node_width=230)

    def _detail(self, v: Verdict) -> dict[str, Any]:
        s = self.inv.systems[v.system]
        dept = self.inv.departments.get(s.department)
        return {
            "id": s.id, "name": s.name, "department": dept.name if dept else s.department,
            "verdict": v.verdict, "window": archive.window_text(v, self.lang),
            "declared_frequency": i18n.enum_label("frequency", s.frequency, self.lang),
            "measured_frequency": archive.frequency_text(v, self.lang), "rule": i18n.bilingual(v.rule, self.lang),
            "hosts_measured": v.hosts_measured, "hosts_missing": v.hosts_missing,
            "criteria": [{"number": c.number, "label": t(f"criterion.{c.key}", self.lang), "outcome": c.outcome,
                          "summary": i18n.bilingual(c.summary, self.lang), "numbers": _flatten(c.numbers),
                          "evidence": [archive.evidence_line(e) for e in c.evidence]} for c in v.criteria],
        }

    def html_context(self) -> dict[str, Any]:
        lang = self.lang
        totals = archive.summary_totals(self.summary)
        verdict_chart = reports.svg_stacked_bar(
            [r["name"] for r in self.summary],
            [(t(f"verdict.{k}", lang), VERDICT_COLORS[k], [r["verdicts"].get(k, 0) for r in self.summary])
             for k in VERDICT_ORDER],
            title=t("html.verdict_chart", lang), width=900)
        systems, cpu_items, net_items, cpu_colors, net_colors, unmeasured = [], [], [], [], [], []
        for s in archive.ordered_systems(self.inv):
            v = self.by_id.get(s.id)
            m = archive.measured(v)
            dept = self.inv.departments.get(s.department)
            classified = s.classification == Classification.classified  # never judged: marked as such
            systems.append({"id": s.id, "name": s.name, "department": dept.name if dept else s.department,
                            "verdict": v.verdict if v else "classified" if classified else None,
                            "met": [f"{c.number} {t(f'criterion.{c.key}', lang)}" for c in v.criteria
                                    if c.outcome == "met"] if v else [],
                            "cpu": m["cpu_p95_pct"], "net": m["net_p95_mb_per_day"],
                            "requests": m["requests_per_day"], "users": m["users"],
                            "declared_frequency": i18n.enum_label("frequency", s.frequency, lang),
                            "measured_frequency": archive.frequency_text(v, lang)})
            colour = VERDICT_COLORS.get(v.verdict, "#4e79a7") if v else "#4e79a7"
            if m["cpu_p95_pct"] is None:
                unmeasured.append(s.id)
                continue
            cpu_items.append((f"{s.id} {s.name}", m["cpu_p95_pct"]))
            net_items.append((f"{s.id} {s.name}", m["net_p95_mb_per_day"]))
            cpu_colors.append(colour)
            net_colors.append(colour)
        idle = self.judge.policy["idle"]
        integration_headers, integration_rows = archive.integration_rows(self.inv, self.integration,
                                                                         self.verdicts, lang)
        asset_headers, asset_rows = archive.asset_rows(self.assets, lang)
        # A printed page holds about a dozen columns: the page shows these, the workbook all of them.
        keep = [archive.ASSET_COLUMNS.index(c) for c in ASSET_HTML_COLUMNS]
        asset_headers, asset_rows = [asset_headers[i] for i in keep], [[r[i] for i in keep] for r in asset_rows]
        room_headers, room_rows = archive.room_rows(self.rooms, lang)
        return {
            "title": t("audit.title", lang),
            "subtitle": t("audit.subtitle", lang, since=self.judge.since.date().isoformat(), until=self.today),
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "inventory": str(self.inv.root),
            "totals": totals,
            "verdict_order": VERDICT_ORDER,
            "summary": self.summary,
            "verdict_chart": verdict_chart,
            "systems": systems,
            "cpu_chart": reports.svg_bar_chart(
                cpu_items, title=t("html.cpu_chart", lang), unit="%", threshold=idle["cpu_pct"],
                threshold_label=t("html.idle_threshold", lang, v=f"{idle['cpu_pct']}%"), colors=cpu_colors,
                value_format="{:,.2f}", width=900) if cpu_items else None,
            "net_chart": reports.svg_bar_chart(
                net_items, title=t("html.net_chart", lang), unit="MB", threshold=idle["network_mb_per_day"],
                threshold_label=t("html.idle_threshold", lang, v=f"{idle['network_mb_per_day']} MB"),
                colors=net_colors, value_format="{:,.2f}", width=900) if net_items else None,
            "unmeasured": unmeasured,
            "graph": self._graph(),
            "zombies": [self._detail(v) for v in self.verdicts if v.verdict == ZOMBIE],
            "replatforms": [self._detail(v) for v in self.verdicts if v.verdict == REPLATFORM],
            "suspects": [self._detail(v) for v in self.verdicts if v.verdict == SUSPECT],
            "integration_headers": integration_headers, "integration_rows": integration_rows,
            "asset_headers": asset_headers, "asset_rows": asset_rows,
            "room_headers": room_headers, "room_rows": room_rows,
            "policy": _flatten(self.judge.policy),
        }


def write_reports(result: AuditResult, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write the audit reports of `result` under `out` (created if missing); return the paths written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    report = AuditReport(result, lang)
    written = []
    if "xlsx" in formats:
        written.append(reports.write_xlsx(folder / f"{BASENAME}.xlsx", report.sheets()))
    if "csv" in formats:
        written.append(reports.write_csv(folder / f"{BASENAME}.csv", report.headers(), report.rows()))
    if "json" in formats:
        written.append(reports.write_json(folder / f"{BASENAME}.json", report.json()))
    if "html" in formats:
        written.append(reports.write_html(folder / f"{BASENAME}.html", "archive.html.j2", report.html_context(),
                                          lang=lang, search_paths=[TEMPLATES]))
    return written
