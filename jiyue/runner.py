"""One runner for "do this on many hosts or devices": bounded concurrency, results never raise.

Like Nornir's threaded runner: a task is a function of one target name returning a value; the
runner turns every outcome, including exceptions, into a `Result`, so one unreachable host never
stops a fleet run. Per-target timeouts belong to the task (SSH waits are bounded there), because
a thread cannot be killed from outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jiyue.ssh import SSHError

DEFAULT_WORKERS = 100  # threads mostly wait on the network; hundreds of hosts finish in a few rounds


@dataclass
class Result:
    target: str
    ok: bool
    value: Any = None
    error_kind: str | None = None  # unreachable, auth_failed, timeout, host_key, error
    error: str | None = None
    started: datetime | None = None
    elapsed: float = 0.0


def run(targets: Sequence[str], task: Callable[[str], Any], *, workers: int = DEFAULT_WORKERS,
        label: str = "running", console: Console | None = None, progress: bool = True) -> list[Result]:
    """Run `task` on every target with at most `workers` at once; results in target order."""
    return run_staged([targets], task, workers=workers, label=label, console=console, progress=progress).results


@dataclass
class Staged:
    """The outcome of a staged run: results of the targets attempted (in batch order), the targets
    never attempted because the run stopped, and the batch after which it stopped (None: it did not)."""

    results: list[Result]
    not_attempted: list[str]
    stopped_after: int | None = None
    batches: list[list[str]] = field(default_factory=list)


def run_staged(batches: Sequence[Sequence[str]], task: Callable[[str], Any], *, workers: int = DEFAULT_WORKERS,
               max_fail_percent: float | None = None, counts_as_failure: Callable[[Result], bool] | None = None,
               label: str = "running", console: Console | None = None, progress: bool = True) -> Staged:
    """Run batch after batch (Ansible's `serial`), each with at most `workers` at once.

    After a batch whose share of failed targets is *more than* `max_fail_percent` (Ansible's
    `max_fail_percentage`, judged per batch; 0 stops on any failure), the run stops and the later
    batches' targets are returned as not attempted. None never stops. `counts_as_failure` decides
    which results count (default: every result that is not ok).
    """
    batches = [list(b) for b in batches if b]
    failure = counts_as_failure or (lambda r: not r.ok)
    total = sum(len(b) for b in batches)
    results: list[Result] = []
    failed = 0

    def one(target: str) -> Result:
        started = datetime.now(UTC)
        began = time.monotonic()
        try:
            value = task(target)
            return Result(target, True, value, started=started, elapsed=time.monotonic() - began)
        except SSHError as exc:  # a task may attach what it knows about the failure as `exc.value`
            return Result(target, False, getattr(exc, "value", None), exc.kind, str(exc), started,
                          time.monotonic() - began)
        except Exception as exc:  # a bug on one host must not stop the fleet: it is reported
            return Result(target, False, None, "error", f"{type(exc).__name__}: {exc}", started,
                          time.monotonic() - began)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"), TimeElapsedColumn())
    largest = max((len(b) for b in batches), default=1)
    with Progress(*columns, console=console or Console(stderr=True), transient=False, disable=not progress) as bar, \
            ThreadPoolExecutor(max(1, min(workers, largest))) as pool:
        job = bar.add_task(label, total=total, ok=0, failed=0)
        for number, batch in enumerate(batches):
            if len(batches) > 1:
                bar.update(job, description=f"{label} (batch {number + 1}/{len(batches)})")
            done: dict[str, Result] = {}
            for future in as_completed([pool.submit(one, t) for t in batch]):
                result = future.result()
                done[result.target] = result
                failed += not result.ok
                bar.update(job, advance=1, ok=len(results) + len(done) - failed, failed=failed)
            results += [done[t] for t in batch]
            batch_failed = sum(failure(done[t]) for t in batch)
            if max_fail_percent is not None and batch_failed * 100 > max_fail_percent * len(batch) \
                    and number < len(batches) - 1:
                rest = [t for b in batches[number + 1:] for t in b]
                return Staged(results, rest, number, batches)
    return Staged(results, [], None, batches)
