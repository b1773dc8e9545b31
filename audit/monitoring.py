"""What every monitoring source's import shares (audit/prometheus.py, audit/zabbix.py): the window aligned to
the step, the reading row each source fills, and each host's coverage (days with a reading, and gaps).

A source's `fetch` returns rows for `Store.record_readings`; audit/service.py `import_history` stores them
and computes the coverage, the same for every source, so criterion 3, right-sizing and the archive read
every source's history alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DAY = 86400


class MonitoringError(Exception):
    """A monitoring server could not be reached or refused a request; the message names its URL and says why
    (never a password). `bad_input`: the declaration is at fault (a wrong user or password), not the server."""

    bad_input = False


def aligned(since: datetime, until: datetime, step: int) -> tuple[datetime, datetime]:
    """The first and last step boundary inside [since, until], so that importing again lands on the same
    timestamps (and replaces them)."""
    return (datetime.fromtimestamp((since.timestamp() // step + 1) * step, UTC),
            datetime.fromtimestamp(until.timestamp() // step * step, UTC))


def reading(host: str, at: datetime, step: int) -> dict[str, Any]:
    """An empty reading row (READING_FIELDS of jiyue/store.py) that a source fills in."""
    return {"host": host, "at": at, "seconds": step, "cpu_pct": None, "cpus": None, "memory_used_gb": None,
            "net_mb_per_day": None, "seeded": False}


@dataclass
class Coverage:
    """How much of a window one host's history covers: days with a reading, and the missing spans."""

    host: str
    days: int  # days with a reading in the window
    first: datetime | None
    last: datetime | None
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)  # [from, to) without a reading

    def describe(self) -> str:
        if self.first is None or self.last is None:
            return "无数据 / no data"
        gaps = ", ".join(f"{a:%Y-%m-%d}–{b:%Y-%m-%d}" for a, b in self.gaps[:5]) + (" …" if len(self.gaps) > 5 else "")
        return (f"{self.days} 天（{self.first:%Y-%m-%d} – {self.last:%Y-%m-%d}）/ {self.days} days"
                + (f"; 缺口 gaps: {gaps}" if gaps else ""))


def coverage(host: str, times: list[datetime], since: datetime, until: datetime, step: int = DAY) -> Coverage:
    """The days with a reading between `since` and `until`, and every run of missing steps as a gap
    (before the first reading too: a history that starts late is short, not complete)."""
    times = sorted(t for t in times if since <= t <= until)
    if not times:
        return Coverage(host, 0, None, None, [(since, until)])
    gaps, previous, slack = [], since, timedelta(seconds=step * 1.5)
    for t in times:
        if t - previous > slack:
            gaps.append((previous, t - timedelta(seconds=step)))
        previous = t
    if until - previous > slack:
        gaps.append((previous, until))
    return Coverage(host, len({t.date() for t in times}), times[0], times[-1], gaps)
