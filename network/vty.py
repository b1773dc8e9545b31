"""The vty ranges a push manages are the ones the device shows.

IOS prints `line vty 0 15` as `line vty 0 4` and `line vty 5 15`, and VRP shows `user-interface vty 16 20`
by default on many releases: a rendered range compared as typed would never match the device's display,
and a range the device shows but jiyue does not render would keep its old ACL and telnet. So the
rendered vty section is applied to every vty range the device shows (the same lines under each); a
device that shows none gets the rendered range, and rendered lines no shown range covers get a range of
their own (`line vty 5 15`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from network.outline import Line

VTY = re.compile(r"^(line vty|user-interface vty) \d+ \d+$")


def _kind(text: str) -> str | None:
    m = VTY.match(text)
    return m.group(1) if m else None


def _span(text: str) -> tuple[int, int]:
    a, b = text.split()[-2:]
    return int(a), int(b)


def _uncovered(kind: str, rendered: str, ranges: Sequence[str]) -> list[str]:
    """The rendered lines no shown range covers (IOS shows 0 4 until 5 15 is configured), as ranges."""
    covered = {n for r in ranges for n in range(_span(r)[0], _span(r)[1] + 1)}
    lo, hi = _span(rendered)
    out, start = [], None
    for n in range(lo, hi + 2):
        if n <= hi and n not in covered:
            start = n if start is None else start
        elif start is not None:
            out.append(f"{kind} {start} {n - 1}")
            start = None
    return out


def apply(running: Sequence[Line], intended: Sequence[Line]) -> tuple[list[Line], list[str]]:
    """The intended lines with each rendered vty section repeated under every vty range the device shows."""
    shown: dict[str, list[str]] = {}
    for line in running:
        if not line.parents and (kind := _kind(line.text)):
            shown.setdefault(kind, []).append(line.text)
    out: list[Line] = []
    notes: list[str] = []
    i = 0
    while i < len(intended):
        head = intended[i]
        kind = _kind(head.text) if not head.parents else None
        if kind is None or not shown.get(kind):
            out.append(head)
            i += 1
            continue
        body = []
        i += 1
        while i < len(intended) and intended[i].parents and intended[i].parents[0] == head.text:
            body.append(intended[i])
            i += 1
        ranges = [*shown[kind], *_uncovered(kind, head.text, shown[kind])]
        lo, hi = _span(head.text)
        beyond = [r for r in ranges if _span(r)[0] < lo or _span(r)[1] > hi]
        if beyond:  # IOS's own 0 4 / 5 15 display of 0 15 is no news; a range jiyue does not render is
            notes.append(f"`{head.text}`: the device also shows {', '.join(beyond)}; jiyue manages it the same way "
                         "(vty 的访问控制同样下发到设备显示的全部 vty 范围)")
        for text in ranges:
            out.append(Line((), text, 0))
            out += [Line((text, *b.parents[1:]), b.text, b.indent) for b in body]
    return out, notes
