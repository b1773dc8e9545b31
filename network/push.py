"""The push engine: bring devices to their intended configuration, safely, in stages.

Per device (one session, jiyue.device):

1. refuse a golden-network device, or a change touching a golden-network interface (the renderer
   refuses them too; this is the last check before a device is changed);
2. read the running configuration and compute the scoped remediation (network/diff.py); an empty
   one means nothing to do (a second push is a no-op); without --apply stop here (dry run);
3. save the running configuration under the backups directory (`<backups>/<device>/<UTC time>.cfg`);
4. apply with the vendor's safety net (jiyue/platforms.yaml `commit`): VRP8 `commit trial N`, Comware
   `configuration commit delay M`, IOS `configure terminal revert timer N`; a rejected line raises
   (the platform's error pattern);
5. read the configuration again and check that every intended line is there;
6. confirm (`commit`, `configuration commit`, `configure confirm`) and save.

Any failure on the way rolls the device back: the vendor's own undo first where it has one
(`abort trial`, `configure revert now`), then whatever still differs from the backup is restored
line by line (hier_config from the current configuration to the backup, over a fresh session if
the old one died), and the configuration is read once more to prove the device equals its backup.
The device is marked failed with the reason; the others go on.

Each phase (reading and backup; the change, from arming the vendor timer to saving; the rollback) has
a deadline of half the platform's commit timer (`deadline`): no read waits past it, so a slow device
is rolled back while its own timer can still undo the change, and never holds the run for lines × the
read timeout. Every device ends with its true `end_state` (END_STATES), proven by the last read: a
rollback that failed leaves the lines it differs from its backup by and the `network.restore` command
that brings it back. When the vendor timer we armed is gone at rollback, it expired mid-change: that,
not what the device answered next, is the cause (`timer_expired`).

Devices go in stages (jiyue.runner.run_staged): a canary group first, then batches; after a batch
whose failed share passes --max-fail-percent the rollout stops and the rest are not attempted. The
run's observers (the progress bar, the store recorder) watch it as it goes; each device's result
carries `changed` (in a dry run: would change) and its diff.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inventory.groups import PatternError, select_targets
from inventory.model import Inventory
from jiyue.device import DeviceError, DeviceSession, DeviceTarget, say
from jiyue.files import write_atomic
from jiyue.platforms import cli, parse
from jiyue.runner import DEFAULT_WORKERS, NOT_ATTEMPTED, Changed, ProgressBar, Result, Staged, run_staged
from jiyue.ssh import JumpPool
from jiyue.store import REPO
from network.diff import DeviceDiff, diff, golden_refusals, missing_lines, restore_commands, same_config

DEFAULT_BACKUPS = REPO / "state" / "network-backups"

# What became of one device in a push (NOT_ATTEMPTED is the runner's own kind for a stopped rollout).
APPLIED, UNCHANGED, DRY_RUN, FAILED, REFUSED = "applied", "unchanged", "dry_run", "failed", "refused"
STATUSES = (APPLIED, UNCHANGED, DRY_RUN, FAILED, REFUSED, NOT_ATTEMPTED)
# What the device itself ended as, whatever its status: the summary, the reports and the exit code say this,
# never more than the last read of the device proved.
CHANGED, AS_BEFORE, ROLLED_BACK, ROLLBACK_FAILED = "changed", "unchanged", "rolled_back", "rollback_failed"
END_STATES = (CHANGED, AS_BEFORE, ROLLED_BACK, ROLLBACK_FAILED)


@dataclass
class PushOptions:
    """How a push goes: for real or dry, in which stages, how many devices at once, where backups go."""

    apply: bool = False
    workers: int = DEFAULT_WORKERS
    canary: str | None = None  # a number of devices, or a --limit pattern naming the canary group
    batch_size: str | None = None  # devices per batch after the canary: N or P% (default: all at once)
    max_fail_percent: float = 0.0  # per batch, Ansible's max_fail_percentage (0: any failure stops)
    backups: Path = DEFAULT_BACKUPS
    trust_on_first_use: bool = False
    known_hosts: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float | None = None  # seconds per phase; default (and at most): half the platform's commit timer
    progress: bool = True
    jump: str | None = None  # a run's `--jump NAME|none` for every device (None: the inventory's `jump:` settings)


@dataclass
class DevicePush:
    """One device's push, as stored and reported."""

    device: str
    platform: str
    status: str = NOT_ATTEMPTED
    diff: list[str] = field(default_factory=list)  # the remediation, indented, for people
    lines: int = 0  # lines the remediation sends
    backup: str | None = None
    kind: str | None = None  # why it failed: unreachable, auth_failed, rejected, verify, session_lost, …
    reason: str | None = None
    safety: str = ""  # the commit safety used
    rollback: str | None = None  # what rolling back did, and whether the backup was matched
    notes: list[str] = field(default_factory=list)
    batch: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # time per step
    end_state: str = AS_BEFORE  # see END_STATES
    differs: list[str] = field(default_factory=list)  # after a failed rollback: `- ` backup only, `+ ` device only
    restore: str | None = None  # after a failed rollback: the command that restores the backup
    deadline: float | None = None  # seconds each phase (read, change, rollback) had

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# An answer that says the command did nothing (beyond the platform's error pattern): IOS's "% No …".
_REFUSAL = re.compile(r"^\s*(%|Error)", re.M)


class PushFailed(DeviceError):
    """A device's push failed; `value` is its DevicePush (as a dict) for the store and the report."""

    def __init__(self, kind: str, message: str, outcome: DevicePush) -> None:
        super().__init__(kind, message, outcome.as_dict())


class VerifyError(DeviceError):
    pass


@dataclass
class _Change:
    """What the engine did to one device so far: whether the vendor timer is armed (and when), confirmed."""

    started: float = 0.0
    armed_at: float | None = None
    arm: str = ""
    confirmed: bool = False


@dataclass
class Rollback:
    """What rolling back did, and what the last read of the device proved."""

    text: str
    equal: bool  # the device was read and equals its backup
    current: str | None = None  # the configuration last read (None: the device could not be read)
    timer_gone: bool = False  # the vendor timer we armed was no longer pending (it expired)


def differing_lines(platform: str, current: str, backup: str) -> list[str]:
    """The lines by which the device differs from its backup, with their sections: `- ` only in the backup,
    `+ ` only on the device."""
    return list(parse(platform, backup).unified_diff(parse(platform, current)))


@dataclass
class PushRun:
    """A push (or diff, or dry run) of many devices: the one result the push service returns."""

    outcomes: list[DevicePush]
    staged: Staged
    options: PushOptions
    started: datetime
    run_id: int | None = None  # the run's id in the store, once recorded
    inventory: str = ""  # the inventory directory, for the reports
    skipped: dict[str, str] = field(default_factory=dict)  # devices left out (golden networks), with why

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return out

    def end_states(self) -> dict[str, int]:
        out = dict.fromkeys(END_STATES, 0)
        for o in self.outcomes:
            out[o.end_state] = out.get(o.end_state, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return all(o.status in (APPLIED, UNCHANGED, DRY_RUN) for o in self.outcomes)


def restore_command(inv: Inventory, name: str, backup: str) -> str:
    """The command an operator runs to bring a device back to its backup (shows the lines without --apply)."""
    return f"invoke network.restore --inventory {inv.root} --device {name} --backup {backup} --apply"


def golden_check(inv: Inventory, name: str, lines: Sequence[str]) -> None:
    """Refuse a golden-network device, or lines that enter or remove a golden-network interface."""
    device = inv.devices[name]
    if device.golden_network is not None:
        raise DeviceError("refused", f"{name} belongs to the golden network {device.golden_network.value}: "
                                     "jiyue never changes it (盘政办发〔2017〕144号)")
    golden = [i.name for i in device.interfaces if i.golden_network is not None]
    hits = golden_refusals(name, golden, lines)
    if hits:
        names = ", ".join(i.name for i in device.interfaces if i.golden_network is not None)
        raise DeviceError("refused", f"{name}: the change touches golden-network interface(s) {names} "
                                     f"({'; '.join(hits)}): jiyue never changes them (盘政办发〔2017〕144号)")


def read_diff(session: DeviceSession, name: str, intended: Sequence[str]) -> tuple[str, DeviceDiff]:
    """The running configuration as printed, and the scoped remediation to the intended lines."""
    raw = session.running_config()
    return raw, diff(name, session.target.platform, session.cli.config_text(raw), intended)


class Pusher:
    """Pushes intended configurations (device name -> lines) to inventory devices."""

    def __init__(self, inv: Inventory, intended: Mapping[str, Sequence[str]],
                 options: PushOptions | None = None) -> None:
        self.inv = inv
        self.intended = {k: list(v) for k, v in intended.items()}
        self.options = options or PushOptions()
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._batch_of: dict[str, int] = {}
        # The run's connections to jump hosts, shared by its devices' sessions (a rollback's fresh session too).
        self.pool: JumpPool | None = None

    # --- one device ---------------------------------------------------------------------------

    def session(self, name: str) -> DeviceSession:
        o = self.options
        return DeviceSession(DeviceTarget.of(self.inv, name, o.known_hosts, o.jump),
                             trust_on_first_use=o.trust_on_first_use, connect_timeout=o.connect_timeout,
                             read_timeout=o.read_timeout, pool=self.pool)

    def deadline(self, platform: str) -> float:
        """Seconds each phase of a device's push may take: half its commit timer, so that a change cut by
        it is rolled back while the vendor's timer is still armed (shorter with --deadline)."""
        half = cli(platform).commit.timer_seconds / 2
        return min(self.options.deadline, half) if self.options.deadline else half

    def device(self, name: str) -> Changed:
        """The runner's task: push one device; raises PushFailed (with the outcome) on failure."""
        device = self.inv.devices[name]
        outcome = DevicePush(name, device.platform.value, batch=self._batch_of.get(name))
        outcome.deadline = budget = self.deadline(outcome.platform)
        clock = time.monotonic()

        def step(label: str) -> None:
            nonlocal clock
            now = time.monotonic()
            outcome.seconds[label] = round(outcome.seconds.get(label, 0.0) + now - clock, 4)
            clock = now

        intended = self.intended.get(name)
        try:
            if intended is None:
                raise DeviceError("error", f"no intended configuration was rendered for {name}")
            golden_check(self.inv, name, intended)
        except DeviceError as exc:
            outcome.status, outcome.kind, outcome.reason = (REFUSED if exc.kind == "refused" else FAILED,
                                                            exc.kind, str(exc))
            raise PushFailed(exc.kind, str(exc), outcome) from exc
        session = self.session(name)
        session.set_deadline(budget)  # reading and backing up
        backup_text: str | None = None
        change = _Change()
        try:
            session.open()
            step("connect")
            raw, d = read_diff(session, name, intended)
            outcome.diff, outcome.lines = d.shown, len(d.remediation)
            step("read")
            golden_check(self.inv, name, d.remediation)
            if d.empty:
                outcome.status = UNCHANGED
                return Changed(outcome.as_dict(), False)
            if not self.options.apply:
                outcome.status = DRY_RUN
                return Changed(outcome.as_dict(), True, "\n".join(d.shown))
            backup_text = session.cli.config_text(raw)
            outcome.backup = str(self._write_backup(name, raw))
            step("backup")
            session.set_deadline(budget)  # the change: armed, sent, verified, confirmed and saved within it
            change.started = time.monotonic()
            self._apply(session, d, outcome, change)
            step("apply")
            self._verify(session, intended)
            step("verify")
            self._confirm(session, outcome)
            change.confirmed = True
            session.save()
            step("save")
            outcome.status, outcome.end_state = APPLIED, CHANGED
            return Changed(outcome.as_dict(), True, "\n".join(d.shown))
        except Exception as exc:  # whatever failed, a changed device goes back to its backup
            kind = exc.kind if isinstance(exc, DeviceError) else "error"
            reason = str(exc) if isinstance(exc, DeviceError) else f"{type(exc).__name__}: {exc}"
            outcome.status, outcome.kind, outcome.reason = REFUSED if kind == "refused" else FAILED, kind, reason
            if backup_text is not None:
                self._roll_back(session, outcome, backup_text, change)
                step("rollback")
                kind, reason = outcome.kind or kind, outcome.reason or reason
            raise PushFailed(kind, reason, outcome) from exc
        finally:
            session.close()

    def _roll_back(self, session: DeviceSession, outcome: DevicePush, backup: str, change: _Change) -> None:
        """Roll the device back and set its true end state; the rollback may run while the vendor timer is
        armed (the deadline left it half the timer), and not longer."""
        timer = session.cli.commit.timer_seconds
        elapsed = time.monotonic() - (change.armed_at or change.started)
        result = self._rollback(session, outcome.device, backup, max(outcome.deadline or 0.0, timer - elapsed),
                                armed=change.armed_at is not None and not change.confirmed)
        outcome.rollback = result.text
        if result.timer_gone and change.armed_at is not None and not change.confirmed:
            # What the device answered after its timer had undone the change (a line refused because its
            # section was gone, lines missing at verification) is a consequence, not the cause.
            outcome.notes.append(f"the device then answered: {outcome.reason}")
            outcome.kind, outcome.reason = "timer_expired", say("timer_expired", arm=change.arm)
        if result.equal:
            outcome.end_state = ROLLED_BACK
            return
        outcome.end_state = ROLLBACK_FAILED
        if result.current is not None:
            outcome.differs = differing_lines(outcome.platform, result.current, backup)
        if change.armed_at is not None and not change.confirmed and not result.timer_gone:
            left = timer - (time.monotonic() - change.armed_at)
            if left > 0:
                outcome.notes.append(say("still_armed", arm=change.arm, left=left))
        outcome.restore = restore_command(self.inv, outcome.device, outcome.backup or "")

    def _write_backup(self, name: str, raw: str) -> Path:
        """The running configuration as printed, before any change; readable by its owner only."""
        folder = self.options.backups / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.stamp}.cfg"
        n = 1
        while path.exists():  # two pushes in one second keep both backups
            n += 1
            path = folder / f"{self.stamp}-{n}.cfg"
        return write_atomic(path, raw, mode=0o600)

    def _apply(self, s: DeviceSession, d: DeviceDiff, outcome: DevicePush, change: _Change) -> None:
        commit = s.cli.commit
        change.arm = commit.arm_command()

        def armed() -> None:
            change.armed_at = time.monotonic()

        if commit.method == "trial":  # VRP8: candidate, then a trial that reverts by itself
            outcome.safety = f"{commit.arm_command()} → {commit.confirm}"
            s.configure(d.remediation, leave=False)
            s.exec_checked(commit.arm_command())
            armed()
            s.leave_config()
        elif commit.method == "delay":  # Comware: a rollback timer armed before the change
            outcome.safety = f"{commit.arm_command()} → {commit.confirm}"
            s.configure([commit.arm_command()], leave=False)
            armed()
            s.configure(d.remediation)
        elif commit.method == "revert_timer":  # IOS: configuration mode entered with a revert timer
            outcome.safety = f"{commit.arm_command()} → {commit.confirm}"
            try:
                s.configure([], enter=commit.arm_command(), leave=False)
                armed()
                s.configure(d.remediation)
            except DeviceError as exc:
                if exc.kind != "unsupported":
                    raise
                change.armed_at = None
                # e.g. IOS without `archive` / `path`: no revert timer on this device; nothing was sent
                outcome.safety = "apply, verify, restore the backup on failure (revert timer unavailable)"
                outcome.notes.append(f"revert timer unavailable: {exc}")
                s.configure(d.remediation)
        else:
            outcome.safety = "apply, verify, restore the backup on failure"
            s.configure(d.remediation)

    def _verify(self, s: DeviceSession, intended: Sequence[str]) -> None:
        missing = missing_lines(s.target.platform, s.config_text(), intended)
        if missing:
            shown = "; ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
            raise VerifyError("verify", f"after the change, {len(missing)} intended line(s) are not in the running "
                                        f"configuration: {shown}")

    def _confirm(self, s: DeviceSession, outcome: DevicePush) -> None:
        commit = s.cli.commit
        if commit.method in ("trial", "delay"):
            s.configure([commit.confirm])
        elif commit.method == "revert_timer":
            try:
                s.exec_checked(commit.confirm)
                # A device that read `configure confirm` as `configure …` is now in configuration mode.
                supported = not s.in_config_mode()
            except DeviceError as exc:
                if exc.kind != "rejected":
                    raise
                supported = False
            if not supported:
                # No revert timer was ever armed (the device took the revert-timer command as a plain
                # `configure terminal`): the change is verified, and a failure is undone from the backup.
                if s.in_config_mode():
                    s.leave_config()
                outcome.safety = "apply, verify, restore the backup on failure (no revert timer on this device)"
                outcome.notes.append(f"the device does not know {commit.confirm!r}: it has no revert timer")

    # --- rolling back -------------------------------------------------------------------------

    def _rollback(self, s: DeviceSession, name: str, backup: str, budget: float, armed: bool = False) -> Rollback:
        """Bring the device back to its backup within `budget` seconds and prove it by reading it. `armed`:
        a vendor timer of this push is armed and unconfirmed (its absence then means it expired)."""
        done: list[str] = []
        gone = False
        try:
            if not s.alive:  # dead, or a read timed out: what it prints next may answer an old line
                s.close()
                s = self.session(name)
                s.set_deadline(budget)
                s.open()
                done.append("reconnected")
            s.set_deadline(budget)
            gone = self._vendor_undo(s, done) is False and armed
            current = s.config_text()
            if not same_config(s.target.platform, current, backup):
                lines = restore_commands(s.target.platform, current, backup)
                self._restore(s, lines)
                done.append(f"restored {len(lines)} line(s) from the backup")
                current = s.config_text()
            if s.cli.commit.method == "delay":  # the armed timer would roll back again later: stop it
                out = s.configure([s.cli.commit.confirm])
                gone = gone or (armed and "No configuration commit delay" in out)
            if not same_config(s.target.platform, current, backup):
                return Rollback("; ".join([*done, "ROLLBACK INCOMPLETE: the device still differs from its backup"]),
                                False, current, gone)
            return Rollback("; ".join([*done, "verified: the device equals its backup"]), True, current, gone)
        except DeviceError as exc:
            failed = "; ".join([*done, f"ROLLBACK FAILED: {exc}"])
        finally:
            s.close()
        current, why = self._look(name)
        if current is not None and same_config(self.inv.devices[name].platform.value, current, backup):
            # e.g. VRP8 discarding an uncommitted candidate with the session: as it was, and read to prove it
            return Rollback(f"{failed}; read again: the device equals its backup", True, current, gone)
        return Rollback(failed if current is not None else f"{failed}; {say('unreadable', why=why)}",
                        False, current, gone)

    def _look(self, name: str) -> tuple[str | None, str]:
        """The device's configuration over a new session, bounded by the read timeout (None, why: unreadable)."""
        s = self.session(name)
        s.set_deadline(self.options.connect_timeout + self.options.read_timeout)
        try:
            return s.open().config_text(), ""
        except DeviceError as exc:
            return None, exc.kind
        finally:
            s.close()

    def _vendor_undo(self, s: DeviceSession, done: list[str]) -> bool | None:
        """The vendor's own undo: True done, False the device has no pending timer (none was armed, or it
        expired), None the platform has none."""
        commit = s.cli.commit
        if s.in_config_mode():
            s.leave_config()  # an uncommitted VRP8 candidate is discarded here (answer: no)
        if commit.method == "trial" and commit.abort:
            try:
                s.configure([commit.abort])
                done.append(commit.abort)
                return True
            except DeviceError as exc:
                if exc.kind != "rejected":  # "Error: No trial commit is running."
                    raise
                s.leave_config()
                return False
        if commit.method == "revert_timer" and commit.abort:
            try:
                out = s.exec_checked(commit.abort)
            except DeviceError as exc:
                if exc.kind != "rejected":
                    raise
                return None  # the device does not know the command: it has no revert timer
            if s.in_config_mode():  # read as `configure …`: the device has no revert timer
                s.leave_config()
                return None
            if _REFUSAL.search(out.split("\n", 1)[-1]):  # "% No Rollback Confirmed Change pending"
                return False
            done.append(commit.abort)
            return True
        return None

    def _restore(self, s: DeviceSession, lines: list[str]) -> None:
        commit = s.cli.commit
        if commit.method == "trial":
            s.configure([*lines, commit.confirm])
        else:
            s.configure(lines)

    # --- the fleet ----------------------------------------------------------------------------

    def batches(self, names: Sequence[str]) -> list[list[str]]:
        """Canary first, then batches of --batch-size (N or P% of the rest), in inventory order."""
        names = list(names)
        first: list[str] = []
        canary = self.options.canary
        if canary:
            if canary.isdigit():
                first = names[: int(canary)]
            else:
                try:
                    chosen = set(select_targets(self.inv, canary, list(self.inv.devices)))
                except PatternError as exc:
                    raise ValueError(f"--canary: {exc}") from None
                first = [n for n in names if n in chosen]
                if not first:
                    raise ValueError(f"--canary {canary!r} selects none of the devices being pushed")
        rest = [n for n in names if n not in first]
        size = len(rest) or 1
        if self.options.batch_size:
            text = str(self.options.batch_size).strip()
            try:
                size = math.ceil(len(rest) * float(text[:-1]) / 100) if text.endswith("%") else int(text)
            except ValueError:
                raise ValueError(f"--batch-size is a number or a percentage, got {text!r}") from None
            if size < 1:
                raise ValueError("--batch-size must be at least 1 (or a percentage above 0)")
        batches = [first] if first else []
        batches += [rest[i:i + size] for i in range(0, len(rest), size)]
        return batches

    def run(self, names: Sequence[str], label: str | None = None, observers: Sequence[object] = ()) -> PushRun:
        """Push (or diff) the named devices in stages; `observers` watch the run beside the progress bar
        (`store_rows` makes the store's rows: see `jiyue.runner.StoreRecorder`)."""
        started = datetime.now(UTC)
        batches = self.batches(names)
        self._batch_of = {n: i for i, b in enumerate(batches) for n in b}
        bar = [ProgressBar()] if self.options.progress else []
        self.pool = JumpPool()
        try:
            staged = run_staged(batches, self.device, workers=self.options.workers,
                                max_fail_percent=self.options.max_fail_percent,
                                counts_as_failure=lambda r: r.failed and r.error_kind != REFUSED,
                                label=label or ("push" if self.options.apply else "push (dry run)"),
                                observers=[*bar, *observers])
        finally:
            self.pool.close()
            self.pool = None
        outcomes = [self.outcome_of(r) for r in staged.results]
        outcomes += [self.outcome_of(r) for r in staged.not_attempted_results()]
        return PushRun(outcomes, staged, self.options, started, inventory=str(self.inv.root))

    def restore(self, name: str, backup: Path) -> tuple[DevicePush, list[str]]:
        """`network.restore`: bring a device back to a backup file (a dry run unless `options.apply`): the
        lines it differs by, and what rolling back did. Refuses a golden-network device."""
        self.pool = JumpPool()  # its sessions (the look, the restore) share one connection to its jump hosts
        try:
            return self._restore_to(name, backup)
        finally:
            self.pool.close()
            self.pool = None

    def _restore_to(self, name: str, backup: Path) -> tuple[DevicePush, list[str]]:
        golden_check(self.inv, name, [])
        platform = self.inv.devices[name].platform.value
        outcome = DevicePush(name, platform, backup=str(backup), deadline=self.deadline(platform))
        text = cli(platform).config_text(backup.read_text(encoding="utf-8"))
        current, why = self._look(name)
        if current is None:
            raise DeviceError(why or "error", say("unreadable", why=why))
        outcome.differs = differing_lines(platform, current, text)
        outcome.end_state = AS_BEFORE
        if not outcome.differs:
            outcome.status, outcome.rollback = UNCHANGED, "verified: the device equals its backup"
            return outcome, []
        lines = restore_commands(platform, current, text)
        outcome.diff, outcome.lines = lines, len(lines)
        if not self.options.apply:
            outcome.status = DRY_RUN
            return outcome, lines
        session = self.session(name)
        result = self._rollback(session, name, text, outcome.deadline or 0.0)
        outcome.rollback = result.text
        outcome.status, outcome.end_state = (APPLIED, ROLLED_BACK) if result.equal else (FAILED, ROLLBACK_FAILED)
        if not result.equal and result.current is not None:
            outcome.differs = differing_lines(platform, result.current, text)
        return outcome, lines

    def outcome_of(self, result: Result) -> DevicePush:
        """A runner result as a DevicePush (a crash inside the engine still yields one, marked failed)."""
        if isinstance(result.value, dict):
            return DevicePush(**result.value)
        platform = self.inv.devices[result.target].platform.value
        if result.error_kind == NOT_ATTEMPTED:
            return DevicePush(result.target, platform, NOT_ATTEMPTED, batch=self._batch_of.get(result.target),
                              reason=result.error)
        return DevicePush(result.target, platform, FAILED, kind=result.error_kind or "error", reason=result.error)

    def store_rows(self, results: Sequence[Result]) -> list[Result]:
        """One store row per device, the not-attempted ones included: its DevicePush as the data."""
        rows = []
        for r in results:
            o = self.outcome_of(r)
            ok = o.status in (APPLIED, UNCHANGED, DRY_RUN)
            rows.append(Result(o.device, ok, o.as_dict(), None if ok else (o.kind or o.status), o.reason,
                               r.started, r.elapsed, r.changed, r.diff))
        return rows
