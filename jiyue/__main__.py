"""`jiyue` / `python -m jiyue`: the same tasks as `invoke` (tasks.py), with usage errors exiting 2.

Plain `invoke` exits 1 on a mistyped flag, which a script cannot tell from "the run found
problems"; this program keeps the README's exit-code convention for usage errors too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from invoke import Collection, ParseError, Program

REPO = Path(__file__).resolve().parent.parent


def _namespace() -> Collection:
    sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("tasks", REPO / "tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ns


class JiyueProgram(Program):
    def _usage_error(self, exc: ParseError) -> None:
        print(f"error: {exc}\nSee '{self.binary} --list' and '{self.binary} --help TASK'.", file=sys.stderr)
        sys.exit(2)

    def parse_core(self, argv: list[str] | None) -> None:
        try:
            super().parse_core(argv)
        except ParseError as exc:
            self._usage_error(exc)

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            self._usage_error(exc)

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()
        except ParseError as exc:
            self._usage_error(exc)


def main() -> None:
    JiyueProgram(name="jiyue", binary="jiyue", namespace=_namespace(), version="0.1.0").run()


if __name__ == "__main__":
    main()
