"""The undeclared-hosts report (`invoke audit.discover`): Excel with Chinese headers, self-contained HTML, JSON,
and the draft records for `inventory.import --from-discovery` (`discovered.yaml`).

Stable names under the output dir: `discovery.xlsx`, `discovery.html`, `discovery.json`, `discovered.yaml`.
Writers and escaping are jiyue.reports'; every string from a host (banners, process names) is treated as
hostile there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.discover import draft_records
from audit.model import Discovery, FoundHost
from jiyue import i18n, reports
from jiyue.i18n import t

TEMPLATES = Path(__file__).resolve().parent / "templates"
BASENAME = "discovery"
DRAFT_FILE = "discovered.yaml"
FORMATS = ("xlsx", "html", "json")


def kind_of(f: FoundHost) -> str:
    return "windows" if f.windows else "linux" if 22 in f.ports else "other"


def as_json(result: Discovery) -> dict[str, Any]:
    return {
        "kind": "audit.discover", "run_id": result.run_id, "collect_run_id": result.collect_run_id,
        "inventory": str(result.inventory.root), "started": result.started, "seconds": result.seconds,
        "networks": result.networks, "ports": result.ports, "rate": result.rate, "excluded": result.excluded,
        "nmap": result.nmap_args,
        "undeclared": [{**f.as_dict(), "finding": kind_of(f)} for f in result.undeclared],
        "declared_answering": [f.as_dict() for f in result.found if not f.undeclared],
        "silent": [s.as_dict() for s in result.silent],
        "drafts": [d.as_dict() for d in result.drafts], "draft_records": draft_records(result),
        "draft_file": str(result.draft_file) if result.draft_file else None, "notes": result.notes,
    }


def _undeclared_rows(result: Discovery, lang: str) -> list[list[Any]]:
    rows = []
    for f in result.undeclared:
        collection = t("discover.collection.ok", lang) if f.collection == "ok" else \
            f.collection or t("discover.collection.none", lang)
        rows.append([f.address, f.name, ", ".join(map(str, f.ports)), f.ssh_banner, f.reverse_name, f.mac,
                     t(f"discover.kind.{kind_of(f)}", lang), collection, f.collection_error])
    return rows


UNDECLARED_COLUMNS = ("address", "name", "ports", "ssh_banner", "reverse_name", "mac", "kind", "collection", "detail")
SILENT_COLUMNS = ("record", "address", "type", "system")
DRAFT_COLUMNS = ("id", "hosts", "services", "depends_on", "dependents", "evidence")


def _draft_rows(result: Discovery) -> list[list[Any]]:
    return [[d.id, ", ".join(d.hosts), ", ".join(f"{s.host}:{s.port} ({s.process})" for s in d.services),
             ", ".join(d.depends_on), ", ".join(d.dependents), "\n".join(d.evidence)] for d in result.drafts]


def write_reports(result: Discovery, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write `discovery.{xlsx,html,json}` (those of `formats`) and, when drafts were proposed, `discovered.yaml`
    under `out`; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if result.drafts:
        result.draft_file = reports.write_yaml(
            out / DRAFT_FILE, draft_records(result),
            header=("# Draft records proposed by audit.discover for undeclared hosts (未登记主机草稿记录).\n"
                    f"# Preview: invoke inventory.import --from-discovery {out / DRAFT_FILE} [--inventory DIR]\n"
                    "# then --apply; complete the drafts in the survey workbooks (inventory.survey).\n"))
        written.append(result.draft_file)
    silent_rows = [[s.name, s.address, t(f"discover.kind.{s.kind}", lang), s.system] for s in result.silent]
    scan_rows = [[t("discover.item.networks", lang), ", ".join(result.networks)],
                 [t("discover.item.ports", lang), ", ".join(map(str, result.ports))],
                 [t("discover.item.rate", lang), result.rate],
                 [t("discover.item.excluded", lang), len(result.excluded)],
                 [t("discover.item.started", lang), result.started],
                 [t("discover.item.run", lang), result.run_id or ""],
                 *[[t("discover.item.nmap", lang), a] for a in result.nmap_args]]
    if "json" in formats:
        written.append(reports.write_json(out / f"{BASENAME}.json", as_json(result)))
    if "xlsx" in formats:
        col = lambda names: [t(f"discover.col.{c}", lang) for c in names]  # noqa: E731
        written.append(reports.write_xlsx(out / f"{BASENAME}.xlsx", [
            reports.Sheet(t("discover.sheet.undeclared", lang), col(UNDECLARED_COLUMNS),
                          _undeclared_rows(result, lang)),
            reports.Sheet(t("discover.sheet.silent", lang), col(SILENT_COLUMNS), silent_rows),
            reports.Sheet(t("discover.sheet.drafts", lang), col(DRAFT_COLUMNS), _draft_rows(result)),
            reports.Sheet(t("discover.sheet.scan", lang), col(("item", "value")), scan_rows)]))
    if "html" in formats:
        cards = [(len(result.found), t("discover.live", lang), "#4e79a7"),
                 (len(result.undeclared), t("discover.undeclared", lang), "#c0392b"),
                 (len(result.windows), t("discover.windows", lang), "#e67e22"),
                 (len(result.silent), t("discover.silent", lang), "#8e99a4"),
                 (len(result.drafts), t("discover.drafts", lang), "#2e8b57")]
        chart = reports.svg_bar_chart([(f.address, float(len(f.ports))) for f in result.undeclared],
                                      title=t("discover.chart", lang), value_format="{:,.0f}")
        context = {
            "title": t("discover.title", lang),
            "subtitle": t("discover.subtitle", lang, networks=", ".join(result.networks),
                          ports=",".join(map(str, result.ports)), rate=result.rate, seconds=result.seconds),
            "cards": [{"value": v, "label": label, "color": c} for v, label, c in cards],
            "excluded": t("discover.excluded", lang, n=len(result.excluded)), "chart": chart,
            "undeclared_headers": [t(f"discover.col.{c}", lang) for c in UNDECLARED_COLUMNS],
            "undeclared": _undeclared_rows(result, lang),
            "windows_note": t("discover.windows_note", lang) if result.windows else "",
            "silent_headers": [t(f"discover.col.{c}", lang) for c in SILENT_COLUMNS], "silent": silent_rows,
            "draft_headers": [t(f"discover.col.{c}", lang) for c in DRAFT_COLUMNS], "drafts": _draft_rows(result),
            "next": t("discover.next", lang, file=result.draft_file) if result.draft_file else "",
            "host_key_note": t("discover.host_key_note", lang) if "host_key" in result.notes else "",
            "scan": scan_rows,
        }
        written.append(reports.write_html(out / f"{BASENAME}.html", "discovery.html.j2", context, lang=lang,
                                          search_paths=[TEMPLATES]))
    return written
