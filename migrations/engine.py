"""The migration engine for cloud rehosts: move a system onto its cloud targets without losing a byte.

One system moves through eight steps, each an Ansible playbook in `playbooks/` run through
ansible-runner against the exported Ansible inventory (`playbooks/<step>.yml` says what it does):

    precheck → presync → freeze → final_sync → verify_data → switch → verify_function → done

The cutover, freeze to verify_function (the downtime), is one ansible-playbook run
(`playbooks/cutover.yml` imports the five step playbooks, tagged by step, and opens every SSH
connection before the freeze); each step is journaled from ansible-runner's event stream as it
starts and ends (`_CutoverJournal`), and a resumed run passes only the steps still to do as tags.
The system's testinfra check (`FunctionalCheck`) is a pytest process the engine starts the moment
the switch has the targets' services running, beside the rest of the cutover.

The systems of a wave migrate at once, up to `parallel` (default 4), each in a thread of its own
with its own journal rows and lock; one system's failure never stops the others. Their cutovers take
turns (`cutovers` at once, default 1): a system ready to freeze waits, still live, while another is
in its downtime, so the machine serves one downtime at a time and each stays short. A system an
applied run already migrated is never moved again (`already_migrated`).

Data goes straight from each source host to its target: rsync runs on the source and reaches the
target over SSH with the operator's key through agent forwarding (the engine runs an ssh-agent for
the run, holding the inventory's key; only its socket is passed to Ansible), checking the target's
host key against the inventory's known_hosts line. Before the freeze, the duration of the
pre-sync's delta pass (plus a fixed allowance for the cutover steps) is weighed against the
system's downtime budget: over budget, the run stops cleanly (`refused`) with the source serving.

Every step transition is journaled in the store (`journal` table: started, done, failed,
rolled_back, refused) as it starts and ends, so a killed run resumes where it stopped: a step
journaled `done` is never repeated, a step `started` but not done runs again (every playbook is
idempotent). A lock per system (`locks` table, primary key = subject) keeps two runs from
migrating one system at once; the lock of a dead process is taken over by `resume` of its own
run and otherwise broken explicitly (`break_lock`).

A failing step rolls back automatically (`playbooks/rollback.yml`): the target's service stops, if
clients may have reached the target its data is copied back, the route returns to the source, the
source's service starts and must answer. Without `apply` a run is a rehearsal: every playbook runs
in check mode (`--check --diff`), read-only checks really run, nothing changes.

Downtime per system is measured from the moment the source's service was told to stop (freeze)
to the end of the functional verification; `outage_s` is the part clients notice (until the
gateway routes to the started target).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pprint
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ansible_runner
import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from inventory import export
from inventory.model import Inventory, System
from jiyue import ansible
from jiyue.runner import Result
from jiyue.ssh import known_host_lines
from jiyue.store import MIGRATE_LOCATION, MIGRATE_RUN, JournalEntry, Store
from migrations.model import Disposition, Plan, SystemPlan

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
PLANNING = Path(__file__).resolve().parent / "planning.yaml"
DEFAULT_WORKDIR = REPO / "state" / "migrate"

STEPS = ("precheck", "presync", "freeze", "final_sync", "verify_data", "switch", "verify_function", "done")
# The downtime, run as one playbook (playbooks/cutover.yml), each step journaled from the event stream as it ends.
CUTOVER = STEPS[2:7]
# The switch's task that starts once every target's service runs: the engine starts the testinfra check then.
TARGETS_RUNNING_TASK = "Route the system to the target and reload the gateway (graceful)"
RUN_PREFIX = "migrate-"
APPLY_PREFIX = RUN_PREFIX + "apply-"
REHEARSAL_PREFIX = RUN_PREFIX + "rehearsal-"
MANIFEST_CACHE_DIR = "/var/lib/jiyue/manifests"  # on each source and target, root only (jiyue_manifest)
RSYNC_OPTIONS = ["-a", "--delete", "--numeric-ids", "--mkpath", "--modify-window=-1"]  # see jiyue_sync
DEFAULT_GRACE_DAYS = 30
# Allowance for the cutover steps after the final copy (stop, verify, start, switch, verify), added
# to the measured delta pass when weighing a freeze against the downtime budget.
CUTOVER_ALLOWANCE_S = 30.0
DISK_MARGIN = 1.2
# Systems of one wave migrating at once (`--parallel`): each has its own hosts, journal rows and lock; on
# 2 cores four keep the machine busy without stretching each system's downtime much.
DEFAULT_PARALLEL = 4
# Of those, systems in their cutover (frozen: the downtime) at once (`--cutovers`). The copies run side by side;
# the cutovers take turns, so the machine's cores serve one downtime at a time and each stays short.
DEFAULT_CUTOVERS = 1
# Test hooks, JSON in this variable: {"pause": {"presync": 30}, "target_health_path": "/nope"}.
HOOKS_ENV = "JIYUE_MIGRATE_HOOKS"
AGENT_PREFIX = "jiyue-agent-"


class MigrationError(Exception):
    """The engine cannot do what was asked (bad plan, unknown system, nothing to resume)."""


class LockedError(MigrationError):
    """Another run holds the system."""


class Refused(MigrationError):
    """Asked too early or without what is required (decommission before the grace period)."""


class StepFailed(Exception):
    def __init__(self, step: str, message: str, detail: dict | None = None) -> None:
        super().__init__(message)
        self.step, self.detail = step, detail or {}


@dataclass
class Outcome:
    """How one system's run ended."""

    system: str
    run_key: str
    result: str  # migrated, rehearsed, refused, rolled_back, failed, decommissioned
    message: str = ""
    downtime_s: float | None = None
    outage_s: float | None = None
    steps_run: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result in ("migrated", "rehearsed", "decommissioned", "already_migrated")


@dataclass
class PlaybookResult:
    ok: bool
    status: str
    results: dict[tuple[str, str], dict]  # (host, task name) -> the task's last result
    failures: list[str]
    task_started: dict[str, datetime]  # task name -> first start (controller clock)
    task_ok: dict[str, datetime]  # task name -> last ok (controller clock)
    seconds: float

    def by_task(self, task: str) -> dict[str, dict]:
        return {h: r for (h, t), r in self.results.items() if t == task}


@dataclass
class Ctx:
    """One system in one run: where to journal, and what the journal already says."""

    run_key: str  # where this run journals
    state_key: str  # whose finished steps count (== run_key except when rehearsing a resume)
    plan: SystemPlan
    system: System
    details: dict[str, dict] = field(default_factory=dict)  # step -> detail of its `done` row
    steps_run: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The ssh-agent ends when the engine does, even when the engine is killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _remove_dead_agent_dir(folder: Path) -> None:
    """Remove an agent directory whose agent no longer answers (a live agent's socket accepts connections)."""
    sock = folder / "agent.sock"
    with contextlib.suppress(OSError):
        if time.time() - folder.stat().st_mtime < 60:
            return  # an agent still starting
        if sock.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(sock))
                    return  # alive: another run's
                except OSError:
                    sock.unlink()
        folder.rmdir()


def grace_days(path: Path = PLANNING) -> int:
    """The decommission grace period: `decommission.grace_days` in migrations/planning.yaml, or 30."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return DEFAULT_GRACE_DAYS
    section = data.get("decommission") if isinstance(data.get("decommission"), dict) else {}
    value = section.get("grace_days", data.get("decommission_grace_days", DEFAULT_GRACE_DAYS))
    return int(value)


def hooks() -> dict:
    raw = os.environ.get(HOOKS_ENV)
    return json.loads(raw) if raw else {}


def system_state(entries: list[JournalEntry]) -> tuple[dict[str, str], dict[str, dict]]:
    """A system's journal in one run: the last status of each step and the detail of each `done` row."""
    status: dict[str, str] = {}
    details: dict[str, dict] = {}
    for e in entries:
        status[e.step] = e.status
        if e.status == "done":
            details[e.step] = e.detail or {}
    return status, details


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
    if status.get("done") == "done" and status.get("rollback") is None:
        return "migrated"
    return None


class Migrator:
    """Runs a migration plan's cloud rehosts. Without `apply`: a rehearsal that changes nothing."""

    def __init__(self, inv: Inventory, plan: Plan, store: Store, *, apply: bool = False,
                 workdir: Path | str | None = None, console: Console | None = None, progress: bool = True,
                 allowance_s: float = CUTOVER_ALLOWANCE_S, margin: float = DISK_MARGIN,
                 planning: Path = PLANNING, parallel: int = DEFAULT_PARALLEL,
                 cutovers: int = DEFAULT_CUTOVERS) -> None:
        self.inv, self.plan, self.store, self.apply = inv, plan, store, apply
        self.workdir = Path(workdir) if workdir else DEFAULT_WORKDIR
        self.console = console or Console(stderr=True)
        self.progress = progress
        self.allowance_s, self.margin = allowance_s, margin
        if parallel < 1:
            raise MigrationError(f"parallel must be at least 1, got {parallel}")
        if cutovers < 1:
            raise MigrationError(f"cutovers must be at least 1, got {cutovers}")
        self.parallel = parallel
        self._cutover_slots = threading.BoundedSemaphore(cutovers)
        self._stop = threading.Event()  # set on Ctrl-C: the systems in flight stop and roll back
        self.grace_days = grace_days(planning)
        self.hooks = hooks()
        self._agent: subprocess.Popen | None = None
        self._agent_dir: str | None = None
        self._bar: Progress | None = None
        self._bar_task: Any = None
        self._bar_rows: dict[str, Any] = {}
        problems = plan.check(inv)
        if problems:
            raise MigrationError("the plan is unsafe to run: " + "; ".join(problems))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.inventory_file = export.write(inv, "ansible", list(inv.hosts), [], self.workdir)[0].resolve()

    # --- public API ------------------------------------------------------------------------------

    def run_wave(self, number: int) -> list[Outcome]:
        """Migrate every cloud rehost of wave `number`, up to `parallel` systems at once."""
        try:
            wave = self.plan.wave(number)
        except StopIteration:
            raise MigrationError(f"the plan has no wave {number}") from None
        systems = [s for s in wave.systems if self.plan.system(s).disposition == Disposition.cloud_rehost]
        return self._run(systems, f"wave{number}")

    def run_system(self, system_id: str) -> Outcome:
        """Migrate one system of the plan."""
        return self._run([system_id], system_id)[0]

    def resume(self, run_key: str | None = None) -> list[Outcome]:
        """Carry on an interrupted run (the latest unfinished one by default) where it stopped."""
        key = run_key or self._latest_unfinished()
        if key is None:
            raise MigrationError("no interrupted migration run to resume")
        entries = self.store.journal_entries(run_key=key)
        if not entries:
            raise MigrationError(f"no run {key} in the journal")
        systems = list(dict.fromkeys(e.subject for e in entries if e.step == "queued"))
        pending = [s for s in systems if outcome_of(system_state(
            [e for e in entries if e.subject == s])[0]) is None]
        if self.apply:
            out_key = key
        else:
            out_key = f"{REHEARSAL_PREFIX}resume-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        with self._session(len(pending)):
            return self._many(pending, out_key, state_key=key)

    def rollback(self, system_id: str) -> Outcome:
        """Bring a system back to its source (also after a finished migration: the target's data comes back)."""
        key = self._latest_run_of(system_id)
        if key is None:
            raise MigrationError(f"{system_id} was never migrated: nothing to roll back")
        ctx = self._ctx(system_id, key if self.apply else self._new_key(system_id), state_key=key)
        status, _ = system_state(self.store.journal_entries(run_key=key, subject=system_id))
        with self._session(1), self._locked(ctx):
            outcome = self._rollback(ctx, "asked for (rollback)", was_done=status.get("done") == "done")
        return outcome

    def decommission(self, system_id: str, signed_off_by: str, force: bool = False) -> Outcome:
        """Remove a migrated system's data from its sources, after the grace period and with a sign-off."""
        if not signed_off_by or not signed_off_by.strip():
            raise Refused("a decommission needs an explicit sign-off (--signed-off-by NAME)")
        key = self._latest_run_of(system_id)
        status, _ = system_state(self.store.journal_entries(run_key=key, subject=system_id)) if key else ({}, {})
        if key is None or outcome_of(status) not in ("migrated", "decommissioned"):
            raise Refused(f"{system_id} is not migrated: only a migrated system's sources are decommissioned")
        if status.get("decommission") == "done":
            return Outcome(system_id, key, "decommissioned", "already decommissioned")
        done_at = next(e.at for e in self.store.journal_entries(run_key=key, subject=system_id)
                       if e.step == "done" and e.status == "done")
        until = done_at + timedelta(days=self.grace_days)
        if _now() < until and not force:
            raise Refused(f"{system_id} migrated {done_at:%Y-%m-%d %H:%M} UTC; the grace period of "
                          f"{self.grace_days} days ends {until:%Y-%m-%d %H:%M} UTC")
        ctx = self._ctx(system_id, key if self.apply else self._new_key(system_id), state_key=key)
        with self._session(1), self._locked(ctx):
            try:
                self._step(ctx, "decommission", extra={"jiyue_signed_off_by": signed_off_by.strip(),
                                                       "jiyue_decommissioned_at": _now().isoformat()},
                           start_detail={"signed_off_by": signed_off_by.strip(), "forced": force})
            except StepFailed as exc:
                return Outcome(system_id, ctx.run_key, "failed", str(exc))
        return Outcome(system_id, ctx.run_key, "decommissioned" if self.apply else "rehearsed",
                       f"signed off by {signed_off_by.strip()}")

    def status(self) -> list[dict]:
        """Per system of any run: its latest run, where it got to, downtime, location and lock."""
        entries = self.store.journal_entries(prefix=RUN_PREFIX)
        latest: dict[str, str] = {}  # an applied run that worked on the system wins over rehearsals and lock refusals
        for e in entries:
            first = e.step == "queued" and e.subject not in latest
            worked = e.step not in ("queued", "lock") and (
                e.run_key.startswith(APPLY_PREFIX) or not latest[e.subject].startswith(APPLY_PREFIX))
            if first or worked:
                latest[e.subject] = e.run_key
        locks = {lk.subject: lk for lk in self.store.locks()}
        rows = []
        for system_id, key in sorted(latest.items()):
            mine = [e for e in entries if e.run_key == key and e.subject == system_id]
            status, details = system_state(mine)
            last = mine[-1]
            lock = locks.get(f"migrate:{system_id}")
            verified = details.get("verify_function", {})
            rows.append({
                "system": system_id, "run_key": key, "step": last.step, "status": last.status,
                "outcome": outcome_of(status) or ("interrupted" if lock is None or not self._alive(lock)
                                                  else "running"),
                "at": last.at.isoformat(timespec="seconds"),
                "downtime_s": verified.get("downtime_s"), "outage_s": verified.get("outage_s"),
                "location": (details.get("done") or {}).get("location"),
                "lock": f"{lock.holder} (pid {lock.pid} on {lock.hostname})" if lock else None,
                "message": (last.detail or {}).get("error") or (last.detail or {}).get("reason") or "",
            })
        return rows

    def break_lock(self, system_id: str, force: bool = False) -> bool:
        """Remove the lock of a run whose process is gone (or any lock, with force)."""
        lock = self.store.lock(f"migrate:{system_id}")
        if lock is None:
            return False
        if self._alive(lock) and not force:
            raise LockedError(f"{system_id} is locked by run {lock.holder}, pid {lock.pid} on {lock.hostname}, "
                              "which is still running")
        return self.store.release_lock(lock.subject, lock.holder)

    # --- running systems -------------------------------------------------------------------------

    def _new_key(self, label: str) -> str:
        prefix = APPLY_PREFIX if self.apply else REHEARSAL_PREFIX
        return f"{prefix}{label}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"

    def _run(self, systems: list[str], label: str) -> list[Outcome]:
        for s in systems:
            try:
                sp = self.plan.system(s)
            except StopIteration:
                raise MigrationError(f"{s} is not in the plan") from None
            if sp.disposition != Disposition.cloud_rehost or not sp.targets:
                raise MigrationError(f"{s} is not a cloud rehost with targets ({sp.disposition})")
        done_before = {s: k for s in systems if (k := self.migrated_by(s))}
        systems = [s for s in systems if s not in done_before]
        skipped = [Outcome(s, k, "already_migrated", f"migrated by run {k}; nothing to do (migrate.rollback undoes it)")
                   for s, k in done_before.items()]
        if not systems:
            return skipped
        key = self._new_key(label)
        for s in systems:
            sp = self.plan.system(s)
            self.store.journal(key, s, "queued", "done", {
                "apply": self.apply, "wave": sp.wave,
                "targets": [t.model_dump(mode="json") for t in sp.targets], "budget_s": sp.downtime_budget_s})
        with self._session(len(systems)):
            outcomes = self._many(systems, key, state_key=key)
        self.store.record(MIGRATE_RUN, [Result(o.system, o.ok, asdict(o), None if o.ok else o.result, o.message)
                                          for o in outcomes],
                          inventory=str(self.inv.root), params={"run_key": key, "apply": self.apply})
        return skipped + outcomes

    def _many(self, systems: list[str], run_key: str, state_key: str) -> list[Outcome]:
        """Each system in a thread of its own, at most `parallel` at once; one system's failure (or a bug in
        its run) is its own outcome and never stops the others. Ctrl-C stops the systems in flight (each
        rolls back to its source) and starts no more; `migrate.resume` carries on."""
        if self.parallel == 1 or len(systems) == 1:
            return [self._guarded(s, run_key, state_key) for s in systems]
        with ThreadPoolExecutor(min(self.parallel, len(systems)), thread_name_prefix="migrate") as pool:
            futures = [pool.submit(self._guarded, s, run_key, state_key) for s in systems]
            try:
                return [f.result() for f in futures]
            except KeyboardInterrupt:
                self._stop.set()
                self.console.print("[yellow]interrupted: the systems in flight stop and roll back; "
                                   "`migrate.resume --apply` carries on the others[/]")
                for f in futures:
                    with contextlib.suppress(Exception):
                        f.result()
                raise

    def _guarded(self, system_id: str, run_key: str, state_key: str) -> Outcome:
        if self._stop.is_set():
            return Outcome(system_id, run_key, "interrupted", "not started: the run was interrupted")
        try:
            outcome = self._one(system_id, run_key, state_key)
        except Exception as exc:  # a bug: this system's outcome, the others carry on
            with contextlib.suppress(Exception):
                self.store.journal(run_key, system_id, "engine", "failed", {"error": f"{type(exc).__name__}: {exc}"})
            outcome = Outcome(system_id, run_key, "failed", f"{type(exc).__name__}: {exc}")
        self._finished(outcome)
        return outcome

    def migrated_by(self, system_id: str) -> str | None:
        """The applied run that migrated the system, if that is where it stands (not rolled back since)."""
        key = self._latest_run_of(system_id)
        if key is None:
            return None
        status, _ = system_state(self.store.journal_entries(run_key=key, subject=system_id))
        return key if outcome_of(status) in ("migrated", "decommissioned") else None

    def _one(self, system_id: str, run_key: str, state_key: str) -> Outcome:
        ctx = self._ctx(system_id, run_key, state_key)
        try:
            with self._locked(ctx):
                return self._drive(ctx)
        except LockedError as exc:
            self.console.print(f"[red]{system_id}: {exc}[/]")
            self.store.journal(run_key, system_id, "lock", "refused", {"reason": str(exc)})
            return Outcome(system_id, run_key, "locked", str(exc))

    def _ctx(self, system_id: str, run_key: str, state_key: str) -> Ctx:
        try:
            sp = self.plan.system(system_id)
        except StopIteration:
            raise MigrationError(f"{system_id} is not in the plan") from None
        return Ctx(run_key, state_key, sp, self.inv.systems[system_id])

    def _drive(self, ctx: Ctx) -> Outcome:
        sid = ctx.plan.system
        status, ctx.details = system_state(self.store.journal_entries(run_key=ctx.state_key, subject=sid))
        if status.get("rollback") in ("started", "failed") or (
                any(s == "failed" for s in status.values()) and status.get("rollback") != "done"):
            return self._rollback(ctx, "resumed: a rollback was due")
        handled: set[str] = set()
        with contextlib.ExitStack() as turn:  # the system's turn to cut over, held through a rollback too
            for step in STEPS:
                if status.get(step) == "done" or step in handled:
                    continue  # never repeat a finished step
                if step == "freeze":
                    refused = self._weigh_budget(ctx)
                    if refused:
                        return refused
                    # Not frozen yet: wait for its turn, live meanwhile (a cutover resumed mid-way goes at once).
                    if not self._take_cutover_slot(ctx):
                        return Outcome(sid, ctx.run_key, "interrupted", "stopped before the freeze: the source "
                                       "serves on; `migrate.resume --apply` carries on", steps_run=ctx.steps_run)
                    turn.callback(self._cutover_slots.release)
                try:
                    if step in CUTOVER:  # the rest of the cutover, in one run
                        rest = [s for s in CUTOVER[CUTOVER.index(step):] if status.get(s) != "done"]
                        self._cutover(ctx, rest)
                        handled.update(rest)
                        turn.close()  # verified: the next system may freeze
                    else:
                        self._step(ctx, step)
                except StepFailed as exc:
                    if not self.apply:
                        return Outcome(sid, ctx.run_key, "failed", f"rehearsal: {exc.step}: {exc}",
                                       steps_run=ctx.steps_run)
                    return self._rollback(ctx, f"{exc.step} failed: {exc}", failed_step=exc.step)
        verified = ctx.details.get("verify_function", {})
        if not self.apply:
            return Outcome(sid, ctx.run_key, "rehearsed", "rehearsal: every step ran in check mode",
                           steps_run=ctx.steps_run)
        return Outcome(sid, ctx.run_key, "migrated", f"now on {', '.join(t.target for t in ctx.plan.targets)}",
                       verified.get("downtime_s"), verified.get("outage_s"), ctx.steps_run)

    def _take_cutover_slot(self, ctx: Ctx) -> bool:
        """Wait until fewer than `cutovers` systems are in their cutover; False when the run is interrupted."""
        if self._cutover_slots.acquire(blocking=False):
            return True
        self._say(ctx, "waiting for its turn to cut over (live)")
        while not self._cutover_slots.acquire(timeout=0.5):
            if self._stop.is_set():
                return False
        return True

    def _weigh_budget(self, ctx: Ctx) -> Outcome | None:
        """Refuse to freeze when the final sync would not fit the downtime budget (a clean stop)."""
        presync = ctx.details.get("presync", {})
        delta = float(presync.get("delta_s", 0.0))
        estimate = round(delta + self.allowance_s, 1)
        budget = ctx.plan.downtime_budget_s
        if estimate <= budget:
            return None
        detail = {"refused": True, "estimate_s": estimate, "delta_s": delta, "allowance_s": self.allowance_s,
                  "budget_s": budget, "reason": f"estimated downtime {estimate} s exceeds the budget of {budget} s; "
                                                "the source keeps serving"}
        self.store.journal(ctx.run_key, ctx.plan.system, "freeze", "refused", detail)
        self._say(ctx, f"[yellow]refused to freeze: {detail['reason']}[/]")
        return Outcome(ctx.plan.system, ctx.run_key, "refused", detail["reason"], steps_run=ctx.steps_run)

    def _step(self, ctx: Ctx, step: str, extra: dict | None = None, start_detail: dict | None = None) -> dict:
        sid = ctx.plan.system
        self._say(ctx, step)
        self.store.journal(ctx.run_key, sid, step, "started", {"apply": self.apply, **(start_detail or {})})
        ctx.steps_run.append(step)
        try:
            extravars = self._vars(ctx, step) | (extra or {})
            result = self._playbook(step, extravars)
            if not result.ok:
                raise StepFailed(step, "; ".join(result.failures) or result.status,
                                 self._failure_detail(ctx, step, result))
            detail = self._detail(ctx, step, result)
        except StepFailed as exc:
            self.store.journal(ctx.run_key, sid, step, "failed", {"error": str(exc), **exc.detail})
            raise
        except Exception as exc:  # a bug or a broken runner: journaled, then rolled back like a failure
            self.store.journal(ctx.run_key, sid, step, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise StepFailed(step, f"{type(exc).__name__}: {exc}") from exc
        self.store.journal(ctx.run_key, sid, step, "done", detail)
        ctx.details[step] = detail
        return detail

    def _cutover(self, ctx: Ctx, steps: list[str]) -> None:
        """Run `steps` (the cutover's steps still to do, in order) as one playbook, journaling each as it goes."""
        extravars = self._vars(ctx, "cutover")
        check = FunctionalCheck(self._testinfra(ctx), self._env(), self.workdir / "testinfra" / ctx.run_key) \
            if self.apply and "verify_function" in steps else None
        tracker = _CutoverJournal(self, ctx, steps, check)
        tracker.begin(steps[0])
        try:
            if check is not None and "switch" not in steps:
                check.start()  # resumed after the switch: nothing to wait for
            result = self._playbook("cutover", extravars, tags=steps, on_event=tracker.event,
                                    cancel=tracker.cancelled)
            if tracker.error is not None:
                raise tracker.error
            if not result.ok:
                step = tracker.failed_step or tracker.current or steps[0]
                events = tracker.events.get(step, [])
                detail = self._failure_detail(ctx, step, summarise(events, False, result.status, 0.0))
                raise StepFailed(step, "; ".join(result.failures) or result.status, detail)
            tracker.finish(tracker.stats_at)
        except StepFailed as exc:
            self.store.journal(ctx.run_key, ctx.plan.system, exc.step, "failed", {"error": str(exc), **exc.detail})
            raise
        except Exception as exc:  # a bug or a broken runner: journaled, then rolled back like a failure
            step = tracker.current or steps[0]
            self.store.journal(ctx.run_key, ctx.plan.system, step, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise StepFailed(step, f"{type(exc).__name__}: {exc}") from exc
        finally:
            if check is not None:
                check.stop()

    def _rollback(self, ctx: Ctx, reason: str, failed_step: str | None = None, was_done: bool = False) -> Outcome:
        """Back to the source serving, nothing lost; journaled as the step `rollback`."""
        sid = ctx.plan.system
        status, _ = system_state(self.store.journal_entries(run_key=ctx.state_key, subject=sid))
        reverse = status.get("switch") is not None  # clients may have reached the target
        self._say(ctx, f"[yellow]rollback ({reason})[/]")
        self.store.journal(ctx.run_key, sid, "rollback", "started", {"reason": reason, "reverse_sync": reverse})
        ctx.steps_run.append("rollback")
        result = self._playbook("rollback", self._vars(ctx, "rollback") | {"jiyue_reverse_sync": reverse})
        if not result.ok:
            error = "; ".join(result.failures) or result.status
            self.store.journal(ctx.run_key, sid, "rollback", "failed", {"error": error, "reason": reason})
            return Outcome(sid, ctx.run_key, "failed", f"{reason}; ROLLBACK FAILED, needs a person: {error}",
                           steps_run=ctx.steps_run)
        self.store.journal(ctx.run_key, sid, "rollback", "done", {"reason": reason, "reverse_sync": reverse})
        if failed_step:
            self.store.journal(ctx.run_key, sid, failed_step, "rolled_back", {"reason": reason})
        if was_done and self.apply:
            self._record_location(ctx, {t.source: t.source for t in ctx.plan.targets}, "rolled back to the source")
        result_name = "rolled_back" if self.apply else "rehearsed"
        return Outcome(sid, ctx.run_key, result_name, f"{reason}; the source serves again", steps_run=ctx.steps_run)

    # --- what each playbook gets ------------------------------------------------------------------

    def _known_hosts(self, host: str) -> str:
        """The known_hosts line(s) of a host, from the inventory's known_hosts file (hashed entries too)."""
        ssh = self.inv.ssh_for(self.inv.hosts[host])
        if ssh.known_hosts is None:
            raise MigrationError(f"{host}: no known_hosts file in the inventory: its host key cannot be verified")
        lines = [*known_host_lines(ssh.known_hosts, ssh.address, ssh.port),
                 *known_host_lines(ssh.known_hosts, host, ssh.port)]
        if not lines:
            raise MigrationError(f"{host} ({ssh.address}) is not in {ssh.known_hosts}: its host key cannot be verified")
        return "\n".join(dict.fromkeys(lines))

    def _vars(self, ctx: Ctx, step: str) -> dict[str, Any]:
        sp, system, inv = ctx.plan, ctx.system, self.inv
        config_dir = f"/etc/app/{system.id}"
        pairs: dict[str, dict] = {}
        for t in sp.targets:
            src, tgt = inv.ssh_for(inv.hosts[t.source]), inv.ssh_for(inv.hosts[t.target])
            pairs[t.source] = {
                "source": t.source, "target": t.target, "flavor": t.flavor,
                "source_address": src.address, "source_ssh_port": src.port, "source_user": src.user,
                "target_address": tgt.address, "target_ssh_port": tgt.port, "target_user": tgt.user,
                "target_known_hosts": self._known_hosts(t.target), "source_known_hosts": self._known_hosts(t.source),
                "ports": [v.port for v in system.services if v.host == t.source and v.protocol == "tcp"],
                "need_memory_gb": t.need_memory_gb, "need_disk_gb": t.need_disk_gb,
            }
        found = ctx.details.get("precheck", {}).get("dirs")
        dirs = found or {s: [*system.data_paths, config_dir] for s in pairs}
        by_target: dict[str, dict] = {}
        for source, p in pairs.items():
            t = by_target.setdefault(p["target"], {"target": p["target"], "target_address": p["target_address"],
                                                   "sources": [], "ports": [], "dirs": [], "need_memory_gb": 0.0})
            t["sources"].append(source)
            t["ports"] += p["ports"]
            t["dirs"] += [d for d in dirs.get(source, []) if d not in t["dirs"]]
            t["need_memory_gb"] += p["need_memory_gb"]
        web = next((v for v in system.services if v.health_url and v.host in pairs), None)
        health_path = urlsplit(web.health_url).path if web and web.health_url else "/"
        gateway = inv.cloud.gateway if inv.cloud else None
        if gateway is None:
            raise MigrationError("the inventory has no cloud gateway: clients could not be moved")
        gw_address = str(inv.hosts[gateway].address)
        gw_netloc = f"[{gw_address}]" if ":" in gw_address else gw_address
        target_path = self.hooks.get("target_health_path")
        target_health = []
        for v in system.services:
            if v.health_url and v.host in pairs:
                parts = urlsplit(v.health_url)
                netloc = _hostport(pairs[v.host]["target_address"], parts.port or v.port)
                target_health.append(urlunsplit(parts._replace(netloc=netloc, path=target_path or parts.path)))
        route = {"file": f"/etc/app/gateway/routes/{system.id}.conf",
                 "source": _hostport(pairs[web.host]["source_address"], web.port) if web else "",
                 "target": _hostport(pairs[web.host]["target_address"], web.port) if web else ""}
        service_sources = [s for s, p in pairs.items() if p["ports"]]
        done = ctx.details.get("done", {})
        return {
            "jiyue_system": system.id, "jiyue_run_key": ctx.state_key,
            "jiyue_sources": list(pairs), "jiyue_targets": list(by_target), "jiyue_gateway": gateway,
            "jiyue_pairs": pairs, "jiyue_by_target": by_target,
            "jiyue_config_dir": config_dir, "jiyue_data_paths": list(system.data_paths),
            "jiyue_dirs": dirs,
            "jiyue_data_dirs": {s: [d for d in ds if d in system.data_paths] for s, ds in dirs.items()},
            "jiyue_service_sources": service_sources,
            "jiyue_service_targets": list(dict.fromkeys(pairs[s]["target"] for s in service_sources)),
            "jiyue_checks": [{"source": s, "target": pairs[s]["target"], "dir": d}
                             for s, ds in dirs.items() for d in ds],
            "jiyue_route": route,
            "jiyue_health": {"gateway": f"http://{gw_netloc}/{system.id}{health_path}",
                             "source": [v.health_url for v in system.services if v.health_url and v.host in pairs],
                             "target": target_health},
            "jiyue_ports": [{"address": pairs[v.host]["target_address"], "port": v.port}
                            for v in system.services if v.host in pairs and v.protocol == "tcp"],
            "jiyue_margin": self.margin, "jiyue_rsync_options": RSYNC_OPTIONS,
            "jiyue_manifest_cache": f"{MANIFEST_CACHE_DIR}/{system.id}.json",
            "jiyue_pause": {k: int(v) for k, v in (self.hooks.get("pause") or {}).items()},
            "jiyue_migrated_at": done.get("migrated_at") or _now().isoformat(timespec="seconds"),
            "jiyue_forward_ssh_args": self._forward_ssh_args(),
            "jiyue_reverse_sync": False,
        }

    def _forward_ssh_args(self) -> str:
        """SSH options of the plays whose hosts use the run's agent (rsync host to host): agent forwarding, and
        connection sharing only through a control socket in the agent's own directory (so only this run's
        connections, forwarding this run's agent, are ever shared)."""
        if not self._agent_dir:
            return "-o ControlMaster=no -o ControlPath=none -o ForwardAgent=yes"
        return (f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={self._agent_dir}/cm-%C "
                "-o ForwardAgent=yes")

    def _testinfra(self, ctx: Ctx) -> list[str]:
        """Write the system's testinfra check and return the pytest command line that runs it on the targets."""
        pairs = {t.source: t.target for t in ctx.plan.targets}
        found = ctx.details.get("precheck", {}).get("dirs")
        dirs = found or {s: [*ctx.system.data_paths, f"/etc/app/{ctx.system.id}"] for s in pairs}
        folder = self.workdir / "testinfra" / ctx.run_key
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pytest.ini").write_text("[pytest]\n")
        expect: dict[str, dict] = {}
        for s, target in pairs.items():  # keyed by name and address: testinfra's backends name a host either way
            ports = [v.port for v in ctx.system.services if v.host == s and v.protocol == "tcp"]
            e = expect.setdefault(target, {"host": target, "service": False, "dirs": [], "ports": []})
            e["service"] = e["service"] or bool(ports)
            e["dirs"] += [d for d in dirs.get(s, []) if d not in e["dirs"]]
            e["ports"] += ports
            expect[self.inv.ssh_for(self.inv.hosts[target]).address] = e
        module = folder / f"test_{ctx.system.id.replace('-', '_')}.py"
        module.write_text(TESTINFRA_TEMPLATE.format(system=ctx.system.id, run_key=ctx.run_key,
                                                    config_dir=f"/etc/app/{ctx.system.id}",
                                                    expect=pprint.pformat(expect, sort_dicts=True)))
        hosts = ",".join(f"ansible://{t}" for t in dict.fromkeys(pairs.values()))
        return [str(Path(sys.executable).parent / "pytest"), "-q", "-p", "testinfra.plugin", "-p", "no:cacheprovider",
                "-c", str(folder / "pytest.ini"), "--rootdir", str(folder), f"--hosts={hosts}",
                f"--ansible-inventory={self.inventory_file}", str(module)]

    # --- reading playbook results ------------------------------------------------------------------

    def _detail(self, ctx: Ctx, step: str, r: PlaybookResult, ended: datetime | None = None) -> dict:
        detail: dict[str, Any] = {"seconds": round(r.seconds, 2), "apply": self.apply}
        if step == "precheck":
            found = r.by_task("Find the directories to copy (data paths and config dir that exist here) and their size")
            dirs, sizes = {}, {}
            for host, res in found.items():
                lines = [ln.split("\t", 1) for ln in res.get("stdout_lines", []) if "\t" in ln]
                dirs[host] = [d for _, d in lines]
                sizes[host] = sum(int(n) for n, _ in lines)
            detail |= {"dirs": dirs, "bytes": sizes}
            for t in {t.target for t in ctx.plan.targets}:
                sources = [x.source for x in ctx.plan.targets if x.target == t]
                seen: dict[str, str] = {}
                for source in sources:
                    for d in dirs.get(source, []):
                        if d in seen:
                            raise StepFailed(step, f"{seen[d]} and {source} both hold {d} and both move to {t}: "
                                             "the copies would overwrite each other; give them different targets")
                        seen[d] = source
        elif step in ("presync", "final_sync"):
            names = {"presync": ("First pass (everything)", "Delta pass (what changed meanwhile; timed, the "
                                 "estimate of the final sync)"), "final_sync": ("Final delta",)}[step]
            passes = [r.by_task(n) for n in names]
            for label, results in zip(("first", "delta") if step == "presync" else ("final",), passes, strict=True):
                detail[f"{label}_s"] = max((float(x.get("seconds", 0)) for x in results.values()), default=0.0)
                detail[f"{label}_bytes_sent"] = sum(int(x.get("literal_bytes", 0)) for x in results.values())
                detail[f"{label}_files"] = sum(int(x.get("files_transferred", 0)) for x in results.values())
            detail["bytes"] = sum(int(x.get("total_size", 0)) for x in passes[-1].values())
        elif step == "freeze":
            started = r.task_started.get("Stop the service (returns once the process exited)")
            detail["frozen_at"] = (started or _now()).isoformat()
        elif step == "verify_data":
            manifests = r.by_task("Take the SHA-256 manifest")
            detail["manifests"] = {h: m.get("per_dir", {}) for h, m in manifests.items()}
            detail["files"] = sum(int(m.get("files", 0)) for h, m in manifests.items() if h in ctx.details.get(
                "precheck", {}).get("dirs", {}))
            detail["hashed_files"] = sum(int(m.get("hashed", 0)) for m in manifests.values())
        elif step == "switch":
            served = r.task_ok.get("Route the system to the target and reload the gateway (graceful)")
            detail["served_at"] = (served or _now()).isoformat()
        elif step == "verify_function":
            verified = ended or _now()
            frozen = ctx.details.get("freeze", {}).get("frozen_at")
            served = ctx.details.get("switch", {}).get("served_at")
            detail["verified_at"] = verified.isoformat()
            if frozen and self.apply:
                detail["downtime_s"] = round((verified - _parse_time(frozen)).total_seconds(), 2)
                if served:
                    detail["outage_s"] = round((_parse_time(served) - _parse_time(frozen)).total_seconds(), 2)
        elif step == "done":
            location = {t.source: t.target for t in ctx.plan.targets}
            detail |= {"location": location, "migrated_at": _now().isoformat(timespec="seconds")}
            if self.apply:
                self._record_location(ctx, location, "migrated")
        return detail

    @staticmethod
    def _failure_detail(ctx: Ctx, step: str, r: PlaybookResult) -> dict:
        """For a failed data verification: which files differ (the first 100)."""
        if step != "verify_data":
            return {}
        manifests = r.by_task("Take the SHA-256 manifest")
        by_host = {h: {row[0]: row[1:] for row in m.get("manifest", [])} for h, m in manifests.items()}
        dirs = ctx.details.get("precheck", {}).get("dirs", {})
        differ: list[str] = []
        for t in ctx.plan.targets:
            for d in dirs.get(t.source, []):
                prefix = d.rstrip("/") + "/"
                src = {p: v for p, v in by_host.get(t.source, {}).items() if p.startswith(prefix)}
                tgt = {p: v for p, v in by_host.get(t.target, {}).items() if p.startswith(prefix)}
                differ += [f"{t.source}:{p}" for p in sorted(set(src) | set(tgt)) if src.get(p) != tgt.get(p)]
        return {"differing_files": differ[:100]}

    def _record_location(self, ctx: Ctx, location: dict[str, str], what: str) -> None:
        self.store.record(MIGRATE_LOCATION, [Result(ctx.system.id, True, {
            "system": ctx.system.id, "hosts": location, "what": what, "run_key": ctx.state_key,
            "at": _now().isoformat(timespec="seconds")})], inventory=str(self.inv.root),
            params={"run_key": ctx.state_key})

    # --- ansible-runner ----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = ansible.env()
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True"  # ansible-runner turns it off by default: not here
        # Ansible's default minus -C: compressing module payloads on a LAN costs CPU inside the downtime.
        env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=auto -o ControlPersist=60s"
        if self._agent_dir:
            env["SSH_AUTH_SOCK"] = os.path.join(self._agent_dir, "agent.sock")
            # Shared SSH connections only within this run: a control socket is a file, and another process's
            # (another lab in another network namespace, another operator) must never carry our commands.
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = os.path.join(self._agent_dir, "cp")
        return env

    def _playbook(self, name: str, extravars: dict[str, Any], tags: list[str] | None = None,
                  on_event: Any = None, cancel: Any = None) -> PlaybookResult:
        """Run playbooks/<name>.yml; `on_event(event)` sees each event as it happens, `cancel()` True stops the run."""
        events: list[dict] = []

        def handler(event: dict) -> bool:
            events.append(event)
            if on_event is not None:
                on_event(event)
            return True

        private = self.workdir / "runner" / str(extravars.get("jiyue_system", "x"))
        private.mkdir(parents=True, exist_ok=True)
        env = self._env()
        if tags:  # a cutover: a failed step ends the run, nothing after it runs
            env["ANSIBLE_ANY_ERRORS_FATAL"] = "True"
        began = time.monotonic()
        runner = ansible_runner.run(
            private_data_dir=str(private), playbook=str(PLAYBOOKS / f"{name}.yml"), inventory=str(self.inventory_file),
            extravars=extravars, cmdline=None if self.apply else "--check --diff", envvars=env,
            tags=",".join(tags) if tags else None, quiet=True, event_handler=handler,
            cancel_callback=lambda: name != "rollback" and (self._stop.is_set() or bool(cancel and cancel())),
            rotate_artifacts=50, ident=f"{name}-{uuid.uuid4().hex[:8]}",
            # Never env/ files: ansible-runner would reuse an earlier run's (its cmdline, extravars, agent socket).
            suppress_env_files=True)
        seconds = time.monotonic() - began
        ok = runner.status == "successful" and runner.rc == 0
        result = summarise(events, ok, runner.status, seconds)
        if not ok and not result.failures:
            tail = (runner.stdout.read() if runner.stdout else "").strip().splitlines()[-5:]
            result.failures.append(f"{name}.yml {runner.status} (rc {runner.rc}): " + " | ".join(tail))
        return result

    # --- session: agent, progress, locks -------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, total: int) -> Iterator[None]:
        self._start_agent()
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn())
        try:
            with Progress(*columns, console=self.console, disable=not self.progress, transient=False) as bar:
                self._bar, self._bar_rows = bar, {}
                self._bar_task = bar.add_task(f"{'migrating' if self.apply else 'rehearsing'} {total} system(s), "
                                              f"{min(total, self.parallel)} at once", total=total)
                yield
        finally:
            self._bar = None
            self._stop_agent()

    def _say(self, ctx: Ctx, what: str) -> None:
        """One progress row per system (they run at once), showing its current step."""
        line = f"{ctx.plan.system}: {what}"
        if self._bar is not None:
            row = self._bar_rows.get(ctx.plan.system)
            if row is None:
                row = self._bar_rows[ctx.plan.system] = self._bar.add_task(line)
            self._bar.update(row, description=line)
            if what.startswith("["):
                self._bar.console.print(line)

    def _finished(self, outcome: Outcome) -> None:
        if self._bar is None:
            return
        colour = "green" if outcome.ok else "red"
        line = f"{outcome.system}: [{colour}]{outcome.result}[/]" + (
            f" (downtime {outcome.downtime_s:.1f} s)" if outcome.downtime_s is not None else "")
        row = self._bar_rows.get(outcome.system)
        if row is None:
            row = self._bar_rows[outcome.system] = self._bar.add_task(line)
        self._bar.update(row, description=line, total=1, completed=1)
        self._bar.update(self._bar_task, advance=1)

    def _start_agent(self) -> None:
        """An ssh-agent for this run holding the operator's key(s): the sources reach the targets through it."""
        if self._agent is not None:
            return
        keys = sorted({str(k) for h in self.inv.hosts.values() if (k := self.inv.ssh_for(h).key) is not None})
        for old in Path(tempfile.gettempdir()).glob(AGENT_PREFIX + "*"):  # left by a killed run (its agent is gone)
            _remove_dead_agent_dir(old)
        self._agent_dir = tempfile.mkdtemp(prefix=AGENT_PREFIX)
        sock = os.path.join(self._agent_dir, "agent.sock")
        self._agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        for key in keys:
            subprocess.run(["ssh-add", "-q", key], env={**os.environ, "SSH_AUTH_SOCK": sock}, check=True,
                           capture_output=True)

    def _stop_agent(self) -> None:
        if self._agent is not None:
            self._agent.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._agent.wait(5)
            self._agent = None
        if self._agent_dir:
            for sock in Path(self._agent_dir).rglob("*"):  # the run's shared SSH connections end with it
                if sock.is_socket() and sock.name != "agent.sock":
                    subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "jiyue"], capture_output=True,
                                   timeout=10, check=False)
            shutil.rmtree(self._agent_dir, ignore_errors=True)
            self._agent_dir = None

    @staticmethod
    def _alive(lock: Any) -> bool:
        return lock.hostname != socket.gethostname() or _pid_alive(lock.pid)

    @contextlib.contextmanager
    def _locked(self, ctx: Ctx) -> Iterator[None]:
        subject = f"migrate:{ctx.plan.system}"
        if not self.store.acquire_lock(subject, ctx.run_key, os.getpid(), socket.gethostname()):
            lock = self.store.lock(subject)
            stale_own = lock is not None and lock.holder in (ctx.run_key, ctx.state_key) and not self._alive(lock)
            if not (stale_own and self.store.release_lock(subject, lock.holder)
                    and self.store.acquire_lock(subject, ctx.run_key, os.getpid(), socket.gethostname())):
                held = (f"run {lock.holder}, pid {lock.pid} on {lock.hostname} since {lock.at:%Y-%m-%d %H:%M:%S} UTC"
                        if lock else "another run")
                raise LockedError(f"{ctx.plan.system} is being migrated by {held}; if that process is gone, "
                                  "break the lock explicitly (migrate unlock)")
        try:
            yield
        finally:
            self.store.release_lock(subject, ctx.run_key)

    # --- the journal -----------------------------------------------------------------------------------

    def _latest_unfinished(self) -> str | None:
        entries = self.store.journal_entries(prefix=APPLY_PREFIX)
        keys = list(dict.fromkeys(e.run_key for e in reversed(entries)))
        for key in keys:
            mine = [e for e in entries if e.run_key == key]
            for s in dict.fromkeys(e.subject for e in mine if e.step == "queued"):
                if outcome_of(system_state([e for e in mine if e.subject == s])[0]) is None:
                    return key
        return None

    def _latest_run_of(self, system_id: str) -> str | None:
        """The latest applied run that worked on the system (a run refused by its lock did not)."""
        entries = self.store.journal_entries(subject=system_id, prefix=APPLY_PREFIX)
        worked = [e.run_key for e in entries if e.step not in ("queued", "lock")]
        return worked[-1] if worked else None


def event_time(event: dict) -> datetime:
    return _parse_time(event["created"]) if event.get("created") else _now()


def summarise(events: list[dict], ok: bool, status: str, seconds: float) -> PlaybookResult:
    """What a playbook run's events say: each task's last result per host, failures, task start and ok times."""
    results: dict[tuple[str, str], dict] = {}
    failures: list[str] = []
    started: dict[str, datetime] = {}
    ok_at: dict[str, datetime] = {}
    for ev in events:
        data = ev.get("event_data") or {}
        kind = ev.get("event")
        task = data.get("task", "")
        when = event_time(ev)
        if kind == "playbook_on_task_start":
            started.setdefault(task, when)
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"):
            results[(data.get("host", ""), task)] = data.get("res") or {}
            if kind == "runner_on_ok":
                ok_at[task] = when
            if failed_event(ev):
                failures.append(f"{data.get('host')}: {task}: {_message(data.get('res') or {})}"
                                if kind == "runner_on_failed" else
                                f"{data.get('host')}: unreachable: {_message(data.get('res') or {})}")
    return PlaybookResult(ok, status, results, failures, started, ok_at, seconds)


def failed_event(event: dict) -> bool:
    """A task failed on a host (not an ignored error, not a tolerated unreachable host)."""
    data = event.get("event_data") or {}
    if event.get("event") == "runner_on_failed":
        return not data.get("ignore_errors")
    if event.get("event") == "runner_on_unreachable":
        return not (data.get("res") or {}).get("skip_reason")
    return False


def _message(res: dict) -> str:
    msg = res.get("msg") or res.get("stderr") or ""
    if msg == "non-zero return code":  # a command: what it said is more useful
        out = (res.get("stderr") or "").strip() or "\n".join((res.get("stdout") or "").strip().splitlines()[-8:])
        msg = f"exit {res.get('rc')}: {out}"
    if not msg and res.get("results"):
        msg = "; ".join(str(r.get("msg") or r.get("stderr") or "") for r in res["results"] if r.get("failed"))
    return str(msg).strip()[:500]


class FunctionalCheck:
    """The system's testinfra check (pytest on the targets through the Ansible inventory), run by the engine
    beside the cutover's playbook: started the moment the targets' services run, awaited at the end of the
    functional verification. A pytest process of its own, so its start-up overlaps the route switch and the
    health checks instead of adding to the downtime."""

    def __init__(self, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.argv, self.folder = argv, folder
        # Only testinfra's plugin (no plugin autoload: faster), and its SSH commands multiplexed.
        control = env.get("ANSIBLE_SSH_CONTROL_PATH_DIR", str(folder))
        self.env = {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                    "ANSIBLE_SSH_EXTRA_ARGS": f"-o ControlPath={control}/ti-%C"}
        self.proc: subprocess.Popen | None = None
        self.ended: datetime | None = None
        self.log = folder / "testinfra.log"

    def start(self) -> None:
        if self.proc is not None:
            return
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, cwd=self.folder)
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        assert self.proc is not None
        self.proc.wait()
        self.ended = _now()

    def wait(self, timeout: float = 300) -> tuple[bool, str, datetime]:
        """(passed, the end of its output, when it ended)."""
        self.start()
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return False, f"no result within {timeout:.0f} s", _now()
        for _ in range(100):  # the reaper thread stamps the end
            if self.ended is not None:
                break
            time.sleep(0.01)
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return rc == 0, " | ".join(lines[-12:]), self.ended or _now()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class _CutoverJournal:
    """Journals the cutover's steps from ansible-runner's events: a step starts with its first task (the
    task's file, playbooks/<step>.yml, names it) and is done when the next step's first task starts or the
    playbook ends well. A step whose plays had no host to run on is started and done in passing."""

    def __init__(self, migrator: Migrator, ctx: Ctx, steps: list[str], check: FunctionalCheck | None) -> None:
        self.m, self.ctx, self.steps, self.check = migrator, ctx, steps, check
        self.current: str | None = None  # the step running now (None between closing one and starting the next)
        self.last: str | None = None  # the last step started
        self.began: dict[str, float] = {}
        self.events: dict[str, list[dict]] = {}
        self.failed_step: str | None = None
        self.error: StepFailed | None = None
        self.stats_at: datetime | None = None

    def begin(self, step: str) -> None:
        self.m._say(self.ctx, step)
        self.m.store.journal(self.ctx.run_key, self.ctx.plan.system, step, "started", {"apply": self.m.apply})
        self.ctx.steps_run.append(step)
        self.current = self.last = step
        self.began[step] = time.monotonic()
        self.events.setdefault(step, [])

    def close(self, ended: datetime | None) -> None:
        step = self.current
        assert step is not None
        r = summarise(self.events.get(step, []), True, "successful", time.monotonic() - self.began[step])
        detail = self.m._detail(self.ctx, step, r, ended)
        self.m.store.journal(self.ctx.run_key, self.ctx.plan.system, step, "done", detail)
        self.ctx.details[step] = detail
        self.current = None

    def advance(self, step: str, at: datetime) -> None:
        """Everything before `step` is done; `step` starts."""
        while self.current != step:
            if self.current is not None:
                self.close(at)
            self.begin(self.steps[self.steps.index(self.last) + 1] if self.last else self.steps[0])

    def finish(self, at: datetime | None) -> None:
        """The playbook ended well: the current step and any not reached (nothing to run) are done."""
        self.advance(self.steps[-1], at or _now())
        ended = at or _now()
        if self.check is not None and self.current == "verify_function":
            ok, output, finished = self.check.wait()
            if not ok:
                raise StepFailed("verify_function", f"the testinfra check failed on the targets: {output}")
            ended = max(ended, finished)
        self.close(ended)

    def event(self, event: dict) -> None:
        if self.error is not None:
            return
        try:
            data = event.get("event_data") or {}
            step = Path(data.get("task_path") or "x").name.split(".yml")[0]
            later = step in self.steps and (self.last is None or self.steps.index(step) > self.steps.index(self.last))
            if event.get("event") == "playbook_on_task_start" and later:
                self.advance(step, event_time(event))
            if (event.get("event") == "playbook_on_task_start" and self.check is not None
                    and data.get("task") == TARGETS_RUNNING_TASK):
                self.check.start()  # the targets' services run: the testinfra check goes beside the rest
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


TESTINFRA_TEMPLATE = '''\
"""Functional check (功能验证) of {system} on its cloud targets.

Generated by jiyue's migration engine for run {run_key}; run with
pytest --hosts=ansible://TARGET --ansible-inventory=<the exported ansible.yml>.
"""

import pytest

CONFIG_DIR = "{config_dir}"
EXPECT = {expect}


@pytest.fixture
def expect(host):
    return EXPECT[host.backend.get_hostname()]


def test_service_running(host, expect):
    if not expect["service"]:
        pytest.skip("no service on this host")
    assert host.run(CONFIG_DIR + "/service status").rc == 0


def test_data_present(host, expect):
    for path in expect["dirs"]:
        assert host.file(path).is_directory, path


def test_ports_listening(host, expect):
    for port in expect["ports"]:
        out = host.check_output(f"ss -Htln 'sport = :{{int(port)}}'")
        assert out.strip(), f"nothing listens on port {{port}}"
'''
