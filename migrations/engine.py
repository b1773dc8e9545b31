"""The migration engine for cloud rehosts: move a system onto its cloud targets without losing a byte.

This module orchestrates; its parts live beside it: `migrations.playbook` (running a step's playbook,
its results as data), `migrations.journal` (the journal and what each step records), `migrations.agent`
(the run's ssh-agent), `migrations.verify` (the testinfra functional check), `migrations.observers`
(progress rows, the store's run record).

One system moves through eight steps, each an Ansible playbook in `playbooks/` run through
ansible-runner against the exported Ansible inventory (`playbooks/<step>.yml` says what it does):

    precheck → presync → freeze → final_sync → verify_data → switch → verify_function → done

The cutover, freeze to verify_function (the downtime), is one ansible-playbook run
(`playbooks/cutover.yml` imports the five step playbooks, tagged by step, and opens every SSH
connection before the freeze); each step is journaled from ansible-runner's event stream as it
starts and ends (`CutoverTracker`), and a resumed run passes only the steps still to do as tags.
The system's testinfra check (`FunctionalCheck`) is a pytest process the engine starts the moment
the switch has the targets' services running, beside the rest of the cutover.

The systems of a wave migrate at once, up to `parallel` (default 4), each in a thread of its own
with its own journal rows and lock; one system's failure never stops the others. Their cutovers take
turns (`cutovers` at once, default 1): a system ready to freeze waits, still live, while another is
in its downtime, so the machine serves one downtime at a time and each stays short. A system an
applied run already migrated is never moved again (`already_migrated`). A run reports to its
observers (the journal, the progress rows, the store's run record, and any the caller adds).

Before the freeze, the duration of the pre-sync's delta pass (plus a fixed allowance for the cutover
steps) is weighed against the system's downtime budget: over budget, the run stops cleanly
(`refused`) with the source serving. A lock per system (`locks` table, primary key = subject) keeps
two runs from migrating one system at once; the lock of a dead process is taken over by `resume` of
its own run and otherwise broken explicitly (`break_lock`). Every new run first asks `_held` of each
system: a system whose latest applied run is unfinished (or whose rollback failed) is refused
(`unfinished`, pointing to `migrate.resume`), whether or not its lock was broken: a fresh run would
copy the source over what the target took from clients.

The precheck is read-only (it checks the gateway and the source's service too): when it fails, nothing
changed and nothing rolls back. A later failing step rolls back automatically (`playbooks/rollback.yml`,
the one path that routes clients away from a target): the target's service stops; if the gateway routes
to the target, its data is copied back and verified (both sides' manifests) before the route returns to
the source; the source's service starts and must answer; then this run's copy leaves the targets (what
was there before the run stays, reported with its size). Without `apply` a run is a rehearsal: every
playbook runs in check mode (`--check --diff`), read-only checks really run, nothing changes.

Hosts behind a jump host (堡垒机) are reached through it: the exported Ansible inventory names the export's
ssh config (`jiyue.sshconfig`), each data copy goes direct or through the jump host as `migrations.copypath`
decides from the inventory (journaled as `copy_path`), and the health probes run on the gateway when the control
node cannot reach the system's ports.

No playbook outlives the engine (`migrations.reaper`): each carries a token that the engine, its
watchdog process (should the engine die) and, under the system's lock, the next run on the system
(should the watchdog have died too) use to end whatever it left running.

Downtime per system is measured from the moment the source's service was told to stop (freeze)
to the end of the functional verification; `outage_s` is the part clients notice (until the
gateway routes to the started target).

A zombie (disposition `decommission`) is taken offline the same way, with a sign-off (`take_offline`):

    offline_check → offline_unroute → offline_stop → offline_archive → offline_hold

the check alone first (nothing is touched unless every host answers and the archive has room), then the
rest as one playbook run journaled step by step (`playbooks/offline.yml`): its route leaves the gateway,
its services stop, each host's data paths are copied to the declared archive location
(`decommission.archive` in migrations/planning.yaml) with the host's SHA-256 manifest beside them and the
archive verified against it, and the hosts are held, data untouched, for the grace period. Any failure
brings the system back (`playbooks/offline_rollback.yml`), as `rollback` does on demand within the grace
period. After it, `decommission` (with a sign-off) verifies the archive again, removes the data from the
hosts (`playbooks/offline_free.yml`) and records them as freed assets (`ASSET_FREED`), as it records a
migrated system's decommissioned sources.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from rich.console import Console

from inventory import export
from inventory.model import Inventory, System
from jiyue import sshconfig
from jiyue.processes import pid_alive
from jiyue.runner import Result, StoreRecorder
from jiyue.ssh import known_host_lines
from jiyue.store import ASSET_FREED, MIGRATE_LOCATION, MIGRATE_RUN, Store
from migrations.agent import SshAgent
from migrations.copypath import CopyPath, CopyPathError, copy_path
from migrations.journal import (
    CHECKS,
    CutoverTracker,
    MigrationJournal,
    StepFailed,
    cleanup_detail,
    due,
    failure_detail,
    outcome_of,
    step_detail,
    system_state,
)
from migrations.model import Disposition, MigrationOutcome, Plan, SystemPlan
from migrations.observers import ProgressRows
from migrations.plan import ArchiveLocation, PlanningError, load_planning
from migrations.playbook import PlaybookResult, run_playbook, runner_env
from migrations.reaper import Watchdog, reap
from migrations.verify import FunctionalCheck, testinfra_command

REPO = Path(__file__).resolve().parent.parent
PLANNING = Path(__file__).resolve().parent / "planning.yaml"
DEFAULT_WORKDIR = REPO / "state" / "migrate"

STEPS = ("precheck", "presync", "freeze", "final_sync", "verify_data", "switch", "verify_function", "done")
# The downtime, run as one playbook (playbooks/cutover.yml), each step journaled from the event stream as it ends.
CUTOVER = STEPS[2:7]
# Taking a zombie offline: the check alone, then the rest as one playbook (playbooks/offline.yml).
OFFLINE_STEPS = ("offline_check", "offline_unroute", "offline_stop", "offline_archive", "offline_hold")
SIGN_OFF = "sign_off"  # the journal row naming who signed a zombie's offline off, and when
RUN_PREFIX = "migrate-"
APPLY_PREFIX = RUN_PREFIX + "apply-"
REHEARSAL_PREFIX = RUN_PREFIX + "rehearsal-"
MANIFEST_CACHE_DIR = "/var/lib/jiyue/manifests"  # on each source and target, root only (jiyue_manifest)
# Hardlinks, holes, xattrs and ACLs too: see jiyue_sync's DEFAULT_OPTIONS (the same list) for why each.
RSYNC_OPTIONS = ["-a", "-H", "-S", "-X", "-A", "--delete", "--numeric-ids", "--mkpath", "--modify-window=-1"]
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
# Test hooks, JSON in this variable: {"pause": {"presync": 30}, "target_health_path": "/nope"}; a pause of
# `verify_function` holds the engine once the cutover's playbook is through (the target serving, the step open).
HOOKS_ENV = "JIYUE_MIGRATE_HOOKS"


class MigrationError(Exception):
    """The engine cannot do what was asked (bad plan, unknown system, nothing to resume)."""


class LockedError(MigrationError):
    """Another run holds the system."""


class Refused(MigrationError):
    """Asked too early or without what is required (decommission before the grace period)."""


@dataclass
class Ctx:
    """One system in one run: where to journal, and what the journal already says."""

    run_key: str  # where this run journals
    state_key: str  # whose finished steps count (== run_key except when rehearsing a resume)
    plan: SystemPlan
    system: System
    journal: MigrationJournal
    details: dict[str, dict] = field(default_factory=dict)  # step -> detail of its `done` row
    steps_run: list[str] = field(default_factory=list)
    changed: bool = False  # a step changed something (rehearsing: would have)
    diff: str = ""

    def outcome(self, result: str, message: str = "", downtime_s: float | None = None,
                outage_s: float | None = None) -> MigrationOutcome:
        return MigrationOutcome(self.plan.system, self.run_key, result, message, downtime_s, outage_s,
                                self.steps_run, self.changed, self.diff)


def _now() -> datetime:
    return datetime.now(UTC)


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def grace_days(path: Path = PLANNING) -> int:
    """The decommission grace period: `decommission.grace_days` in migrations/planning.yaml, or 30."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return DEFAULT_GRACE_DAYS
    section = data.get("decommission") if isinstance(data.get("decommission"), dict) else {}
    value = section.get("grace_days", data.get("decommission_grace_days", DEFAULT_GRACE_DAYS))
    return int(value)


def archive_location(path: Path = PLANNING) -> ArchiveLocation | None:
    """Where a zombie's data is archived: `decommission.archive` in migrations/planning.yaml (None: not declared)."""
    try:
        return load_planning(path).decommission.archive
    except PlanningError as exc:
        raise MigrationError(f"planning data: {exc}") from None


def hooks() -> dict:
    raw = os.environ.get(HOOKS_ENV)
    return json.loads(raw) if raw else {}


class Migrator:
    """Runs a migration plan's cloud rehosts. Without `apply`: a rehearsal that changes nothing.

    Every public method returns results (`MigrationOutcome`s) and never prints: what a person sees comes
    from the observers (`progress` shows rows on `console`; `observers` are added to every run)."""

    def __init__(self, inv: Inventory, plan: Plan, store: Store, *, apply: bool = False,
                 workdir: Path | str | None = None, console: Console | None = None, progress: bool = True,
                 allowance_s: float = CUTOVER_ALLOWANCE_S, margin: float = DISK_MARGIN,
                 planning: Path = PLANNING, parallel: int = DEFAULT_PARALLEL,
                 cutovers: int = DEFAULT_CUTOVERS, observers: Sequence[object] = (), jump: str | None = None) -> None:
        self.inv, self.plan, self.store, self.apply = inv, plan, store, apply
        self.jump = jump  # a run's --jump NAME|none (jiyue.cli.jump_override checked it); None: the inventory's
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
        self.planning = planning
        self.hooks = hooks()
        keys = [inv.ssh_for(h).key for h in inv.hosts.values()]
        keys += [j.key for h in inv.hosts.values() for j in inv.jump_chain(h, jump)]  # each hop's login, forwarded
        self.agent = SshAgent(str(k) for k in keys if k is not None)
        self.watchdog = Watchdog(self.workdir / "runner")
        self.observers = list(observers)
        self._observing: list[object] = []  # the current run's observers
        problems = plan.check(inv)
        if problems:
            raise MigrationError("the plan is unsafe to run: " + "; ".join(problems))
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Hosts behind a jump host: through it by the export's ssh_config, its own known_hosts checked.
        self.inventory_file = export.write(inv, "ansible", inv.contactable_hosts(), [], self.workdir,
                                           jump=jump)[0].resolve()

    # --- public API ------------------------------------------------------------------------------

    def run_wave(self, number: int) -> list[MigrationOutcome]:
        """Migrate every cloud rehost of wave `number`, up to `parallel` systems at once."""
        try:
            wave = self.plan.wave(number)
        except StopIteration:
            raise MigrationError(f"the plan has no wave {number}") from None
        systems = [s for s in wave.systems if self.plan.system(s).disposition == Disposition.cloud_rehost]
        return self._run(systems, f"wave{number}")

    def next_wave(self) -> int | None:
        """The first wave with a cloud rehost that no applied run has migrated (None: every wave has moved)."""
        for wave in sorted(self.plan.waves, key=lambda w: w.number):
            if any(self.plan.system(s).disposition == Disposition.cloud_rehost and self.migrated_by(s) is None
                   for s in wave.systems):
                return wave.number
        return None

    def run_system(self, system_id: str) -> MigrationOutcome:
        """Migrate one system of the plan."""
        return self._run([system_id], system_id)[0]

    def run_steps(self, system_id: str, steps: Sequence[str], run_key: str | None = None
                  ) -> tuple[str, dict[str, dict]]:
        """Run only `steps` of one cloud rehost, in order, each as its own playbook, under a new run (or `run_key`,
        one this method started): the run key and every step's detail so far. For measuring a step alone
        (bench/migrate.py); `resume(run_key)` carries the run on. A failing step raises StepFailed, no rollback."""
        self._run_checks([system_id])
        held = None if run_key else self._held(system_id, measuring=True)
        if held is not None:
            raise MigrationError(held.message)
        key = run_key or self._new_key(f"{system_id}-steps")
        journal = MigrationJournal(self.store, key, self.plan, apply=self.apply, queue=run_key is None)
        ctx = self._ctx(system_id, key, key, journal)
        _, ctx.details = system_state(self.store.journal_entries(run_key=key, subject=system_id))
        with self._session(key, [system_id], journal), self._locked(ctx):
            for step in steps:
                self._step(ctx, step)
        return key, ctx.details

    def resume(self, run_key: str | None = None) -> list[MigrationOutcome]:
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
        journal = MigrationJournal(self.store, out_key, self.plan, apply=self.apply)
        with self._session(out_key, pending, journal) as results:
            outcomes = self._many(pending, journal, state_key=key)
            results += [o.to_result() for o in outcomes]
        return outcomes

    def rollback(self, system_id: str) -> MigrationOutcome:
        """Bring a system back to its source (also after a finished migration: the target's data comes back); a zombie
        taken offline, back online on its hosts."""
        if self._zombie(system_id):
            return self._bring_back_on_demand(system_id)
        key = self._latest_run_of(system_id)
        if key is None:
            raise MigrationError(f"{system_id} was never migrated: nothing to roll back")
        status, _ = system_state(self.store.journal_entries(run_key=key, subject=system_id))
        if outcome_of(status) in ("rolled_back", "refused") or any(status.get(c) == "failed" for c in CHECKS):
            return MigrationOutcome(system_id, key, outcome_of(status) or "failed",
                                    f"run {key} already ended with the source serving: nothing to roll back")
        ctx = self._ctx(system_id, key if self.apply else self._new_key(system_id), state_key=key)
        with self._session(ctx.run_key, [system_id], ctx.journal) as results, self._locked(ctx):
            outcome = self._rollback(ctx, "asked for (rollback)", was_done=status.get("done") == "done")
            results.append(self._finished(outcome))
        return outcome

    def decommission(self, system_id: str, signed_off_by: str, force: bool = False) -> MigrationOutcome:
        """Remove a migrated system's data from its sources, after the grace period and with a sign-off."""
        if not signed_off_by or not signed_off_by.strip():
            raise Refused("a decommission needs an explicit sign-off (--signed-off-by NAME)")
        if self._zombie(system_id):
            return self._free(system_id, signed_off_by.strip(), force)
        key = self._latest_run_of(system_id)
        status, _ = system_state(self.store.journal_entries(run_key=key, subject=system_id)) if key else ({}, {})
        if key is None or outcome_of(status) not in ("migrated", "decommissioned"):
            raise Refused(f"{system_id} is not migrated: only a migrated system's sources are decommissioned")
        if status.get("decommission") == "done":
            return MigrationOutcome(system_id, key, "decommissioned", "already decommissioned")
        done_at = next(e.at for e in self.store.journal_entries(run_key=key, subject=system_id)
                       if e.step == "done" and e.status == "done")
        until = done_at + timedelta(days=self.grace_days)
        if _now() < until and not force:
            raise Refused(f"{system_id} migrated {done_at:%Y-%m-%d %H:%M} UTC; the grace period of "
                          f"{self.grace_days} days ends {until:%Y-%m-%d %H:%M} UTC")
        ctx = self._ctx(system_id, key if self.apply else self._new_key(system_id), state_key=key)
        with self._session(ctx.run_key, [system_id], ctx.journal) as results, self._locked(ctx):
            try:
                self._step(ctx, "decommission", extra={"jiyue_signed_off_by": signed_off_by.strip(),
                                                       "jiyue_decommissioned_at": _now().isoformat()},
                           start_detail={"signed_off_by": signed_off_by.strip(), "forced": force})
                outcome = ctx.outcome("decommissioned" if self.apply else "rehearsed",
                                      f"signed off by {signed_off_by.strip()}")
                if self.apply:
                    self._record_freed(ctx, [t.source for t in ctx.plan.targets], "migrated_source",
                                       signed_off_by.strip())
            except StepFailed as exc:
                outcome = ctx.outcome("failed", str(exc))
            results.append(self._finished(outcome))
        return outcome

    def take_offline(self, system_id: str, signed_off_by: str) -> MigrationOutcome:
        """Take a zombie offline with a sign-off: remove its route, stop its services, archive its data with SHA-256
        manifests and verify the archive, hold its hosts for the grace period (its data untouched on them). Any
        failure brings it back. Without `apply`, a rehearsal that changes nothing."""
        who = (signed_off_by or "").strip()
        if not who:
            raise Refused("taking a system offline needs an explicit sign-off (--signed-off-by NAME)")
        if not self._zombie(system_id):
            raise MigrationError(f"{system_id} is not to be decommissioned ({self._disposition(system_id)}): only a "
                                 "zombie of the plan is taken offline")
        self._archive()
        key = self._latest_run_of(system_id)
        if key is not None:
            ended = outcome_of(system_state(self.store.journal_entries(run_key=key, subject=system_id))[0])
            if ended == "offline":
                return MigrationOutcome(system_id, key, "already_offline",
                                        f"taken offline by run {key}; nothing to do (migrate.rollback brings it back)")
            if ended == "decommissioned":
                return MigrationOutcome(system_id, key, ended, f"decommissioned by run {key}: its hosts are freed")
        held = self._held(system_id)
        if held is not None:
            return held
        run_key = self._new_key(f"{system_id}-offline")
        journal = MigrationJournal(self.store, run_key, self.plan, apply=self.apply, queue=True)
        ctx = self._ctx(system_id, run_key, run_key, journal)
        with self._session(run_key, [system_id], journal) as results, self._locked(ctx):
            journal.step(system_id, SIGN_OFF, "done", {"signed_off_by": who, "at": _now().isoformat(timespec="seconds"),
                                                       "apply": self.apply})
            outcome = self._drive_offline(ctx)
            results.append(self._finished(outcome))
        return outcome

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

    def _run_checks(self, systems: Sequence[str]) -> None:
        """Every system is a cloud rehost of the plan with its targets."""
        for s in systems:
            try:
                sp = self.plan.system(s)
            except StopIteration:
                raise MigrationError(f"{s} is not in the plan") from None
            if sp.disposition != Disposition.cloud_rehost or not sp.targets:
                raise MigrationError(f"{s} is not a cloud rehost with targets ({sp.disposition})")

    def _run(self, systems: list[str], label: str) -> list[MigrationOutcome]:
        self._run_checks(systems)
        held = {s: o for s in systems if (o := self._held(s)) is not None}
        systems = [s for s in systems if s not in held]
        skipped = list(held.values())
        if not systems:
            return skipped
        key = self._new_key(label)
        journal = MigrationJournal(self.store, key, self.plan, apply=self.apply, queue=True)
        recorder = StoreRecorder(self.store, MIGRATE_RUN, inventory=str(self.inv.root),
                                 params={"run_key": key, "apply": self.apply})
        with self._session(key, systems, journal, recorder) as results:
            outcomes = self._many(systems, journal, state_key=key)
            results += [o.to_result() for o in outcomes]
        return skipped + outcomes

    @contextlib.contextmanager
    def _session(self, label: str, systems: Sequence[str], journal: MigrationJournal,
                 recorder: StoreRecorder | None = None) -> Iterator[list[Result]]:
        """One run with its ssh-agent and its observers: the journal, the progress rows, the caller's, the store's
        run record (`recorder`, told only of a run that finished). The body adds each system's result."""
        progress = ProgressRows(self.console, apply=self.apply, parallel=self.parallel, enabled=self.progress)
        self._observing = [journal, progress, *self.observers]
        results: list[Result] = []
        self.watchdog.start()  # ends this run's playbooks should the engine die
        self.agent.start()
        try:
            self._tell("run_started", label, list(systems))
            yield results
            if recorder is not None:
                self._observing.append(recorder)
            self._tell("run_finished", results)
        finally:
            progress.run_finished(results)  # the rows stop even when the run did not finish
            self._observing = []
            self.agent.stop()
            self.watchdog.stop()

    def _tell(self, method: str, *args: Any) -> None:
        """Every observer of the run that implements `method` (all observer methods are optional)."""
        for observer in self._observing:
            call = getattr(observer, method, None)
            if call is not None:
                call(*args)

    def _finished(self, outcome: MigrationOutcome) -> Result:
        result = outcome.to_result()
        self._tell("target_finished", result)
        return result

    def _many(self, systems: list[str], journal: MigrationJournal, state_key: str) -> list[MigrationOutcome]:
        """Each system in a thread of its own, at most `parallel` at once; one system's failure (or a bug in
        its run) is its own outcome and never stops the others. Ctrl-C stops the systems in flight (each
        rolls back to its source) and starts no more; `migrate.resume` carries on."""
        if self.parallel == 1 or len(systems) == 1:
            return [self._guarded(s, journal, state_key) for s in systems]
        with ThreadPoolExecutor(min(self.parallel, len(systems)), thread_name_prefix="migrate") as pool:
            futures = [pool.submit(self._guarded, s, journal, state_key) for s in systems]
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

    def _guarded(self, system_id: str, journal: MigrationJournal, state_key: str) -> MigrationOutcome:
        if self._stop.is_set():
            return MigrationOutcome(system_id, journal.run_key, "interrupted", "not started: the run was interrupted")
        self._tell("target_started", system_id)
        try:
            outcome = self._one(system_id, journal, state_key)
        except Exception as exc:  # a bug: this system's outcome, the others carry on
            with contextlib.suppress(Exception):
                journal.step(system_id, "engine", "failed", {"error": f"{type(exc).__name__}: {exc}"})
            outcome = MigrationOutcome(system_id, journal.run_key, "failed", f"{type(exc).__name__}: {exc}")
        self._finished(outcome)
        return outcome

    def migrated_by(self, system_id: str) -> str | None:
        """The applied run that migrated the system, if that is where it stands (not rolled back since)."""
        key = self._latest_run_of(system_id)
        if key is None:
            return None
        status, _ = system_state(self.store.journal_entries(run_key=key, subject=system_id))
        return key if outcome_of(status) in ("migrated", "decommissioned") else None

    def _held(self, system_id: str, measuring: bool = False) -> MigrationOutcome | None:
        """The one check every new run makes of each system before it starts (why it must not): an applied run
        migrated it (nothing to do), or the system's latest applied run is not over (only that run may carry on:
        a fresh one would copy the source over what the target took from clients) or its rollback failed.
        `measuring` (`run_steps`): an unfinished run of steps alone, which never serves clients, does not hold it."""
        key = self._latest_run_of(system_id)
        if key is None or (measuring and key.startswith(f"{APPLY_PREFIX}{system_id}-steps-")):
            return None
        entries = self.store.journal_entries(run_key=key, subject=system_id)
        status, _ = system_state(entries)
        if outcome_of(status) in ("migrated", "decommissioned") and not self._zombie(system_id):
            return MigrationOutcome(system_id, key, "already_migrated",
                                    f"migrated by run {key}; nothing to do (migrate.rollback undoes it)")
        owed = due(status)
        if owed is None:
            return None
        lock = self.store.lock(f"migrate:{system_id}")
        if owed == "resume" and lock is not None and lock.holder == key and self._alive(lock):
            return None  # still running: its lock refuses the new run (`locked`)
        last = entries[-1]
        where = f"it stopped at {last.step} ({last.status}, {last.at:%Y-%m-%d %H:%M:%S} UTC)"
        if owed == "resume":
            message = (f"run {key} of {system_id} is unfinished: {where}. Carry it on with `migrate.resume "
                       f"--run-key {key} --apply` (or bring the system back with `migrate.rollback --system "
                       f"{system_id} --apply`); "
                       "a new run is refused, even after `migrate.unlock`: it would start over and could lose what "
                       "the target took from clients")
        else:
            message = (f"the rollback of run {key} of {system_id} failed: {where}; the target may hold writes its "
                       f"source lacks. Fix the cause, then `migrate.rollback --system {system_id} --apply`")
        return MigrationOutcome(system_id, key, "unfinished", message)

    def _one(self, system_id: str, journal: MigrationJournal, state_key: str) -> MigrationOutcome:
        ctx = self._ctx(system_id, journal.run_key, state_key, journal)
        try:
            with self._locked(ctx):
                return self._drive(ctx)
        except LockedError as exc:
            self._tell("note", system_id, f"[red]{exc}[/]")
            journal.step(system_id, "lock", "refused", {"reason": str(exc)})
            return ctx.outcome("locked", str(exc))

    def _ctx(self, system_id: str, run_key: str, state_key: str, journal: MigrationJournal | None = None) -> Ctx:
        try:
            sp = self.plan.system(system_id)
        except StopIteration:
            raise MigrationError(f"{system_id} is not in the plan") from None
        journal = journal or MigrationJournal(self.store, run_key, self.plan, apply=self.apply)
        return Ctx(run_key, state_key, sp, self.inv.systems[system_id], journal)

    def _drive(self, ctx: Ctx) -> MigrationOutcome:
        if ctx.plan.disposition == Disposition.decommission:
            return self._drive_offline(ctx)  # a zombie's offline run, resumed
        sid = ctx.plan.system
        status, ctx.details = system_state(self.store.journal_entries(run_key=ctx.state_key, subject=sid))
        if status.get("rollback") in ("started", "failed") or (
                any(s == "failed" for s in status.values()) and status.get("rollback") != "done"):
            return self._rollback(ctx, "resumed: a rollback was due")
        if status.get("copy_path") != "done" and status.get("presync") != "done":
            self._note_copy_paths(ctx)
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
                        return ctx.outcome("interrupted", "stopped before the freeze: the source serves on; "
                                           "`migrate.resume --apply` carries on")
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
                        return ctx.outcome("failed", f"rehearsal: {exc.step}: {exc}")
                    if exc.step in CHECKS:  # read-only: nothing changed, nothing to roll back
                        return ctx.outcome("failed", f"{exc.step}: {exc}; nothing was changed, the source serves on")
                    return self._rollback(ctx, f"{exc.step} failed: {exc}", failed_step=exc.step)
        verified = ctx.details.get("verify_function", {})
        if not self.apply:
            return ctx.outcome("rehearsed", "rehearsal: every step ran in check mode")
        return ctx.outcome("migrated", f"now on {', '.join(t.target for t in ctx.plan.targets)}",
                           verified.get("downtime_s"), verified.get("outage_s"))

    # --- a zombie: offline, back, freed --------------------------------------------------------------

    def _disposition(self, system_id: str) -> Disposition:
        try:
            return self.plan.system(system_id).disposition
        except StopIteration:
            raise MigrationError(f"{system_id} is not in the plan") from None

    def _zombie(self, system_id: str) -> bool:
        return self._disposition(system_id) == Disposition.decommission

    def _archive(self) -> ArchiveLocation:
        """The declared archive location, checked against the inventory: a host no system owns, not a migration
        target (its data would be mixed with a system's, or overwritten by a migration)."""
        archive = archive_location(self.planning)
        if archive is None:
            raise MigrationError(f"{self.planning}: no decommission.archive: a zombie's data would have nowhere to go")
        if archive.host not in self.inv.hosts:
            raise MigrationError(f"{self.planning}: decommission.archive.host {archive.host!r} is not in the inventory")
        owner = self.inv.owner(archive.host)
        pool = {p.host for p in self.inv.cloud.pool} if self.inv.cloud else set()
        if owner is not None or archive.host in pool:
            what = f"a host of {owner.id}" if owner is not None else "a cloud-pool host (a migration target)"
            raise MigrationError(f"{self.planning}: the archive host {archive.host} is {what}")
        return archive

    def _drive_offline(self, ctx: Ctx) -> MigrationOutcome:
        """The offline run's steps still to do: the check alone (nothing touched if it fails), then the rest in one
        playbook run; a failure after the check brings the system back."""
        sid = ctx.plan.system
        status, ctx.details = system_state(self.store.journal_entries(run_key=ctx.state_key, subject=sid))
        if status.get("rollback") in ("started", "failed") or (
                any(s == "failed" for k, s in status.items() if k != OFFLINE_STEPS[0])
                and status.get("rollback") != "done"):
            return self._bring_back(ctx, "resumed: a rollback was due")
        try:
            if status.get(OFFLINE_STEPS[0]) != "done":
                self._step(ctx, OFFLINE_STEPS[0])
        except StepFailed as exc:
            return ctx.outcome("failed", f"{exc.step}: {exc}; nothing was touched")
        rest = [s for s in OFFLINE_STEPS[1:] if status.get(s) != "done"]
        try:
            if rest:
                self._cutover(ctx, rest, playbook="offline")
        except StepFailed as exc:
            if not self.apply:
                return ctx.outcome("failed", f"rehearsal: {exc.step}: {exc}")
            return self._bring_back(ctx, f"{exc.step} failed: {exc}", failed_step=exc.step)
        if not self.apply:
            return ctx.outcome("rehearsed", "rehearsal: every step ran in check mode")
        held = self._offline_vars(ctx)
        return ctx.outcome("offline", f"archived on {held['jiyue_archive']['host']}:{held['jiyue_archive']['dir']}; "
                           f"its hosts are held until {held['jiyue_grace_until']} (grace period); "
                           "migrate.rollback brings it back before")

    def _bring_back_on_demand(self, system_id: str) -> MigrationOutcome:
        key = self._latest_run_of(system_id)
        if key is None:
            raise MigrationError(f"{system_id} was never taken offline: nothing to bring back")
        status, details = system_state(self.store.journal_entries(run_key=key, subject=system_id))
        if outcome_of(status) == "decommissioned":
            raise Refused(f"{system_id} was decommissioned after its grace period: its hosts are freed and its data is "
                          "only in the archive")
        ctx = self._ctx(system_id, key if self.apply else self._new_key(system_id), state_key=key)
        ctx.details = details
        with self._session(ctx.run_key, [system_id], ctx.journal) as results, self._locked(ctx):
            outcome = self._bring_back(ctx, "asked for (rollback)")
            results.append(self._finished(outcome))
        return outcome

    def _bring_back(self, ctx: Ctx, reason: str, failed_step: str | None = None) -> MigrationOutcome:
        """A zombie back online on its hosts (their data never left); journaled as the step `rollback`."""
        sid = ctx.plan.system
        self._tell("note", sid, f"[yellow]bringing it back ({reason})[/]")
        ctx.journal.step(sid, "rollback", "started", {"reason": reason})
        ctx.steps_run.append("rollback")
        result = self._playbook("offline_rollback", self._vars(ctx, "rollback"))
        ctx.changed = ctx.changed or result.changed
        ctx.diff += result.diff
        if not result.ok:
            error = "; ".join(result.failures) or result.status
            ctx.journal.step(sid, "rollback", "failed", {"error": error, "reason": reason})
            return ctx.outcome("failed", f"{reason}; BRINGING IT BACK FAILED, needs a person: {error}")
        ctx.journal.step(sid, "rollback", "done", {"reason": reason})
        if failed_step:
            ctx.journal.step(sid, failed_step, "rolled_back", {"reason": reason})
        return ctx.outcome("rolled_back" if self.apply else "rehearsed", f"{reason}; the system serves again")

    def _free(self, system_id: str, who: str, force: bool) -> MigrationOutcome:
        """After the grace period: verify the archive again, remove the data from the hosts, record them as freed."""
        key = self._latest_run_of(system_id)
        entries = self.store.journal_entries(run_key=key, subject=system_id) if key else []
        status, details = system_state(entries)
        if key is None or outcome_of(status) not in ("offline", "decommissioned"):
            raise Refused(f"{system_id} is not offline: take it offline first (migrate.offline), then wait out the "
                          "grace period")
        if status.get("decommission") == "done":
            return MigrationOutcome(system_id, key, "decommissioned", "already decommissioned")
        # The grace period the hosts' OFFLINE markers name: from the signed-off start of the offline run.
        held_at = datetime.fromisoformat(details[SIGN_OFF]["at"])
        until = held_at + timedelta(days=self.grace_days)
        if _now() < until and not force:
            raise Refused(f"{system_id} went offline {held_at:%Y-%m-%d %H:%M} UTC; the grace period of "
                          f"{self.grace_days} days ends {until:%Y-%m-%d %H:%M} UTC")
        ctx = self._ctx(system_id, key if self.apply else self._new_key(system_id), state_key=key)
        ctx.details = details
        with self._session(ctx.run_key, [system_id], ctx.journal) as results, self._locked(ctx):
            try:
                self._step(ctx, "decommission", playbook="offline_free",
                           extra={"jiyue_signed_off_by": who, "jiyue_decommissioned_at": _now().isoformat()},
                           start_detail={"signed_off_by": who, "forced": force})
                outcome = ctx.outcome("decommissioned" if self.apply else "rehearsed",
                                      f"signed off by {who}; the archive verified, the hosts are freed")
                if self.apply:
                    self._record_freed(ctx, list(ctx.system.hosts), "zombie", who)
            except StepFailed as exc:
                outcome = ctx.outcome("failed", f"{exc}; nothing was removed unless the archive verified")
            results.append(self._finished(outcome))
        return outcome

    def _record_freed(self, ctx: Ctx, hosts: list[str], cause: str, who: str) -> None:
        """The freed hosts, for the asset register (资产清单): one row each (ASSET_FREED)."""
        archive = self._offline_vars(ctx)["jiyue_archive"] if cause == "zombie" else None
        at = _now().isoformat(timespec="seconds")
        rows = []
        for name in hosts:
            host = self.inv.hosts[name]
            rows.append(Result(name, True, {
                "host": name, "system": ctx.system.id, "department": ctx.system.department, "cause": cause,
                "os": host.os, "role": host.role, "address": str(host.address), "signed_off_by": who, "freed_at": at,
                "archive": f"{archive['host']}:{archive['dir']}/{name}" if archive else None,
                "run_key": ctx.state_key}))
        self.store.record(ASSET_FREED, rows, inventory=str(self.inv.root),
                          params={"system": ctx.system.id, "run_key": ctx.state_key, "cause": cause})

    def _take_cutover_slot(self, ctx: Ctx) -> bool:
        """Wait until fewer than `cutovers` systems are in their cutover; False when the run is interrupted."""
        if self._cutover_slots.acquire(blocking=False):
            return True
        self._tell("note", ctx.plan.system, "waiting for its turn to cut over (live)")
        while not self._cutover_slots.acquire(timeout=0.5):
            if self._stop.is_set():
                return False
        return True

    def _weigh_budget(self, ctx: Ctx) -> MigrationOutcome | None:
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
        ctx.journal.step(ctx.plan.system, "freeze", "refused", detail)
        self._tell("note", ctx.plan.system, f"[yellow]refused to freeze: {detail['reason']}[/]")
        return ctx.outcome("refused", detail["reason"])

    # --- steps ------------------------------------------------------------------------------------

    def _begin(self, ctx: Ctx, step: str, start_detail: dict | None = None) -> None:
        self._tell("step_started", ctx.plan.system, step)
        ctx.journal.step(ctx.plan.system, step, "started", {"apply": self.apply, **(start_detail or {})})
        ctx.steps_run.append(step)

    def _end(self, ctx: Ctx, step: str, result: PlaybookResult, ended: datetime | None = None) -> dict:
        """The step went well: journal what it did (decoded from its reports) and keep it for the later steps."""
        detail = step_detail(step, result, ctx.plan, ctx.details, apply=self.apply, ended=ended)
        if step == "done" and self.apply:
            self._record_location(ctx, detail["location"], "migrated")
        ctx.journal.step(ctx.plan.system, step, "done", detail)
        ctx.details[step] = detail
        ctx.changed = ctx.changed or result.changed
        ctx.diff += result.diff
        return detail

    def _failed(self, ctx: Ctx, step: str, exc: Exception) -> StepFailed:
        """Journal a step's failure; a bug or a broken runner is rolled back like any failure."""
        if isinstance(exc, StepFailed):
            ctx.journal.step(ctx.plan.system, exc.step, "failed", {"error": str(exc), **exc.detail})
            return exc
        ctx.journal.step(ctx.plan.system, step, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        return StepFailed(step, f"{type(exc).__name__}: {exc}")

    def _step(self, ctx: Ctx, step: str, extra: dict | None = None, start_detail: dict | None = None,
              playbook: str | None = None) -> dict:
        """Run one step's playbook (playbooks/<step>.yml, or `playbook`) and journal it."""
        self._begin(ctx, step, start_detail)
        try:
            result = self._playbook(playbook or step, self._vars(ctx, step) | (extra or {}))
            if not result.ok:
                raise StepFailed(step, "; ".join(result.failures) or result.status,
                                 failure_detail(step, result))
            return self._end(ctx, step, result)
        except Exception as exc:
            failed = self._failed(ctx, step, exc)
            if failed is exc:
                raise
            raise failed from exc

    def _cutover(self, ctx: Ctx, steps: list[str], playbook: str = "cutover") -> None:
        """Run `steps` (the cutover's steps still to do, in order; or a zombie's offline steps) as one playbook,
        journaling each as it goes."""
        extravars = self._vars(ctx, playbook)
        check = None
        if self.apply and "verify_function" in steps:
            folder = self.workdir / "testinfra" / ctx.run_key
            check = FunctionalCheck(testinfra_command(self.inv, ctx.plan, ctx.system,
                                                      ctx.details.get("precheck", {}).get("dirs"), ctx.run_key,
                                                      folder, self.inventory_file), self._env(), folder)

        def await_check(step: str) -> datetime | None:
            if step == "verify_function" and self.hooks.get("pause", {}).get("verify_function"):
                time.sleep(float(self.hooks["pause"]["verify_function"]))
            if check is None or step != "verify_function":
                return None
            ok, output, finished = check.wait()
            if not ok:
                raise StepFailed("verify_function", f"the testinfra check failed on the targets: {output}")
            return finished

        tracker = CutoverTracker(steps, begin=lambda step: self._begin(ctx, step),
                                 end=lambda step, result, ended: self._end(ctx, step, result, ended),
                                 on_targets_running=check.start if check is not None else None)
        tracker.begin(steps[0])
        try:
            if check is not None and "switch" not in steps:
                check.start()  # resumed after the switch: nothing to wait for
            result = self._playbook(playbook, extravars, tags=steps, on_event=tracker.event,
                                    cancel=tracker.cancelled)
            if tracker.error is not None:
                raise tracker.error
            if not result.ok:
                step = tracker.failed_step or tracker.current or steps[0]
                detail = failure_detail(step, tracker.result(step, False, result.status))
                raise StepFailed(step, "; ".join(result.failures) or result.status, detail)
            tracker.finish(tracker.stats_at, wait=await_check)
        except Exception as exc:
            failed = self._failed(ctx, tracker.current or steps[0], exc)
            if failed is exc:
                raise
            raise failed from exc
        finally:
            if check is not None:
                check.stop()

    def _rollback(self, ctx: Ctx, reason: str, failed_step: str | None = None,
                  was_done: bool = False) -> MigrationOutcome:
        """Back to the source serving, nothing lost; journaled as the step `rollback`. playbooks/rollback.yml is the
        only way clients are routed away from a target: it copies back and verifies what a serving target received
        first (the gateway's route says whether it served), then removes this run's copy from the targets."""
        sid = ctx.plan.system
        status, details = system_state(self.store.journal_entries(run_key=ctx.state_key, subject=sid))
        ctx.details = ctx.details or details
        reverse = status.get("switch") is not None  # clients may have reached the target: it must answer
        self._tell("note", sid, f"[yellow]rollback ({reason})[/]")
        ctx.journal.step(sid, "rollback", "started", {"reason": reason, "reverse_sync": reverse})
        ctx.steps_run.append("rollback")
        extravars = self._vars(ctx, "rollback")
        cleanup, keep = self._copies(ctx, extravars)
        result = self._playbook("rollback", extravars | {"jiyue_reverse_sync": reverse, "jiyue_cleanup": cleanup,
                                                         "jiyue_keep": keep})
        ctx.changed = ctx.changed or result.changed
        ctx.diff += result.diff
        if not result.ok:
            error = "; ".join(result.failures) or result.status
            ctx.journal.step(sid, "rollback", "failed", {"error": error, "reason": reason})
            return ctx.outcome("failed", f"{reason}; ROLLBACK FAILED, needs a person: {error}")
        served = any(bool(v.get("targets")) for v in result.report("served").values())
        removed, left = cleanup_detail(result, cleanup) if self.apply else ([], [])
        ctx.journal.step(sid, "rollback", "done", {"reason": reason, "reverse_sync": served, "removed": removed,
                                                   "left_behind": left})
        if failed_step:
            ctx.journal.step(sid, failed_step, "rolled_back", {"reason": reason})
        if was_done and self.apply:
            self._record_location(ctx, {t.source: t.source for t in ctx.plan.targets}, "rolled back to the source")
        message = f"{reason}; the source serves again"
        if served:
            message += " (what the targets received was copied back and verified first)"
        if removed:
            message += "; removed this run's copy: " + ", ".join(f"{r['host']}:{r['path']} ({r['bytes']} bytes)"
                                                                for r in removed)
        if left:
            message += ("; LEFT BEHIND on the targets, for a person to remove once checked: "
                        + ", ".join(f"{r['host']}:{r['path']} ({r['bytes']} bytes: {r['why']})" for r in left))
        return ctx.outcome("rolled_back" if self.apply else "rehearsed", message)

    @staticmethod
    def _copies(ctx: Ctx, extravars: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Per target: the directories this run copied there (the precheck found them absent), and the others (there
        before this run, or not known to be this run's: never removed, only reported)."""
        existing = ctx.details.get("precheck", {}).get("existing")
        cleanup: dict[str, list[str]] = {}
        keep: dict[str, list[str]] = {}
        for target, t in extravars["jiyue_by_target"].items():
            before = set(t["dirs"]) if existing is None else set(existing.get(target, []))
            cleanup[target] = [d for d in t["dirs"] if d not in before]
            keep[target] = [d for d in t["dirs"] if d in before]
        return cleanup, keep

    def _record_location(self, ctx: Ctx, location: dict[str, str], what: str) -> None:
        self.store.record(MIGRATE_LOCATION, [Result(ctx.system.id, True, {
            "system": ctx.system.id, "hosts": location, "what": what, "run_key": ctx.state_key,
            "at": _now().isoformat(timespec="seconds")})], inventory=str(self.inv.root),
            params={"run_key": ctx.state_key})

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
        if ctx.plan.disposition == Disposition.decommission:
            return self._offline_vars(ctx)
        sp, system, inv = ctx.plan, ctx.system, self.inv
        config_dir = f"/etc/app/{system.id}"
        pairs: dict[str, dict] = {}
        for t in sp.targets:
            src, tgt = inv.ssh_for(inv.hosts[t.source]), inv.ssh_for(inv.hosts[t.target])
            there, back = self.copy_paths(t.source, t.target)
            pairs[t.source] = {
                "copy_path": there.kind, "copy_via": self._hops(there), "back_path": back.kind,
                "back_via": self._hops(back),
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
            "jiyue_forward_ssh_args": self.agent.forward_ssh_args(),
            "jiyue_reverse_sync": False,
            "jiyue_probe_from": self._probe_from([*pairs, *by_target, gateway]),
        }

    def copy_paths(self, source: str, target: str) -> tuple[CopyPath, CopyPath]:
        """The way the data goes from the source to its target, and back in a rollback (migrations/copypath.py)."""
        return copy_path(self.inv, source, target, self.jump), copy_path(self.inv, target, source, self.jump)

    @staticmethod
    def _hops(path: CopyPath) -> list[dict]:
        try:
            return path.hops()
        except CopyPathError as exc:
            raise MigrationError(str(exc)) from None

    def _probe_from(self, hosts: Sequence[str]) -> str:
        """Where the health probes run: the control node, or (when any of the hosts is behind a jump host, so the
        control node cannot open their ports) the gateway, which reaches both sides as the clients do."""
        gateway = self.inv.cloud.gateway if self.inv.cloud else None
        behind = sshconfig.through_jump_hosts(self.inv, [h for h in hosts if h in self.inv.hosts], self.jump)
        return gateway if behind and gateway else "localhost"

    def _note_copy_paths(self, ctx: Ctx) -> None:
        """Say, once per run, which way each of the system's copies goes (and back, should it roll back): on the
        run's output and in the journal (the step `copy_path`)."""
        sid = ctx.plan.system
        copies = [p.record() for t in ctx.plan.targets for p in self.copy_paths(t.source, t.target)]
        for c in copies[::2]:
            self._tell("note", sid, f"[cyan]copy {c['from']} -> {c['to']}: {c['path']} ({c['why']})[/]")
        ctx.journal.step(sid, "copy_path", "done", {"copies": copies})

    def _offline_vars(self, ctx: Ctx) -> dict[str, Any]:
        """What the offline playbooks get (playbooks/offline_check.yml lists them), from the inventory, the declared
        archive and what the run journaled so far (the directories found, the removed route, the manifests)."""
        system, inv = ctx.system, self.inv
        archive = self._archive()
        ssh = inv.ssh_for(inv.hosts[archive.host])
        archive_dir = f"{archive.path}/{system.id}"
        dirs = ctx.details.get(OFFLINE_STEPS[0], {}).get("dirs") or {h: list(system.data_paths) for h in system.hosts}
        manifests = ctx.details.get("offline_archive", {}).get("manifests", {})
        web = next((v for v in system.services if v.health_url), None)
        gateway = inv.cloud.gateway if inv.cloud else None
        if web is not None and gateway is None:
            raise MigrationError("the inventory has no cloud gateway: the system's route cannot be removed")
        source = _hostport(str(inv.hosts[web.host].address), web.port) if web else ""
        route_before = ctx.details.get("offline_unroute", {}).get("route_before")
        health_path = urlsplit(web.health_url).path if web and web.health_url else "/"
        gw_address = str(inv.hosts[gateway].address) if gateway else ""
        gw_netloc = f"[{gw_address}]" if ":" in gw_address else gw_address
        signed = ctx.details.get(SIGN_OFF, {})
        offline_at = signed.get("at") or _now().isoformat(timespec="seconds")
        grace_until = datetime.fromisoformat(offline_at) + timedelta(days=self.grace_days)
        return {
            "jiyue_system": system.id, "jiyue_run_key": ctx.state_key,
            "jiyue_sources": list(system.hosts),
            "jiyue_service_sources": list(dict.fromkeys(v.host for v in system.services)),
            "jiyue_gateway": gateway or "",
            "jiyue_route": {"file": f"/etc/app/gateway/routes/{system.id}.conf", "source": source},
            "jiyue_route_content": route_before or (f"location /{system.id}/ {{\n    proxy_pass http://{source}/;\n}}\n"
                                                    if source else ""),
            "jiyue_health": {"gateway": f"http://{gw_netloc}/{system.id}{health_path}",
                             "source": [v.health_url for v in system.services if v.health_url]},
            "jiyue_config_dir": f"/etc/app/{system.id}", "jiyue_data_paths": list(system.data_paths),
            "jiyue_dirs": dirs,
            "jiyue_archive": {"host": archive.host, "address": ssh.address, "port": ssh.port, "user": ssh.user,
                              "known_hosts": self._known_hosts(archive.host), "dir": archive_dir},
            "jiyue_archive_checks": [{"source": h, "dir": d, "archived": f"{archive_dir}/{h}{d}",
                                      "summary": manifests.get(h, {}).get(d, {})}
                                     for h, ds in dirs.items() for d in ds],
            "jiyue_archive_via": {h: self._hops(copy_path(inv, h, archive.host, self.jump)) for h in dirs},
            "jiyue_probe_from": self._probe_from([*system.hosts, *([gateway] if gateway else [])]),
            "jiyue_margin": self.margin, "jiyue_rsync_options": RSYNC_OPTIONS,
            "jiyue_forward_ssh_args": self.agent.forward_ssh_args(),
            "jiyue_signed_off_by": signed.get("signed_off_by", ""),
            "jiyue_offline_at": offline_at, "jiyue_grace_until": grace_until.isoformat(timespec="seconds"),
        }

    # --- ansible-runner ----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return runner_env(self.agent.env())

    def _playbook(self, name: str, extravars: dict[str, Any], tags: list[str] | None = None,
                  on_event: Any = None, cancel: Any = None) -> PlaybookResult:
        """Run playbooks/<name>.yml; Ctrl-C (or `cancel()` True) stops any but a rollback."""
        return run_playbook(name, private_dir=self.workdir / "runner" / str(extravars.get("jiyue_system", "x")),
                            inventory_file=self.inventory_file, extravars=extravars, env=self._env(),
                            check=not self.apply, tags=tags, on_event=on_event,
                            cancel=lambda: name != "rollback" and (self._stop.is_set() or bool(cancel and cancel())))

    # --- locks and the journal's runs ------------------------------------------------------------

    @staticmethod
    def _alive(lock: Any) -> bool:
        return lock.hostname != socket.gethostname() or pid_alive(lock.pid)

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
                raise LockedError(f"{ctx.plan.system} is being migrated by {held}; if that process is gone, carry "
                                  f"its run on with `migrate.resume --run-key {lock.holder if lock else '…'} --apply` "
                                  "(it takes over its own lock)")
        try:
            self._end_orphans(ctx)
            yield
        finally:
            self.store.release_lock(subject, ctx.run_key)

    def _end_orphans(self, ctx: Ctx) -> None:
        """Under the system's lock, before anything acts on it: end what a dead engine's playbook runs of the
        system left running (its watchdog does at once; this is for when the watchdog died too), journaled."""
        ended = reap(self.workdir / "runner" / ctx.plan.system)
        if ended:
            ctx.journal.step(ctx.plan.system, "orphan", "ended", {"processes": ended})
            self._tell("note", ctx.plan.system, f"[yellow]ended {len(ended)} process(es) a killed run left "
                                                f"running: {', '.join(str(p['pid']) for p in ended)}[/]")

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
