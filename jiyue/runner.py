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
from dataclasses import dataclass
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
    results: dict[str, Result] = {}
    failed = 0

    def one(target: str) -> Result:
        started = datetime.now(UTC)
        began = time.monotonic()
        try:
            value = task(target)
            return Result(target, True, value, started=started, elapsed=time.monotonic() - began)
        except SSHError as exc:
            return Result(target, False, None, exc.kind, str(exc), started, time.monotonic() - began)
        except Exception as exc:  # a bug on one host must not stop the fleet: it is reported
            return Result(target, False, None, "error", f"{type(exc).__name__}: {exc}", started,
                          time.monotonic() - began)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"), TimeElapsedColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=False, disable=not progress) as bar, \
            ThreadPoolExecutor(max(1, min(workers, len(targets) or 1))) as pool:
        job = bar.add_task(label, total=len(targets), ok=0, failed=0)
        futures = [pool.submit(one, t) for t in targets]
        for future in as_completed(futures):
            result = future.result()
            results[result.target] = result
            failed += not result.ok
            bar.update(job, advance=1, ok=len(results) - failed, failed=failed)
    return [results[t] for t in targets]
