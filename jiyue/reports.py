"""Report writers every domain shares: Excel, CSV, JSON and self-contained HTML with inline SVG charts.

Everything a report shows may come from a host (process names, log lines, user names), so every
writer treats every string as hostile:

- spreadsheets (Excel, CSV): `neutralise` puts a `'` before any text a spreadsheet could take for a
  formula (OWASP "CSV Injection": a cell starting with `=`, `+`, `-`, `@`, tab or carriage return),
  and characters XML cannot hold are removed, so host output can neither run nor break the file;
- HTML: Jinja2 with autoescaping always on; charts are SVG built here with every label escaped;
  pages are static: no scripts, and no external scripts, styles, fonts or images (an archive is
  read offline, on machines that must not reach the internet).

Labels come from `jiyue.i18n` (Chinese by default, English with `lang="en"`). File names are the
caller's, stable per output, and written atomically (a half-written report never replaces a good one).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from jiyue import i18n
from jiyue.files import atomic_path

TEMPLATES = Path(__file__).resolve().parent / "templates"

# OWASP CSV injection: a cell starting with one of these may be read as a formula (tab and CR too,
# since some spreadsheet programs drop them and read what follows).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXCEL_CELL_MAX = 32767  # characters in one Excel cell
SHEET_TITLE_MAX = 31
_SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")


# --- the one report protocol ---------------------------------------------------------------------

R_contra = TypeVar("R_contra", contravariant=True)


class WriteReports(Protocol[R_contra]):
    """What every domain's `report.py` exposes as `write_reports`: the domain's result in, the files out.

    `result` is the one object the domain's service returned (it carries whatever the report needs, the
    inventory included); `formats` picks among the domain's outputs (each domain names its own, e.g.
    `("xlsx", "html", "json")`), in a stable file name per output under `out`; `lang` is "zh" or "en".
    """

    def __call__(self, result: R_contra, out: Path | str, formats: Sequence[str] = ...,
                 lang: str = i18n.DEFAULT_LANG) -> list[Path]: ...


# --- cells ---------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Remove the control characters XML 1.0 cannot carry (NUL, ESC, …); keep tab, newline, CR and U+FFFD."""
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def neutralise(value: Any) -> Any:
    """A cell value safe for a spreadsheet: text that could start a formula gets a leading `'`.

    Numbers, dates and None stay what they are. Text is also checked after leading white space,
    since some importers trim it before deciding what a cell is.
    """
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(FORMULA_TRIGGERS) or value.lstrip().startswith(FORMULA_TRIGGERS[:4]):
        return "'" + value
    return value


def display_width(text: str) -> int:
    """Columns a text takes in a fixed-width grid: CJK and other wide characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def cell_value(value: Any) -> Any:
    """A Python value as a spreadsheet cell: numbers, dates and None as they are, everything else as
    neutralised text without XML-illegal characters, cut to Excel's cell limit."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # Excel has no time zones: keep the zone visible as text
            return value.isoformat(timespec="seconds")
        return value
    if isinstance(value, date):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, list | tuple | set | frozenset):
        value = "; ".join(str(v) for v in value)
    text = clean_text(str(value))
    if len(text) > EXCEL_CELL_MAX - 20:
        text = text[: EXCEL_CELL_MAX - 20] + " …[truncated]"
    return neutralise(text)


# --- files ---------------------------------------------------------------------------------------


@dataclass
class Sheet:
    """One worksheet: a title, one header row and data rows (any cell values; see `cell_value`).

    `total_rows` marks that many rows at the end as totals (bold, outside the autofilter range).
    """

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    total_rows: int = 0
    max_width: int = 60  # wider columns wrap their text
    number_formats: Mapping[int, str] = field(default_factory=dict)  # column index -> Excel format


def sheet_title(name: str, used: set[str] | None = None) -> str:
    """A valid, unique sheet title: at most 31 characters, none of []:*?/\\, not blank."""
    title = _SHEET_TITLE_BAD.sub("_", clean_text(name)).strip().strip("'") or "Sheet"
    title = title[:SHEET_TITLE_MAX]
    if used is not None:
        base, n = title, 2
        while title.casefold() in {u.casefold() for u in used}:
            suffix = f"~{n}"
            title = base[: SHEET_TITLE_MAX - len(suffix)] + suffix
            n += 1
        used.add(title)
    return title


HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")
TOTAL_FONT = Font(bold=True)
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")


def write_xlsx(path: Path | str, sheets: Iterable[Sheet]) -> Path:
    """An Excel workbook: per sheet a bold, frozen header row, an autofilter over the data, column
    widths from the content (CJK counted double) and wrapped text in long columns."""
    path = Path(path)
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for sheet in sheets:
        ws = wb.create_sheet(sheet_title(sheet.title, used))
        headers = [cell_value(h) for h in sheet.headers]
        ws.append(headers)
        for row in sheet.rows:
            ws.append([cell_value(v) for v in row])
        ncols = max(len(headers), 1)
        last = get_column_letter(ncols)
        for cell in ws[1]:
            cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, WRAP_TOP
        ws.freeze_panes = "A2"
        data_end = ws.max_row - sheet.total_rows
        ws.auto_filter.ref = f"A1:{last}{max(data_end, 1)}"
        widths = [display_width(str(h)) for h in headers] + [0] * (ncols - len(headers))
        multiline = [False] * ncols
        for row in ws.iter_rows(min_row=2):
            for i, cell in enumerate(row[:ncols]):
                if isinstance(cell.value, str):
                    lines = cell.value.split("\n")
                    widths[i] = max(widths[i], *(display_width(x) for x in lines))
                    multiline[i] |= len(lines) > 1
                elif cell.value is not None:
                    widths[i] = max(widths[i], len(str(cell.value)))
        for i in range(ncols):
            wrap = widths[i] > sheet.max_width or multiline[i]
            ws.column_dimensions[get_column_letter(i + 1)].width = min(max(widths[i], 4), sheet.max_width) + 2
            fmt = sheet.number_formats.get(i)
            for (cell,) in ws.iter_rows(min_row=2, min_col=i + 1, max_col=i + 1):
                cell.alignment = WRAP_TOP if wrap else TOP
                if fmt and isinstance(cell.value, int | float | Decimal):
                    cell.number_format = fmt
                elif isinstance(cell.value, date | datetime):
                    cell.number_format = "yyyy-mm-dd" if not isinstance(cell.value, datetime) else "yyyy-mm-dd hh:mm"
        for r in range(data_end + 1, ws.max_row + 1):
            for cell in ws[r]:
                cell.font = TOTAL_FONT
    if not wb.worksheets:
        wb.create_sheet("Sheet")
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return path


def write_csv(path: Path | str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """CSV in UTF-8 with a byte-order mark (so Excel reads Chinese correctly), every cell neutralised."""
    path = Path(path)

    def text(value: Any) -> Any:
        value = cell_value(value)
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([text(h) for h in headers])
        for row in rows:
            writer.writerow([text(v) for v in row])
    return path


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def write_json(path: Path | str, data: Any) -> Path:
    """JSON in UTF-8, Chinese kept readable (ensure_ascii=False), dates as ISO 8601."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=json_default) + "\n", encoding="utf-8")
    return path


def write_yaml(path: Path | str, data: Any, header: str = "") -> Path:
    """A reviewable YAML file (plans people read and edit): comment header, keys in their order, Chinese
    kept readable; written atomically, so an interrupted write never leaves half a plan behind."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --- HTML ----------------------------------------------------------------------------------------


def _finalize(value: Any) -> Any:
    """Every value a template prints loses XML-illegal control characters (escaping happens after)."""
    if isinstance(value, Markup):
        return Markup(clean_text(str(value)))
    if isinstance(value, str):
        return clean_text(value)
    return "" if value is None else value


def _number(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{value:,.{digits}f}"
    return str(value)


def html_environment(lang: str = i18n.DEFAULT_LANG, search_paths: Sequence[Path | str] = ()) -> Environment:
    """Jinja2 for reports: autoescape always on, undefined names are errors, `t()` gives labels.

    `search_paths` are a domain's own template folders, searched before `jiyue/templates` (which
    holds `base.html.j2`, the layout every report page extends)."""
    loader = ChoiceLoader([FileSystemLoader([str(p) for p in search_paths]), FileSystemLoader(str(TEMPLATES))])
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined, finalize=_finalize,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.globals.update(t=i18n.translator(lang), lang=lang, html_lang="zh-CN" if lang == "zh" else "en",
                       enum_label=lambda prefix, value: i18n.enum_label(prefix, value, lang))
    env.filters["number"] = _number
    env.filters["bilingual"] = lambda text: i18n.bilingual(str(text), lang)
    return env


def render_html(template: str, context: Mapping[str, Any], *, lang: str = i18n.DEFAULT_LANG,
                search_paths: Sequence[Path | str] = ()) -> str:
    i18n.check_lang(lang)
    context = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), **context}
    return html_environment(lang, search_paths).get_template(template).render(**context)


def write_html(path: Path | str, template: str, context: Mapping[str, Any], *, lang: str = i18n.DEFAULT_LANG,
               search_paths: Sequence[Path | str] = ()) -> Path:
    path = Path(path)
    html = render_html(template, context, lang=lang, search_paths=search_paths)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path


class Report(Protocol):
    """A domain's report of one result: its Excel sheets, its HTML page's context and its JSON."""

    def sheets(self) -> Iterable[Sheet]: ...
    def html_context(self) -> Mapping[str, Any]: ...
    def json(self) -> Any: ...


def write_report(report: Report, folder: Path, basename: str, formats: Sequence[str], template: str, *,
                 lang: str = i18n.DEFAULT_LANG, search_paths: Sequence[Path | str] = ()) -> list[Path]:
    """`basename.xlsx`, `.html` (from `template`) and `.json` of `report`, those of `formats`, under `folder`
    (created if missing): the part every domain's `write_reports` shares; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if "xlsx" in formats:
        written.append(write_xlsx(folder / f"{basename}.xlsx", report.sheets()))
    if "html" in formats:
        written.append(write_html(folder / f"{basename}.html", template, report.html_context(), lang=lang,
                                  search_paths=search_paths))
    if "json" in formats:
        written.append(write_json(folder / f"{basename}.json", report.json()))
    return written


# --- inline SVG charts ---------------------------------------------------------------------------
# Built as text here so that every label goes through `escape` exactly once; returned as Markup so
# templates insert them as they are. Sizes are in CSS pixels; fonts come from the page.

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#2f4b7c", "#a05195", "#d45087", "#665191", "#008080", "#7a5195")
_ids = itertools.count(1)


def palette(n: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def _e(value: Any) -> str:
    return str(escape(clean_text(str(value))))


def fit_text(text: str, width: int) -> str:
    """Cut a label to `width` display columns, with an ellipsis."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _text_px(text: str, font_px: float = 12) -> float:
    return display_width(text) * font_px * 0.55


def _fmt(value: float, fmt: str) -> str:
    return fmt.format(value)


def svg_bar_chart(items: Sequence[tuple[str, float]], *, title: str = "", unit: str = "", width: int = 760,
                  bar_height: int = 16, color: str = "#4e79a7", threshold: float | None = None,
                  threshold_label: str = "", value_format: str = "{:,.1f}", max_label: int = 40,
                  colors: Sequence[str] | None = None, max_value: float | None = None) -> Markup:
    """A horizontal bar chart: one labelled bar per item, its value written after the bar; an
    optional dashed threshold line (e.g. an idle threshold). `max_value` fixes the scale (100 for shares)."""
    labels = [fit_text(clean_text(str(label)), max_label) for label, _ in items]
    values = [max(float(v or 0), 0.0) for _, v in items]
    label_w = min(max([_text_px(x) for x in labels] + [40]) + 12, width * 0.45)
    value_w = 90
    plot_w = max(width - label_w - value_w, 50)
    top = 22 if title else 6
    row = bar_height + 6
    height = top + row * max(len(items), 1) + (18 if threshold is not None else 6)
    top_value = max([*values, threshold or 0, max_value or 0, 1e-9])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">', f"<title>{_e(title)}</title>"]
    if title:
        parts.append(f'<text x="0" y="14" class="chart-title">{_e(title)}</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        w = plot_w * value / top_value
        fill = colors[i] if colors else color
        full = f"{items[i][0]}: {_fmt(value, value_format)} {unit}".strip()
        parts.append(f'<g><title>{_e(full)}</title>'
                     f'<text x="{label_w - 6:.1f}" y="{y + bar_height - 4}" text-anchor="end">{_e(label)}</text>'
                     f'<rect x="{label_w:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_height}" '
                     f'fill="{_e(fill)}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height - 4}" class="chart-value">'
                     f'{_e(_fmt(value, value_format))} {_e(unit)}</text></g>')
    if threshold is not None:
        x = label_w + plot_w * threshold / top_value
        bottom = top + row * len(items)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{bottom}" class="threshold"/>'
                     f'<text x="{x:.1f}" y="{bottom + 13}" text-anchor="middle" class="chart-note">'
                     f'{_e(threshold_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_stacked_bar(categories: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *,
                    title: str = "", width: int = 760, bar_height: int = 18, max_label: int = 30) -> Markup:
    """Horizontal stacked bars: one bar per category, one coloured segment per series
    (`series` = [(name, colour, values per category)]), with a legend above."""
    labels = [fit_text(clean_text(str(c)), max_label) for c in categories]
    totals = [sum(float(s[2][i] or 0) for s in series) for i in range(len(categories))]
    label_w = min(max([_text_px(x) for x in labels] + [40]) + 12, width * 0.4)
    plot_w = max(width - label_w - 50, 50)
    legend_y = 22 if title else 6
    top = legend_y + 22
    row = bar_height + 6
    height = top + row * max(len(categories), 1) + 6
    scale = plot_w / max([*totals, 1e-9])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">', f"<title>{_e(title)}</title>"]
    if title:
        parts.append(f'<text x="0" y="14" class="chart-title">{_e(title)}</text>')
    x = label_w
    for name, colour, _ in series:
        parts.append(f'<rect x="{x:.1f}" y="{legend_y + 2}" width="12" height="12" fill="{_e(colour)}"/>'
                     f'<text x="{x + 16:.1f}" y="{legend_y + 12}">{_e(name)}</text>')
        x += 16 + _text_px(name) + 18
    for i, label in enumerate(labels):
        y = top + i * row
        parts.append(f'<text x="{label_w - 6:.1f}" y="{y + bar_height - 4}" text-anchor="end">{_e(label)}</text>')
        x = label_w
        for name, colour, values in series:
            v = float(values[i] or 0)
            if v <= 0:
                continue
            w = v * scale
            parts.append(f'<g><title>{_e(categories[i])}: {_e(name)} {_e(_fmt(v, "{:g}"))}</title>'
                         f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{_e(colour)}"/>')
            if w >= 16:
                parts.append(f'<text x="{x + w / 2:.1f}" y="{y + bar_height - 4}" text-anchor="middle" '
                             f'class="chart-inside">{_e(_fmt(v, "{:g}"))}</text>')
            parts.append("</g>")
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_height - 4}" class="chart-value">'
                     f'{_e(_fmt(totals[i], "{:g}"))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    group: str  # nodes of one group share a colour (e.g. a department)
    title: str = ""  # tooltip
    emphasis: bool = False  # drawn with a heavy red border (e.g. a zombie)


@dataclass(frozen=True)
class GraphEdge:
    source: str  # the dependent
    target: str  # what it depends on
    kind: str = "declared"  # a key of `edge_styles`
    title: str = ""


EDGE_STYLES = {"declared": ("#555555", ""), "measured": ("#1f77b4", "6 4")}


def dependency_layers(nodes: Iterable[str], depends_on: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Layer of each node: 0 if it depends on nothing, else one more than the deepest thing it
    depends on. Edges closing a cycle are ignored, so mutual dependencies share a layer. Deterministic."""
    nodes = sorted(set(nodes))
    known = set(nodes)
    deps = {n: sorted(d for d in depends_on.get(n, ()) if d in known and d != n) for n in nodes}
    layer: dict[str, int] = {}
    for start in nodes:
        if start in layer:
            continue
        # iterative DFS: (node, index of the next dependency to visit)
        stack: list[tuple[str, int]] = [(start, 0)]
        on_stack = {start}
        while stack:
            node, i = stack[-1]
            if i < len(deps[node]):
                stack[-1] = (node, i + 1)
                nxt = deps[node][i]
                if nxt not in layer and nxt not in on_stack:
                    stack.append((nxt, 0))
                    on_stack.add(nxt)
                continue
            layer[node] = 1 + max((layer[d] for d in deps[node] if d in layer), default=-1)
            stack.pop()
            on_stack.discard(node)
    return layer


def svg_graph(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], *, group_colors: Mapping[str, str],
              group_labels: Mapping[str, str] | None = None, edge_labels: Mapping[str, str] | None = None,
              isolated_label: str = "", title: str = "", node_width: int = 210, node_height: int = 24,
              col_gap: int = 70, row_gap: int = 8, max_width: int = 1300) -> Markup:
    """A dependency graph, laid out deterministically: nodes with edges in columns by dependency
    depth (what depends on nothing on the left, dependents to the right), nodes without any edge in
    a grid below. Edges run from a dependent to what it depends on; `kind` picks the line style."""
    by_id = {n.id: n for n in nodes}
    edges = [e for e in edges if e.source in by_id and e.target in by_id and e.source != e.target]
    linked = {e.source for e in edges} | {e.target for e in edges}
    deps: dict[str, set[str]] = {}
    for e in edges:
        deps.setdefault(e.source, set()).add(e.target)
    layers = dependency_layers(linked, deps)
    group_order = {g: i for i, g in enumerate(group_colors)}

    def order(n: GraphNode) -> tuple:
        return (group_order.get(n.group, len(group_order)), n.group, n.id)

    columns: dict[int, list[GraphNode]] = {}
    for node_id, lay in layers.items():
        columns.setdefault(lay, []).append(by_id[node_id])
    for col in columns.values():
        col.sort(key=order)
    isolated = sorted((n for n in nodes if n.id not in linked), key=order)
    per_row = max(1, (max_width - 4) // (node_width + 12))
    graph_right = (max(columns, default=-1) + 1) * (node_width + col_gap) - col_gap + 4
    width = int(max(graph_right + 40, min(len(isolated), per_row) * (node_width + 12), 400)) + 8
    # legend: groups, then edge kinds, wrapped into rows of the chart's width
    legend: list[tuple[str, str, str, float]] = []
    for group, colour in group_colors.items():
        name = (group_labels or {}).get(group, group)
        legend.append(("group", colour, name, 16 + _text_px(name) + 14))
    for kind in EDGE_STYLES:
        name = (edge_labels or {}).get(kind, kind)
        legend.append(("edge", kind, name, 34 + _text_px(name) + 14))
    legend_pos: list[tuple[float, float]] = []
    x, ly = 4.0, (22 if title else 4) + 4
    for *_, w in legend:
        if x > 4 and x + w > width:
            x, ly = 4.0, ly + 18
        legend_pos.append((x, ly))
        x += w
    top = ly + 18 + 10
    pos: dict[str, tuple[float, float]] = {}
    for lay, col in columns.items():
        for i, n in enumerate(col):
            pos[n.id] = (lay * (node_width + col_gap) + 4, top + i * (node_height + row_gap))
    graph_bottom = max((y + node_height for _, y in pos.values()), default=top)
    iso_top = graph_bottom + (40 if isolated else 0)
    for i, n in enumerate(isolated):
        pos[n.id] = (4 + (i % per_row) * (node_width + 12), iso_top + (i // per_row) * (node_height + row_gap))
    height = int(max((y + node_height for _, y in pos.values()), default=top)) + 10
    uid = f"g{next(_ids)}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart graph" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
             f"<title>{_e(title)}</title><defs>"]
    for kind, (colour, _) in EDGE_STYLES.items():
        parts.append(f'<marker id="{uid}-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                     f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
                     "</marker>")
    parts.append("</defs>")
    if title:
        parts.append(f'<text x="0" y="14" class="chart-title">{_e(title)}</text>')
    for (what, key, name, _), (x, ly) in zip(legend, legend_pos, strict=True):
        if what == "group":
            parts.append(f'<rect x="{x:.1f}" y="{ly}" width="12" height="12" fill="{_e(key)}"/>'
                         f'<text x="{x + 16:.1f}" y="{ly + 11}">{_e(name)}</text>')
            continue
        colour, dash = EDGE_STYLES[key]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x:.1f}" y1="{ly + 6}" x2="{x + 28:.1f}" y2="{ly + 6}" stroke="{colour}" '
                     f'stroke-width="1.6"{dash_attr} marker-end="url(#{uid}-{key})"/>'
                     f'<text x="{x + 34:.1f}" y="{ly + 11}">{_e(name)}</text>')
    for e in sorted(edges, key=lambda e: (e.source, e.target, e.kind)):
        (sx, sy), (tx, ty) = pos[e.source], pos[e.target]
        sy, ty = sy + node_height / 2, ty + node_height / 2
        if layers[e.target] < layers[e.source]:  # the usual case: to the left
            x1, x2 = sx, tx + node_width
            c1, c2 = x1 - col_gap / 2, x2 + col_gap / 2
        elif layers[e.target] > layers[e.source]:  # an edge that closed a cycle: to the right
            x1, x2 = sx + node_width, tx
            c1, c2 = x1 + col_gap / 2, x2 - col_gap / 2
        else:  # same column: an arc on the right side
            x1 = x2 = sx + node_width
            c1 = c2 = x1 + col_gap * 0.6
        colour, dash = EDGE_STYLES.get(e.kind, EDGE_STYLES["declared"])
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        marker = e.kind if e.kind in EDGE_STYLES else "declared"
        parts.append(f'<path d="M{x1:.1f},{sy:.1f} C{c1:.1f},{sy:.1f} {c2:.1f},{ty:.1f} {x2:.1f},{ty:.1f}" '
                     f'fill="none" stroke="{colour}" stroke-width="1.4"{dash_attr} '
                     f'marker-end="url(#{uid}-{marker})"><title>{_e(e.title or f"{e.source} → {e.target}")}'
                     "</title></path>")
    if isolated and isolated_label:
        parts.append(f'<text x="4" y="{iso_top - 12}" class="chart-note">{_e(isolated_label)}</text>')
    for n in nodes:
        x, y = pos[n.id]
        colour = group_colors.get(n.group, "#999999")
        stroke = ' stroke="#c00000" stroke-width="2.5"' if n.emphasis else f' stroke="{_e(colour)}" stroke-width="1"'
        parts.append(f'<g><title>{_e(n.title or n.label)}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_width}" height="{node_height}" rx="4" '
                     f'fill="{_e(colour)}" fill-opacity="0.18"{stroke}/>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="5" height="{node_height}" rx="2" fill="{_e(colour)}"/>'
                     f'<text x="{x + 10:.1f}" y="{y + node_height / 2 + 4:.1f}">'
                     f'{_e(fit_text(n.label, int((node_width - 14) / 6.6)))}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_line_chart(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]], *,
                   title: str = "", width: int = 760, height: int = 240, y_max: float = 100.0, unit: str = "%",
                   target: Sequence[float | None] | None = None, target_label: str = "") -> Markup:
    """Lines over a shared x axis (`labels`, e.g. dates, evenly spaced), one per series (`series` = [(name,
    colour, values)]; None leaves a gap), y from 0 to `y_max`, a legend above; an optional dashed `target`
    line (e.g. the share a steady pace expects)."""
    legend_y = 22 if title else 6
    top, left, right, bottom = legend_y + 26, 44, 16, 36
    plot_w, plot_h = max(width - left - right, 50), max(height - top - bottom, 40)
    n = max(len(labels), 1)

    def px(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), y_max) / y_max) if y_max else top + plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">', f"<title>{_e(title)}</title>"]
    if title:
        parts.append(f'<text x="0" y="14" class="chart-title">{_e(title)}</text>')
    x = float(left)
    legend = [(name, colour, "") for name, colour, _ in series]
    if target is not None:
        legend.append((target_label, "#c0392b", "4 3"))
    for name, colour, dash in legend:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x:.1f}" y1="{legend_y + 8}" x2="{x + 18:.1f}" y2="{legend_y + 8}" '
                     f'stroke="{_e(colour)}" stroke-width="2.5"{dash_attr}/>'
                     f'<text x="{x + 22:.1f}" y="{legend_y + 12}">{_e(name)}</text>')
        x += 22 + _text_px(name) + 18
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y = py(y_max * frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#d5dbe1" '
                     f'stroke-width="1"/><text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="chart-note">'
                     f'{_e(_fmt(y_max * frac, "{:g}"))}{_e(unit)}</text>')
    step = max(1, math.ceil(len(labels) / max(plot_w // 70, 1)))
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{px(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="chart-note">'
                         f'{_e(fit_text(str(label), 12))}</text>')
    lines = [*(("", colour, values, "") for _, colour, values in series)]
    if target is not None:
        lines.append(("", "#c0392b", target, "4 3"))
    for (_, colour, values, dash), name in zip(lines, [s[0] for s in series] + [target_label], strict=False):
        runs: list[list[tuple[float, float, float]]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((px(i), py(float(v)), float(v)))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for run in (r for r in runs if r):
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b, _ in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{_e(colour)}" stroke-width="2"'
                         f'{dash_attr}/>')
            if not dash:
                parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{_e(colour)}"><title>{_e(name)}: '
                          f'{_e(_fmt(v, "{:g}"))}{_e(unit)}</title></circle>' for a, b, v in run]
    parts.append("</svg>")
    return Markup("".join(parts))
