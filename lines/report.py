"""The lines reports: `leased-lines.xlsx` (专线撤销计划, 业务专网并网, 出口探测, 部门进度, 发现问题),
`leased-lines.html` (self-contained, one chart) and `leased-lines.json`, from a `LinesPlan` (lines.plan) or an
`EgressResult` (lines.egress, which adds each host's path and the findings). Writers and escaping are
`jiyue.reports`'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jiyue import i18n, reports
from jiyue.i18n import t
from lines.model import EgressResult, LinesPlan

FORMATS = ("xlsx", "html", "json")
BASENAME = "leased-lines"
TEMPLATES = Path(__file__).resolve().parent / "templates"


class LinesReport:
    def __init__(self, result: LinesPlan | EgressResult, lang: str) -> None:
        self.lang = lang
        self.egress = result if isinstance(result, EgressResult) else None
        self.plan = result.plan if isinstance(result, EgressResult) else result
        self.inv = self.plan.inventory

    def _dept(self, code: str) -> str:
        d = self.inv.departments.get(code)
        return f"{d.name} ({code})" if d else code

    def _h(self, *keys: str) -> list[str]:
        return [t(f"lines.col.{k}", self.lang) for k in keys]

    def cancellations(self) -> tuple[list[str], list[list[Any]]]:
        rows = []
        for c in self.plan.cancellations:
            line = self.inv.leased_lines[c.line]
            served = [*line.hosts, *map(str, line.subnets)]
            rows.append([c.line, self._dept(c.department), line.carrier, line.circuit_id, line.bandwidth_mbps,
                         float(c.annual_cost), str(c.contract_end), line.purpose, "\n".join(served),
                         "\n".join(c.systems), t(f"lines.status.{c.status}", self.lang),
                         str(c.date) if c.date else "", str(c.last_move) if c.last_move else "",
                         t("report.yes" if c.early else "report.no", self.lang), i18n.bilingual(c.reason, self.lang)])
        return self._h("line", "department", "carrier", "circuit", "bandwidth", "cost", "contract_end", "purpose",
                       "hosts", "systems", "status", "date", "last_move", "early", "reason"), rows

    def joins(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[j.network, j.name, self._dept(j.department), f"{j.owner_name} ({j.owner})",
                 t("report.yes" if j.joins else "report.no", self.lang), j.vlan if j.vlan is not None else "",
                 f"{j.device} {j.interface}" if j.device else "", "\n".join(j.prefixes), "\n".join(j.next_hops),
                 "\n".join(j.boundary), i18n.bilingual(j.reason, self.lang)] for j in self.plan.joins]
        return self._h("network", "name", "department", "owner", "joins", "vlan", "device", "prefixes",
                       "next_hops", "boundary", "reason"), rows

    def egress_rows(self) -> tuple[list[str], list[list[Any]]]:
        rows: list[list[Any]] = []
        if self.egress is not None:
            for host in sorted({*self.egress.facts, *self.egress.failed}):
                system = self.inv.owner(host)
                dept = self._dept(system.department) if system else ""
                f = self.egress.facts.get(host)
                if f is None:
                    rows.append([host, dept, "", "", "", "", "", "", self.egress.failed[host]])
                    continue
                route = " / ".join(x for x in (f["route"].get("gateway", ""), f["route"].get("dev", "")) if x)
                rows.append([host, dept, t(f"lines.path.{f['path']}", self.lang), f["line"] or "", f["via"] or "",
                             route, " → ".join(f["hops"]), t("report.yes" if f["reached"] else "report.no", self.lang),
                             ""])
        return self._h("host", "department", "path", "line", "via", "route", "hops", "reached", "error"), rows

    def findings(self) -> list[str]:
        return [i18n.bilingual(f.message, self.lang) for f in self.egress.findings] if self.egress else []

    def departments(self) -> tuple[list[str], list[list[Any]]]:
        per: dict[str, list[Any]] = {}
        for c in self.plan.cancellations:
            row = per.setdefault(c.department, [self._dept(c.department), 0, 0, 0.0])
            row[2] += 1
            if c.status == "cancelled":
                row[1] += 1
                row[3] += float(c.annual_cost)
        return self._h("department", "done", "total", "saved"), [per[d] for d in sorted(per)]

    def sheets(self) -> list[reports.Sheet]:
        out = []
        for key, table in (("cancellations", self.cancellations), ("joins", self.joins),
                           ("egress", self.egress_rows), ("departments", self.departments)):
            headers, rows = table()
            out.append(reports.Sheet(t(f"lines.{key}.sheet", self.lang), headers, rows))
        out.append(reports.Sheet(t("lines.findings.sheet", self.lang), [t("lines.col.finding", self.lang)],
                                 [[f] for f in self.findings()]))
        return out

    def html_context(self) -> dict[str, Any]:
        lang = self.lang
        tables = {}
        for key, table in (("cancellations", self.cancellations), ("joins", self.joins),
                           ("egress", self.egress_rows)):
            headers, rows = table()
            tables[key] = {"headers": headers, "rows": rows}
        cancelled = [c for c in self.plan.cancellations if c.status == "cancelled"]
        costs: dict[str, float] = {}
        for c in self.plan.cancellations:
            costs[self._dept(c.department)] = costs.get(self._dept(c.department), 0.0) + float(c.annual_cost)
        via_line = sum(f["path"] == "line" for f in self.egress.facts.values()) if self.egress else 0
        saved = sum(float(c.annual_cost) for c in cancelled)
        cards = [{"label": t("lines.card.lines", lang), "value": len(self.plan.cancellations)},
                 {"label": t("lines.card.cancelled", lang), "value": len(cancelled)},
                 {"label": t("lines.card.saved", lang), "value": f"{saved:,.0f}"},
                 {"label": t("lines.card.joins", lang), "value": sum(j.joins for j in self.plan.joins)},
                 {"label": t("lines.card.via_line", lang), "value": via_line},
                 {"label": t("lines.card.findings", lang), "value": len(self.egress.findings) if self.egress else 0}]
        return {"title": t("lines.title", lang),
                "subtitle": t("lines.subtitle", lang, inventory=Path(str(self.inv.root)).name,
                              today=str(self.plan.today)),
                "cards": cards, "tables": tables, "probed": self.egress is not None, "findings": self.findings(),
                "chart": reports.svg_bar_chart(sorted(costs.items()), title=t("lines.html.cost_chart", lang),
                                               value_format="{:,.0f}"),
                "warnings": [i18n.bilingual(w, lang) for w in self.plan.warnings]}

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"inventory": str(self.inv.root), "today": self.plan.today,
                                "migration_plan": self.plan.migration_plan, "network_plan": self.plan.network_plan,
                                "cancellations": [asdict(c) for c in self.plan.cancellations],
                                "joins": [asdict(j) for j in self.plan.joins], "warnings": self.plan.warnings}
        if self.egress is not None:
            data.update(run_id=self.egress.run_id, egress=self.egress.facts, not_probed=self.egress.failed,
                        findings=[{**asdict(f), "message": f.message} for f in self.egress.findings])
        return data


def write_reports(result: LinesPlan | EgressResult, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """`leased-lines.{xlsx,html,json}` (those of `formats`) under `out`; return the paths written."""
    return reports.write_report(LinesReport(result, lang), Path(out), BASENAME, formats, "lines.html.j2", lang=lang,
                                search_paths=[TEMPLATES])
