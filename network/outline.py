"""A configuration as lines with their parent sections, read from the indentation.

The scoped diff's own steps (ACL entries, floors, VPN bindings) need the lines exactly as printed:
hier_config's IOS driver rewrites ACL entries on parse (it numbers unnumbered IPv4 entries by position
and drops IPv6 `sequence N`), so those steps read the text itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    parents: tuple[str, ...]  # the section lines above it, outermost first
    text: str  # stripped
    indent: int

    @property
    def path(self) -> tuple[str, ...]:
        return (*self.parents, self.text)


def outline(text: str | Sequence[str]) -> list[Line]:
    """Every non-blank line with the lines it sits under (a deeper indent opens a section)."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    out: list[Line] = []
    stack: list[tuple[int, str]] = []
    for raw in lines:
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        out.append(Line(tuple(t for _, t in stack), raw.strip(), indent))
        stack.append((indent, raw.strip()))
    return out


def blocks(lines: Iterable[Line]) -> dict[str, list[Line]]:
    """Top-level line -> the lines under it (any depth), in order."""
    out: dict[str, list[Line]] = {}
    for line in lines:
        if not line.parents:
            out.setdefault(line.text, [])
        else:
            out.setdefault(line.parents[0], []).append(line)
    return out


def text_of(lines: Iterable[Line]) -> list[str]:
    """Back to indented lines (one space per level), as jiyue's rendered configs are written."""
    return [" " * len(line.parents) + line.text for line in lines]
