"""jiyue's ACLs on a device: which number or name is jiyue's, and the entry-by-entry change to them.

Two rules (network/scope.yaml `acls`):

- **An ACL jiyue did not create is never rewritten.** On Huawei and H3C, jiyue's ACLs carry a
  `description` naming them (JY-MGMT, JY-EXT-IN…); the rendered number is kept when the device has no
  ACL of that number, or has jiyue's there (its description, or its very entries and no other user).
  A number held by another ACL (`acl number 2001` used by `nat outbound 2001`) is left alone, and jiyue
  takes the first free number of the same kind instead, its references following; on IOS and RGOS a
  name is chosen by people, so one used by something jiyue does not render is refused with the
  setting to change.
- **An entry is known by its number and removed with the vendor's command for that number** (`undo rule
  5`; IOS and RGOS `no 30`; IOS IPv6 `no sequence 30`), never by a line hier_config numbered by position.
  An entry printed without a number is known, and removed, by its body. Entries are removed first, then
  the missing ones added under their rendered numbers, so their order on the device is the rendered one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jiyue.device import DeviceError
from network.outline import Line, blocks
from network.scope import scope_data


def _data() -> dict[str, Any]:
    return scope_data()["acls"]


@dataclass(frozen=True)
class Header:
    text: str
    family: str
    id: str
    numbered: bool
    span: tuple[int, int]  # where the id is in the text

    def renamed(self, new: str) -> str:
        return self.text[:self.span[0]] + new + self.text[self.span[1]:]


def header(text: str) -> Header | None:
    """The ACL a top-level line opens, or None."""
    for rule in _data()["headers"]:
        m = re.match(rule["match"], text)
        if m:
            return Header(text, rule["family"], m.group("id"), bool(rule["numbered"]), m.span("id"))
    return None


@dataclass(frozen=True)
class Reference:
    family: str
    id: str
    span: tuple[int, int]


@cache
def _reference_rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(r["match"]), r["family"]) for r in _data()["references"])


def references(text: str) -> list[Reference]:
    """The ACLs a (non-header) line uses."""
    if header(text) is not None:
        return []
    return [Reference(family, m.group("id"), m.span("id"))
            for rule, family in _reference_rules() for m in rule.finditer(text)]


# --- entries ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    id: int | None  # None: printed without a number
    body: str
    text: str


def _forms(platform: str, family: str) -> dict[str, str]:
    return _data()["entries"][_data()["platforms"][platform][family]]


def entry(platform: str, family: str, text: str) -> Entry | None:
    forms = _forms(platform, family)
    if m := re.match(forms["numbered"], text):
        return Entry(int(m.group("id")), " ".join(m.group("body").split()), text)
    if forms.get("plain") and (m := re.match(forms["plain"], text)):
        return Entry(None, " ".join(m.group("body").split()), text)
    return None


def add_line(platform: str, family: str, e: Entry) -> str:
    return _forms(platform, family)["add"].format(id=e.id, body=e.body) if e.id is not None else e.body


def remove_line(platform: str, family: str, e: Entry) -> str:
    forms = _forms(platform, family)
    return forms["remove"].format(id=e.id) if e.id is not None else forms["remove_plain"].format(body=e.body)


# --- which ACL is jiyue's --------------------------------------------------------------------------------


@dataclass
class Identity:
    """jiyue's ACL ids on this device (rendered id -> device id, per family), with the reasons shown."""

    renamed: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _marker(children: Sequence[Line]) -> str | None:
    return next((c.text for c in children if c.text.startswith("description ") and len(c.parents) == 1), None)


def _entries(platform: str, h: Header, children: Sequence[Line]) -> list[Entry]:
    return [e for c in children if len(c.parents) == 1 and (e := entry(platform, h.family, c.text))]


def identify(platform: str, running: Sequence[Line], intended: Sequence[Line]) -> Identity:
    """Which number (Huawei, H3C) or name (IOS, RGOS) each of jiyue's ACLs has on this device."""
    ident = Identity()
    theirs = {h.family + " " + h.id: (h, kids) for text, kids in blocks(running).items() if (h := header(text))}
    intended_paths = {line.path for line in intended}
    # who uses each device ACL, apart from the lines jiyue renders itself
    users: dict[str, list[str]] = {}
    for line in running:
        if line.path in intended_paths:
            continue
        for ref in references(line.text):
            users.setdefault(ref.family + " " + ref.id, []).append(" > ".join(line.path))
    mine = [(h, kids) for text, kids in blocks(intended).items() if (h := header(text))]
    taken = set(theirs) | {f"{h.family} {h.id}" for h, _ in mine}  # never a number another of jiyue's ACLs has
    for h, kids in mine:
        key = h.family + " " + h.id
        marker = _marker(kids)
        if h.numbered:
            low = int(h.id) // 1000 * 1000
            same_kind = [(th, tk) for th, tk in theirs.values()
                         if th.family == h.family and th.numbered and int(th.id) // 1000 * 1000 == low]
            found = next((th.id for th, tk in same_kind if marker and _marker(tk) == marker), None)
            if found is None and key in theirs:
                th, tk = theirs[key]
                if not users.get(key) and [(e.id, e.body) for e in _entries(platform, th, tk)] == \
                        [(e.id, e.body) for e in _entries(platform, h, kids)]:
                    found = h.id  # jiyue's entries already, used by nothing else: adopted
            if found is None and key not in theirs:
                found = h.id
            if found is None:
                free = next((n for n in [*range(int(h.id) + 1, low + 1000), *range(low, int(h.id))]
                             if f"{h.family} {n}" not in taken), None)
                used = "; ".join(users.get(key, [])) or "not created by jiyue"
                if free is None:
                    raise DeviceError("refused", f"{h.text}: the device's ACL {h.id} is not jiyue's ({used}) and "
                                                 f"no number {low}-{low + 999} is free: free one, or set another "
                                                 "number in network/baseline.yaml (acl)")
                found = str(free)
                name = marker.removeprefix("description ").removesuffix(" jiyue") if marker else "ACL"
                ident.notes.append(f"the device's ACL {h.id} is not jiyue's ({used}): left alone; jiyue's "
                                   f"{name} is ACL {found}")
            taken.add(f"{h.family} {found}")
            if found != h.id:
                ident.renamed[(h.family, h.id)] = found
        elif key in theirs:
            th, _ = theirs[key]
            foreign = users.get(key)
            if th.text != h.text or foreign:
                why = "; ".join(foreign) if foreign else f"it is `{th.text}`"
                raise DeviceError("refused", f"{h.text}: the device already has an ACL named {h.id} that jiyue did "
                                             f"not create ({why}): jiyue never rewrites it; give jiyue's ACL another "
                                             "name in network/baseline.yaml (acl)")
    return ident


def renumber(lines: Sequence[Line], ident: Identity) -> list[Line]:
    """The intended lines with jiyue's ACLs under their device ids, every reference following."""
    if not ident.renamed:
        return list(lines)

    def fix(text: str, top: bool) -> str:
        h = header(text) if top else None
        if h is not None:
            new = ident.renamed.get((h.family, h.id))
            return h.renamed(new) if new else text
        for ref in sorted(references(text), key=lambda r: -r.span[0]):
            new = ident.renamed.get((ref.family, ref.id))
            if new:
                text = text[:ref.span[0]] + new + text[ref.span[1]:]
        return text

    return [Line(tuple(fix(p, n == 0) for n, p in enumerate(line.parents)), fix(line.text, not line.parents),
                 line.indent) for line in lines]


# --- the change ------------------------------------------------------------------------------------------


@dataclass
class AclChange:
    commands: list[str] = field(default_factory=list)  # sections entered, entries removed then added, left
    rollback: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    headers: set[str] = field(default_factory=set)  # the ACLs handled here (hier_config leaves them alone)


def reconcile(platform: str, running: Sequence[Line], intended: Sequence[Line], negation: str,
              section_exit: str) -> AclChange:
    """The change that makes each of jiyue's ACLs hold exactly its rendered entries, in their order."""
    change = AclChange()
    theirs: dict[str, tuple[str, list[Line]]] = {}  # family + id -> the device's header as printed, its lines
    for text, kids in blocks(running).items():
        if th := header(text):
            theirs[f"{th.family} {th.id}"] = (text, kids)
    for text, kids in blocks(intended).items():
        h = header(text)
        if h is None:
            continue
        printed, had = theirs.get(f"{h.family} {h.id}", (text, []))
        change.headers.update({text, printed})  # the same ACL, however the device prints its header
        want = [c for c in kids if len(c.parents) == 1]
        have = [c for c in had if len(c.parents) == 1]
        want_entries = [(c, entry(platform, h.family, c.text)) for c in want]
        have_entries = [(c, entry(platform, h.family, c.text)) for c in have]
        kept: set[int] = set()  # indexes into want_entries met on the device
        remove: list[str] = []
        undo_add: list[str] = []
        for c, e in have_entries:
            if e is None:  # a setting (description, step): kept when rendered, removed when its kind is
                if c.text in (w.text for w in want):
                    kept.update(i for i, (w, _) in enumerate(want_entries) if w.text == c.text)
                elif c.text.split(" ")[0] in {w.text.split(" ")[0] for w, we in want_entries if we is None}:
                    remove.append(negation + c.text)
                    undo_add.append(c.text)
                continue
            match = next((i for i, (w, we) in enumerate(want_entries) if we is not None and i not in kept
                          and we.body == e.body and (we.id == e.id or e.id is None or we.id is None)), None)
            if match is None:
                remove.append(remove_line(platform, h.family, e))
                undo_add.append(add_line(platform, h.family, e))
            else:
                kept.add(match)
        add = [add_line(platform, h.family, we) if we is not None else w.text
               for i, (w, we) in enumerate(want_entries) if i not in kept]
        undo_remove = [remove_line(platform, h.family, we) if we is not None else negation + w.text
                       for i, (w, we) in enumerate(want_entries) if i not in kept]
        if remove or add:
            exit_text = [section_exit] if section_exit else []
            change.commands += [text, *remove, *add, *exit_text]
            change.rollback += [text, *undo_remove, *undo_add, *exit_text]
            change.shown += [text, *("  " + line for line in [*remove, *add])]  # as hier_config indents
    return change
