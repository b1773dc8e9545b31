"""umask and TMOUT as a login shell ends up with: bash's answer where it ran, else the profile files read, fail safe.

The oracle is the shell. As root, the probe (probes.LoginShells) starts each relevant account's login
shell (`bash -lc`, under its own uid, without PAM: nothing is logged, no session opened) and prints
its `umask` and `$TMOUT`. Where that could not run, the profile files are read in the order a login
reads them, and only what is certain is judged: a `umask` or `TMOUT` set inside a conditional, a
loop, a function or after `&&` / `||` is bash's to evaluate, so it needs evidence rather than a guess.
`readonly TMOUT` is followed: a later `TMOUT=0` or `unset TMOUT` does not change the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from audit.baseline.source import Line

_OPEN = re.compile(r"^(if|case|for|while|until|select)\b|\{\s*$|^\w+\s*\(\s*\)")
_CLOSE = re.compile(r"^(fi|esac|done)\b|^\}")
_CONDITIONAL = re.compile(r"&&|\|\||^(if|then|else|elif|case|for|while|until|do)\b|\b(then|do)\s")
_DECLARE = r"(?:(?P<cmd>export|readonly|declare|typeset|local)(?:\s+-(?P<flags>[a-zA-Z]+))?\s+)?"
_TMOUT = re.compile(rf"^{_DECLARE}TMOUT(?:=(?P<value>\S*))?\s*$")
_UNSET = re.compile(r"^unset\s+(?:-v\s+)?TMOUT\s*$")
_UMASK = re.compile(r"^umask\s+(?P<value>\S+)\s*$")


@dataclass
class Reading:
    """What the files say, in login order: the effective value and its line, or why it cannot be told."""

    value: str | None = None
    line: Line | None = None
    uncertain: list[Line] = field(default_factory=list)  # set where only the shell can tell
    ignored: list[Line] = field(default_factory=list)  # had no effect (TMOUT was readonly)
    seen: list[tuple[str, Line]] = field(default_factory=list)  # every certain value, in order


def _segments(lines: Iterable[Line]) -> Iterable[tuple[Line, str, bool]]:
    """Each `;`-separated command of each line, and whether it runs unconditionally at the file's top level."""
    depth = 0
    for line in lines:
        text = re.sub(r"(^|\s)#.*$", "", line.text).strip()
        if not text:
            continue
        parts = [p.strip() for p in re.split(r";(?![^'\"]*['\"])", text) if p.strip()]
        conditional = depth > 0 or any(_CONDITIONAL.search(p) for p in parts)
        for part in parts:
            yield line, part, not conditional
            if _OPEN.search(part):
                depth += 1
            if _CLOSE.search(part) or re.search(r"\b(fi|done|esac)$", part):
                depth = max(0, depth - 1)


def tmout(lines: Iterable[Line]) -> Reading:
    out = Reading()
    readonly = False
    for line, part, certain in _segments(lines):
        m, unset = _TMOUT.match(part), _UNSET.match(part)
        if not (m or unset) and "TMOUT" not in part:
            continue
        if not certain or not (m or unset) or (m and m.group("cmd") in ("local",)):
            out.uncertain.append(line)
            continue
        if readonly and (unset or (m and m.group("value") is not None)):
            out.ignored.append(line)
            continue
        if unset:
            out.value, out.line = None, line
            continue
        value = m.group("value")
        if value is not None:
            value = value.strip("'\"")
            out.value, out.line = value, line
            out.seen.append((value, line))
        if m.group("cmd") == "readonly" or "r" in (m.group("flags") or ""):
            readonly = True
    return out


def umask(lines: Iterable[Line]) -> Reading:
    out = Reading()
    for line, part, certain in _segments(lines):
        if not re.search(r"\bumask\b", part):
            continue
        m = _UMASK.match(part)
        if not certain or not m or not re.fullmatch(r"0?[0-7]{3}", m.group("value")):
            out.uncertain.append(line)
            continue
        out.value, out.line = m.group("value"), line
        out.seen.append((m.group("value"), line))
    return out
