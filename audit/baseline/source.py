"""A line of a collected file: what every piece of host evidence cites (`path:line: text`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    path: str
    number: int
    text: str

    def cite(self) -> str:
        return f"{self.path}:{self.number}: {self.text.strip()[:200]}"
