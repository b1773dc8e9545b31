"""One runner for "do this on many hosts or devices": bounded concurrency, results never raise.

Like Nornir's threaded runner: a task is a function of one target name returning a value; the
runner turns every outcome, including exceptions, into a `Result`, so one unreachable host never
stops a fleet run. Per-target timeouts belong to the task (SSH waits are bounded there), because
a thread cannot be killed from outside.

What happens during a run is told to observers (Nornir's processors): the progress bar, the store
recorder and a migration's journal watch the same run instead of each domain recording after it.
An observer implements any of `run_started`, `target_started`, `target_finished`, `run_finished`
(and `batch_started` for staged runs, `run_aborted` for a run interrupted by an exception such as
Ctrl-C, after which `run_finished` is not called); a missing method is skipped. The runner calls them one at a
time, under one lock, so an observer needs no locking of its own.

A task that knows why it failed raises `TargetError(kind, message)` (transports subclass it:
`jiyue.ssh.SSHError`, `jiyue.device.DeviceError`); the result carries that kind. Any other exception
is a bug on one target, reported with the kind "error".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from jiyue.store import Store

DEFAULT_WORKERS = 100  # threads mostly wait on the network; hundreds of hosts finish in a few rounds
NOT_ATTEMPTED = "not_attempted"  # the error kind of a target a staged run stopped before


class TargetError(Exception):
    """A failure on one target with its kind (unreachable, auth_failed, timeout, host_key, …).

    `value` is what the task knew when it failed (e.g. a push's record of the device), kept in the
    result beside the kind and message."""

    def __init__(self, kind: str, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value


@dataclass
class Result:
    """One target's outcome. `changed` says the task changed the target (in a dry run: would change
    it, as Ansible's check mode says), `diff` what it changed, for people."""

    target: str
    ok: bool
    value: Any = None
    error_kind: str | None = None  # unreachable, auth_failed, timeout, host_key, error, not_attempted, …
    error: str | None = None
    started: datetime | None = None
    elapsed: float = 0.0
    changed: bool = False
    diff: str = ""

    @property
    def failed(self) -> bool:
        return not self.ok


@dataclass(frozen=True)
class Changed:
    """What a task returns when it can say whether it changed the target: the result's value,
    `changed` and `diff` come from here (a plain return value means unchanged)."""

    value: Any
    changed: bool
    diff: str = ""


class Observer(Protocol):
    """What an observer of a run may implement; every method is optional (see the module doc)."""

    def run_started(self, label: str, targets: Sequence[str]) -> None: ...

    def batch_started(self, number: int, batches: int) -> None: ...

    def target_started(self, target: str) -> None: ...

    def target_finished(self, result: Result) -> None: ...

    def run_finished(self, results: Sequence[Result]) -> None: ...

    def run_aborted(self, error: BaseException) -> None: ...


class _Observers:
    """Calls each observer's method if it has one, one call at a time."""

    def __init__(self, observers: Sequence[object]) -> None:
        self.observers = list(observers)
        self.lock = threading.Lock()

    def __call__(self, method: str, *args: Any) -> None:
        with self.lock:
            for observer in self.observers:
                call = getattr(observer, method, None)
                if call is not None:
                    call(*args)


class ProgressBar:
    """The rich progress bar on stderr: targets done, ok and failed, time elapsed."""

    COLUMNS = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
               TimeElapsedColumn())

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.job: TaskID | None = None
        self.label = ""
        self.ok = self.failed = 0

    def run_started(self, label: str, targets: Sequence[str]) -> None:
        self.label, self.ok, self.failed = label, 0, 0
        self.progress = Progress(*self.COLUMNS, console=self.console, transient=False)
        self.progress.start()
        self.job = self.progress.add_task(label, total=len(targets), ok=0, failed=0)

    def batch_started(self, number: int, batches: int) -> None:
        if self.progress is not None and self.job is not None and batches > 1:
            self.progress.update(self.job, description=f"{self.label} (batch {number + 1}/{batches})")

    def target_finished(self, result: Result) -> None:
        self.ok += result.ok
        self.failed += result.failed
        if self.progress is not None and self.job is not None:
            self.progress.update(self.job, advance=1, ok=self.ok, failed=self.failed)

    def run_finished(self, results: Sequence[Result]) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def run_aborted(self, error: BaseException) -> None:
        self.run_finished([])


class StoreRecorder:
    """Records a run in the store under `kind` when it finishes; `run_id` is then its id.

    `rows` turns the run's results into the rows stored (default: the results as they are), for a
    domain whose stored record of a target is richer than the runner's result."""

    def __init__(self, store: Store, kind: str, *, inventory: str = "", params: dict | None = None,
                 seeded: bool = False, rows: Callable[[Sequence[Result]], Sequence[Result]] | None = None) -> None:
        self.store, self.kind, self.inventory, self.params, self.seeded = store, kind, inventory, params, seeded
        self.rows = rows
        self.started: datetime | None = None
        self.run_id: int | None = None

    def run_started(self, label: str, targets: Sequence[str]) -> None:
        self.started = datetime.now(UTC)

    def run_finished(self, results: Sequence[Result]) -> None:
        rows = self.rows(results) if self.rows else results
        self.run_id = self.store.record(self.kind, rows, inventory=self.inventory, params=self.params,
                                        started=self.started, seeded=self.seeded)


def _default_observers(observers: Sequence[object] | None, progress: bool, console: Console | None) -> list[object]:
    if observers is not None:
        return list(observers)
    return [ProgressBar(console)] if progress else []


def run(targets: Sequence[str], task: Callable[[str], Any], *, workers: int = DEFAULT_WORKERS,
        label: str = "running", console: Console | None = None, progress: bool = True,
        observers: Sequence[object] | None = None) -> list[Result]:
    """Run `task` on every target with at most `workers` at once; results in target order.

    `observers` watch the run (default: the progress bar, or none with `progress=False`)."""
    return run_staged([targets], task, workers=workers, label=label, console=console, progress=progress,
                      observers=observers).results


@dataclass
class Staged:
    """The outcome of a staged run: results of the targets attempted (in batch order), the targets
    never attempted because the run stopped, and the batch after which it stopped (None: it did not)."""

    results: list[Result]
    not_attempted: list[str]
    stopped_after: int | None = None
    batches: list[list[str]] = field(default_factory=list)

    def not_attempted_results(self) -> list[Result]:
        """A failed result (kind `not_attempted`) for each target the run stopped before."""
        reason = f"the rollout stopped after batch {(self.stopped_after or 0) + 1}: failures passed the threshold"
        return [Result(t, False, None, NOT_ATTEMPTED, reason) for t in self.not_attempted]


def _attempt(target: str, task: Callable[[str], Any], notify: _Observers) -> Result:
    notify("target_started", target)
    started = datetime.now(UTC)
    began = time.monotonic()
    try:
        value = task(target)
        if isinstance(value, Changed):
            return Result(target, True, value.value, started=started, elapsed=time.monotonic() - began,
                          changed=value.changed, diff=value.diff)
        return Result(target, True, value, started=started, elapsed=time.monotonic() - began)
    except TargetError as exc:
        return Result(target, False, exc.value, exc.kind, str(exc), started, time.monotonic() - began)
    except Exception as exc:  # a bug on one host must not stop the fleet: it is reported
        return Result(target, False, None, "error", f"{type(exc).__name__}: {exc}", started,
                      time.monotonic() - began)


def run_staged(batches: Sequence[Sequence[str]], task: Callable[[str], Any], *, workers: int = DEFAULT_WORKERS,
               max_fail_percent: float | None = None, counts_as_failure: Callable[[Result], bool] | None = None,
               label: str = "running", console: Console | None = None, progress: bool = True,
               observers: Sequence[object] | None = None) -> Staged:
    """Run batch after batch (Ansible's `serial`), each with at most `workers` at once.

    After a batch whose share of failed targets is *more than* `max_fail_percent` (Ansible's
    `max_fail_percentage`, judged per batch; 0 stops on any failure), the run stops and the later
    batches' targets are returned as not attempted. None never stops. `counts_as_failure` decides
    which results count (default: every failed result). Observers' `run_finished` gets one result per
    target, the not-attempted ones included (kind `not_attempted`).
    """
    batches = [list(b) for b in batches if b]
    failure = counts_as_failure or (lambda r: r.failed)
    notify = _Observers(_default_observers(observers, progress, console))
    results: list[Result] = []
    staged = Staged(results, [], None, batches)
    notify("run_started", label, [t for b in batches for t in b])
    largest = max((len(b) for b in batches), default=1)
    try:
        with ThreadPoolExecutor(max(1, min(workers, largest))) as pool:
            for number, batch in enumerate(batches):
                notify("batch_started", number, len(batches))
                done: dict[str, Result] = {}
                for future in as_completed([pool.submit(_attempt, t, task, notify) for t in batch]):
                    result = future.result()
                    done[result.target] = result
                    notify("target_finished", result)
                results += [done[t] for t in batch]
                batch_failed = sum(failure(done[t]) for t in batch)
                if max_fail_percent is not None and batch_failed * 100 > max_fail_percent * len(batch) \
                        and number < len(batches) - 1:
                    staged.not_attempted = [t for b in batches[number + 1:] for t in b]
                    staged.stopped_after = number
                    break
    except BaseException as exc:  # Ctrl-C: the progress bar gives the terminal back, nothing is recorded
        notify("run_aborted", exc)
        raise
    notify("run_finished", [*results, *staged.not_attempted_results()])
    return staged
