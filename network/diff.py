"""What a push would change on a device: hier_config remediation, restricted to what jiyue manages.

The running configuration comes from the device (jiyue.device); the intended lines from the
renderer (network/render.py). hier_config parses both (jiyue.platforms.parse: HUAWEI_VRP for both
Huawei platforms, HP_COMWARE5, CISCO_IOS; Ruijie parses as CISCO_IOS, see jiyue/platforms.yaml) and
computes the remediation and its rollback.

Scope: a device carries much that jiyue did not render (other VPNs, port settings, users). Before
diffing, the running configuration is cut down to the lines jiyue *manages*: a running line stays
only when a line with the same key (network/scope.yaml `scope_keys`) is rendered at the same place
(under the same parent sections). So an old primary address on a department VLANIF or an old default
route in the extranet VPN is replaced, while an unrelated line (a secondary or link-local address, a
second IPv6 address) is never negated. Restoring a backup, by contrast, is unscoped
(`restore_commands`): the device must become its backup again.

Before that, the intended lines are resolved against the device (`resolve`): jiyue's ACLs take the
numbers that are jiyue's on this device (network/acl.py: an ACL jiyue did not create is never
rewritten), and every threshold the device already holds more strictly keeps the device's value
(network/floors.py: the baseline is a floor). jiyue's ACLs are then changed entry by entry with the
vendor's own commands (network/acl.py), not by hier_config. A push that binds an interface to the VPN
sends again every rendered line the binding removes, and the preview names each line the binding
removes that jiyue does not render (`vpn_binding` in network/scope.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from hier_config import HConfig
from hier_config.child import HConfigChild

from jiyue.platforms import cli, parse
from network import acl, floors, vty
from network.outline import Line, outline, text_of
from network.scope import scope_data


@cache
def scope_key_rules() -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p) for p in scope_data().get("scope_keys", ()))


@cache
def owned_section_rules() -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p) for p in scope_data().get("owned_sections", ()))


@cache
def routed_port_rules() -> tuple[tuple[re.Pattern, ...], tuple[re.Pattern, ...]]:
    """(the lines that make a port routed, the keys that hold under such a port): network/scope.yaml routed_ports."""
    data = scope_data().get("routed_ports") or {}
    return tuple(map(re.compile, data.get("modes", ()))), tuple(map(re.compile, data.get("keys", ())))


@cache
def owned_line_rules() -> tuple[re.Pattern, ...]:
    """Top-level lines that are jiyue's by their tag (its return routes): always in scope."""
    data = scope_data().get("return_routes") or {}
    tag = re.escape(str(data.get("tag", "")))
    return tuple(re.compile(p.replace("{tag}", tag)) for p in data.get("lines", ())) if tag else ()


def scope_key(text: str, extra: Sequence[re.Pattern] = ()) -> str:
    for rule in (*extra, *scope_key_rules()):
        m = rule.search(text)
        if m:
            return m.group(1)
    return text


def owned(text: str) -> bool:
    return any(rule.search(text) for rule in owned_section_rules())


def routed_port(section: HConfigChild) -> bool:
    """An interface jiyue renders as a routed port (a carrier-facing egress port)."""
    modes, _ = routed_port_rules()
    return any(m.search(c.text) for c in section.children for m in modes)


def scoped(running: HConfig | HConfigChild, intended: HConfig | HConfigChild,
           extra: Sequence[re.Pattern] = ()) -> None:
    """Remove, in place, every running line whose key is not rendered at the same place; under a
    section jiyue owns whole (network/scope.yaml `owned_sections`), everything stays in scope; at the top,
    jiyue's tagged return routes stay in scope whether rendered or not (`return_routes`); under a routed
    port jiyue renders, its `routed_ports` keys hold too (`extra`)."""
    wanted: dict[str, list[HConfigChild]] = {}
    for child in intended.children:
        wanted.setdefault(scope_key(child.text, extra), []).append(child)
    top = isinstance(running, HConfig)
    for child in list(running.children):
        match = wanted.get(scope_key(child.text, extra))
        if not match:
            if not (top and not child.children and any(r.search(child.text) for r in owned_line_rules())):
                child.delete()
            continue
        same = next((m for m in match if m.text == child.text), match[0])
        if child.children and not (child.text == same.text and owned(child.text)):
            scoped(child, same, routed_port_rules()[1] if routed_port(same) else ())


def commands(config: HConfig, platform: str | None = None) -> list[str]:
    """A remediation as the lines to type: each section entered, its lines, then its exit (quit/exit);
    with the platform's negation rewrites (jiyue/platforms.yaml `negate_rewrite`)."""
    out: list[str] = []

    def emit(node: HConfigChild) -> None:
        out.append(node.text)
        if node.children:
            for child in sorted(node.children):
                emit(child)
            exit_text = node.sectional_exit
            if exit_text == "exit" and platform is not None and cli(platform).section_exit:
                exit_text = cli(platform).section_exit
            if exit_text:
                out.append(exit_text)

    # Top-level negations last: a section (a VPN instance, an ACL) is removed only after what
    # refers to it has been changed; the additions keep hier_config's order (containers first).
    negation = config.driver.negation_prefix
    for child in sorted(config.children, key=lambda c: (c.text.startswith(negation), c.order_weight)):
        emit(child)
    if platform is not None:
        out = [cli(platform).rewrite(line) for line in out]
    return out


def indented(config: HConfig) -> list[str]:
    """A configuration as indented lines (one space per level), for people and reports."""
    return list(config.dump_simple())


@dataclass
class DeviceDiff:
    """One device's remediation (what a push sends) and its rollback (what undoes it)."""

    device: str
    platform: str
    remediation: list[str] = field(default_factory=list)  # lines to send, sections entered and left
    rollback: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # the notes as comments, then the remediation indented, for people
    notes: list[str] = field(default_factory=list)  # what the operator must know: lost lines, kept values, ACL ids

    @property
    def empty(self) -> bool:
        return not self.remediation


def _node(config: HConfig | HConfigChild, path: Sequence[str]) -> HConfig | HConfigChild | None:
    node: HConfig | HConfigChild | None = config
    for text in path:
        node = node.get_child(equals=text) if node is not None else None
    return node


def split_negations(target: HConfig) -> list[tuple[list[str], str]]:
    """Take the intended negations (`undo telnet server enable`, `no ip http server`) out of `target`.

    A rendered negation says what must *not* be configured, and a device does not print the absence
    of a default-off command: such a line is met when the device shows it, or does not show its
    positive form. Returned as (parent path, line)."""
    negation = target.driver.negation_prefix
    printed = [re.compile(p) for p in scope_data().get("printed_negations", ())]
    found = []
    for child in list(target.all_children()):
        if child.text.startswith(negation) and not child.children and not any(p.search(child.text) for p in printed):
            found.append((list(child.path())[:-1], child.text))
            child.delete()
    return found


def negation_met(running: HConfig, path: Sequence[str], line: str) -> bool:
    node = _node(running, path)
    if node is None:
        return True
    positive = line.removeprefix(running.driver.negation_prefix)
    return node.get_child(equals=line) is not None or node.get_child(equals=positive) is None


@dataclass(frozen=True)
class Resolved:
    running: list[Line]
    intended: list[Line]  # as resolved against this device: its ACL ids, its stricter thresholds
    notes: list[str]


def resolve(platform: str, running_text: str, intended: str | Sequence[str]) -> Resolved:
    """The intended lines as they apply to this device; DeviceError (refused) when they cannot."""
    running = outline(running_text)
    ranged, spread = vty.apply(running, outline(intended))  # first: the ACLs' users are under the device's ranges
    ident = acl.identify(platform, running, ranged)
    lines, kept = floors.apply(running, acl.renumber(ranged, ident))
    return Resolved(running, lines, [*ident.notes, *spread, *kept])


def _without(lines: Sequence[Line], headers: set[str]) -> list[str]:
    return text_of(line for line in lines if (line.parents[0] if line.parents else line.text) not in headers)


@cache
def _binding() -> tuple[tuple[re.Pattern, ...], tuple[re.Pattern, ...]]:
    data = scope_data()["vpn_binding"]
    return tuple(map(re.compile, data["binds"])), tuple(map(re.compile, data["clears"]))


def rebind(full: HConfig, target: HConfig, remediation: HConfig) -> list[str]:
    """Where the change binds an interface to a VPN (which removes its addresses), send every rendered
    line the binding removes again after it, drop negations of what it removes anyway, and return the
    removed lines jiyue does not render: the operator must see them before --apply."""
    binds, clears = _binding()
    modes, _ = routed_port_rules()
    negation = target.driver.negation_prefix
    lost = []
    for iface in target.children:
        now = full.get_child(equals=iface.text)
        mode = next((c for c in iface.children if any(m.search(c.text) for m in modes)), None)
        change = remediation.get_child(equals=iface.text)
        if mode is not None and now is not None and change is not None and now.get_child(equals=mode.text) is None:
            lost += _reset(iface, now, change, mode.text)
            continue
        bind = next((c for c in iface.children if any(b.search(c.text) for b in binds)), None)
        if bind is None or now is None or now.get_child(equals=bind.text) is not None:
            continue
        change = remediation.get_child(equals=iface.text)
        if change is None:
            continue
        sent = {c.text for c in change.children}
        order = [c.text for c in change.children if c.text.startswith(negation)
                 and not any(p.search(c.text.removeprefix(negation)) for p in clears)]
        order += [c.text for c in iface.children if c.text in sent or any(p.search(c.text) for p in clears)]
        for c in list(change.children):
            c.delete()
        for text in order:
            change.add_child(text)
        rendered = {c.text for c in iface.children}
        slots = {scope_key(t): t for t in rendered}
        for c in now.children:
            if not any(p.search(c.text) for p in clears) or c.text in rendered:
                continue
            slot = slots.get(scope_key(c.text))
            lost.append(f"{iface.text}: `{bind.text}` removes `{c.text}`; jiyue sets `{slot}` instead" if slot else
                        f"{iface.text}: `{bind.text}` removes `{c.text}`, which jiyue does not manage: "
                        "it is not put back")
    return lost


def _reset(iface: HConfigChild, now: HConfigChild, change: HConfigChild, mode: str) -> list[str]:
    """A port turned routed is reset by the device: send every rendered line of it, the mode first, and name what
    the reset drops that jiyue does not render."""
    for c in list(change.children):
        c.delete()
    for c in iface.children:
        change.add_child(c.text)
    rendered = {c.text for c in iface.children}
    return [f"{iface.text}: `{mode}` resets the port: `{c.text}` goes, and jiyue does not put it back"
            for c in now.children if c.text not in rendered]


def diff(device: str, platform: str, running_text: str, intended: str | Sequence[str]) -> DeviceDiff:
    """The scoped remediation from the running configuration to the intended lines."""
    r = resolve(platform, running_text, intended)
    negation_prefix = cli(platform).negation
    acls = acl.reconcile(platform, r.running, r.intended, negation_prefix, cli(platform).section_exit or "exit")
    running = parse(platform, _without(r.running, acls.headers))
    full = running.deep_copy()
    target = parse(platform, _without(r.intended, acls.headers))
    negations = split_negations(target)
    scoped(running, target)
    remediation = running.config_to_get_to(target)
    rollback = target.config_to_get_to(running).set_order_weight()
    lost = rebind(full, target, remediation)
    remediation.set_order_weight()
    for path, line in negations:
        if not negation_met(full, path, line):
            node: HConfig | HConfigChild = remediation
            for text in path:
                node = node.get_child(equals=text) or node.add_child(text)
            node.add_child(line)
            undo: HConfig | HConfigChild = rollback
            for text in path:
                undo = undo.get_child(equals=text) or undo.add_child(text)
            undo.add_child(line.removeprefix(running.driver.negation_prefix))
    sent = [*acls.commands, *commands(remediation, platform)]
    notes = [*lost, *r.notes] if sent else []
    comment = "#" if negation_prefix.strip() == "undo" else "!"
    return DeviceDiff(device, platform, sent, [*acls.rollback, *commands(rollback, platform)],
                      [*(f"{comment} {n}" for n in notes), *acls.shown, *indented(remediation)], notes)


def restore_commands(platform: str, current_text: str, backup_text: str) -> list[str]:
    """Unscoped: the lines that make a device whose configuration is `current_text` equal its backup."""
    current = parse(platform, current_text)
    backup = parse(platform, backup_text)
    return commands(current.config_to_get_to(backup).set_order_weight(), platform)


def same_config(platform: str, a: str, b: str) -> bool:
    """Two configurations are the same when neither needs a line to become the other."""
    ha, hb = parse(platform, a), parse(platform, b)
    return not ha.config_to_get_to(hb).children and not hb.config_to_get_to(ha).children


def missing_lines(platform: str, running_text: str, intended: str | Sequence[str]) -> list[str]:
    """Intended lines (as resolved against the device) the running configuration lacks: what
    verification after a push looks for; an intended negation is missing while the device still
    shows its positive form."""
    running = parse(platform, running_text)
    target = parse(platform, text_of(resolve(platform, running_text, intended).intended))
    missing = [" > ".join([*path, line]) for path, line in split_negations(target)
               if not negation_met(running, path, line)]
    for child in target.all_children():
        path = list(child.path())
        if _node(running, path) is None:
            missing.append(" > ".join(path))
    return missing


def golden_refusals(device_name: str, golden_interfaces: Iterable[str], lines: Iterable[str]) -> list[str]:
    """Lines that would touch a golden-network interface (names compared without spaces, any case)."""
    names = {re.sub(r"\s+", "", n).lower() for n in golden_interfaces}
    hits = []
    for line in lines:
        m = re.match(r"^\s*(?:undo |no )?interface\s+(.+?)\s*$", line)
        if m and re.sub(r"\s+", "", m.group(1)).lower() in names:
            hits.append(line.strip())
    return hits
