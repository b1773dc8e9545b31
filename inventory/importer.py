"""Proposed records in, a reviewed change of the YAML inventory out: the shared half of every import.

The survey workbooks (`inventory/survey.py`) and Ansible inventories (`inventory/ansible_import.py`) each turn
their source into `Proposal`s: a record's identity and the values their source gives, with where each value came
from. `plan` compares them with the records as written, field by field, and validates the inventory the change
would make with the real loader (`inventory.load`) on a copy, so a problem is reported before anything is
written, at the cell or line it came from. `apply` then writes only the files that change, atomically, through
ruamel.yaml's round trip: comments, key order, flow style and the per-department file layout stay as people
wrote them, and every line the change does not touch keeps its bytes.

A record that still lacks required fields is written as a draft (`draft: true`) where its source may leave
gaps (an Ansible inventory knows no archive fields); where it may not (a survey row for a complete record),
each gap is a problem.
"""

from __future__ import annotations

import difflib
import io
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarfloat import ScalarFloat
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from inventory.loader import InventoryError, load
from inventory.model import DRAFT_KEY, LIST_SECTIONS
from jiyue.files import write_atomic

FieldPath = tuple[str, ...]
# Nested mappings new records write on one line, as the sample city does (`approval: {department: …, date: …}`).
FLOW_MAPS = {("approval",), ("funding",), ("protection",), ("ssh",), ("priority",)}
# Values a model fills in when a field is absent: absent and the default are the same record.
DEFAULTS: dict[tuple[str, FieldPath], Any] = {
    ("systems", ("protection", "scheme")): "dengbao",
    ("systems", ("website",)): False,
    ("systems", ("resources",)): [],
}
# Lists of records inside a record, matched item by item by this key: an edit changes the item's fields in place
# (its comments and style stay), and the preview shows each item's changed fields.
KEYED_LISTS = {("resources",): "name"}


@dataclass
class Proposal:
    """What a source says about one record. `values` maps field paths to values (None: the field is absent);
    fields not named are left as they are. `remove` proposes deleting the record."""

    section: str
    key: str
    values: dict[FieldPath, Any] = field(default_factory=dict)
    where: str = ""  # the source's place of the record, e.g. "survey-fgw.xlsx:系统!5"
    cells: dict[FieldPath, str] = field(default_factory=dict)  # field path -> the source's place of the value
    file: Path | None = None  # where a new record goes, relative to the inventory
    may_draft: bool = False  # missing required fields make a draft instead of a problem
    remove: bool = False


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass
class Edit:
    action: str  # add | change | remove
    section: str
    key: str
    file: Path
    where: str
    changes: list[FieldChange]
    draft: bool = False  # the record is a draft after the edit
    missing: tuple[str, ...] = ()


@dataclass
class Plan:
    root: Path
    edits: list[Edit]
    problems: list[str]
    texts: dict[Path, str]  # relative path -> new content, only files that change

    def json(self) -> dict[str, Any]:
        def rec(e: Edit) -> dict[str, Any]:
            return {"section": e.section, "key": e.key, "file": str(e.file), "from": e.where, "draft": e.draft,
                    "missing": list(e.missing),
                    "changes": [{"field": c.field, "old": _jsonable(c.old), "new": _jsonable(c.new)}
                                for c in e.changes]}
        return {"inventory": str(self.root),
                **{k: [rec(e) for e in self.edits if e.action == a]
                   for k, a in (("added", "add"), ("changed", "change"), ("removed", "remove"))},
                "files": sorted(map(str, self.texts)), "problems": self.problems}


# --- the inventory as written ----------------------------------------------------------------------


class UnreadableYAML(Exception):
    """A file of the inventory ruamel cannot read (the loader reports it, with its line, first)."""



def yaml_rt() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line
    y.indent(mapping=2, sequence=4, offset=2)
    return y


@dataclass
class Written:
    """Every list record of an inventory directory as ruamel nodes, with the file and list it sits in."""

    root: Path
    docs: dict[Path, Any]
    records: dict[str, dict[str, tuple[Path, CommentedMap]]]

    @classmethod
    def read(cls, root: Path) -> Written:
        docs: dict[Path, Any] = {}
        records: dict[str, dict[str, tuple[Path, CommentedMap]]] = {s: {} for s in LIST_SECTIONS}
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
                rel = path.relative_to(root)
                try:
                    doc = yaml_rt().load(path.read_text(encoding="utf-8"))
                except YAMLError as exc:
                    raise UnreadableYAML(f"{path}: cannot read it to change it: {exc}; invoke inventory.check "
                                         "shows where") from None
                docs[rel] = doc
                if not isinstance(doc, Mapping):
                    continue
                for section, (_, key) in LIST_SECTIONS.items():
                    for item in doc.get(section) or []:
                        if isinstance(item, CommentedMap) and isinstance(item.get(key), str):
                            records[section].setdefault(item[key], (rel, item))
        return cls(root, docs, records)

    def get(self, section: str, key: str) -> CommentedMap | None:
        found = self.records[section].get(key)
        return found[1] if found else None

    def file_of(self, section: str, key: str) -> Path | None:
        found = self.records[section].get(key)
        return found[0] if found else None


def plain(value: Any) -> Any:
    """ruamel's node types as plain Python values (CommentedMap -> dict, ScalarFloat -> float)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, date):
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value) if isinstance(value, str) else value


def get_path(data: Mapping[str, Any] | None, path: FieldPath) -> Any:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Enum):
        a = a.value
    if isinstance(b, Enum):
        b = b.value
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal) and \
            not isinstance(a, bool) and not isinstance(b, bool):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


# --- writing values the way the loader reads them ----------------------------------------------------

_RESOLVER = yaml.resolver.Resolver()


def node_value(value: Any, path: FieldPath = ()) -> Any:
    """A value as ruamel should write it, so that PyYAML (YAML 1.1, the loader's) reads it back unchanged:
    text PyYAML would take for something else (`yes`, `1.0`, `2020-01-01`) is quoted, money keeps its cents."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Mapping):
        out = CommentedMap((k, node_value(v, (*path, k))) for k, v in value.items() if v is not None)
        if path in FLOW_MAPS:
            out.fa.set_flow_style()
        return out
    if isinstance(value, list | tuple):
        seq = CommentedSeq(node_value(v, path) for v in value)
        if all(isinstance(v, str | int) and "\n" not in str(v) for v in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, Decimal):
        text = f"{value:.2f}"
        return ScalarFloat(float(value), width=len(text), prec=text.index("."))
    if isinstance(value, str):
        if "\n" in value:
            return LiteralScalarString(value)
        if _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str" or \
                value != value.strip() or value[:1] in "&*!|>'\"%@`#,[]{}?:-" or ": " in value or " #" in value:
            return DoubleQuotedScalarString(value)
    return value


def _set(record: CommentedMap, path: FieldPath, value: Any) -> None:
    """Set (or, with None, remove) one field inside a written record, keeping its neighbours and style."""
    *parents, last = path
    node = record
    for i, part in enumerate(parents):
        if not isinstance(node.get(part), CommentedMap):
            if value is None:
                return
            node[part] = node_value({}, tuple(parents[: i + 1]))
        node = node[part]
    if value is None:
        node.pop(last, None)
        for i in range(len(parents), 0, -1):  # an emptied parent goes too
            parent = get_path(record, tuple(parents[: i - 1])) if i > 1 else record
            if isinstance(parent, CommentedMap) and parent.get(parents[i - 1]) == {}:
                parent.pop(parents[i - 1])
        return
    old = node.get(last)
    if isinstance(old, CommentedSeq) and tuple(path) in KEYED_LISTS and isinstance(value, list | tuple):
        _set_items(old, value, KEYED_LISTS[tuple(path)], tuple(path))
        return
    if isinstance(old, CommentedSeq) and isinstance(value, list | tuple):
        old[:] = [node_value(v) for v in value]  # keeps the list's flow style and its comment
        return
    node[last] = node_value(value, tuple(path))


def _set_items(seq: CommentedSeq, items: Sequence[Mapping[str, Any]], key: str, path: FieldPath) -> None:
    """A keyed list set item by item: an item whose key is already written keeps its node and changes only the
    fields that differ; new items are written whole; items no longer given go; the order is the new one."""
    written = {item.get(key): item for item in seq if isinstance(item, CommentedMap)}
    out = []
    for item in items:
        node = written.get(item.get(key))
        if node is None:
            out.append(node_value(dict(item), path))
            continue
        for name in [f for f in node if f not in item]:
            node.pop(name)
        for name, value in item.items():
            if not _same(plain(node.get(name)), value):
                node[name] = node_value(value, (*path, name))
        out.append(node)
    seq[:] = out


def _item_changes(path: FieldPath, before: Any, after: Any, key: str) -> list[FieldChange] | None:
    """Field-by-field changes of a keyed list (`resources[企业公共信用信息].share_type`); None when either side
    is not such a list."""
    lists = [x if x is not None else [] for x in (before, after)]
    if not all(isinstance(x, list | tuple) and all(isinstance(i, Mapping) for i in x) for x in lists):
        return None
    old, new = ({i.get(key): i for i in x} for x in lists)
    name = ".".join(path)
    changes = []
    for ident in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(ident), new.get(ident)
        if a is None or b is None:
            changes.append(FieldChange(f"{name}[{ident}]", _jsonable(a and dict(a)), _jsonable(b and dict(b))))
            continue
        for part in [*b, *(f for f in a if f not in b)]:
            if not _same(a.get(part), b.get(part)):
                changes.append(FieldChange(f"{name}[{ident}].{part}", _jsonable(a.get(part)), _jsonable(b.get(part))))
    if not changes and [i.get(key) for i in lists[0]] != [i.get(key) for i in lists[1]]:
        changes.append(FieldChange(f"{name} (order)", [i.get(key) for i in lists[0]], [i.get(key) for i in lists[1]]))
    return changes


def _merge(old: dict[str, Any], values: Mapping[FieldPath, Any]) -> dict[str, Any]:
    out = {k: v for k, v in old.items()}

    def put(data: dict[str, Any], path: FieldPath, value: Any) -> None:
        head, *rest = path
        if not rest:
            if value is None:
                data.pop(head, None)
            else:
                data[head] = value
            return
        child = dict(data.get(head) or {}) if isinstance(data.get(head), Mapping) else {}
        put(child, tuple(rest), value)
        if child:
            data[head] = child
        else:
            data.pop(head, None)

    for path, value in values.items():
        put(out, path, value)
    return out


def _ordered(section: str, record: dict[str, Any]) -> dict[str, Any]:
    """A new record's keys in the model's order (the key first, the draft mark after it), nested ones too."""
    model, key = LIST_SECTIONS[section]

    def order(model_type: Any, data: dict[str, Any]) -> dict[str, Any]:
        fields = getattr(model_type, "model_fields", {})
        out = {}
        for name in [*fields, *(k for k in data if k not in fields)]:
            if name not in data:
                continue
            sub = fields[name].annotation if name in fields else None
            out[name] = order(sub, data[name]) if isinstance(data[name], dict) and hasattr(sub, "model_fields") \
                else data[name]
            if name == key and DRAFT_KEY in data:
                out[DRAFT_KEY] = True
        return out

    return order(model, record)


# --- planning --------------------------------------------------------------------------------------


def _check(section: str, record: dict[str, Any]) -> tuple[list[str], list[tuple[FieldPath, str]]]:
    """(missing required fields, [(path, message)] of values the model refuses) for one record."""
    model, _ = LIST_SECTIONS[section]
    try:
        TypeAdapter(model).validate_python({k: v for k, v in record.items() if k != DRAFT_KEY})
    except ValidationError as exc:
        missing, wrong = [], []
        for err in exc.errors(include_url=False):
            loc = tuple(str(p) for p in err["loc"])
            if err["type"] == "missing":
                missing.append(".".join(loc))
            else:
                wrong.append((loc, err["msg"].removeprefix("Value error, ")))
        return missing, wrong
    return [], []


def _cell(proposal: Proposal, loc: FieldPath) -> str:
    """The source place of a field, or of its nearest parent the source gave."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in proposal.cells:
            return proposal.cells[loc[:n]]
    for path, where in proposal.cells.items():  # a parent the proposal set whole, e.g. protection
        if path[: len(loc)] == loc:
            return where
    return proposal.where


def plan(root: Path, proposals: Sequence[Proposal], problems: Sequence[str] = (),
         written: Written | None = None) -> Plan:
    """Compare the proposals with the inventory as written and check the result with the loader; nothing is
    written (see `apply`). `problems` are the sources' own, reported with the rest. `written` is the inventory as
    the sources read it (read again when not given); the plan edits it, so it is not to be used afterwards."""
    root = Path(root)
    written = written if written is not None else Written.read(root)
    problems = list(problems)
    edits: list[Edit] = []
    touched: set[Path] = set()
    for p in proposals:
        key = LIST_SECTIONS[p.section][1]
        node = written.get(p.section, p.key)
        if p.remove:
            if node is not None:
                file = written.file_of(p.section, p.key)
                doc_list = written.docs[file][p.section]
                doc_list.remove(node)
                written.records[p.section].pop(p.key)
                touched.add(file)
                edits.append(Edit("remove", p.section, p.key, file, p.where, []))
            continue
        old = plain(node) if node is not None else {}
        was_draft = bool(old.get(DRAFT_KEY))
        new = _merge(old, p.values)
        new[key] = p.key
        missing, wrong = _check(p.section, new)
        for loc, message in wrong:
            problems.append(f"{_cell(p, loc)}: {'.'.join(loc)}: {message}")
        draft = bool(missing) and (p.may_draft or was_draft)
        if missing and not draft:
            for m in missing:
                problems.append(f"{_cell(p, tuple(m.split('.')))}: {m}: required (必填): give it")
        if draft:
            new[DRAFT_KEY] = True
        else:
            new.pop(DRAFT_KEY, None)
        changes = []
        for path, value in p.values.items():
            before = get_path(old, path)
            default = DEFAULTS.get((p.section, path))
            if not _same(before if before is not None else default, value if value is not None else default):
                items = _item_changes(path, before, value, KEYED_LISTS[path]) if path in KEYED_LISTS else None
                changes += items if items is not None else [FieldChange(".".join(path), _jsonable(before),
                                                                        _jsonable(value))]
        if was_draft != draft and node is not None:
            changes.append(FieldChange(DRAFT_KEY, was_draft, draft))
        if node is None:
            file = p.file or Path("imported.yaml")
            doc = written.docs.setdefault(file, CommentedMap())
            if doc is None:
                doc = written.docs[file] = CommentedMap()
            doc.setdefault(p.section, CommentedSeq()).append(node_value(_ordered(p.section, new)))
            written.records[p.section][p.key] = (file, doc[p.section][-1])
            touched.add(file)
            edits.append(Edit("add", p.section, p.key, file, p.where, changes, draft, tuple(missing)))
        elif changes:
            file = written.file_of(p.section, p.key)
            for path, value in p.values.items():
                if not _same(get_path(old, path), value):
                    _set(node, path, value)
            if draft:
                if DRAFT_KEY not in node:
                    node.insert(list(node).index(key) + 1, DRAFT_KEY, True)
            else:
                node.pop(DRAFT_KEY, None)
            touched.add(file)
            edits.append(Edit("change", p.section, p.key, file, p.where, changes, draft, tuple(missing)))
    texts = {rel: _render(root / rel, written.docs[rel]) for rel in sorted(touched)}
    texts = {rel: text for rel, text in texts.items()
             if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != text}
    if not problems:
        problems += _validate(root, texts, {(p.section, p.key): p for p in proposals})
    return Plan(root, edits, problems, texts)


def _render(path: Path, doc: Any) -> str:
    """The new text of a file: ruamel's dump, spliced into the original so unchanged lines keep their bytes
    (ruamel re-flows a few constructs, such as a flow list written over two lines, even when nothing changed)."""
    buf = io.StringIO()
    yaml_rt().dump(doc, buf)
    new = buf.getvalue()
    if not path.is_file():
        return new
    original = path.read_text(encoding="utf-8")
    try:
        before = io.StringIO()
        yaml_rt().dump(yaml_rt().load(original), before)
    except YAMLError:
        return new
    return splice(original, before.getvalue(), new)


def splice(original: str, dumped: str, changed: str) -> str:
    """Apply the change between two dumps (`dumped` -> `changed`) to the original text: outside the changed
    hunks the original's lines are kept as they were; a hunk that touches a line ruamel re-flows grows to
    the whole re-flowed construct, written as ruamel writes it."""
    orig, old, new = (t.splitlines(keepends=True) for t in (original, dumped, changed))
    # Line boundaries of the dump with a counterpart in the original: inside equal runs and at every edge; a
    # boundary where the original has lines the dump lacks has two (lo, hi): those lines are kept.
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, orig, autojunk=False).get_opcodes():
        pairs = [(k, j1 + k - i1) for k in range(i1, i2 + 1)] if tag == "equal" else [(i1, j1), (i2, j2)]
        for k, j in pairs:
            lo[k], hi[k] = min(lo.get(k, j), j), max(hi.get(k, j), j)
    groups: list[list[int]] = []  # [a, b, new start, new end]: dump lines a..b become new lines
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        a, b = i1, i2
        while a not in lo:
            a -= 1
        while b not in lo:
            b += 1
        if groups and a <= groups[-1][1]:  # lines between hunks are unchanged: the dump's new lines cover them
            group = groups[-1]
            group[1] = max(group[1], b)
            group[3] = j2 + group[1] - i2
        else:
            groups.append([a, b, j1 - (i1 - a), j2 + (b - i2)])
    out: list[str] = []
    pos = 0
    for a, b, ja, jb in groups:
        out += orig[lo[pos]:hi[a]] + new[ja:jb]
        pos = b
    out += orig[lo[pos]:]
    return "".join(out)


def _validate(root: Path, texts: Mapping[Path, str], by_record: Mapping[tuple[str, str], Proposal]) -> list[str]:
    """The would-be inventory through the real loader, on a copy; its problems mapped back to their sources."""
    with tempfile.TemporaryDirectory(prefix="jiyue-import-") as tmp:
        copy = Path(tmp) / (root.name or "inventory")
        copy.mkdir()
        if root.is_dir():
            for path in root.rglob("*"):
                if path.suffix in (".yaml", ".yml") and path.is_file():
                    target = copy / path.relative_to(root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(path.read_bytes())
        for rel, text in texts.items():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            (copy / rel).write_text(text, encoding="utf-8")
        try:
            load(copy)
        except InventoryError as exc:
            return [_mapped(p, copy, root, by_record) for p in exc.problems]
    return []


def _mapped(problem: Any, copy: Path, root: Path, by_record: Mapping[tuple[str, str], Proposal]) -> str:
    """`survey-fgw.xlsx:系统!M5: zone: …` when the problem is in a field a source gave, else the file line."""
    path = problem.path
    if "[" in path:
        section, rest = path.split("[", 1)
        key, _, sub = rest.partition("]")
        proposal = by_record.get((section, key))
        loc = tuple(x for x in sub.replace("[", ".").replace("]", "").split(".") if x)
        if proposal is not None and proposal.cells:
            return f"{_cell(proposal, loc)}: {'.'.join(loc) or key}: {problem.message}"
    try:
        shown = root / Path(problem.file).resolve().relative_to(copy.resolve())
    except ValueError:
        shown = Path(problem.file)
    return f"{shown}:{problem.line}: {path}: {problem.message} (in the inventory the import would make)"


def apply(plan_: Plan) -> list[Path]:
    """Write the planned files atomically; refused while any problem remains."""
    if plan_.problems:
        raise ValueError("the import has problems; nothing was written")
    written = []
    for rel, text in plan_.texts.items():
        written.append(write_atomic(plan_.root / rel, text))
    return written


def iter_changes(plan_: Plan) -> Iterator[tuple[Edit, FieldChange | None]]:
    for e in plan_.edits:
        if not e.changes:
            yield e, None
        for c in e.changes:
            yield e, c
