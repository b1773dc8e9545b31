"""A platform's configuration grammar, kept as data (`grammar/<platform>.yaml`) so an engineer can extend it.

Each view lists its rules in the order the device prints them. A rule is a regular expression that must
match the whole (normalised) line: a `section` opens a child view, a `command` is a line of the view.
Lines that match no rule are rejected with the vendor's error text, as a real device rejects them.
See grammar/README.md for the keys a rule may carry.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GRAMMAR_DIR = Path(__file__).with_name("grammar")
PLATFORMS = ("huawei_vrp", "huawei_vrpv8", "hp_comware", "cisco_ios", "ruijie_os")


class GrammarError(Exception):
    """A grammar file is malformed; the message names the file and the rule."""


@dataclass(frozen=True)
class Requirement:
    scope: str  # "root": a line at the top level; "here": a line in the same view
    line: str  # a regex template, formatted with the rule's named groups
    error: str


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    rank: int
    view: str | None = None  # set for sections
    prompt: str = ""  # the section's prompt fragment, formatted with the named groups
    replaces: str | None = None  # regex of the view's lines this one replaces; \1.. are the rule's groups
    negate: re.Pattern[str] | None = None  # short negation forms (`undo ip address`)
    requires: tuple[Requirement, ...] = ()
    clears: tuple[re.Pattern[str], ...] = ()  # lines of the view removed when this one is set
    message: str = ""  # what the device prints on success (a warning, an info)
    closer: str = ""  # a section's closing line, printed and accepted to leave (exit-address-family)
    indent: int = 0  # extra indentation when printed at the top level (Comware's ` ip vpn-instance`)
    # a section over a range of lines (groups `a`, `b`) the device keeps and prints as these ranges
    # (IOS: `line vty 0 15` is shown as `line vty 0 4` and `line vty 5 15`)
    split: tuple[tuple[int, int], ...] = ()

    def pieces(self, match: re.Match[str]) -> list[str]:
        """The section lines the device shows for a typed range line: itself unless it spans `split`."""
        a, b = int(match.group("a")), int(match.group("b"))
        spans = [(max(a, lo), min(b, hi)) for lo, hi in self.split if lo <= b and a <= hi]
        if len(spans) < 2:
            return [match.string]
        head, tail = match.string[:match.start("a")], match.string[match.end("b"):]
        return [f"{head}{lo} {hi}{tail}" for lo, hi in spans]

    @property
    def is_section(self) -> bool:
        return self.view is not None

    def replaced(self, match: re.Match[str]) -> re.Pattern[str] | None:
        """The regex of the lines this one replaces, its `\\N` filled with the line's own groups."""
        if self.replaces is None:
            return None
        return _expand(self.replaces, match)

    def literal_words(self) -> list[str]:
        """The leading words that contain no regex syntax: where the caret of an error goes."""
        words = []
        for word in self.pattern.pattern.split(" "):
            if re.fullmatch(r"[A-Za-z0-9_.:/-]+", word):
                words.append(word)
            else:
                break
        return words


@dataclass(frozen=True)
class Numbering:
    """How a view numbers its entries (ACL rules, sequence numbers), as the vendor does.

    Huawei and Comware number a rule typed without one (`rule permit ...` becomes `rule 5 permit ...`);
    IOS and RGOS give an ACL entry typed without a sequence the next multiple of 10 (`permit ...` becomes
    `10 permit ...`, in IOS's IPv6 ACLs `sequence 10 permit ...`). Entries are kept in number order, an
    entry can be removed by its number or by its body, and a number already taken is either edited
    (Huawei, Comware) or refused (IOS, RGOS: `% Duplicate sequence number`)."""

    before: re.Pattern[str]  # the unnumbered typed form, matched up to where the number goes
    form: str  # the printed text before the number: `rule `, `sequence `, or nothing
    step: int = 5
    taken: str = "replace"  # a typed number already in use: "replace" the entry, or "refuse" it
    taken_error: str = ""
    after_last: bool = False  # the next number is the last + step (IOS), not the next multiple of step (VRP)

    def next_number(self, taken: Iterable[int]) -> int:
        last = max(taken, default=0)
        return last + self.step if self.after_last else (last // self.step + 1) * self.step

    @property
    def numbered(self) -> re.Pattern[str]:
        """An entry as printed: group 1 its number, group 2 its body."""
        return _compile_cached(re.escape(self.form) + r"(\d+) (.*)")


@dataclass
class View:
    name: str
    rules: list[Rule] = field(default_factory=list)
    numbering: Numbering | None = None

    def match(self, line: str) -> tuple[Rule, re.Match[str]] | None:
        for rule in self.rules:
            m = rule.pattern.fullmatch(line)
            if m:
                return rule, m
        return None

    def matches_negation(self, text: str) -> bool:
        """Whether `text` (the line after undo/no) names something this view knows."""
        return any(rule.pattern.fullmatch(text) or (rule.negate and rule.negate.fullmatch(text)) for rule in self.rules)


@dataclass
class Grammar:
    platform: str
    style: str  # huawei | comware | cisco | ruijie: prompts, messages, exec commands (device.py)
    negation: str  # "undo" or "no"
    root: str
    views: dict[str, View]
    normalize: list[tuple[re.Pattern[str], str]]
    ipv6_upper: bool
    parent_fallback: bool  # a line unknown in a sub-view is tried in the views above (IOS, VRP do this)
    header: str  # printed before the configuration
    footer: str  # printed after it
    separator: str  # "#" or "!"
    global_indent: int  # Comware prints top-level commands (not sections) one space in

    def view(self, name: str) -> View:
        return self.views[name]

    def normalise(self, line: str) -> str:
        line = " ".join(line.split())
        for pattern, repl in self.normalize:
            line = pattern.sub(repl, line)
        if self.ipv6_upper and ":" in line and not re.match(r"(description|remark|alias) ", line):
            line = " ".join(_canonical_ipv6(word) for word in line.split(" "))
        return line

    def caret(self, view: View, line: str) -> tuple[int, str]:
        """Where the device puts its '^' and which error kind: the first word no rule expects."""
        words = line.split(" ")
        best = 0
        kind = "unrecognized"
        for rule in view.rules:
            literal = rule.literal_words()
            n = 0
            while n < len(words) and n < len(literal) and words[n] == literal[n]:
                n += 1
            if n > best or (n == best and n == len(literal) and n > 0):
                best = n
                if n == len(words) and n < len(literal):
                    kind = "incomplete"
                elif n == len(literal):
                    kind = "wrong_parameter"
                else:
                    kind = "unrecognized" if n == 0 else "wrong_parameter"
        if best >= len(words):
            return len(line), kind
        return sum(len(w) + 1 for w in words[:best]), kind


@functools.lru_cache(maxsize=4096)
def _compile_cached(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _expand(template: str, match: re.Match[str]) -> re.Pattern[str]:
    return _compile_cached(re.sub(r"\\(\d)", lambda m: re.escape(match.group(int(m.group(1))) or ""), template))


def _canonical_ipv6(word: str) -> str:
    """Devices print IPv6 addresses compressed and in upper case, whatever was typed."""
    if ":" not in word or not re.fullmatch(r"[0-9A-Fa-f:./]+", word):
        return word
    try:
        if "/" in word:
            iface = ipaddress.IPv6Interface(word)
            return f"{str(iface.ip).upper()}/{iface.network.prefixlen}"
        return str(ipaddress.IPv6Address(word)).upper()
    except ValueError:
        return word


def _compile(source: Path, where: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise GrammarError(f"{source.name}: {where}: bad regex {pattern!r}: {exc}") from None


def _rule(source: Path, view: str, index: int, raw: object) -> Rule:
    where = f"views.{view}.rules[{index}]"
    if isinstance(raw, str):
        return Rule(pattern=_compile(source, where, raw), rank=index)
    if not isinstance(raw, dict) or ("section" in raw) == ("command" in raw):
        raise GrammarError(f"{source.name}: {where}: a rule is a regex string or a mapping with "
                           "exactly one of 'section' or 'command'")
    known = {"section", "command", "view", "prompt", "replaces", "negate", "requires", "clears", "message",
             "closer", "indent", "split"}
    unknown = set(raw) - known
    if unknown:
        raise GrammarError(f"{source.name}: {where}: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    is_section = "section" in raw
    if is_section and "view" not in raw:
        raise GrammarError(f"{source.name}: {where}: a section needs 'view'")
    if raw.get("replaces"):
        _compile(source, where, re.sub(r"\\(\d)", "x", raw["replaces"]))
    requires = tuple(
        Requirement(scope=r.get("scope", "root"), line=r["line"], error=r["error"]) for r in raw.get("requires", [])
    )
    return Rule(
        pattern=_compile(source, where, raw["section"] if is_section else raw["command"]),
        rank=index,
        view=raw.get("view") if is_section else None,
        prompt=raw.get("prompt", ""),
        replaces=raw.get("replaces"),
        negate=_compile(source, where, raw["negate"]) if raw.get("negate") else None,
        requires=requires,
        clears=tuple(_compile(source, where, c) for c in raw.get("clears", [])),
        message=raw.get("message", ""),
        closer=raw.get("closer", ""),
        indent=int(raw.get("indent", 0)),
        split=tuple((int(lo), int(hi)) for lo, hi in raw.get("split", [])),
    )


@functools.cache
def load(platform: str) -> Grammar:
    """The grammar of a platform, checked: every section's view exists."""
    if platform not in PLATFORMS:
        raise GrammarError(f"unknown platform {platform!r} (known: {', '.join(PLATFORMS)})")
    source = GRAMMAR_DIR / f"{platform}.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    views: dict[str, View] = {}
    for name, body in data["views"].items():
        rules = [_rule(source, name, i, raw) for i, raw in enumerate(body.get("rules", []))]
        auto = body.get("autonumber") or {}
        unknown = set(auto) - {"before", "step", "form", "taken", "taken_error", "after_last"}
        if unknown or (auto and ("form" not in auto or auto.get("taken", "replace") not in ("replace", "refuse"))):
            raise GrammarError(f"{source.name}: views.{name}.autonumber: keys before, form (required), step, "
                               f"taken (replace|refuse), taken_error; got {sorted(auto)}")
        numbering = Numbering(_compile(source, f"views.{name}.autonumber", auto["before"]), auto["form"],
                              int(auto.get("step", 5)), auto.get("taken", "replace"),
                              auto.get("taken_error", ""), bool(auto.get("after_last", False))) if auto else None
        views[name] = View(name, rules, numbering)
    for view in views.values():
        for rule in view.rules:
            if rule.view is not None and rule.view not in views:
                raise GrammarError(f"{source.name}: views.{view.name}: section {rule.pattern.pattern!r} opens "
                                   f"unknown view {rule.view!r}")
    normalize = [(_compile(source, "normalize", n["match"]), n["replace"]) for n in data.get("normalize", [])]
    return Grammar(
        platform=platform,
        style=data["style"],
        negation=data["negation"],
        root=data.get("root", "system"),
        views=views,
        normalize=normalize,
        ipv6_upper=bool(data.get("ipv6_upper", True)),
        parent_fallback=bool(data.get("parent_fallback", True)),
        header=data.get("header", ""),
        footer=data.get("footer", ""),
        separator=data["separator"],
        global_indent=int(data.get("global_indent", 0)),
    )
