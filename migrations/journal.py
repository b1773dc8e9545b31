"""The migration journal: every step of every system, journaled in the store as it starts and ends.

The journal (the store's `journal` table) is what makes a killed run resumable: a step journaled `done`
is never repeated, a step `started` but not done runs again (every playbook is idempotent). It is an
observer of one migration run (the kernel runner's observer methods: `run_started` queues the run's
systems, `target_finished` journals a system the engine itself failed on), and the engine journals each
step's transitions through it (started, done, failed, rolled_back, refused).

What a `done` row records is decoded from the step's playbook results by `step_detail`: reports the
playbooks hand over as data (see `migrations.playbook`), never task titles. A cutover (one playbook run
for five steps) is journaled step by step from its event stream by `CutoverTracker`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from jiyue.runner import Result
from jiyue.store import JournalEntry, Store
from migrations.model import Plan, SystemPlan
from migrations.playbook import PlaybookResult, event_module, event_step, event_time, failed_event, summarise

# The first step of a run: read-only, so a failure of it ends the run with nothing to undo.
CHECKS = ("precheck", "offline_check")
ENGINE_FAILED = "engine"  # a Result's error_kind when the engine itself failed on a system (a bug)


class StepFailed(Exception):
    """A step did not do its job: the system rolls back (or, rehearsing, the rehearsal fails)."""

    def __init__(self, step: str, message: str, detail: dict | None = None) -> None:
        super().__init__(message)
        self.step, self.detail = step, detail or {}


def _parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def system_state(entries: list[JournalEntry]) -> tuple[dict[str, str], dict[str, dict]]:
    """A system's journal in one run: the last status of each step and the detail of each `done` row."""
    status: dict[str, str] = {}
    details: dict[str, dict] = {}
    for e in entries:
        status[e.step] = e.status
        if e.status == "done":
            details[e.step] = e.detail or {}
    return status, details


def due(status: dict[str, str]) -> str | None:
    """What a system's run still owes before anything else may start on the system: `resume` (it is unfinished:
    only its own run may carry it on, never a fresh one that would copy over what the target took), `rollback`
    (its rollback failed: the target may hold the only copy of what clients wrote), or None (it is over)."""
    if status.get("rollback") == "failed":
        return "rollback"
    return "resume" if outcome_of(status) is None else None


def outcome_of(status: dict[str, str]) -> str | None:
    """The end a system reached in a run, or None while it is unfinished."""
    if status.get("decommission") == "done":
        return "decommissioned"
    if status.get("rollback") == "done":
        return "rolled_back"
    if status.get("rollback") == "failed":
        return "failed"
    if any(s == "refused" for s in status.values()):
        return "refused"
    if any(status.get(check) == "failed" for check in CHECKS) and status.get("rollback") is None:
        return "failed"  # a failed check changed nothing: the run is over, nothing to roll back
    if status.get("done") == "done" and status.get("rollback") is None:
        return "migrated"
    if status.get("offline_hold") == "done" and status.get("rollback") is None:
        return "offline"  # a zombie taken offline, held for its grace period
    return None


class MigrationJournal:
    """One run's journal rows (`run_key`), an observer of the run. `queue`: the run is new, and `run_started`
    journals each of its systems as queued with what the plan says about it."""

    def __init__(self, store: Store, run_key: str, plan: Plan, *, apply: bool, queue: bool = False) -> None:
        self.store, self.run_key, self.plan, self.apply, self.queue = store, run_key, plan, apply, queue

    def step(self, system: str, step: str, status: str, detail: dict | None = None) -> None:
        self.store.journal(self.run_key, system, step, status, detail or {})

    def run_started(self, label: str, targets: Sequence[str]) -> None:
        if not self.queue:
            return
        for s in targets:
            sp = self.plan.system(s)
            self.step(s, "queued", "done", {"apply": self.apply, "wave": sp.wave,
                                            "targets": [t.model_dump(mode="json") for t in sp.targets],
                                            "budget_s": sp.downtime_budget_s})

    def target_finished(self, result: Result) -> None:
        if result.error_kind == ENGINE_FAILED:
            self.step(result.target, ENGINE_FAILED, "failed", {"error": result.error})


# --- what a finished step records ------------------------------------------------------------------------


def step_detail(step: str, r: PlaybookResult, plan: SystemPlan, earlier: dict[str, dict], *, apply: bool,
                ended: datetime | None = None) -> dict[str, Any]:
    """The detail of a step's `done` row, from its playbook's reports; `earlier` holds the earlier steps' details
    (the precheck's directories, the freeze's moment), `ended` when the step ended (the functional
    verification's end: the end of the downtime). Raises StepFailed for a precheck whose findings forbid the copy."""
    detail: dict[str, Any] = {"seconds": round(r.seconds, 2), "apply": apply}
    now = datetime.now(UTC)
    if step in ("precheck", "offline_check"):
        found = r.report("sources")
        dirs = {host: [str(d) for d in res.get("dirs", [])] for host, res in found.items()}
        detail |= {"dirs": dirs, "bytes": {host: int(res.get("bytes", 0)) for host, res in found.items()}}
        # What each target already held before this run: a cleanup after a rollback never removes it.
        detail["existing"] = {host: [str(d) for d in res.get("existing", [])]
                              for host, res in r.report("target_dirs").items()}
        for t in {t.target for t in plan.targets}:
            seen: dict[str, str] = {}
            for source in [x.source for x in plan.targets if x.target == t]:
                for d in dirs.get(source, []):
                    if d in seen:
                        raise StepFailed(step, f"{seen[d]} and {source} both hold {d} and both move to {t}: "
                                         "the copies would overwrite each other; give them different targets")
                    seen[d] = source
    elif step in ("presync", "final_sync"):
        passes = {"presync": {"first": "first_pass", "delta": "delta_pass"}, "final_sync": {"final": "final_pass"}}
        last: dict[str, dict] = {}
        for label, name in passes[step].items():
            last = r.report(name)
            detail[f"{label}_s"] = max((float(x.get("seconds", 0)) for x in last.values()), default=0.0)
            detail[f"{label}_bytes_sent"] = sum(int(x.get("literal_bytes", 0)) for x in last.values())
            detail[f"{label}_files"] = sum(int(x.get("files_transferred", 0)) for x in last.values())
        detail["bytes"] = sum(int(x.get("total_size", 0)) for x in last.values())
    elif step == "freeze":  # the downtime starts when the freeze's first task (stopping the service) starts
        detail["frozen_at"] = (r.first_task_at or now).isoformat()
    elif step == "verify_data":
        manifests = r.report("manifest")
        sources = earlier.get("precheck", {}).get("dirs", {})
        detail["manifests"] = {h: m.get("per_dir", {}) for h, m in manifests.items()}
        detail["files"] = sum(int(m.get("files", 0)) for h, m in manifests.items() if h in sources)
        detail["hashed_files"] = sum(int(m.get("hashed", 0)) for m in manifests.values())
    elif step == "switch":  # clients reach the target once the gateway's route has moved
        detail["served_at"] = (r.reported_at.get("route") or now).isoformat()
    elif step == "verify_function":
        verified = ended or now
        frozen = earlier.get("freeze", {}).get("frozen_at")
        served = earlier.get("switch", {}).get("served_at")
        detail["verified_at"] = verified.isoformat()
        if frozen and apply:
            detail["downtime_s"] = round((verified - _parse_time(frozen)).total_seconds(), 2)
            if served:
                detail["outage_s"] = round((_parse_time(served) - _parse_time(frozen)).total_seconds(), 2)
    elif step == "offline_unroute":  # what the route was, so that a rollback puts it back exactly
        detail["route_before"] = next((x.get("before") for x in r.report("route").values()), None)
    elif step == "offline_archive":  # each host's manifest of its data paths, and the archive's of the copies
        manifests = r.report("source_manifest")
        detail["manifests"] = {h: m.get("per_dir", {}) for h, m in manifests.items()}
        detail["files"] = sum(int(m.get("files", 0)) for m in manifests.values())
        detail["bytes"] = sum(int(m.get("bytes", 0)) for m in manifests.values())
        detail["archive"] = next((m.get("per_dir", {}) for m in r.report("archive_manifest").values()), {})
    elif step == "done":
        detail |= {"location": {t.source: t.target for t in plan.targets},
                   "migrated_at": now.isoformat(timespec="seconds")}
    return detail


def failure_detail(step: str, r: PlaybookResult) -> dict[str, Any]:
    """For a failed data verification: which entries differ (the first 100, names escaped), as jiyue_compare
    found them."""
    if step != "verify_data":
        return {}
    check = next(iter(r.report("data_check").values()), {})
    return {"differing_files": list(check.get("lines", []))[:100], "differing_count": int(check.get("count", 0))}


def cleanup_detail(result: PlaybookResult, cleanup: dict[str, list[str]]) -> tuple[list[dict], list[dict]]:
    """What the rollback removed from each target and what it left behind there (path, bytes, why), from its
    `cleanup` reports; a target that reported nothing (it did not answer) keeps all of this run's copy."""
    removed: list[dict] = []
    left: list[dict] = []
    reports = result.report("cleanup")
    for host, dirs in cleanup.items():
        report = reports.get(host)
        if report is None:
            left += [{"host": host, "path": d, "bytes": None, "why": "the target did not answer: not removed"}
                     for d in dirs]
            continue
        for line in report.get("lines", []):
            kind, size, path, *why = line.split("\t")
            row = {"host": host, "path": path, "bytes": int(size) if size.isdigit() else None}
            if kind == "removed":
                removed.append(row)
            else:
                left.append(row | {"why": why[0] if why else "not removed"})
        if report.get("error"):
            left += [{"host": host, "path": d, "bytes": None, "why": f"cleanup failed: {report['error']}"}
                     for d in dirs if d not in {r["path"] for r in removed if r["host"] == host}]
    return removed, left


# --- a cutover, step by step from its event stream ---------------------------------------------------------


class CutoverTracker:
    """Follows a cutover's event stream step by step: a step starts with its first task (the task's file,
    playbooks/<step>.yml, names it) and ends when a later step's first task starts or the playbook ends
    well. A step whose plays had no host to run on is started and ended in passing.

    `begin(step)` and `end(step, result, ended)` journal the transitions (`end` returns the step's detail);
    `on_targets_running()` is called once the switch's route module starts (the targets' services run).
    An exception from either stops the cutover (`cancelled`): nothing runs on unjournaled.
    """

    ROUTE_MODULE = "jiyue_route"

    def __init__(self, steps: Sequence[str], begin: Callable[[str], None],
                 end: Callable[[str, PlaybookResult, datetime | None], Any],
                 on_targets_running: Callable[[], None] | None = None) -> None:
        self.steps = list(steps)
        self._begin, self._end, self._running = begin, end, on_targets_running
        self.current: str | None = None  # the step running now (None between ending one and starting the next)
        self.last: str | None = None  # the last step started
        self.began: dict[str, datetime] = {}
        self.events: dict[str, list[dict]] = {}
        self.failed_step: str | None = None
        self.error: StepFailed | None = None
        self.stats_at: datetime | None = None

    def begin(self, step: str, at: datetime | None = None) -> None:
        self._begin(step)
        self.current = self.last = step
        self.began[step] = at or datetime.now(UTC)
        self.events.setdefault(step, [])

    def result(self, step: str, ok: bool = True, status: str = "successful", at: datetime | None = None
               ) -> PlaybookResult:
        """What the step's share of the events says."""
        seconds = ((at or datetime.now(UTC)) - self.began[step]).total_seconds() if step in self.began else 0.0
        return summarise(self.events.get(step, []), ok, status, max(seconds, 0.0), step=step)

    def close(self, ended: datetime | None) -> None:
        step = self.current
        assert step is not None
        self._end(step, self.result(step, at=ended), ended)
        self.current = None

    def advance(self, step: str, at: datetime) -> None:
        """Everything before `step` is done; `step` starts."""
        while self.current != step:
            if self.current is not None:
                self.close(at)
            self.begin(self.steps[self.steps.index(self.last) + 1] if self.last else self.steps[0], at)

    def finish(self, at: datetime | None = None, wait: Callable[[str], datetime | None] | None = None) -> None:
        """The playbook ended well: the current step and any not reached (nothing to run) are done. `wait(step)`
        may hold up the last step's end (the testinfra check) and returns when it ended."""
        ended = at or self.stats_at or datetime.now(UTC)
        self.advance(self.steps[-1], ended)
        if wait is not None:
            finished = wait(self.steps[-1])
            if finished is not None:
                ended = max(ended, finished)
        self.close(ended)

    def event(self, event: dict) -> None:
        if self.error is not None:
            return
        try:
            step = event_step(event)
            starts = event.get("event") == "playbook_on_task_start"
            later = step in self.steps and (self.last is None or self.steps.index(step) > self.steps.index(self.last))
            if starts and later:
                self.advance(step, event_time(event))
            if starts and self._running is not None and event_module(event) == self.ROUTE_MODULE:
                self._running()  # the targets' services run: the testinfra check goes beside the rest
            if self.current is not None:
                self.events[self.current].append(event)
            if failed_event(event) and self.failed_step is None:
                self.failed_step = step if step in self.steps else self.current
            if event.get("event") == "playbook_on_stats":
                self.stats_at = event_time(event)
        except StepFailed as exc:
            self.error = exc
        except Exception as exc:  # journaling failed: stop the cutover rather than run on unjournaled
            self.error = StepFailed(self.current or self.steps[0], f"journal: {type(exc).__name__}: {exc}")

    def cancelled(self) -> bool:
        return self.error is not None
