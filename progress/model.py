"""The progress report's records: what each measure counted, per department and milestone, and the timeline.

Every count is made of `Item`s, one per thing counted (a system, a host, a department, a leased line) with
whether it is done and, when not, why: a department told "3 of 5" can see which 2 and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from inventory.model import Inventory, Measure, Milestone
from lines.model import EgressFinding, LinesProgress


@dataclass(frozen=True)
class Item:
    """One thing a measure counts: `subject` (system id, host name, department code, line id) of `department`."""

    subject: str
    department: str
    done: bool
    why: str = ""  # what is missing, "中文 / English", when not done; what proves it, when done


@dataclass(frozen=True)
class Count:
    done: int
    total: int

    @property
    def share(self) -> float | None:
        """done / total, None when there is nothing to count (0/0 is no progress and no delay)."""
        return self.done / self.total if self.total else None

    @property
    def percent(self) -> float | None:
        return None if self.share is None else round(100 * self.share, 1)


@dataclass(frozen=True)
class DepartmentProgress:
    department: str
    count: Count
    expected: float | None  # the share the lagging rule expected by the report date (None: no expectation)
    lagging: bool
    reason: str = ""  # why flagged, "中文 / English"
    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class TimelinePoint:
    at: date
    count: Count


@dataclass
class MilestoneProgress:
    milestone: Milestone
    count: Count
    expected: float | None
    departments: list[DepartmentProgress]
    timeline: list[TimelinePoint] = field(default_factory=list)
    note: str = ""  # e.g. "no lines declared", or the annual cost the cancelled lines save
    lines: LinesProgress | None = None  # leased_lines: the lines module's measure, to the milestone's departments
    findings: list[EgressFinding] = field(default_factory=list)  # lines carrying traffic past their date

    @property
    def lagging(self) -> list[DepartmentProgress]:
        return [d for d in self.departments if d.lagging]


@dataclass(frozen=True)
class Ranking:
    """One department over every milestone that covers it: the summary sheet's row, best first."""

    rank: int
    department: str
    count: Count
    milestones: int
    lagging: int


@dataclass
class ProgressResult:
    """What `progress.service.progress` returns and `progress.report.write_reports` writes."""

    inventory: Inventory
    as_of: datetime
    policy: dict[str, Any]
    milestones: list[MilestoneProgress]
    ranking: list[Ranking]
    store: str = ""

    @property
    def lagging(self) -> list[tuple[MilestoneProgress, DepartmentProgress]]:
        return [(m, d) for m in self.milestones for d in m.lagging]

    @property
    def findings(self) -> list[tuple[MilestoneProgress, EgressFinding]]:
        """Problems beside the counts: leased lines still carrying traffic after their cancellation date."""
        return [(m, f) for m in self.milestones for f in m.findings]


MEASURES = tuple(Measure)
