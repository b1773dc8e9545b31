"""The baseline's typed records: statuses and verdicts, the check registry, the catalog and profiles
(loaded and validated), a check run and a remediation.

The catalog (catalog.yaml) is data an auditor can read: clause IDs per level, paraphrases, which
checks decide each item, every threshold with the source of its default. A profile (profiles/*.yaml
or a city's own file) names a level and overrides parameters by name; an unknown parameter or
check is an error that names the file, never silently ignored.

A run's per-target values are what the store keeps (JSON): `TargetVerdicts` names their keys, and a
`BaselineRun` is the same whether it was just checked or read back from the store, so the reports
take either.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import yaml

from inventory.model import Inventory
from jiyue import runner
from jiyue.runner import Result

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "catalog.yaml"
PROFILES = HERE / "profiles"
LEVELS = (2, 3)
# Modules whose checks the catalog may name (each registers with model.check); device checks add theirs.
CHECK_MODULES = ("audit.baseline.checks", "audit.baseline.device_checks")

PASS, FAIL, NEEDS_EVIDENCE, NOT_APPLICABLE = "pass", "fail", "needs_evidence", "not_applicable"
SEVERITY = {FAIL: 3, NEEDS_EVIDENCE: 2, PASS: 1, NOT_APPLICABLE: 0}  # an item is as bad as its worst check


@dataclass(frozen=True)
class CheckVerdict:
    """What one check concluded from one target's evidence: the status, a one-line summary and the
    evidence lines that decided it (file:line, a config line or an output excerpt)."""

    status: str
    summary: str
    evidence: tuple[str, ...] = ()


def passed(summary: str, evidence: list[str] | tuple[str, ...] = ()) -> CheckVerdict:
    return CheckVerdict(PASS, summary, tuple(evidence))


def failed(summary: str, evidence: list[str] | tuple[str, ...] = ()) -> CheckVerdict:
    return CheckVerdict(FAIL, summary, tuple(evidence))


def needs_evidence(summary: str, evidence: list[str] | tuple[str, ...] = ()) -> CheckVerdict:
    """The target cannot show it: the assessor needs other evidence (a document, another system's)."""
    return CheckVerdict(NEEDS_EVIDENCE, summary, tuple(evidence))


@dataclass(frozen=True)
class Check:
    id: str
    kind: str  # "linux", or "device" for the network-device checks
    evaluate: Callable[[Any, dict[str, Any]], CheckVerdict]
    fixable: bool = False  # the remediation playbook handles it
    params: tuple[str, ...] = field(default=())  # catalog parameters it reads (validated at load)


REGISTRY: dict[str, Check] = {}


def check(id: str, *, kind: str = "linux", fixable: bool = False, params: tuple[str, ...] = ()) -> Callable:
    """Register an evaluation function as check `id`: host and device checks share one registry, so the
    catalog names either and the engine judges both alike."""
    def register(fn: Callable[[Any, dict[str, Any]], CheckVerdict]) -> Callable:
        if id in REGISTRY:
            raise ValueError(f"check {id} is defined twice")
        REGISTRY[id] = Check(id, kind, fn, fixable, params)
        return fn
    return register


@dataclass(frozen=True)
class Row:
    """One line of a target's result: a control point decided by one check (one `CheckVerdict`, placed)."""

    item: str  # the level-3 clause id (catalog key)
    clause: str  # the clause at the target's level (7.1.4.x at level 2)
    test_id: str
    check: str
    status: str
    summary: str
    evidence: tuple[str, ...]
    fixable: bool


class TargetVerdicts(TypedDict, total=False):
    """A checked target's value in a run (and in the store): its level, what it runs, its rows (`Row`
    as a dict). Hosts add family and distribution; devices add kind ("device"), platform, address,
    site and role."""

    kind: str
    level: int
    os: str | None
    family: str | None
    distribution: str | None
    platform: str
    address: str
    site: str | None
    role: str
    collect_seconds: float | None
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class CheckOptions:
    """How targets are reached in a check run."""

    workers: int = runner.DEFAULT_WORKERS
    timeout: float = 60.0  # seconds per target
    trust_on_first_use: bool = False
    # Classified (涉密) systems are under 分级保护, not 等保: their hosts are checked only on this explicit override.
    include_classified: bool = False
    # A run's `--jump NAME|none` for hosts and devices: None keeps the inventory's settings.
    jump: str | None = None


class CatalogError(ValueError):
    """The catalog or a profile is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Item:
    id: str  # the level-3 clause, used as the key everywhere
    clause: dict[int, str]
    test_id: str
    topic: dict[str, str]
    text: dict[str, str]
    levels: tuple[int, ...]
    checks: tuple[str, ...] = ()
    not_applicable: dict[str, str] | None = None
    not_applicable_to: dict[str, dict[str, str]] | None = None  # per kind of target: {"device": {zh, en}}

    def not_applicable_for(self, kind: str) -> dict[str, str] | None:
        return (self.not_applicable_to or {}).get(kind) or self.not_applicable

    def clause_at(self, level: int) -> str:
        return self.clause.get(level) or self.id


@dataclass(frozen=True)
class Catalog:
    path: Path
    parameters: dict[str, dict[str, Any]]
    items: tuple[Item, ...]

    def items_at(self, level: int) -> list[Item]:
        return [i for i in self.items if level in i.levels]

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.parameters.items()}


@dataclass(frozen=True)
class Profile:
    name: str
    level: int
    parameters: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def params(self, catalog: Catalog) -> dict[str, Any]:
        return {**catalog.defaults(), **self.parameters}


def _need(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise CatalogError(f"{where}: missing {key!r}")
    return data[key]


def _has_control_chars(value: Any) -> bool:
    if isinstance(value, str):
        return any(ord(c) < 32 or ord(c) == 127 for c in value)
    if isinstance(value, dict):
        return any(_has_control_chars(k) or _has_control_chars(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_control_chars(v) for v in value)
    return False


def load_catalog(path: Path = CATALOG) -> Catalog:
    """The catalog, each item's checks known to the registry and their parameters declared."""
    for module in CHECK_MODULES:
        importlib.import_module(module)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: {exc}") from None
    params = _need(data, "parameters", str(path))
    for name, spec in params.items():
        if not isinstance(spec, dict) or "default" not in spec or "source" not in spec:
            raise CatalogError(f"{path}: parameters.{name}: needs a default and the source of that default")
    items = []
    seen = set()
    for n, raw in enumerate(_need(data, "items", str(path))):
        where = f"{path}: items[{n}]"
        item = Item(id=_need(raw, "id", where), clause={int(k): v for k, v in _need(raw, "clause", where).items()},
                    test_id=raw.get("test_id", ""), topic=_need(raw, "topic", where), text=_need(raw, "text", where),
                    levels=tuple(_need(raw, "levels", where)), checks=tuple(raw.get("checks", ())),
                    not_applicable=raw.get("not_applicable"), not_applicable_to=raw.get("not_applicable_to"))
        where = f"{path}: item {item.id}"
        if item.id in seen:
            raise CatalogError(f"{where}: defined twice")
        seen.add(item.id)
        if not set(item.levels) <= set(LEVELS) or any(lv not in item.clause for lv in item.levels):
            raise CatalogError(f"{where}: levels must be among {LEVELS}, each with its clause")
        if set(item.text) != {"zh", "en"} or set(item.topic) != {"zh", "en"}:
            raise CatalogError(f"{where}: text and topic need zh and en")
        if not item.checks and not item.not_applicable:
            raise CatalogError(f"{where}: needs checks or a not_applicable reason")
        for kind, reason in (item.not_applicable_to or {}).items():
            if not isinstance(reason, dict) or set(reason) != {"zh", "en"}:
                raise CatalogError(f"{where}: not_applicable_to.{kind} needs zh and en")
        for c in item.checks:
            if c not in REGISTRY:
                raise CatalogError(f"{where}: unknown check {c!r}")
            missing = [x for x in REGISTRY[c].params if x not in params]
            if missing:
                raise CatalogError(f"{where}: check {c} reads parameters the catalog lacks: {', '.join(missing)}")
        items.append(item)
    return Catalog(path, params, tuple(items))


def load_profile(spec: str | Path | None, catalog: Catalog, level: int | None = None) -> Profile:
    """A profile by name (level2, level3) or path; `extends` chains to another profile; None = level3."""
    if spec is None:
        spec = f"level{level or 3}"
    path = Path(spec)
    if not path.suffix:
        path = PROFILES / f"{spec}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"cannot read profile {path}: {exc}") from None
    base = load_profile(PROFILES / f"{data['extends']}.yaml" if not str(data["extends"]).endswith(".yaml")
                        else path.parent / data["extends"], catalog) if data.get("extends") else None
    params = dict(base.parameters) if base else {}
    for name, value in (data.get("parameters") or {}).items():
        if name not in catalog.parameters:
            raise CatalogError(f"{path}: parameters.{name}: not a catalog parameter "
                               f"(known: {', '.join(sorted(catalog.parameters))})")
        default = catalog.parameters[name]["default"]
        numbers = isinstance(default, int | float) and isinstance(value, int | float)
        if type(default) is not type(value) and not numbers:
            raise CatalogError(f"{path}: parameters.{name}: expected {type(default).__name__} like the catalog's "
                               f"default {default!r}, got {value!r}")
        if _has_control_chars(value):
            raise CatalogError(f"{path}: parameters.{name}: control characters or line breaks are not allowed "
                               "(values reach configuration files through remediation)")
        params[name] = value
    lv = data.get("level", base.level if base else None)
    if lv not in LEVELS:
        raise CatalogError(f"{path}: level must be one of {LEVELS}")
    return Profile(str(data.get("name", path.stem)), int(level or lv), params, path)


@dataclass(frozen=True)
class BaselineRun:
    """One `baseline.check` run: every target's `Result` (value: `TargetVerdicts`), what was asked and
    where it is stored. The result the service returns and the one object the reports take."""

    inv: Inventory
    catalog: Catalog
    profile: str  # its name; "" when read back from the store (load_run)
    results: list[Result]
    levels: dict[str, int | None]  # every selected target's level; None: not checked (no level 2 or 3)
    level: int | None = None  # --level, when it was given
    run_id: int | None = None  # None: not stored

    def checked(self) -> list[Result]:
        return [r for r in self.results if r.ok]

    def not_checked(self) -> list[Result]:
        """The targets that could not be checked (unreachable, refused, broken): results, never a stop."""
        return [r for r in self.results if not r.ok]

    def failed_checks(self, target: Result) -> list[str]:
        return sorted({row["check"] for row in target.value["rows"] if row["status"] == FAIL})

    def with_failures(self) -> list[Result]:
        return [r for r in self.checked() if self.failed_checks(r)]

    def skipped(self) -> list[str]:
        """The selected targets without a level, not contacted."""
        return [name for name, lv in self.levels.items() if not lv]

    @property
    def problems(self) -> bool:
        """A failed check or a target that could not be checked: the run found problems."""
        return bool(self.with_failures() or self.not_checked())


@dataclass(frozen=True)
class HostRemediation:
    """One host's remediation. `changed` (in check mode: would change) and `diff` are the fields every
    domain's `jiyue.runner.Result` carries, so a remediated host reports like a pushed device."""

    host: str
    fixes: tuple[str, ...]  # its failed checks the playbook fixes
    changed: bool = False
    diff: str = ""
    tasks: tuple[str, ...] = ()  # the playbook tasks that changed (or would)
    still_failing: tuple[str, ...] = ()  # after an applied run, fixes the re-check still finds failed


@dataclass(frozen=True)
class Remediation:
    """A remediation run: per host what was fixed (or would be), the playbook's failures, and the check
    runs before (which planned the fixes) and after (an applied run's re-check)."""

    applied: bool
    hosts: dict[str, HostRemediation]
    failures: tuple[str, ...] = ()
    before: BaselineRun | None = None
    after: BaselineRun | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def fixes(self) -> dict[str, list[str]]:
        return {h: list(r.fixes) for h, r in self.hosts.items()}

    @property
    def still_failing(self) -> dict[str, list[str]]:
        return {h: list(r.still_failing) for h, r in self.hosts.items() if r.still_failing}
