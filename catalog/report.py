"""The catalog's reports, stable names under the output directory:

- `catalog.xlsx`: 资源目录 (every declared resource, the documents' fields in their order, Chinese headers), 候选资源
  (what collection found and no resource covers yet) and 共享申请 (each request with its due day and state);
- `catalog.json`: the same, with codes and labels;
- `catalog.html`: counts by share type and department, the catalog, the candidates and the requests, overdue
  ones flagged; static and self-contained, as every jiyue page.

Writers and escaping are `jiyue.reports`'; `write_reports` follows `jiyue.reports.WriteReports`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from catalog.model import ENUMERATIONS, CatalogResult, Entry, load_policy
from jiyue import i18n, reports
from jiyue.i18n import enum_label, t

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("xlsx", "json", "html")
BASENAME = "catalog"
# The documents' field order (盘政办发〔2017〕144号, 呼政办发〔2018〕27号); the share type's conditions, scope and
# legal basis follow it, jiyue's own columns come last.
COLUMNS = ("name", "classification", "description", "office", "format", "update_cycle", "publish_date",
           "share_type", "conditions", "scope", "legal_basis", "share_method", "open_attribute", "purpose",
           "system", "location")
CANDIDATE_COLUMNS = ("department", "system", "kind", "name", "location", "format", "evidence")
REQUEST_COLUMNS = ("id", "resource", "by", "on", "due", "answered_on", "decision", "working_days", "state", "note")


def value(entry: Entry, column: str, lang: str = i18n.DEFAULT_LANG) -> Any:
    """One catalog cell as shown: enumerations by label, the providing office with its department."""
    r = entry.resource
    if column in ENUMERATIONS:
        return load_policy().label(ENUMERATIONS[column], getattr(r, column), lang)
    if column in ("share_type", "share_method"):
        return enum_label(column, getattr(r, column), lang)
    if column == "office":
        return f"{entry.department_name} {r.office}"
    if column == "system":
        return f"{entry.system} {entry.system_name}"
    return getattr(r, column)


def catalog_rows(result: CatalogResult, lang: str) -> list[list[Any]]:
    return [[value(e, c, lang) for c in COLUMNS] for e in result.entries]


def candidate_rows(result: CatalogResult, lang: str) -> list[list[Any]]:
    policy = load_policy()
    return [[c.department, c.system, t(f"catalog.kind.{c.kind}", lang), c.name, c.location,
             policy.label("formats", c.format, lang), c.evidence] for c in result.candidates]


def request_rows(result: CatalogResult, lang: str) -> list[list[Any]]:
    return [[r.id, r.resource, r.by, r.on, r.due, r.answered_on,
             t(f"catalog.decision.{r.decision}", lang) if r.decision else "", r.working_days,
             t(f"catalog.state.{r.state}", lang), r.note] for r in result.requests]


def _json(result: CatalogResult) -> dict[str, Any]:
    policy = load_policy()
    resources = []
    for e in result.entries:
        data = e.resource.model_dump(mode="json")
        labels = {c: {lang: value(e, c, lang) for lang in i18n.LANGS}
                  for c in (*ENUMERATIONS, "share_type", "share_method")}
        resources.append({"key": e.key, "system": e.system, "department": e.department, **data, "labels": labels})
    return {"inventory": result.inventory.identity, "as_of": result.as_of,
            "fields": {c: {lang: t(f"catalog.col.{c}", lang) for lang in i18n.LANGS} for c in COLUMNS},
            "resources": resources, "collected": result.collected,
            "candidates": [vars(c) for c in result.candidates],
            "requests": [{**vars(r), "overdue": r.overdue} for r in result.requests],
            "answer_working_days": policy.requests.answer_working_days}


def write_reports(result: CatalogResult, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    i18n.check_lang(lang)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    headers = [t(f"catalog.col.{c}", lang) for c in COLUMNS]
    if "xlsx" in formats:
        written.append(reports.write_xlsx(out / f"{BASENAME}.xlsx", [
            reports.Sheet(t("catalog.sheet.catalog", lang), headers, catalog_rows(result, lang)),
            reports.Sheet(t("catalog.sheet.candidates", lang), [t(f"catalog.col.{c}", lang) for c in CANDIDATE_COLUMNS],
                          candidate_rows(result, lang)),
            reports.Sheet(t("catalog.sheet.requests", lang), [t(f"catalog.req.{c}", lang) for c in REQUEST_COLUMNS],
                          request_rows(result, lang)),
        ]))
    if "json" in formats:
        written.append(reports.write_json(out / f"{BASENAME}.json", _json(result)))
    if "html" in formats:
        written.append(reports.write_html(out / f"{BASENAME}.html", "catalog.html.j2", _html(result, lang),
                                          lang=lang, search_paths=[TEMPLATES]))
    return written


def _html(result: CatalogResult, lang: str) -> dict[str, Any]:
    shares = Counter(e.resource.share_type for e in result.entries)
    by_dept = Counter(e.department_name for e in result.entries)
    return {
        "as_of": result.as_of, "collected": result.collected,
        "headers": [t(f"catalog.col.{c}", lang) for c in COLUMNS], "rows": catalog_rows(result, lang),
        "candidate_headers": [t(f"catalog.col.{c}", lang) for c in CANDIDATE_COLUMNS],
        "candidates": candidate_rows(result, lang),
        "request_headers": [t(f"catalog.req.{c}", lang) for c in REQUEST_COLUMNS],
        "requests": list(zip(request_rows(result, lang), result.requests, strict=True)),
        "days": load_policy().requests.answer_working_days,
        "cards": [(t("catalog.html.resources", lang), len(result.entries)),
                  *((enum_label("share_type", s, lang), n) for s, n in sorted(shares.items())),
                  (t("catalog.sheet.candidates", lang), len(result.candidates)),
                  (t("catalog.html.overdue", lang), sum(r.overdue for r in result.requests))],
        "chart": reports.svg_bar_chart(sorted(by_dept.items(), key=lambda x: -x[1]),
                                       title=t("catalog.html.by_department", lang), value_format="{:,.0f}")
        if by_dept else "",
    }
