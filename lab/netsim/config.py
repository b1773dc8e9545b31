"""A device's configuration as a tree of lines, changed one CLI line at a time under a grammar.

Loading a configuration file replays its lines through the same code a CLI session uses, the way a
device boots from its startup configuration, so a stored config can never hold a line the grammar
refuses. Printing follows the vendor's layout: `#` or `!` separators, one space of indent per level,
Comware's indented global commands, IOS's `exit-address-family`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lab.netsim.grammar import Grammar, Rule, View


class Node:
    __slots__ = ("children", "rank", "text", "view")

    def __init__(self, text: str = "", rank: int = 0, view: str | None = None) -> None:
        self.text = text
        self.rank = rank  # index of the grammar rule that made it: the device's print order
        self.view = view  # the view a section opens; None for a plain line
        self.children: list[Node] = []

    def find(self, text: str) -> Node | None:
        return next((c for c in self.children if c.text == text), None)

    def add(self, child: Node) -> Node:
        self.children.append(child)
        self.children.sort(key=lambda c: c.rank)  # stable: same-rule lines keep their order
        return child

    def copy(self) -> Node:
        twin = Node(self.text, self.rank, self.view)
        twin.children = [c.copy() for c in self.children]
        return twin

    def lines(self, depth: int = 0) -> list[tuple[int, str]]:
        out = []
        for c in self.children:
            out.append((depth, c.text))
            out += c.lines(depth + 1)
        return out


@dataclass
class Outcome:
    path: list[str]  # the view path after the line
    ok: bool = True
    changed: bool = False
    message: str = ""  # printed on success, or the error text's detail
    error: str = ""  # "unrecognized" | "incomplete" | "wrong_parameter" | "custom"
    caret: int = 0


@dataclass
class Config:
    grammar: Grammar
    root: Node = field(default_factory=Node)

    def __post_init__(self) -> None:
        self.root.view = self.grammar.root

    def copy(self) -> Config:
        return Config(self.grammar, self.root.copy())

    def resolve(self, path: list[str]) -> list[Node] | None:
        """The nodes along a view path, or None if the path no longer exists (rolled back meanwhile)."""
        nodes = [self.root]
        for text in path:
            child = nodes[-1].find(text) or self._first_piece(nodes[-1], text)
            if child is None or child.view is None:
                return None
            nodes.append(child)
        return nodes

    def _pieces(self, parent: Node, text: str) -> list[str]:
        """The sections a typed range section stands for (`line vty 0 15`: `line vty 0 4`, `line vty 5 15`)."""
        found = self.grammar.view(parent.view).match(text)
        return found[0].pieces(found[1]) if found and found[0].is_section and found[0].split else [text]

    def _first_piece(self, parent: Node, text: str) -> Node | None:
        pieces = self._pieces(parent, text)
        return parent.find(pieces[0]) if len(pieces) > 1 else None

    def rule_of(self, parent: Node, child: Node) -> Rule:
        return self.grammar.view(parent.view).rules[child.rank]

    # --- changing ------------------------------------------------------------------------------

    def apply(self, path: list[str], line: str) -> Outcome:
        """Apply one normalised config line in the view at `path` (falling back to the views above when
        the platform does that); return where the session is afterwards."""
        nodes = self.resolve(path)
        if nodes is None:
            nodes, path = [self.root], []
        if len(path) == 1 and len(pieces := self._pieces(self.root, path[0])) > 1:
            return self._apply_pieces(path, pieces, line)
        depths = range(len(nodes) - 1, -1, -1) if self.grammar.parent_fallback else [len(nodes) - 1]
        for depth in depths:
            outcome = self._apply_in(nodes[depth], path[:depth], line)
            if outcome is not None:
                return outcome
        view = self.grammar.view(nodes[-1].view)
        caret, kind = self.grammar.caret(view, line)
        return Outcome(path, ok=False, error=kind, caret=caret)

    def _apply_pieces(self, path: list[str], pieces: list[str], line: str) -> Outcome:
        """A line typed under a range section the device splits goes into each of the pieces, as the
        device applies it to every line of the range; a line that leaves the section is applied once."""
        outcomes = []
        for piece in pieces:
            outcome = self.apply([piece], line)
            if not outcome.ok or outcome.path != [piece]:
                return outcome
            outcomes.append(outcome)
        return Outcome(path, changed=any(o.changed for o in outcomes), message=outcomes[0].message)

    def _apply_in(self, node: Node, path: list[str], line: str) -> Outcome | None:
        view = self.grammar.view(node.view)
        numbering = view.numbering
        if numbering is not None:
            numbered = numbering.numbered
            taken = {int(m.group(1)): m.group(2) for c in node.children if (m := numbered.fullmatch(c.text))}
            if auto := numbering.before.match(line):
                body = line[auto.end():]
                if body in taken.values():
                    return Outcome(path)  # the same entry is there already, under its number
                line = f"{numbering.form}{numbering.next_number(taken)} {body}"
            elif (m := numbered.fullmatch(line)) and view.match(line) and int(m.group(1)) in taken:
                if taken[int(m.group(1))] == m.group(2):
                    return Outcome(path)
                if numbering.taken == "refuse":
                    return Outcome(path, ok=False, error="custom", message=numbering.taken_error)
                node.children = [c for c in node.children if not (
                    (e := numbered.fullmatch(c.text)) and int(e.group(1)) == int(m.group(1)))]
        found = view.match(line)
        negation = self.grammar.negation + " "
        if found:
            rule, match = found
            if rule.is_section:
                changed = False
                for text in rule.pieces(match) if rule.split else [line]:
                    if node.find(text) is None:
                        node.add(Node(text, rule.rank, rule.view))
                        changed = True
                return Outcome([*path, line], changed=changed, message=rule.message)
            return self._set(node, path, rule, match, line)
        if line.startswith(negation):
            return self._negate(node, view, path, line[len(negation):])
        return None

    def _set(self, node: Node, path: list[str], rule: Rule, match: re.Match[str], line: str) -> Outcome:
        values = {k: re.escape(v) for k, v in match.groupdict().items() if v is not None}
        for req in rule.requires:
            scope = self.root if req.scope == "root" else node
            wanted = re.compile(req.line.format(**values))
            if not any(wanted.fullmatch(c.text) for c in scope.children):
                return Outcome(path, ok=False, error="custom",
                               message=req.error.format(**match.groupdict()))
        before = len(node.children)
        negation = self.grammar.negation + " "
        opposite = line[len(negation):] if line.startswith(negation) else negation + line
        replaced = rule.replaced(match)
        doomed = [c for c in node.children if c.text != line and (
            c.text == opposite
            or (replaced is not None and replaced.match(c.text))
            or any(p.match(c.text) for p in rule.clears))]
        for c in doomed:
            node.children.remove(c)
        if node.find(line) is None:
            node.add(Node(line, rule.rank))
            self._renumbered(node)
        cleared = any(p.match(c.text) for c in doomed for p in rule.clears)
        message = rule.message if (cleared or not rule.clears) else ""
        return Outcome(path, changed=bool(doomed) or len(node.children) != before, message=message)

    def _renumbered(self, node: Node) -> None:
        """Numbered entries are kept in number order (the order the device evaluates and prints them)."""
        numbering = self.grammar.view(node.view).numbering
        if numbering is not None:
            numbered = numbering.numbered
            node.children.sort(key=lambda c: (c.rank, int(m.group(1)) if (m := numbered.fullmatch(c.text)) else 0))

    def _negate(self, node: Node, view: View, path: list[str], text: str) -> Outcome | None:
        numbering = view.numbering
        body = None
        if numbering is not None and (auto := numbering.before.match(text)):
            body = text[auto.end():]  # `no permit 10.1.1.5`, `undo rule permit source ...`: named by its body

        def removable(c: Node) -> bool:
            if c.text == text:
                return True
            if body is not None and (m := numbering.numbered.fullmatch(c.text)) and m.group(2) == body:
                return True
            if not c.text.startswith(text + " "):
                return False
            # `undo ip` must not wipe every `ip ...` line: name at least the rule's fixed words
            return len(text.split(" ")) >= len(self.rule_of(node, c).literal_words())

        doomed = [c for c in node.children if removable(c)]
        if not doomed and not view.matches_negation(text):
            return None
        for c in doomed:
            node.children.remove(c)
        return Outcome(path, changed=bool(doomed))

    # --- loading -------------------------------------------------------------------------------

    def load(self, text: str) -> list[str]:
        """Replay a configuration file into this (empty) config; return the lines it refused."""
        refused = []
        stack: list[tuple[int, list[str]]] = [(-1, [])]
        closers = {r.closer for v in self.grammar.views.values() for r in v.rules if r.closer}
        # the header and footer the device prints are not configuration (Comware's ` version 7.1...`)
        framing = {f.strip() for f in (self.grammar.header + "\n" + self.grammar.footer).splitlines() if f.strip()}
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            indent = len(raw) - len(raw.lstrip())
            if line in ("#", "!"):
                if indent == 0 and line == "#":
                    stack = [(-1, [])]
                continue
            if line.startswith("!") or line in framing or line in closers:
                continue
            if re.match(r"(Building configuration|Current configuration :)", line):
                continue
            while indent <= stack[-1][0]:
                stack.pop()
            outcome = self.apply(stack[-1][1], self.grammar.normalise(line))
            if not outcome.ok:
                refused.append(line)
            elif len(outcome.path) > len(stack[-1][1]):
                stack.append((indent, outcome.path))
        return refused

    # --- printing ------------------------------------------------------------------------------

    def render(self) -> str:
        g = self.grammar
        sep = g.separator
        cisco = g.style in ("cisco", "ruijie")
        body: list[str] = []

        def section(parent: Node, node: Node, depth: int, extra: int) -> None:
            rule = self.rule_of(parent, node)
            pad = " " * (depth + extra)
            body.append(pad + node.text)
            for child in node.children:
                if child.view is not None:
                    if cisco:
                        body.append(" " * (depth + 1) + "!")
                    section(node, child, depth + 1, extra)
                else:
                    body.append(" " * (depth + 1 + extra) + child.text)
            if rule.closer:
                body.append(pad + rule.closer)

        pending_leaves = False
        for child in self.root.children:
            rule = self.rule_of(self.root, child)
            if child.view is None:
                body.append(" " * g.global_indent + child.text)
                pending_leaves = True
                continue
            if pending_leaves:
                body.append(sep)
                pending_leaves = False
            section(self.root, child, 0, rule.indent)
            body.append(sep)
        if pending_leaves:
            body.append(sep)
        header = g.header.rstrip("\n").split("\n") if g.header else []
        footer = g.footer.rstrip("\n").split("\n") if g.footer else []
        text = "\n".join([*header, *([sep] if not body or body[0] != sep else []), *body, *footer]) + "\n"
        return text.replace("{bytes}", str(len(text)))
