"""Baseline reports of a `baseline.check` run (a `BaselineRun`, just checked or read from the store):
Excel, HTML, JSON and JUnit XML, through `write_reports(run, out, formats, lang)`.

Stable names under the output dir:
- `baseline.xlsx`: 汇总 (one row per system: level, hosts, pass rate), 检查结果 (one row per host and
  check with the Chinese headers 控制点, 要求项, 检查项, 结果, 证据, 整改建议), one sheet per system with
  its rows, and the hosts that could not be checked;
- `baseline.html`: self-contained (inline CSS and SVG, no scripts): pass rate by system, results by
  requirement, every failure with its evidence;
- `baseline.json`: the run, every host's rows, the per-system summary;
- `baseline.junit.xml`: one testsuite per host, one testcase per (requirement, check): failures for
  fail, skipped (with the reason) for needs evidence and not applicable; CI systems read it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.baseline.model import FAIL, NEEDS_EVIDENCE, NOT_APPLICABLE, PASS, SEVERITY, BaselineRun
from jiyue import i18n, reports
from jiyue.files import write_atomic
from jiyue.i18n import t
from jiyue.runner import Result
from jiyue.store import BASELINE_CHECK

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
FORMATS = ("xlsx", "html", "json", "junit")
BASENAME = "baseline"
STATUS_COLORS = {PASS: "#2e8b57", FAIL: "#c0392b", NEEDS_EVIDENCE: "#e67e22", NOT_APPLICABLE: "#8e99a4"}


@dataclass
class BaselineReport:
    """A run as the reports show it, labelled in one language."""

    run: BaselineRun
    lang: str

    # --- shared shapes ---------------------------------------------------------------------------

    def _items(self) -> dict[str, Any]:
        return {i.id: i for i in self.run.catalog.items}

    def system_of(self, host: str) -> str:
        inv = self.run.inv
        if host in inv.devices and host not in inv.hosts:  # devices carry many systems: their own group
            return t("baseline.devices", self.lang)
        s = inv.owner(host)
        return s.id if s else ""

    def checked(self) -> list[Result]:
        return self.run.checked()

    def not_checked(self) -> list[Result]:
        return self.run.not_checked()

    def rows(self) -> list[dict[str, Any]]:
        """One row per host and check, labelled in the report's language."""
        items = self._items()
        out = []
        for rec in sorted(self.checked(), key=lambda r: (self.system_of(r.target), r.target)):
            for row in rec.value["rows"]:
                item = items.get(row["item"])
                topic = item.topic[self.lang] if item else ""
                text = item.text[self.lang] if item else ""
                out.append({
                    "host": rec.target, "system": self.system_of(rec.target), "level": rec.value["level"],
                    "os": rec.value.get("os") or "", "item": row["item"], "clause": row["clause"],
                    "control_point": f"{row['clause'].split()[0]} {topic}", "requirement": f"{row['clause']} {text}",
                    "check_id": row["check"], "check": t(f"baseline.check.{row['check']}", self.lang),
                    "status": row["status"], "result": t(f"baseline.status.{row['status']}", self.lang),
                    "summary": row["summary"], "evidence": list(row["evidence"]),
                    "remediation": t(f"baseline.hint.{row['check']}", self.lang) if row["status"] in
                    (FAIL, NEEDS_EVIDENCE) else "",
                })
        return out

    def item_statuses(self) -> dict[tuple[str, str], str]:
        """(host, item) -> the worst status of its checks."""
        worst: dict[tuple[str, str], str] = {}
        for rec in self.checked():
            for row in rec.value["rows"]:
                key = (rec.target, row["item"])
                if key not in worst or SEVERITY[row["status"]] > SEVERITY[worst[key]]:
                    worst[key] = row["status"]
        return worst

    def systems(self) -> list[dict[str, Any]]:
        """Per system: level(s), hosts, item counts by status, pass rate."""
        statuses = self.item_statuses()
        by_system: dict[str, dict[str, Any]] = {}
        for rec in self.checked():
            sid = self.system_of(rec.target) or "-"
            s = by_system.setdefault(sid, {"system": sid, "name": self.run.inv.systems[sid].name if sid in
                                           self.run.inv.systems else "", "levels": set(), "hosts": [],
                                           "counts": Counter()})
            s["levels"].add(rec.value["level"])
            s["hosts"].append(rec.target)
        for (host, _), status in statuses.items():
            by_system[self.system_of(host) or "-"]["counts"][status] += 1
        out = []
        for sid in sorted(by_system):
            s = by_system[sid]
            assessed = s["counts"][PASS] + s["counts"][FAIL] + s["counts"][NEEDS_EVIDENCE]
            out.append({**s, "levels": sorted(s["levels"]), "counts": dict(s["counts"]),
                        "pass_rate": round(100.0 * s["counts"][PASS] / assessed, 1) if assessed else None})
        return out

    # --- formats -------------------------------------------------------------------------------

    def sheets(self) -> list[reports.Sheet]:
        lang = self.lang
        headers = [t(k, lang) for k in ("baseline.host", "baseline.system", "baseline.level", "baseline.control_point",
                                        "baseline.requirement", "baseline.check", "baseline.result",
                                        "baseline.evidence", "baseline.remediation")]
        rows = self.rows()

        def line(r: dict[str, Any]) -> list[Any]:
            evidence = "\n".join([r["summary"], *r["evidence"][:20]])
            return [r["host"], r["system"], r["level"], r["control_point"], r["requirement"], r["check"],
                    r["result"], evidence, r["remediation"]]

        summary_headers = [t(k, lang) for k in ("baseline.system", "baseline.level", "baseline.hosts",
                                                "baseline.items", "baseline.status.pass", "baseline.status.fail",
                                                "baseline.status.needs_evidence", "baseline.status.not_applicable",
                                                "baseline.pass_rate")]
        summary = [[f"{s['system']} {s['name']}".strip(), "/".join(map(str, s["levels"])), len(s["hosts"]),
                    sum(s["counts"].values()), s["counts"].get(PASS, 0), s["counts"].get(FAIL, 0),
                    s["counts"].get(NEEDS_EVIDENCE, 0), s["counts"].get(NOT_APPLICABLE, 0),
                    None if s["pass_rate"] is None else s["pass_rate"] / 100] for s in self.systems()]
        sheets = [reports.Sheet(t("baseline.summary_sheet", lang), summary_headers, summary,
                                number_formats={8: "0.0%"}),
                  reports.Sheet(t("baseline.results_sheet", lang), headers, [line(r) for r in rows], max_width=70)]
        per_system: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            per_system[r["system"] or "-"].append(r)
        for sid, srows in sorted(per_system.items()):
            sheets.append(reports.Sheet(sid, headers, [line(r) for r in srows], max_width=70))
        missing = self.not_checked()
        if missing:
            sheets.append(reports.Sheet(t("baseline.unreachable_sheet", lang),
                                        [t("baseline.host", lang), t("baseline.reason", lang)],
                                        [[r.target, f"{r.error_kind}: {r.error}"] for r in missing]))
        return sheets

    def json(self) -> dict[str, Any]:
        at = min((r.started for r in self.run.results if r.started), default=None)
        return {"run": self.run.run_id, "kind": BASELINE_CHECK, "at": at,
                "systems": self.systems(),
                "hosts": {r.target: r.value for r in self.checked()},
                "not_checked": {r.target: {"reason": r.error_kind, "detail": r.error} for r in self.not_checked()}}

    def junit(self) -> bytes:
        root = ET.Element("testsuites", name="jiyue baseline")
        totals = Counter()
        for rec in sorted(self.checked(), key=lambda r: r.target):
            rows = rec.value["rows"]
            counts = Counter(r["status"] for r in rows)
            suite = ET.SubElement(root, "testsuite", name=rec.target, tests=str(len(rows)),
                                  failures=str(counts[FAIL]), errors="0",
                                  skipped=str(counts[NEEDS_EVIDENCE] + counts[NOT_APPLICABLE]))
            for row in rows:
                case = ET.SubElement(suite, "testcase", classname=f"{rec.target}.{row['clause']}",
                                     name=f"{row['clause']} {row['check']}")
                body = reports.clean_text("\n".join([row["summary"], *row["evidence"]]))
                if row["status"] == FAIL:
                    el = ET.SubElement(case, "failure", message=reports.clean_text(row["summary"])[:500])
                    el.text = body
                elif row["status"] in (NEEDS_EVIDENCE, NOT_APPLICABLE):
                    why = reports.clean_text(row["summary"])[:500]
                    ET.SubElement(case, "skipped", message=f"{row['status']}: {why}")
            totals.update(counts)
        for rec in self.not_checked():
            suite = ET.SubElement(root, "testsuite", name=rec.target, tests="1", failures="0", errors="1")
            case = ET.SubElement(suite, "testcase", classname=rec.target, name="reachable")
            ET.SubElement(case, "error", message=reports.clean_text(f"{rec.error_kind}: {rec.error}")[:500])
        root.set("tests", str(sum(totals.values()) + len(self.not_checked())))
        root.set("failures", str(totals[FAIL]))
        root.set("errors", str(len(self.not_checked())))
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def html_context(self) -> dict[str, Any]:
        lang = self.lang
        systems = self.systems()
        chart = reports.svg_bar_chart(
            [(f"{s['system']} (L{'/'.join(map(str, s['levels']))})", s["pass_rate"] or 0.0) for s in systems],
            title=t("baseline.by_system", lang), unit="%", value_format="{:.1f}%")
        statuses = self.item_statuses()
        by_item: dict[str, Counter] = defaultdict(Counter)
        for (_, item), status in statuses.items():
            by_item[item][status] += 1
        order = [i.id for i in self.run.catalog.items if i.id in by_item]
        item_chart = reports.svg_stacked_bar(
            order, [(t(f"baseline.status.{s}", lang), STATUS_COLORS[s], [by_item[i][s] for i in order])
                    for s in (PASS, FAIL, NEEDS_EVIDENCE, NOT_APPLICABLE)],
            title=t("baseline.by_item", lang))
        rows = self.rows()
        totals = Counter(r["status"] for r in rows)
        return {"title": t("baseline.title", lang), "run": self.run.run_id, "systems": systems,
                "system_chart": chart, "item_chart": item_chart, "totals": totals,
                "failures": [r for r in rows if r["status"] == FAIL],
                "evidence_needed": [r for r in rows if r["status"] == NEEDS_EVIDENCE],
                "not_checked": [(r.target, f"{r.error_kind}: {r.error}") for r in self.not_checked()],
                "hosts": len(self.checked())}


def write_reports(run: BaselineRun, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """The run's reports under `out` (stable names: baseline.xlsx, .html, .json, .junit.xml); the
    jiyue.reports.WriteReports protocol."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
    report = BaselineReport(run, lang)
    out = Path(out)
    written = reports.write_report(report, out, BASENAME, formats, "baseline.html.j2", lang=lang,
                                   search_paths=[TEMPLATES])
    if "junit" in formats:
        written.append(write_atomic(out / f"{BASENAME}.junit.xml", report.junit()))
    return written
