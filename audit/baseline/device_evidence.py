"""Reading a network device's running configuration for the graded-protection checks.

The configuration is parsed once with hier_config (jiyue/platforms.py's `parse`: HUAWEI_VRP, HP_COMWARE5,
CISCO_IOS; Ruijie as CISCO_IOS); what each line means on each platform is data in
`device_rules.yaml`. Everything here is pure: `DeviceEvidence` is built from the text a session read,
so the checks can be tested on any configuration and re-run on a stored one.

Secrets (passwords, hashes, keys, communities) are masked once, here, before the configuration is
parsed: every line a rule can match, every value a check reads and every line evidence cites is
already masked, so no check (and no check added later) can put a credential into a verdict, a
report or the store. What is a secret is data too: `secret_shapes` (a stored secret's own shape, on
every platform) and each platform's `secrets` (the commands that carry one, by position).
Evidence cites `device: section › line`, so an assessor sees the line that decided a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from jiyue.platforms import parse

RULES_FILE = Path(__file__).resolve().with_name("device_rules.yaml")
MASK = "******"


class RulesError(ValueError):
    """device_rules.yaml is malformed; the message names the platform and key."""


@cache
def _data() -> dict[str, Any]:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8")) or {}


@cache
def rules(platform: str) -> dict[str, Any]:
    data = _data()
    if platform not in data or platform == "secret_shapes":
        raise RulesError(f"{RULES_FILE.name} has no platform {platform!r}")
    return data[platform]


@cache
def _secret_patterns(platform: str) -> tuple[re.Pattern, ...]:
    """Shapes first: a command pattern's `\\S+` would cut a cipher that contains a space in two."""
    specs = [*(_data().get("secret_shapes") or ()), *rules(platform).get("secrets", ())]
    try:
        return tuple(re.compile(s) for s in specs)
    except re.error as e:
        raise RulesError(f"{RULES_FILE.name}: {platform}: bad secret pattern: {e}") from e


def _masked(m: re.Match) -> str:
    """The match with each of its groups (its whole self when it has none) replaced by MASK."""
    spans = [m.span(g) for g in range(1, m.re.groups + 1) if m.group(g) is not None] or [m.span()]
    text, start = m.group(0), m.start()
    for a, b in sorted(spans, reverse=True):
        text = text[:a - start] + MASK + text[b - start:]
    return text


def mask(platform: str, text: str) -> str:
    """`text` (a line or a whole configuration) with every secret the platform's rules know replaced by MASK."""
    lines = text.split("\n")
    for rx in _secret_patterns(platform):
        lines = [rx.sub(_masked, line) for line in lines]
    return "\n".join(lines)


@dataclass(frozen=True)
class Pattern:
    """One rule: a line regex, optionally under a path of section regexes."""

    line: re.Pattern
    within: tuple[re.Pattern, ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)


def _compile(spec: str | dict[str, Any], fmt: dict[str, str] | None = None) -> Pattern:
    def sub(text: str) -> str:
        for key, value in (fmt or {}).items():
            text = text.replace("{" + key + "}", re.escape(value))
        return text

    if isinstance(spec, str):
        return Pattern(re.compile(sub(spec)))
    within = spec.get("in") or ()
    within = (within,) if isinstance(within, str) else tuple(within)
    extra = tuple((k, v) for k, v in spec.items() if k not in ("in", "line"))
    return Pattern(re.compile(sub(spec["line"])), tuple(re.compile(sub(w)) for w in within), extra)


@dataclass(frozen=True)
class Found:
    """A configuration line a rule matched: where it is and what the rule read from it."""

    path: tuple[str, ...]  # the section lines above it, outermost first
    text: str
    match: re.Match
    pattern: Pattern

    def group(self, name: str) -> str | None:
        return self.match.groupdict().get(name)


@dataclass(frozen=True)
class Node:
    text: str
    children: tuple[Node, ...]


def _tree(hconfig: Any) -> tuple[Node, ...]:
    return tuple(Node(c.text, _tree(c)) for c in hconfig.children)


class DeviceEvidence:
    """One device's running configuration, with the readings every device check shares."""

    def __init__(self, name: str, platform: str, config: str, context: dict[str, Any] | None = None) -> None:
        self.name = name
        self.platform = platform
        self.rules = rules(platform)
        self.context = context or {}
        config = mask(platform, config)  # before anything reads it: see the module's docstring
        self.nodes = _tree(parse(platform, config))
        # what the device printed, comments included: hier_config drops lines it treats as noise
        # (IOS `version`, VRP's `!Software Version` comment) that find_text still sees
        self.text_lines = [x.strip() for x in config.replace("\r", "").splitlines() if x.strip()]

    @property
    def label(self) -> str:
        return str(self.rules.get("label", self.platform))

    def patterns(self, key: str, **fmt: str) -> list[Pattern]:
        specs = self.rules.get(key)
        if specs is None:
            raise RulesError(f"{RULES_FILE.name}: {self.platform}: missing {key!r}")
        specs = [specs] if isinstance(specs, str | dict) else specs
        return [_compile(s, fmt) for s in specs]

    def walk(self) -> Iterator[tuple[tuple[str, ...], Node]]:
        def visit(nodes: tuple[Node, ...], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Node]]:
            for node in nodes:
                yield path, node
                yield from visit(node.children, (*path, node.text))
        yield from visit(self.nodes, ())

    def find(self, key: str, **fmt: str) -> list[Found]:
        """Every line any of the rule's patterns matches, in configuration order (first pattern wins per line)."""
        pats = self.patterns(key, **fmt)
        out = []
        for path, node in self.walk():
            for p in pats:
                if len(path) != len(p.within) or not all(w.search(s) for w, s in zip(p.within, path, strict=True)):
                    continue
                m = p.line.search(node.text)
                if m:
                    out.append(Found(path, node.text, m, p))
                    break
        return out

    def find_text(self, key: str) -> list[Found]:
        """Lines of the configuration as printed, indentation removed (including what hier_config leaves out)."""
        pats = self.patterns(key)
        return [Found((), line, m, p) for line in self.text_lines for p in pats if (m := p.line.search(line))]

    def missing(self, key: str) -> list[str]:
        """The rule's patterns that match no line, as readable text (for "all of these are required" rules)."""
        out = []
        for p in self.patterns(key):
            if not any(len(path) == len(p.within) and p.line.search(node.text) for path, node in self.walk()):
                out.append(self.readable(p))
        return out

    @staticmethod
    def readable(p: Pattern) -> str:
        """A pattern as people read it in evidence: anchors and escapes gone."""
        return re.sub(r"\\(.)", r"\1", p.line.pattern.strip("^$"))

    def sections(self, key: str) -> list[Node]:
        """Top-level sections whose first line matches the rule's regex (e.g. every vty section)."""
        rx = re.compile(self.rules[key])
        return [n for n in self.nodes if rx.search(n.text)]

    def under(self, section: Node, regex: str) -> list[Found]:
        rx = re.compile(regex)
        return [Found((section.text,), c.text, m, Pattern(rx)) for c in section.children if (m := rx.search(c.text))]

    # --- evidence text ---------------------------------------------------------------------------

    @staticmethod
    def where(found: Found | Node | str) -> str:
        """A line with its section path (`line vty 0 4 › access-class 10 in`), the device left out."""
        if isinstance(found, Found):
            return " › ".join((*found.path, found.text))
        return found.text if isinstance(found, Node) else found

    def cite(self, found: Found | Node | str) -> str:
        return f"{self.name}: {self.where(found)}"

    def absent(self, what: str) -> str:
        return f"{self.name}: no {what} in the running configuration"
