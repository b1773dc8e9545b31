"""The catalog's records: its tunable policy (catalog/policy.yaml), the catalog as reported, the candidates
collection proposes, and the requests for shared data with their answering clock.

The resources themselves are inventory records (`inventory.model.DataResource`, a `resources` list on each
system): the catalog is what the departments declare, and this domain reads it, checks it against what
collection saw, and tracks the requests made against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jiyue.i18n import DEFAULT_LANG, check_lang
from jiyue.yamlfile import load_model

POLICY = Path(__file__).resolve().parent / "policy.yaml"


class PolicyError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Model):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Requests(_Model):
    answer_working_days: int = Field(default=10, ge=1, le=60)
    holidays: list[str] = []  # names of blackouts in migrations/planning.yaml that are public holidays
    workdays: list[date] = []  # weekend days declared working days (调休上班)


class Candidates(_Model):
    database_ports: dict[int, str] = {}
    min_files: int = Field(default=1, ge=0)


class CatalogPolicy(_Model):
    """catalog/policy.yaml: the values of the catalog's tunable enumerations, in their order, with labels."""

    classifications: dict[str, Label] = Field(min_length=1)
    formats: dict[str, Label] = Field(min_length=1)
    update_cycles: dict[str, Label] = Field(min_length=1)
    open_attributes: dict[str, Label] = Field(min_length=1)
    requests: Requests = Requests()
    candidates: Candidates = Candidates()

    def values(self, enumeration: str) -> dict[str, Label]:
        return getattr(self, enumeration)

    def label(self, enumeration: str, code: str | None, lang: str = DEFAULT_LANG) -> str:
        """The shown text of a code; an unknown code as it is (validation has refused it already)."""
        if code is None:
            return ""
        found = self.values(enumeration).get(code)
        return getattr(found, check_lang(lang)) if found else code


# The resource fields whose values the policy file lists: field name -> the policy's enumeration.
ENUMERATIONS = {"classification": "classifications", "format": "formats", "update_cycle": "update_cycles",
                "open_attribute": "open_attributes"}


@cache
def load_policy(path: Path = POLICY) -> CatalogPolicy:
    return load_model(path, CatalogPolicy, PolicyError)


# --- the catalog as reported ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One catalogued resource with the system and department that provide it."""

    system: str
    system_name: str
    department: str
    department_name: str
    resource: Any  # inventory.model.DataResource

    @property
    def key(self) -> str:
        """How a request names it: `<system>/<resource name>`."""
        return f"{self.system}/{self.resource.name}"


@dataclass(frozen=True)
class Candidate:
    """A resource collection suggests and no declared resource covers: a database listening, a data path
    holding files, or a connection to the data-sharing exchange platform."""

    system: str
    department: str
    kind: str  # database | data_path | exchange
    name: str  # a proposed resource name
    location: str  # host:port, a path, or the exchange platform's system id
    format: str  # a proposed format code (catalog/policy.yaml formats)
    evidence: str  # what collection saw, and when


@dataclass(frozen=True)
class RequestStatus:
    """One request for shared data with its clock: due on the Nth working day after it was made."""

    id: int
    resource: str
    by: str
    on: date
    due: date
    answered_on: date | None
    decision: str | None  # granted | refused
    note: str
    state: str  # open | overdue | answered | answered_late
    working_days: int  # working days used: to the answer, or to `as_of` while open
    unknown_resource: bool = False  # the resource is no longer in the catalog

    @property
    def overdue(self) -> bool:
        return self.state in ("overdue", "answered_late")


@dataclass
class CatalogResult:
    """What `catalog.report` writes: the catalog, the candidates, the requests, as of a day."""

    inventory: Any
    as_of: date
    entries: list[Entry]
    candidates: list[Candidate] = field(default_factory=list)
    requests: list[RequestStatus] = field(default_factory=list)
    collected: bool = False  # whether the store held any collection to propose candidates from
