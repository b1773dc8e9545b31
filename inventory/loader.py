"""Read an inventory directory into the model, reporting every problem with its file and line.

YAML is composed node by node (not with `yaml.safe_load`) so that each value keeps the line it
came from; duplicate keys, which PyYAML would silently overwrite, are reported too. Each record
is validated on its own, so one bad record never hides the problems of another, and cross-record
checks still run over the good ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from inventory.model import DRAFT_KEY, LIST_SECTIONS, SINGLE_SECTIONS, Draft, Inventory, Located

DEFAULT_INVENTORY = Path(__file__).resolve().parent / "demo"

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


@dataclass
class Origin:
    """Where a record was declared: its file, its path there, and the line of every value below it."""

    file: Path
    path: FieldPath
    label: str
    lines: dict[FieldPath, int]

    def line(self, sub: FieldPath = ()) -> int:
        path = self.path + sub
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def describe(self, sub: FieldPath = ()) -> str:
        text = self.label
        for part in sub:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


class InventoryError(Exception):
    """Raised with every problem found; the command line prints them and exits 2."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.path))
        super().__init__("\n".join(map(str, self.problems)))


@dataclass
class _Collected:
    records: dict[str, list[tuple[Any, Origin]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _display(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _compose(file: Path, shown: Path, collected: _Collected, duplicates: list[tuple[FieldPath, int]]
             ) -> tuple[Any, dict[FieldPath, int]] | None:
    """Build plain Python data plus a map from each value's path to its line number.

    Duplicate mapping keys (which PyYAML would silently overwrite) are appended to `duplicates`.
    """
    lines: dict[FieldPath, int] = {}
    try:
        loader = yaml.SafeLoader(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        collected.problems.append(Problem(shown, 1, "(file)", f"not UTF-8 text: {exc.reason}"))
        return None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        alias = _excessive_aliasing(node)
        if alias is not None:
            collected.problems.append(Problem(shown, alias[0], "(yaml)", alias[1]))
            return None

        def build(n: yaml.Node, path: FieldPath) -> Any:
            lines[path] = n.start_mark.line + 1
            if isinstance(n, yaml.MappingNode):
                loader.flatten_mapping(n)
                out: dict[Any, Any] = {}
                for key_node, value_node in n.value:
                    key = loader.construct_object(key_node, deep=True)
                    if key in out:
                        duplicates.append(((*path, key), key_node.start_mark.line + 1))
                    out[key] = build(value_node, (*path, key))
                    lines[(*path, key)] = key_node.start_mark.line + 1  # point at the key, not its value
                return out
            if isinstance(n, yaml.SequenceNode):
                return [build(item, (*path, i)) for i, item in enumerate(n.value)]
            try:
                return loader.construct_object(n, deep=True)
            except ValueError:  # a date PyYAML cannot build (2026-13-01) raises, not YAMLError: keep it as written,
                return n.value  # and the field's own validation says what is wrong with it, at this line

        return build(node, ()), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(exc, "problem", None) or str(exc)
        collected.problems.append(Problem(shown, line, "(yaml)", f"not valid YAML: {reason}"))
        return None
    finally:
        loader.dispose()


# A document whose aliases expand it beyond this many values, and beyond ALIAS_RATIO times what is written, is
# refused before it is built (a "billion laughs": nine levels of nine aliases is 1 KB of YAML and 387 million
# values). Anchors and merge keys as people use them for shared defaults stay far below both.
MAX_EXPANDED = 1_000_000
ALIAS_RATIO = 10


def _excessive_aliasing(root: yaml.Node) -> tuple[int, str] | None:
    """(line, message) when aliases expand the document too far or refer to themselves; None when it is fine.
    Sizes are counted per node once (memoised), so the count itself costs what the document's text does."""
    sizes: dict[int, int] = {}
    building: set[int] = set()
    seen: set[int] = set()
    loop: list[yaml.Node] = []

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in building:
            loop.append(n)
            return 0
        building.add(key)
        seen.add(key)
        children: list[yaml.Node] = []
        if isinstance(n, yaml.MappingNode):
            children = [x for pair in n.value for x in pair]
        elif isinstance(n, yaml.SequenceNode):
            children = list(n.value)
        total = 1 + sum(size(c) for c in children)
        building.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    if loop:
        return loop[0].start_mark.line + 1, "an alias refers to the node that contains it (a recursive anchor)"
    if expanded > MAX_EXPANDED and expanded > ALIAS_RATIO * len(seen):
        return (root.start_mark.line + 1,
                f"aliases expand {len(seen):,} written values to {expanded:,} (more than {MAX_EXPANDED:,}): "
                "write the values out, or share fewer levels of anchors")
    return None


def _label(section: str, index: int, raw: Any) -> str:
    """`systems[fgw-oa]` when the record has its identifier, else `systems[3]`."""
    key = LIST_SECTIONS[section][1]
    ident = raw.get(key) if isinstance(raw, dict) else None
    return f"{section}[{ident}]" if isinstance(ident, str) else f"{section}[{index}]"


def _describe(data: Any, path: FieldPath) -> str:
    """A path inside a file in the same style as validation messages."""
    if len(path) >= 2 and path[0] in LIST_SECTIONS and isinstance(path[1], int) and isinstance(data, dict):
        records = data.get(path[0])
        raw = records[path[1]] if isinstance(records, list) and path[1] < len(records) else None
        return Origin(Path(), path[:2], _label(str(path[0]), path[1], raw), {}).describe(path[2:])
    return Origin(Path(), (), str(path[0]), {}).describe(path[1:]) if path else "(file)"


def _inventory_files(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _collect(root: Path) -> _Collected:
    collected = _Collected()
    single_seen: dict[str, Path] = {}
    for file in _inventory_files(root):
        shown = _display(file)
        duplicates: list[tuple[FieldPath, int]] = []
        result = _compose(file, shown, collected, duplicates)
        if result is None:
            continue
        data, lines = result
        for path, line in duplicates:
            collected.problems.append(Problem(shown, line, _describe(data, path),
                                              f"duplicate key '{path[-1]}' (the earlier value would be lost)"))
        if data is None:
            continue
        if not isinstance(data, dict):
            collected.problems.append(Problem(shown, 1, "(file)", "must be a mapping of sections"))
            continue
        for section, value in data.items():
            line = lines.get((section,), 1)
            if section in LIST_SECTIONS:
                if not isinstance(value, list):
                    collected.problems.append(Problem(shown, line, section, "must be a list"))
                    continue
                for i, raw in enumerate(value):
                    origin = Origin(shown, (section, i), _label(section, i, raw), lines)
                    collected.records.setdefault(section, []).append((raw, origin))
            elif section in SINGLE_SECTIONS:
                if section in single_seen:
                    collected.problems.append(
                        Problem(shown, line, section, f"declared again (first in {single_seen[section]})")
                    )
                    continue
                single_seen[section] = shown
                collected.records[section] = [(value, Origin(shown, (section,), section, lines))]
            else:
                known = ", ".join([*LIST_SECTIONS, *SINGLE_SECTIONS])
                collected.problems.append(Problem(shown, line, str(section), f"unknown section (known: {known})"))
    return collected


SECRET_FIELDS = {"password", "secret"}


def _report(errors: list[Any], origin: Origin, problems: list[Problem]) -> None:
    for err in errors:
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        secret = bool(SECRET_FIELDS & {str(part) for part in loc})  # a password typed inline is never echoed
        if err["type"] not in ("missing", "extra_forbidden", "value_error") and not secret and \
                not isinstance(err.get("input"), dict | list):
            message += f" (got {err.get('input')!r})"
        if err["type"] == "extra_forbidden":
            message = "unknown field (misspelt?)"
        problems.append(Problem(origin.file, origin.line(loc), origin.describe(loc), message))


def _validate(model: type, raw: Any, origin: Origin, problems: list[Problem]) -> Any:
    try:
        obj = TypeAdapter(model).validate_python(raw)
    except ValidationError as exc:
        _report(exc.errors(include_url=False), origin, problems)
        return None
    if isinstance(obj, Located):
        obj._origin = origin
    return obj


def _draft(section: str, model: type, key: str, raw: dict[str, Any], origin: Origin,
           problems: list[Problem]) -> Draft | None:
    """A `draft: true` record: what it gives must be valid; what it lacks is listed, not reported."""
    if not isinstance(raw.get(key), str):
        problems.append(Problem(origin.file, origin.line(), origin.describe((key,)),
                                f"a draft needs its {key}: it is how the record is found and completed"))
        return None
    missing: list[str] = []
    try:
        TypeAdapter(model).validate_python(raw)
    except ValidationError as exc:
        wrong = []
        for err in exc.errors(include_url=False):
            if err["type"] == "missing":
                missing.append(".".join(str(p) for p in err["loc"]))
            else:
                wrong.append(err)
        if wrong:
            _report(wrong, origin, problems)
            return None
    return Draft(section, raw[key], raw, tuple(missing), origin)


def load(root: Path | str = DEFAULT_INVENTORY) -> Inventory:
    """Load and fully check an inventory directory; raise InventoryError listing every problem."""
    from inventory.validate import cross_check

    root = Path(root)
    if not root.is_dir():
        raise InventoryError([Problem(_display(root), 0, "(inventory)", "no such directory")])
    collected = _collect(root)
    problems = collected.problems
    fields: dict[str, Any] = {"root": root.resolve()}
    declared: dict[str, set[str]] = {}
    drafts: dict[str, dict[str, Draft]] = {}
    for section, (model, key) in LIST_SECTIONS.items():
        good: dict[str, Any] = {}
        first: dict[str, Origin] = {}
        for raw, origin in collected.records.get(section, []):
            draft = False
            if isinstance(raw, dict) and DRAFT_KEY in raw:
                draft, raw = raw[DRAFT_KEY], {k: v for k, v in raw.items() if k != DRAFT_KEY}
                if not isinstance(draft, bool):
                    problems.append(Problem(origin.file, origin.line((DRAFT_KEY,)), origin.describe((DRAFT_KEY,)),
                                            f"must be true or false (got {draft!r})"))
                    continue
            ident = raw.get(key) if isinstance(raw, dict) else None
            if isinstance(ident, str) and not draft:
                declared.setdefault(section, set()).add(ident)
            obj = _draft(section, model, key, raw, origin, problems) if draft else \
                _validate(model, raw, origin, problems)
            if obj is None:
                continue
            name = obj.key if draft else getattr(obj, key)
            if name in first:
                problems.append(
                    Problem(origin.file, origin.line((key,)), origin.describe((key,)),
                            f"duplicate {key} '{name}' (first declared at {first[name].file}:{first[name].line()})")
                )
                continue
            first[name] = origin
            if draft:
                drafts.setdefault(section, {})[name] = obj
            else:
                good[name] = obj
        fields[section] = good
    fields["drafts"] = drafts
    for section, model in SINGLE_SECTIONS.items():
        for raw, origin in collected.records.get(section, []):
            declared.setdefault("sections", set()).add(section)
            obj = _validate(model, raw, origin, problems)
            if obj is not None:
                fields[section] = obj
    inventory = Inventory(**fields)
    problems.extend(cross_check(inventory, declared))
    if problems:
        raise InventoryError(problems)
    return inventory
