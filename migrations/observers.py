"""The progress rows of a migration run: its observer for people (the journal and the store's run record,
`jiyue.runner.StoreRecorder`, are the others).

A run tells each observer what happens through the kernel runner's observer methods (`run_started`,
`target_started`, `target_finished`, `run_finished`; each optional), plus two of the migration's own:
`step_started(target, step)` and `note(target, text)` (a refusal, a rollback, a wait for its turn). Each
observer implements what it needs; the engine never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from jiyue.runner import Result


class ProgressRows:
    """One progress row per system (they run at once) with its current step, then its result and downtime."""

    def __init__(self, console: Console, *, apply: bool, parallel: int, enabled: bool = True) -> None:
        self.console, self.apply, self.parallel, self.enabled = console, apply, parallel, enabled
        self._bar: Progress | None = None
        self._total: Any = None
        self._rows: dict[str, Any] = {}

    def run_started(self, label: str, targets: Sequence[str]) -> None:
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn())
        self._bar = Progress(*columns, console=self.console, disable=not self.enabled, transient=False)
        self._bar.start()
        self._rows = {}
        total = len(targets)
        self._total = self._bar.add_task(f"{'migrating' if self.apply else 'rehearsing'} {total} system(s), "
                                         f"{min(total, self.parallel)} at once", total=total)

    def _row(self, target: str, line: str) -> Any:
        assert self._bar is not None
        row = self._rows.get(target)
        if row is None:
            row = self._rows[target] = self._bar.add_task(line)
        return row

    def step_started(self, target: str, step: str) -> None:
        self.note(target, step)

    def note(self, target: str, text: str) -> None:
        """The system's row shows `text`; a text in colour (a refusal, a rollback) is also printed, to stay."""
        if self._bar is None:
            return
        line = f"{target}: {text}"
        self._bar.update(self._row(target, line), description=line)
        if text.startswith("["):
            self._bar.console.print(line)

    def target_finished(self, result: Result) -> None:
        if self._bar is None:
            return
        end = (result.value or {}).get("result", "failed")
        downtime = (result.value or {}).get("downtime_s")
        line = f"{result.target}: [{'green' if result.ok else 'red'}]{end}[/]" + (
            f" (downtime {downtime:.1f} s)" if downtime is not None else "")
        self._bar.update(self._row(result.target, line), description=line, total=1, completed=1)
        self._bar.update(self._total, advance=1)

    def run_finished(self, results: Sequence[Result]) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

