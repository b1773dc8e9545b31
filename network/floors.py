"""The management baseline is a floor: a device already stricter than a threshold keeps its own value.

`network/baseline.yaml` says, next to each threshold, which way is stricter (`floors`) and how each
platform prints it (`floor_lines`: regexes whose groups are named after the threshold, `__m` minutes and
`__s` seconds). Before diffing, each rendered line that carries thresholds is compared with the device's
line of the same pattern in the same section: every threshold the device holds more strictly takes the
device's value (a Comware `login-attempt 3` stays 3 where the baseline allows 5; an idle timeout of
5 minutes stays 5 where the baseline allows 10), the others the baseline's. A value meaning "off" (an idle
timeout of 0) is never the stricter one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from network.outline import Line

BASELINE_FILE = Path(__file__).resolve().with_name("baseline.yaml")
UNITS = {"": 1, "s": 1, "m": 60}


class Floor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    stricter: Literal["lower", "higher"]
    disabled_at: int | None = None  # the value that switches the control off: the weakest whatever the direction

    def stricter_than(self, a: int, b: int) -> bool:
        """Whether value `a` is strictly stricter than `b`."""
        if a == b or a == self.disabled_at:
            return False
        if b == self.disabled_at:
            return True
        return a < b if self.stricter == "lower" else a > b


@dataclass(frozen=True)
class FloorRules:
    floors: dict[str, Floor]
    lines: tuple[re.Pattern[str], ...]


@cache
def rules() -> FloorRules:
    """The floors of network/baseline.yaml (the facts about each threshold, whatever a --baseline file sets)."""
    data = yaml.safe_load(BASELINE_FILE.read_text(encoding="utf-8"))
    return FloorRules({k: Floor.model_validate(v) for k, v in (data.get("floors") or {}).items()},
                      tuple(re.compile(p) for p in data.get("floor_lines") or ()))


def _values(m: re.Match[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, text in m.groupdict().items():
        setting, _, unit = name.partition("__")
        out[setting] = out.get(setting, 0) + int(text or 0) * UNITS[unit]
    return out


def _text(value: int) -> str:
    return f"{value // 60} min {value % 60} s" if value % 60 else f"{value // 60} min"


def apply(running: Sequence[Line], intended: Sequence[Line]) -> tuple[list[Line], list[str]]:
    """The intended lines with every threshold the device holds more strictly set to the device's value."""
    r = rules()
    by_parent: dict[tuple[str, ...], list[str]] = {}
    for line in running:
        by_parent.setdefault(line.parents, []).append(line.text)
    out, notes = [], []
    for line in intended:
        text = line.text
        for pattern in r.lines:
            want = pattern.match(text)
            have = next((m for t in by_parent.get(line.parents, []) if (m := pattern.match(t))), None)
            if want is None or have is None:
                continue
            ours, theirs = _values(want), _values(have)
            keep = {s for s in ours if s in r.floors and s in theirs and r.floors[s].stricter_than(theirs[s], ours[s])}
            if not keep:
                continue
            spans = sorted(((want.span(g), have.group(g) or "0") for g in want.groupdict()
                            if g.partition("__")[0] in keep and want.group(g) is not None), reverse=True)
            for (start, end), value in spans:
                text = text[:start] + value + text[end:]
            for s in sorted(keep):
                shown = (_text(theirs[s]), _text(ours[s])) if "__" in "".join(
                    g for g in want.groupdict() if g.startswith(s)) else (theirs[s], ours[s])
                notes.append(f"kept the device's stricter {s.replace('_', ' ')}: {shown[0]} (the baseline allows "
                             f"{shown[1]}) in `{text}`")
            break
        out.append(Line(line.parents, text, line.indent))
    return out, notes
