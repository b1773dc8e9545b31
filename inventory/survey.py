"""Survey workbooks (调查表), out and back: one per department, for its staff to check and complete.

Out (`write_survey`): sheets 部门, 系统 and 主机 with the archive's field names as headers (the `archive.*`
labels the audit's archive shows: one source of names), the known records prefilled, drafts included, a
drop-down for every enumeration (from the model's enums, listed on the 选项 sheet), measured facts from the
audit history in grey, protected columns, and an instructions sheet in Chinese and English. A fourth sheet,
资源目录, lists the information resource catalog of the department's systems (`System.resources`, the catalog's
fields in the documents' order) and below it the candidates collection proposes (`catalog.candidates`), marked
candidate: they are imported only once a department completes one and marks it declared. Text is
neutralised as every jiyue spreadsheet is (`jiyue.reports.cell_value`: a leading = + - @ gets a `'`).

Back (`read_survey`): every problem of every cell, as `survey-fgw.xlsx:系统!F12: frequency: …`, and one
`Proposal` per row (matched to its record by id) for `inventory.importer` to compare and write. Formulas,
merged cells, hidden sheets and hidden rows with data are refused, each named; dates are read from date
cells, from text (2019-03-15, 2019/3/15, 2019年3月15日) and from Excel serial numbers. Catalog rows are no
records of their own: they become their system's `resources` value, each cell's place kept for the messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.worksheet.datavalidation import DataValidation

from inventory import importer
from inventory.importer import FieldPath, Proposal
from inventory.model import (
    Category,
    Classification,
    DataResource,
    DeptLevel,
    Frequency,
    GoldenNetwork,
    OsFamily,
    ProtectionScheme,
    ShareMethod,
    ShareType,
    Zone,
)
from jiyue import reports
from jiyue.files import atomic_path
from jiyue.i18n import enum_label, t

SPARE_ROWS = 100  # empty, editable rows under the records, for new ones
LIST_SPLIT = re.compile(r"[、,，;；\n]+")
GREY = PatternFill("solid", fgColor="E7E6E6")
HEADER = PatternFill("solid", fgColor="DCE6F1")
YES, NO = "report.yes", "report.no"


@dataclass(frozen=True)
class Column:
    """One survey column: its label (the archive's name), where its value lives in the record and how it reads."""

    field: str
    label: str
    path: FieldPath = ()
    kind: str = "text"  # text | int | money | date | enum | bool | list | level | measured
    enum: type[Enum] | None = None
    prefix: str = ""  # the enum's label prefix (jiyue.i18n.enum_label)
    policy: str = ""  # or: the enumeration of catalog/policy.yaml whose values (and labels) the column takes
    required: bool = False
    sep: str = ", "
    measure: Callable[[Mapping[str, Any], Any], Any] | None = None  # (record, measured facts) -> value


@dataclass(frozen=True)
class SheetSpec:
    label: str
    section: str
    columns: tuple[Column, ...]

    @property
    def key(self) -> Column:
        return self.columns[0]


def _resources(record: Mapping[str, Any], m: Any) -> str:
    return m.system_resources(record) if m else ""


def _host_fact(name: str) -> Callable[[Mapping[str, Any], Any], Any]:
    return lambda record, m: m.host(record.get("name"), name) if m else None


DEPARTMENT = SheetSpec("survey.sheet.department", "departments", (
    Column("code", "survey.department.code", ("code",), required=True),
    Column("name", "survey.department.name", ("name",), required=True),
    Column("level", "department.level", ("level",), "enum", DeptLevel, "level", required=True),
    Column("parent", "survey.department.parent", ("parent",)),
))
SYSTEMS = SheetSpec("survey.sheet.systems", "systems", (
    Column("id", "archive.id", ("id",), required=True),
    Column("name", "archive.name", ("name",), required=True),
    Column("office", "archive.office", ("office",)),
    Column("function", "archive.function", ("function",), required=True),
    Column("category", "archive.category", ("category",), "enum", Category, "category", required=True),
    Column("user_units", "archive.user_units", ("scope", "user_units"), "list", required=True, sep="、"),
    Column("declared_users", "archive.declared_users", ("scope", "declared_users"), "int", required=True),
    Column("frequency", "archive.frequency", ("frequency",), "enum", Frequency, "frequency", required=True),
    Column("approval_department", "archive.approval_department", ("approval", "department"), required=True),
    Column("approval_date", "archive.approval_date", ("approval", "date"), "date", required=True),
    Column("funding_source", "archive.funding_source", ("funding", "source"), required=True),
    Column("funding_amount", "archive.funding_amount", ("funding", "amount"), "money", required=True),
    Column("build_year", "archive.build_year", ("build_year",), "int", required=True),
    Column("vendor", "archive.vendor", ("vendor",), required=True),
    Column("classification", "archive.classification", ("classification",), "enum", Classification,
           "classification", required=True),
    Column("protection_level", "archive.protection_level", ("protection",), "level", required=True),
    Column("filing_number", "archive.filing_number", ("protection", "filing_number")),
    Column("zone", "archive.zone", ("zone",), "enum", Zone, "zone", required=True),
    Column("golden_network", "archive.golden_network", ("golden_network",), "enum", GoldenNetwork, "golden"),
    Column("website", "archive.website", ("website",), "bool"),
    Column("depends_on", "archive.depends_on", ("depends_on",), "list"),
    Column("hosts", "archive.hosts", ("hosts",), "list"),
    Column("resources", "archive.resources", kind="measured", measure=_resources),
))
HOSTS = SheetSpec("survey.sheet.hosts", "hosts", (
    Column("name", "survey.host.name", ("name",), required=True),
    Column("address", "assets.address", ("address",), required=True),
    Column("os_family", "survey.host.os_family", ("os_family",), "enum", OsFamily, "os_family", required=True),
    Column("os", "survey.host.os", ("os",), required=True),
    Column("role", "survey.host.role", ("role",), required=True),
    Column("ssh_user", "survey.host.ssh_user", ("ssh", "user")),
    Column("ssh_port", "survey.host.ssh_port", ("ssh", "port"), "int"),
    Column("os_measured", "survey.host.os_measured", kind="measured", measure=_host_fact("os")),
    Column("cpus", "assets.cpu", kind="measured", measure=_host_fact("cpus")),
    Column("memory_gb", "assets.memory_gb", kind="measured", measure=_host_fact("memory_gb")),
    Column("disk_gb", "assets.disk_gb", kind="measured", measure=_host_fact("disk_gb")),
    Column("last_collected", "assets.last_collected", kind="measured", measure=_host_fact("last_collected")),
))


class CatalogStatus(StrEnum):
    """A catalog row's status: a declared resource, or a candidate collection proposed (not imported until a
    department completes it and marks it declared)."""

    declared = "declared"
    candidate = "candidate"


def _evidence(record: Mapping[str, Any], m: Any) -> Any:
    return record.get(EVIDENCE)


EVIDENCE = "_evidence"  # a candidate row's measured evidence, carried on the row, never written to the inventory
# 资源目录: the information resource catalog's fields in the documents' order (catalog/report.py COLUMNS), one row
# per resource of the department's systems, keyed by system and name; candidates below the declared ones.
CATALOG = SheetSpec("survey.sheet.catalog", "resources", (
    Column("name", "catalog.col.name", ("name",), required=True),
    Column("system", "catalog.col.system", ("system",), required=True),
    Column("classification", "catalog.col.classification", ("classification",), "enum", policy="classifications",
           required=True),
    Column("description", "catalog.col.description", ("description",), "long", required=True),
    Column("office", "catalog.col.office", ("office",), required=True),
    Column("format", "catalog.col.format", ("format",), "enum", policy="formats", required=True),
    Column("update_cycle", "catalog.col.update_cycle", ("update_cycle",), "enum", policy="update_cycles",
           required=True),
    Column("publish_date", "catalog.col.publish_date", ("publish_date",), "date", required=True),
    Column("share_type", "catalog.col.share_type", ("share_type",), "enum", ShareType, "share_type", required=True),
    Column("conditions", "catalog.col.conditions", ("conditions",), "long"),
    Column("scope", "catalog.col.scope", ("scope",)),
    Column("legal_basis", "catalog.col.legal_basis", ("legal_basis",), "long"),
    Column("share_method", "catalog.col.share_method", ("share_method",), "enum", ShareMethod, "share_method"),
    Column("open_attribute", "catalog.col.open_attribute", ("open_attribute",), "enum", policy="open_attributes",
           required=True),
    Column("purpose", "catalog.col.purpose", ("purpose",), "long", required=True),
    Column("location", "catalog.col.location", ("location",)),
    Column("status", "catalog.col.status", ("status",), "enum", CatalogStatus, "catalog.status"),
    Column("evidence", "catalog.col.evidence", kind="measured", measure=_evidence),
))
SHEETS = (DEPARTMENT, SYSTEMS, HOSTS, CATALOG)


# --- what each value looks like in a cell ------------------------------------------------------------


def _choices(col: Column) -> list[tuple[str, Any]]:
    """(cell text, record value) of every value a drop-down column takes, from the model's enum."""
    if col.kind == "bool":
        return [(t(YES), True), (t(NO), False)]
    if col.kind == "level":
        return [*((str(n), n) for n in range(1, 5)), (enum_label("scheme", ProtectionScheme.fenbao), "fenbao")]
    if col.policy:
        return [(label.zh, code) for code, label in _policy().values(col.policy).items()]
    return [(enum_label(col.prefix, v), v.value) for v in col.enum or ()]


def _english(col: Column, value: Any) -> str:
    """A choice's English label, which the import accepts too."""
    if col.policy:
        return _policy().label(col.policy, value, "en")
    return enum_label(col.prefix, value, "en") if col.enum is not None else str(value)


def _policy() -> Any:
    from catalog.model import load_policy  # the catalog domain imports the inventory: imported at use

    return load_policy()


def _to_cell(col: Column, record: Mapping[str, Any]) -> Any:
    value = importer.get_path(record, col.path)
    if col.kind == "level":
        if not isinstance(value, Mapping):
            return None
        if value.get("scheme") == ProtectionScheme.fenbao.value:
            return enum_label("scheme", ProtectionScheme.fenbao)
        return value.get("level")
    if value is None:
        return None
    if col.kind in ("enum", "bool"):
        return next((text for text, v in _choices(col) if v == value), str(value))
    if col.kind == "list":
        return col.sep.join(map(str, value)) if isinstance(value, list) else str(value)
    if col.kind == "money":
        return Decimal(str(value)).quantize(Decimal("0.01"))
    return value


class Measured:
    """The audit history's facts, as the survey shows them (grey, read-only): per host its measured OS,
    CPUs, memory, disk and last collection; per system its resources line (`audit.archive`'s text)."""

    def __init__(self, inv: Any, facts: Mapping[str, Any], collected_at: Mapping[str, datetime]) -> None:
        self.inv, self.facts, self.collected_at = inv, facts, collected_at

    def candidates(self, code: str) -> list[dict[str, Any]]:
        """Catalog rows for the resources collection proposes for the department's systems (catalog.candidates),
        marked candidate, with their evidence."""
        from catalog.service import candidates

        return [{"name": c.name, "system": c.system, "format": c.format, "location": c.location,
                 "status": CatalogStatus.candidate.value, EVIDENCE: c.evidence}
                for c in candidates(self.inv, {h: f for h, f in self.facts.items() if f}, self.collected_at)
                if c.department == code]

    def host(self, name: Any, what: str) -> Any:
        from audit.archive import host_resources  # audit imports the inventory: imported at use, not at load

        facts = self.facts.get(name) or {}
        if what == "os":
            return (facts.get("os") or {}).get("pretty_name")
        if what == "last_collected":
            at = self.collected_at.get(name)
            return at.strftime("%Y-%m-%d %H:%M") if at else None
        return host_resources(facts).get(what) if facts else None

    def system_resources(self, record: Mapping[str, Any]) -> str:
        from audit.archive import resources_text

        system = self.inv.systems.get(record.get("id"))
        if system is None or not any(self.facts.get(h) for h in system.hosts):
            return ""
        return resources_text(system, self.facts, None, "zh")


def department_records(written: importer.Written, code: str) -> dict[str, list[dict[str, Any]]]:
    """The department's records as written (drafts too), in file order: itself, its systems, their hosts."""
    systems = [importer.plain(node) for _, node in written.records["systems"].values()
               if node.get("department") == code]
    host_names = [h for s in systems for h in s.get("hosts") or []]
    hosts = [importer.plain(written.get("hosts", h)) for h in dict.fromkeys(host_names) if written.get("hosts", h)]
    dept = written.get("departments", code)
    resources = [{**r, "system": s["id"], "status": CatalogStatus.declared.value}
                 for s in systems for r in s.get("resources") or [] if isinstance(r, Mapping)]
    return {"departments": [importer.plain(dept)] if dept is not None else [{"code": code}],
            "systems": systems, "hosts": hosts, "resources": resources}


def _style(ws: Any, cols: Sequence[Column], rows: int) -> None:
    for i, col in enumerate(cols, start=1):
        letter = get_column_letter(i)
        head = ws.cell(1, i)
        head.font, head.fill = Font(bold=True), GREY if col.kind == "measured" else HEADER
        width = max([reports.display_width(str(head.value))] +
                    [reports.display_width(str(c.value or "").split("\n")[0]) for (c,) in
                     ws.iter_rows(min_row=2, max_row=rows + 1, min_col=i, max_col=i)])
        ws.column_dimensions[letter].width = min(width, 50) + 2
        for r in range(2, rows + SPARE_ROWS + 2):
            cell = ws.cell(r, i)
            if col.kind == "measured":
                cell.fill = GREY
            else:
                cell.protection = Protection(locked=False)
            if col.kind == "date":
                cell.number_format = "yyyy-mm-dd"
            elif col.kind == "money":
                cell.number_format = "#,##0.00"
    ws.freeze_panes = "B2"
    ws.protection.sheet = True  # a guard against typing into measured columns, not a secret: no password
    for allowed in ("formatColumns", "formatRows", "autoFilter", "sort"):
        setattr(ws.protection, allowed, False)


def write_survey(inv: Any, code: str, out: Path, measured: Measured | None = None) -> Path:
    """survey-<code>.xlsx under `out`: the department's sheets, prefilled, for its staff to complete."""
    written = importer.Written.read(Path(inv.root))
    records = department_records(written, code)
    wb = Workbook()
    guide = wb.active
    guide.title = t("survey.sheet.instructions")
    lists = wb.create_sheet(t("survey.sheet.lists"))
    list_col = 0
    dept_name = records["departments"][0].get("name") or code
    for spec in SHEETS:
        ws = wb.create_sheet(t(spec.label))
        ws.append([t(c.label) for c in spec.columns])
        rows = records[spec.section]
        if spec is CATALOG and measured is not None:
            rows = [*rows, *measured.candidates(code)]
        for record in rows:
            ws.append([reports.cell_value(c.measure(record, measured) if c.measure else _to_cell(c, record))
                       for c in spec.columns])
        _style(ws, spec.columns, len(rows))
        last = len(rows) + SPARE_ROWS + 1
        for i, col in enumerate(spec.columns, start=1):
            if col.kind not in ("enum", "bool", "level"):
                continue
            list_col += 1
            letter = get_column_letter(list_col)
            lists.cell(1, list_col, f"{t(spec.label)}·{t(col.label)}").font = Font(bold=True)
            choices = _choices(col)
            for r, (text, _) in enumerate(choices, start=2):
                lists.cell(r, list_col, text)
            dv = DataValidation(type="list", formula1=f"'{lists.title}'!${letter}$2:${letter}${len(choices) + 1}",
                                allow_blank=True, showErrorMessage=True, errorTitle=t(col.label),
                                error=", ".join(text for text, _ in choices))
            ws.add_data_validation(dv)
            dv.add(f"{get_column_letter(i)}2:{get_column_letter(i)}{last}")
        if spec.section in ("departments", "systems"):  # existing records keep their key: it is how they match
            for r in range(2, len(rows) + 2):
                ws.cell(r, 1).protection = Protection(locked=True)
    lists.protection.sheet = True
    _guide(guide, dept_name)
    target = out / f"survey-{code}.xlsx"
    with atomic_path(target) as tmp:
        wb.save(tmp)
    return target


def _guide(ws: Any, dept: str) -> None:
    ws.append([t("survey.help.title", "zh", dept=dept), t("survey.help.title", "en", dept=dept)])
    ws["A1"].font = ws["B1"].font = Font(bold=True, size=14)
    for n in range(1, 9):
        ws.append([t(f"survey.help.{n}", "zh"), t(f"survey.help.{n}", "en")])
    ws.append([])
    for spec in SHEETS:
        ws.append([t(spec.label, "zh"), t(spec.label, "en")])
        ws.cell(ws.max_row, 1).font = ws.cell(ws.max_row, 2).font = Font(bold=True)
        ws.append([f"{t('survey.col.column', 'zh')} / {t('survey.col.column', 'en')}", "",
                   f"{t('survey.col.required', 'zh')} / {t('survey.col.required', 'en')}",
                   f"{t('survey.col.values', 'zh')} / {t('survey.col.values', 'en')}"])
        for col in spec.columns:
            if col.kind == "measured":
                values = f"{t('survey.col.readonly', 'zh')} / {t('survey.col.readonly', 'en')}"
            elif col.kind in ("enum", "bool", "level"):
                values = "、".join(text for text, _ in _choices(col))
            else:
                key = {"date": "date", "list": "list", "int": "int", "money": "money", "long": "long"}.get(col.kind)
                values = f"{t(f'survey.values.{key}', 'zh')} / {t(f'survey.values.{key}', 'en')}" if key else ""
            ws.append([t(col.label, "zh"), t(col.label, "en"), t(YES) if col.required else "", values])
    ws.column_dimensions["A"].width = 60
    ws.column_dimensions["B"].width = 70
    ws.column_dimensions["D"].width = 60


# --- back in -----------------------------------------------------------------------------------------

DATE_TEXT = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
EXCEL_SERIAL_MAX = 2958465  # 9999-12-31


class CellError(ValueError):
    pass


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if text.startswith("'") and text[1:2] in reports.FORMULA_TRIGGERS:  # neutralised on the way out
        text = text[1:]
    return text


def _parse(col: Column, value: Any) -> Any:
    """A cell's value as the record holds it; CellError says what is wrong and what to write instead."""
    if col.kind in ("enum", "bool", "level"):
        text = _text(value).casefold()
        for label, v in _choices(col):
            if text in (label.casefold(), str(v).casefold(), _english(col, v).casefold()):
                return {"scheme": "fenbao"} if col.kind == "level" and v == "fenbao" else \
                    {"level": v} if col.kind == "level" else v
        raise CellError(f"'{_text(value)}' is not one of: {'、'.join(label for label, _ in _choices(col))}")
    if col.kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise CellError(f"{value!r} is not a whole number")
        try:
            return int(_text(value).replace(",", ""))
        except ValueError:
            raise CellError(f"'{_text(value)}' is not a whole number") from None
    if col.kind == "money":
        try:
            amount = Decimal(_text(value).replace(",", "").removesuffix("元"))
        except InvalidOperation:
            raise CellError(f"'{_text(value)}' is not an amount in yuan (e.g. 380000.00)") from None
        if amount != amount.quantize(Decimal("0.01")):
            raise CellError(f"{amount} has more than two decimals (fen)")
        return amount.quantize(Decimal("0.01"))
    if col.kind == "date":
        return _date(value)
    if col.kind == "list":
        return [x.strip() for x in LIST_SPLIT.split(_text(value)) if x.strip()]
    return str(value).strip() if col.field == "function" or col.kind == "long" else _text(value)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise CellError(f"{value} has a time of day: give the date only")
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if re.fullmatch(r"\d+(\.0+)?", text):  # an Excel serial number (a date cell formatted as a number)
        serial = int(float(text))
        if 1 <= serial <= EXCEL_SERIAL_MAX:
            return from_excel(serial).date()
    m = DATE_TEXT.match(text)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError as exc:
            raise CellError(f"'{text}' is not a date: {exc}") from None
    raise CellError(f"'{text}' is not a date: write it as 2019-03-15")


def _sheet(wb: Any, spec: SheetSpec) -> Any:
    names = {t(spec.label, "zh"), t(spec.label, "en")}
    return next((ws for ws in wb.worksheets if ws.title in names), None)


def read_survey(path: Path) -> tuple[str | None, list[Proposal], list[str]]:
    """(department code, one proposal per filled row, every problem) of one filled workbook. Removal of
    records the workbook no longer lists is the caller's (it knows the department's current records)."""
    shown = path.name
    problems: list[str] = []
    try:
        wb = load_workbook(path, data_only=False)
    except Exception as exc:  # openpyxl raises zip, XML and key errors alike for a file that is no workbook
        return None, [], [f"{shown}: cannot read it as an .xlsx workbook ({type(exc).__name__}: {exc}); "
                          "save it as Excel Workbook (.xlsx) and try again"]
    proposals: list[Proposal] = []
    catalog: list[tuple[dict[FieldPath, Any], dict[FieldPath, str], str]] | None = []
    code: str | None = None
    for spec in SHEETS:
        ws = _sheet(wb, spec)
        if ws is None and spec is CATALOG:  # a workbook written before the catalog sheet: resources left as they are
            catalog = None
            continue
        if ws is None:
            problems.append(f"{shown}: no sheet '{t(spec.label)}' ({t(spec.label, 'en')}): use the workbook "
                            "invoke inventory.survey wrote")
            continue
        where = f"{shown}:{ws.title}"
        if ws.sheet_state != "visible":
            problems.append(f"{where}: the sheet is hidden: unhide it (hidden sheets are not imported unseen)")
            continue
        for merged in ws.merged_cells.ranges:
            problems.append(f"{where}!{merged.coord}: merged cells: unmerge them and give every cell its value")
        columns = _header(ws, spec, where, problems)
        for r in range(2, ws.max_row + 1):
            row = _row(ws, r, spec, columns, where, problems)
            if row is None:
                continue
            values, cells, key = row
            if spec is CATALOG and catalog is not None:
                if values.get(("status",)) != CatalogStatus.candidate.value:
                    catalog.append((values, cells, f"{where}!{r}"))
                continue
            if spec.section == "departments":
                if code is not None:
                    problems.append(f"{where}!A{r}: one department per workbook (already {code})")
                    continue
                code = key
            proposals.append(Proposal(spec.section, key, values, f"{where}!{r}", cells))
    if catalog is not None:
        _attach_resources(proposals, catalog, problems)
    return code, proposals, problems


def _attach_resources(proposals: list[Proposal], rows: list[tuple[dict[FieldPath, Any], dict[FieldPath, str], str]],
                      problems: list[str]) -> None:
    """The catalog rows become each system's `resources` list (fields in the model's order), with every cell's
    place, so a rule a resource breaks (不予共享 without its legal basis) is reported at its cell. A system the
    workbook lists with no catalog row declares none."""
    systems = {p.key: p for p in proposals if p.section == "systems"}
    lists: dict[str, list[dict[str, Any]]] = {key: [] for key in systems}
    for values, cells, where in rows:
        system = values.get(("system",))
        if system not in systems:
            place = cells.get(("system",), where)
            known = ", ".join(systems) or "none"
            problems.append(f"{place}: system: give the system the resource belongs to, one of the 系统 sheet's "
                            f"({known})" if system is None else
                            f"{place}: system: '{system}' is not a system of this workbook's 系统 sheet ({known})")
            continue
        proposal, i = systems[system], len(lists[system])
        lists[system].append({f: values[(f,)] for f in DataResource.model_fields if values.get((f,)) is not None})
        proposal.cells[("resources", str(i))] = where
        for (field,), place in cells.items():
            if field not in ("system", "status"):
                proposal.cells[("resources", str(i), field)] = place
    for key, proposal in systems.items():
        proposal.values[("resources",)] = lists[key] or None


def _header(ws: Any, spec: SheetSpec, where: str, problems: list[str]) -> dict[int, Column]:
    known = {name: c for c in spec.columns for name in (t(c.label, "zh"), t(c.label, "en"), c.field)}
    columns: dict[int, Column] = {}
    for cell in ws[1]:
        if cell.value is None:
            continue
        col = known.get(str(cell.value).strip())
        if col is None:
            problems.append(f"{where}!{cell.coordinate}: unknown column '{cell.value}': keep the survey's headers")
        elif col in columns.values():
            problems.append(f"{where}!{cell.coordinate}: column '{cell.value}' appears twice")
        else:
            columns[cell.column] = col
    if spec.key not in columns.values():
        problems.append(f"{where}!A1: no column '{t(spec.key.label)}': it is how rows match records")
    return columns


def _row(ws: Any, r: int, spec: SheetSpec, columns: Mapping[int, Column], where: str, problems: list[str]
         ) -> tuple[dict[FieldPath, Any], dict[FieldPath, str], str] | None:
    cells = {i: ws.cell(r, i) for i, c in columns.items() if c.kind != "measured"}
    if all(c.value is None or (isinstance(c.value, str) and not c.value.strip()) for c in cells.values()):
        return None
    if ws.row_dimensions[r].hidden:
        problems.append(f"{where}!{r}: the row is hidden: unhide it or clear it (hidden rows are not imported unseen)")
        return None
    values: dict[FieldPath, Any] = {}
    places: dict[FieldPath, str] = {}
    key: str | None = None
    for i, cell in cells.items():
        col = columns[i]
        place = f"{where}!{cell.coordinate}"
        if cell.data_type == "f" or (isinstance(cell.value, str) and cell.value.startswith("=")
                                     and cell.data_type != "s"):
            problems.append(f"{place}: {col.field}: a formula ({str(cell.value)[:40]}): jiyue reads values only: "
                            "type the value, or copy and paste it as values")
            continue
        if cell.value is None or (isinstance(cell.value, str) and not cell.value.strip()):
            value: Any = None
        else:
            try:
                value = _parse(col, cell.value)
            except CellError as exc:
                problems.append(f"{place}: {col.field}: {exc}")
                continue
        if col is spec.key:
            if value is None:
                problems.append(f"{place}: {col.field}: the row has values but no {t(col.label)} "
                                f"({t(col.label, 'en')}): give it, or clear the whole row")
                return None
            key = value
        if col.kind == "level":
            values[("protection", "scheme")] = (value or {}).get("scheme")
            values[("protection", "level")] = (value or {}).get("level")
            places[("protection", "scheme")] = places[("protection", "level")] = place
        else:
            values[col.path] = value
        places[col.path] = place
    if key is None:
        return None
    if values.get(("protection", "scheme")) == "fenbao" and ("protection", "filing_number") in values:
        values[("protection", "filing_number")] = values[("protection", "filing_number")] or None
    return values, places, key


def survey_proposals(paths: Iterable[Path], written: importer.Written
                     ) -> tuple[list[Proposal], list[str]]:
    """Every workbook's proposals, removals of what a department's workbook no longer lists, every problem."""
    proposals: list[Proposal] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path in paths:
        code, found, wrong = read_survey(Path(path))
        problems += wrong
        if code is None:
            if not wrong:
                problems.append(f"{Path(path).name}: the department sheet gives no department code")
            continue
        if code in seen:
            problems.append(f"{Path(path).name}: department {code} again (first in {seen[code]}): one workbook each")
            continue
        seen[code] = Path(path).name
        current = department_records(written, code)
        home = _home(written, code)
        listed = {(p.section, p.key) for p in found}
        for p in found:
            p.file = home
            p.may_draft = bool((written.get(p.section, p.key) or {}).get("draft"))
            if p.section == "systems":
                owner = (written.get("systems", p.key) or {}).get("department")
                if owner not in (None, code):
                    problems.append(f"{p.cells[('id',)]}: id: system {p.key} belongs to department {owner}: "
                                    "a survey changes its own department's systems only")
                p.values[("department",)] = code
        proposals += found
        for section in ("systems", "hosts"):
            key = "id" if section == "systems" else "name"
            for record in current[section]:
                if (section, record[key]) not in listed:
                    proposals.append(Proposal(section, record[key], where=f"{Path(path).name} (no row)", remove=True))
    return proposals, problems


def _home(written: importer.Written, code: str) -> Path:
    """Where a department's new records go: the file most of its systems are in, else departments/<code>.yaml."""
    files = [f for f, node in written.records["systems"].values() if node.get("department") == code]
    return max(set(files), key=files.count) if files else Path("departments") / f"{code}.yaml"
