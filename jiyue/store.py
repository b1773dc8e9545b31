"""The result store: every run, every target's outcome, kept so that "long-term" means something.

Log files on hosts rotate after days or weeks; the store is what remembers. SQLite by default
(`state/history.sqlite`), any SQLAlchemy URL with `--store` or `JIYUE_STORE`. One generic shape
serves every domain: a run of some kind (`audit.collect`, `baseline.check`, …) and one row per
target with its status and its data as JSON.

Utilisation imported from a monitoring system (`audit.history`) has a table of its own, `readings`: one row
per host per interval with the source that measured it, written in bulk; the import itself is a run.
New tables appear in an existing store on first use (`create_all`); no column of an existing table changes.

Requests for shared data (`catalog.request`, 政务信息资源目录) have a table of their own, `share_requests`: one row
per request, its answer written into it once, so the 10-working-day clock reads from one place.

Two more generic tables serve long, resumable operations such as migrations: `journal` (one row
per step transition of a subject in a run: started, done, failed, rolled_back, …) and `locks`
(one row per subject being worked on; the subject is the primary key, so acquiring is one atomic
INSERT that at most one process wins).

`Store.as_of(moment)` is a read-only view of the store as it stood then (what a report dated in the past reads);
`StoreSnapshot` reads the records once and gives such views of many moments (a timeline) from memory.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from jiyue.runner import Result

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"sqlite:///{REPO / 'state' / 'history.sqlite'}"

# The kinds of run the domains record, named once: one domain reads what another wrote (the audit reads
# where migrations moved each system), so a kind is never spelled out as a string at its use.
AUDIT_COLLECT = "audit.collect"
BASELINE_CHECK = "baseline.check"
MIGRATE_RUN = "migrate.run"
MIGRATE_LOCATION = "migrate.location"
NETWORK_PUSH = "network.push"
# An import of utilisation history from a monitoring system the city runs (audit.history): params = {"source",
# "url", "since", "until", "step"}; its readings are rows of `readings`, not results.
AUDIT_HISTORY = "audit.history"
# A scan of the declared subnets for undeclared hosts (audit.discover): target = an address that answered, or an
# inventory host that did not (status unreachable); data = the finding (ports, what declares it, SSH banner, …).
AUDIT_DISCOVER = "audit.discover"
# A host the consolidation has freed (a migrated source after its decommission, a zombie after its grace
# period): target = the host, data = {"system", "department", "cause" (migrated_source | zombie | website),
# "signed_off_by", "freed_at", "archive" (where a zombie's data went), …}. The asset register (资产清单) reads it.
ASSET_FREED = "asset.freed"
# Which way each host's internet traffic leaves (lines.egress): data = lines.model.EgressFacts.
LINES_EGRESS = "lines.egress"


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inventory: Mapped[str] = mapped_column(Text, default="")
    seeded: Mapped[bool] = mapped_column(Boolean, default=False)  # history written by a test or demo, not measured
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    results: Mapped[list[TargetResult]] = relationship(back_populates="run", cascade="all, delete-orphan")


class TargetResult(Base):
    __tablename__ = "results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    target: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(32))  # ok, or the error kind
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[Any] = mapped_column(JSON)
    run: Mapped[Run] = relationship(back_populates="results")


class ReadingRow(Base):
    """One host's utilisation over one interval, as a monitoring source measured it (Prometheus: one row per
    host per day). A table of its own: an import writes hundreds of thousands at once (executemany), and
    each row says which source it came from."""

    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    source: Mapped[str] = mapped_column(String(32), index=True)  # prometheus, …
    host: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # end of the interval
    seconds: Mapped[int] = mapped_column(Integer)  # the interval's length
    cpu_pct: Mapped[float | None] = mapped_column(Float)  # of the host's CPUs
    cpus: Mapped[int | None] = mapped_column(Integer)
    memory_used_gb: Mapped[float | None] = mapped_column(Float)
    net_mb_per_day: Mapped[float | None] = mapped_column(Float)
    seeded: Mapped[bool] = mapped_column(Boolean, default=False)  # written by a test or demo, not measured


class JournalRow(Base):
    """One step transition of one subject (e.g. a system being migrated) in one run."""

    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(128), index=True)
    subject: Mapped[str] = mapped_column(String(128), index=True)
    step: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))  # started, done, failed, rolled_back (and refused, …)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    detail: Mapped[Any] = mapped_column(JSON, default=dict)


class LockRow(Base):
    """A subject someone is working on. The primary key makes acquiring atomic."""

    __tablename__ = "locks"
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))  # the run key
    pid: Mapped[int] = mapped_column(Integer)
    hostname: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ShareRequestRow(Base):
    """One request for a catalogued resource's data: who asked, when, and, once answered, when and how."""

    __tablename__ = "share_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inventory: Mapped[str] = mapped_column(Text, default="")
    resource: Mapped[str] = mapped_column(String(255), index=True)  # <system>/<resource name>
    requested_by: Mapped[str] = mapped_column(String(64), index=True)  # the requesting department's code
    requested_on: Mapped[date] = mapped_column(Date)  # the day the clock starts (local date)
    purpose: Mapped[str] = mapped_column(Text, default="")
    answered_on: Mapped[date | None] = mapped_column(Date)
    decision: Mapped[str | None] = mapped_column(String(32))  # granted | refused
    note: Mapped[str] = mapped_column(Text, default="")
    recorded: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class ShareRequest:
    id: int
    inventory: str
    resource: str
    requested_by: str
    requested_on: date
    purpose: str
    answered_on: date | None
    decision: str | None
    note: str


@dataclass(frozen=True)
class JournalEntry:
    id: int
    run_key: str
    subject: str
    step: str
    status: str
    at: datetime
    detail: Any


@dataclass(frozen=True)
class Lock:
    subject: str
    holder: str
    pid: int
    hostname: str
    at: datetime


@dataclass(frozen=True)
class Reading:
    """One stored reading of a monitoring source, as read back for analysis."""

    run_id: int
    source: str
    host: str
    at: datetime
    seconds: int
    cpu_pct: float | None
    cpus: int | None
    memory_used_gb: float | None
    net_mb_per_day: float | None
    seeded: bool


READING_FIELDS = ("host", "at", "seconds", "cpu_pct", "cpus", "memory_used_gb", "net_mb_per_day", "seeded")


@dataclass(frozen=True)
class Record:
    """One target's outcome in one run, as read back for analysis."""

    run_id: int
    kind: str
    at: datetime
    target: str
    status: str
    error: str | None
    data: Any
    seeded: bool


def _share_request(row: ShareRequestRow) -> ShareRequest:
    return ShareRequest(row.id, row.inventory, row.resource, row.requested_by, row.requested_on, row.purpose,
                        row.answered_on, row.decision, row.note)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Store:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ.get("JIYUE_STORE") or DEFAULT_URL
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(self.url, json_serializer=lambda v: json.dumps(v, ensure_ascii=False))
        Base.metadata.create_all(self.engine)
        self.until: datetime | None = None  # set on a view of the past (`as_of`)

    def as_of(self, until: datetime) -> Store:
        """The store as it stood at `until`: a read-only view of the same database in which every run, result,
        reading and journal row after `until` does not exist yet. What a report recomputes "as of a date"
        reads through it, so the past is judged with what was known then (the same code, older data)."""
        view = copy.copy(self)
        view.until = _utc(until).astimezone(UTC)
        return view

    def _writable(self) -> None:
        if self.until is not None:
            raise RuntimeError(f"a view of the store as of {self.until:%Y-%m-%d %H:%M} is read-only")

    def record(self, kind: str, results: Iterable[Result], *, inventory: str = "", params: dict | None = None,
               started: datetime | None = None, seeded: bool = False) -> int:
        """Store one finished run with all its results; return the run id."""
        self._writable()
        results = list(results)
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            run = Run(kind=kind, started=started or now, finished=now, inventory=inventory, seeded=seeded,
                      params=params or {})
            session.add(run)
            session.flush()
            # One executemany, not one ORM object per target: a thousand hosts' facts stored in a third of the time.
            if results:
                session.execute(insert(TargetResult), [
                    {"run_id": run.id, "target": r.target, "status": "ok" if r.ok else (r.error_kind or "error"),
                     "error": r.error, "at": r.started or started or now, "data": r.value} for r in results])
            return run.id

    def history(self, kind: str, targets: Iterable[str] | None = None, since: datetime | None = None,
                ok_only: bool = False) -> list[Record]:
        """Every stored outcome of runs of `kind`, oldest first."""
        query = select(TargetResult, Run).join(Run).where(Run.kind == kind)
        if targets is not None:
            query = query.where(TargetResult.target.in_(list(targets)))
        if since is not None:
            query = query.where(TargetResult.at >= since)
        if ok_only:
            query = query.where(TargetResult.status == "ok")
        if self.until is not None:
            query = query.where(TargetResult.at <= self.until, Run.started <= self.until)
        query = query.order_by(TargetResult.at, TargetResult.id)
        with Session(self.engine) as session:
            return [Record(run.id, run.kind, _utc(res.at), res.target, res.status, res.error, res.data, run.seeded)
                    for res, run in session.execute(query)]

    # --- readings of monitoring sources -------------------------------------------------------------

    def run_times(self, kinds: Iterable[str] | None = None) -> list[tuple[str, datetime]]:
        """(kind, start) of every stored run (of `kinds`), oldest first: the dates a report can look back to."""
        query = select(Run.kind, Run.started)
        if kinds is not None:
            query = query.where(Run.kind.in_(list(kinds)))
        if self.until is not None:
            query = query.where(Run.started <= self.until)
        with Session(self.engine) as session:
            return [(kind, _utc(started)) for kind, started in session.execute(query.order_by(Run.started))]

    def record_readings(self, source: str, rows: list[dict[str, Any]], *, hosts: Iterable[str], since: datetime,
                        until: datetime, inventory: str = "", params: dict | None = None,
                        seeded: bool = False) -> int:
        """Store one import of `source`: the readings of `hosts` in [since, until] replace what an earlier
        import of the same source stored there (importing a window twice counts it once). Each row has
        READING_FIELDS. One transaction, one executemany; return the run id."""
        self._writable()
        hosts = list(hosts)
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            run = Run(kind=AUDIT_HISTORY, started=now, finished=now, inventory=inventory, seeded=seeded,
                      params={"source": source, **(params or {})})
            session.add(run)
            session.flush()
            for i in range(0, len(hosts), 500):  # SQLite limits the parameters of one statement
                session.execute(delete(ReadingRow).where(
                    ReadingRow.source == source, ReadingRow.host.in_(hosts[i:i + 500]),
                    ReadingRow.at >= since, ReadingRow.at <= until))
            if rows:
                session.execute(insert(ReadingRow), [{"run_id": run.id, "source": source, **r} for r in rows])
            return run.id

    def readings(self, hosts: Iterable[str] | None = None, since: datetime | None = None,
                 source: str | None = None) -> list[Reading]:
        """Stored readings, oldest first (by host, then time)."""
        query = select(ReadingRow.run_id, ReadingRow.source, ReadingRow.host, ReadingRow.at, ReadingRow.seconds,
                       ReadingRow.cpu_pct, ReadingRow.cpus, ReadingRow.memory_used_gb, ReadingRow.net_mb_per_day,
                       ReadingRow.seeded)
        if hosts is not None:
            query = query.where(ReadingRow.host.in_(list(hosts)))
        if since is not None:
            query = query.where(ReadingRow.at >= since)
        if source is not None:
            query = query.where(ReadingRow.source == source)
        if self.until is not None:
            query = query.where(ReadingRow.at <= self.until)
        with Session(self.engine) as session:
            rows = session.execute(query.order_by(ReadingRow.host, ReadingRow.at, ReadingRow.id)).all()
        return [Reading(r[0], r[1], r[2], _utc(r[3]), *r[4:]) for r in rows]

    def run_results(self, run_id: int) -> list[Record]:
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is None or (self.until is not None and _utc(run.started) > self.until):
                return []
            return [Record(run.id, run.kind, _utc(r.at), r.target, r.status, r.error, r.data, run.seeded)
                    for r in run.results if self.until is None or _utc(r.at) <= self.until]

    # --- requests for shared data --------------------------------------------------------------

    def add_share_request(self, resource: str, requested_by: str, requested_on: date, *, purpose: str = "",
                          inventory: str = "") -> ShareRequest:
        with Session(self.engine) as session, session.begin():
            row = ShareRequestRow(inventory=inventory, resource=resource, requested_by=requested_by,
                                  requested_on=requested_on, purpose=purpose, note="", recorded=datetime.now(UTC))
            session.add(row)
            session.flush()
            return _share_request(row)

    def answer_share_request(self, request_id: int, answered_on: date, decision: str, note: str = ""
                             ) -> ShareRequest | None:
        """Record the answer once; None when there is no such request. An answered request keeps its first answer
        (the clock stopped then): the caller says so."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ShareRequestRow, request_id)
            if row is None:
                return None
            if row.answered_on is None:
                row.answered_on, row.decision, row.note = answered_on, decision, note
            return _share_request(row)

    def share_requests(self, inventory: str | None = None) -> list[ShareRequest]:
        query = select(ShareRequestRow)
        if inventory is not None:
            query = query.where(ShareRequestRow.inventory == inventory)
        with Session(self.engine) as session:
            return [_share_request(r) for r in session.scalars(query.order_by(ShareRequestRow.id))]

    # --- journal --------------------------------------------------------------------------------

    def journal(self, run_key: str, subject: str, step: str, status: str, detail: Any = None,
                at: datetime | None = None) -> JournalEntry:
        """Append one step transition; committed before this returns (a kill right after loses nothing)."""
        self._writable()
        with Session(self.engine) as session, session.begin():
            row = JournalRow(run_key=run_key, subject=subject, step=step, status=status,
                             at=at or datetime.now(UTC), detail=detail if detail is not None else {})
            session.add(row)
            session.flush()
            return JournalEntry(row.id, run_key, subject, step, status, _utc(row.at), row.detail)

    def journal_entries(self, run_key: str | None = None, subject: str | None = None,
                        prefix: str | None = None) -> list[JournalEntry]:
        """Journal rows, oldest first; filtered by run key, subject, or run-key prefix."""
        query = select(JournalRow)
        if run_key is not None:
            query = query.where(JournalRow.run_key == run_key)
        if subject is not None:
            query = query.where(JournalRow.subject == subject)
        if prefix is not None:
            query = query.where(JournalRow.run_key.startswith(prefix, autoescape=True))
        if self.until is not None:
            query = query.where(JournalRow.at <= self.until)
        with Session(self.engine) as session:
            return [JournalEntry(r.id, r.run_key, r.subject, r.step, r.status, _utc(r.at), r.detail)
                    for r in session.scalars(query.order_by(JournalRow.id))]

    # --- locks ----------------------------------------------------------------------------------

    def acquire_lock(self, subject: str, holder: str, pid: int, hostname: str) -> bool:
        """Take the lock on `subject` for `holder`; False when someone else holds it (atomic)."""
        self._writable()
        try:
            with Session(self.engine) as session, session.begin():
                session.add(LockRow(subject=subject, holder=holder, pid=pid, hostname=hostname,
                                    at=datetime.now(UTC)))
            return True
        except IntegrityError:
            return False

    def lock(self, subject: str) -> Lock | None:
        with Session(self.engine) as session:
            row = session.get(LockRow, subject)
            return None if row is None else Lock(row.subject, row.holder, row.pid, row.hostname, _utc(row.at))

    def locks(self) -> list[Lock]:
        with Session(self.engine) as session:
            return [Lock(r.subject, r.holder, r.pid, r.hostname, _utc(r.at))
                    for r in session.scalars(select(LockRow).order_by(LockRow.subject))]

    def release_lock(self, subject: str, holder: str | None = None) -> bool:
        """Release `subject` (only if `holder` holds it, when given); True when a lock was removed.

        Without a holder this breaks the lock: for a stale lock of a process that died.
        """
        with Session(self.engine) as session, session.begin():
            query = delete(LockRow).where(LockRow.subject == subject)
            if holder is not None:
                query = query.where(LockRow.holder == holder)
            return session.execute(query).rowcount > 0


class StoreSnapshot:
    """A store's records and readings read once, then viewed at many moments without reading again: what a
    report that recomputes the past at each of many dates (a timeline) reads through. It answers the read
    methods the domains' read models use (`history`, `readings`, `run_times`) exactly as the store would, and
    `as_of` gives a view of the past as `Store.as_of` does. Read-only; a kind is read on first use."""

    def __init__(self, store: Store) -> None:
        self.url = store.url
        self.until: datetime | None = None
        self._store = store
        self._records: dict[str, list[Record]] = {}
        self._readings: list[Reading] | None = None
        self._runs: list[tuple[str, datetime]] | None = None

    def as_of(self, until: datetime) -> StoreSnapshot:
        view = copy.copy(self)
        view.until = _utc(until).astimezone(UTC)
        return view

    def _before(self, at: datetime) -> bool:
        return self.until is None or at <= self.until

    def history(self, kind: str, targets: Iterable[str] | None = None, since: datetime | None = None,
                ok_only: bool = False) -> list[Record]:
        if kind not in self._records:
            self._records[kind] = self._store.history(kind)
        wanted = None if targets is None else set(targets)
        return [r for r in self._records[kind] if self._before(r.at) and (wanted is None or r.target in wanted)
                and (since is None or r.at >= since) and (not ok_only or r.status == "ok")]

    def readings(self, hosts: Iterable[str] | None = None, since: datetime | None = None,
                 source: str | None = None) -> list[Reading]:
        if self._readings is None:
            self._readings = self._store.readings()
        wanted = None if hosts is None else set(hosts)
        return [r for r in self._readings if self._before(r.at) and (wanted is None or r.host in wanted)
                and (since is None or r.at >= since) and (source is None or r.source == source)]

    def run_times(self, kinds: Iterable[str] | None = None) -> list[tuple[str, datetime]]:
        if self._runs is None:
            self._runs = self._store.run_times()
        wanted = None if kinds is None else set(kinds)
        return [(k, at) for k, at in self._runs if self._before(at) and (wanted is None or k in wanted)]
