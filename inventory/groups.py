"""Groups and Ansible-style `--limit` patterns, defined once for every task and every export.

The groups here are exactly the groups of the Ansible, pyinfra and Nornir exports, so a pattern
selects the same hosts in `invoke … --limit` as in `ansible … --limit`.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable

from inventory.model import Inventory


class PatternError(ValueError):
    """A --limit pattern that is malformed or matches nothing (bad input: exit code 2)."""


class ClassifiedRefused(PatternError):
    """Hosts of classified (涉密) systems asked for without the explicit override (bad input: exit code 2)."""


def group_name(*parts: object) -> str:
    """Ansible accepts only [A-Za-z0-9_] in group names."""
    return re.sub(r"[^a-z0-9_]", "_", "_".join(str(p) for p in parts).lower())


def host_groups(inv: Inventory) -> dict[str, list[str]]:
    """Group name -> sorted member host names (servers only; devices are in `device_groups`)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for host in inv.hosts.values():
        groups[group_name("os", host.os_family)].add(host.name)
        groups[group_name("role", host.role)].add(host.name)
        subnet = inv.subnet_of(host.address)
        if subnet is not None:
            groups[group_name("subnet", subnet.name)].add(host.name)
        system = inv.owner(host.name)
        if system is None:
            continue
        groups["sources"].add(host.name)
        groups[group_name("dept", system.department)].add(host.name)
        groups[group_name("system", system.id)].add(host.name)
        groups[group_name("zone", system.zone)].add(host.name)
        if system.protection.level is not None:  # 分保 systems have no 等保 level
            groups[group_name("level", system.protection.level)].add(host.name)
        groups[str(system.classification)].add(host.name)
        if system.golden_network:
            groups["golden_network"].add(host.name)
        if system.website:
            groups["websites"].add(host.name)
    if inv.cloud is not None:
        groups["cloud_pool"].update(p.host for p in inv.cloud.pool if p.host in inv.hosts)
        if inv.cloud.gateway in inv.hosts:
            groups["gateway"].add(inv.cloud.gateway)
    return {name: sorted(members) for name, members in sorted(groups.items())}


def all_groups(inv: Inventory) -> dict[str, list[str]]:
    """Host and device groups together (a few names, like `golden_network`, hold both)."""
    merged: dict[str, list[str]] = dict(host_groups(inv))
    for group, members in device_groups(inv).items():
        merged[group] = sorted({*merged.get(group, []), *members})
    return merged


def device_groups(inv: Inventory) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for device in inv.devices.values():
        groups["devices"].add(device.name)
        groups[group_name("platform", device.platform)].add(device.name)
        groups[group_name("role", device.role)].add(device.name)
        if device.department:
            groups[group_name("dept", device.department)].add(device.name)
        if device.golden_network:
            groups["golden_network"].add(device.name)
    return {name: sorted(members) for name, members in sorted(groups.items())}


def pattern_terms(pattern: str) -> list[str]:
    """A pattern's terms, operators kept (`dept_fgw`, `&zone_extranet`, `!os_redhat`).

    Ansible separates terms by commas or colons; inventory names contain neither."""
    return [p.strip() for p in re.split(r"[,:]", pattern) if p.strip()]


def select(names: list[str], groups: dict[str, list[str]], pattern: str | None, strict: bool = True) -> list[str]:
    """Apply an Ansible host pattern: unions first, then `&` intersections, then `!` exclusions.

    Terms match group names or member names, exactly, by shell wildcard (`web*`), or by regular
    expression (`~fgw-(oa|db)`). `all` and `*` match everything. A term matching nothing is an error,
    where Ansible would only warn, because a mistyped limit must not silently act on nothing
    (`strict=False` allows it, for selecting one kind of target out of a pattern naming both).
    """
    if not pattern:
        return sorted(names)
    universe = set(names)
    terms = pattern_terms(pattern)
    ordered = [t for t in terms if t[0] not in "&!"] + [t for t in terms if t[0] == "&"] + \
        [t for t in terms if t[0] == "!"]
    selected: set[str] | None = None
    for term in ordered:
        op, body = (term[0], term[1:]) if term[0] in "&!" else ("", term)
        matched = _match(body, universe, groups)
        if not matched and strict:
            raise PatternError(f"--limit: '{body}' matches no host, device or group")
        if op == "":
            selected = (selected or set()) | matched
        elif op == "&":
            selected = (universe if selected is None else selected) & matched
        else:
            selected = (universe if selected is None else selected) - matched
    return sorted(selected or set())


def select_targets(inv: Inventory, pattern: str | None, names: list[str]) -> list[str]:
    """The members of `names` (the hosts, or the devices, a task handles) that a --limit selects.

    This is every task's `--limit`: each term must match something among hosts and devices together
    (a typo is an error), while `--limit core-sw1` is not one for the server side of a task that
    handles both."""
    groups = all_groups(inv)
    select([*inv.hosts, *inv.devices], groups, pattern)
    return select(names, groups, pattern, strict=False)


def refuse_classified(inv: Inventory, hosts: Iterable[str], asked_by: str = "") -> None:
    """Raise ClassifiedRefused naming every classified host among `hosts`: the guard each service that
    connects puts before its first session, unless its caller gave the explicit override."""
    classified = sorted(h for h in hosts if inv.is_classified(h))
    if not classified:
        return
    named = ", ".join(f"{h} ({s.id} {s.name})" for h in classified if (s := inv.owner(h)) is not None)
    raise ClassifiedRefused(
        f"{asked_by}classified (涉密) host{'s' * (len(classified) > 1)} {named}: a classified system is under "
        "分级保护 and handled by the confidential bureau, so jiyue does not connect to it. Leave it out "
        "(e.g. --limit '…:!classified'), or, only where the confidential bureau has asked for it, give "
        "--include-classified")


def select_hosts(inv: Inventory, pattern: str | None, include_classified: bool = False) -> tuple[list[str], list[str]]:
    """The hosts a --limit selects for a task that connects to them, and the classified hosts it left out.

    Without `include_classified`, a term that selects only classified hosts (a classified host's name, its
    system's group, `classified`) is refused: the operator named them, and skipping them silently would
    hide that nothing was done. A broader term (a department, `all`, no --limit) leaves them out, and the
    caller says which."""
    hosts = select_targets(inv, pattern, list(inv.hosts))
    if include_classified:
        return hosts, []
    classified = {h for h in hosts if inv.is_classified(h)}
    groups, universe = all_groups(inv), set(inv.hosts)
    named: set[str] = set()
    for term in pattern_terms(pattern or ""):
        if term[0] == "!":
            continue
        matched = _match(term.lstrip("&"), universe, groups)
        if matched and all(inv.is_classified(h) for h in matched):
            named |= matched & classified
    if named:
        refuse_classified(inv, named, "--limit names ")
    return [h for h in hosts if h not in classified], sorted(classified)


def _match(body: str, universe: set[str], groups: dict[str, list[str]]) -> set[str]:
    if body in ("all", "*"):
        return set(universe)
    if re.search(r"\[[0-9:-]+\]$", body):
        raise PatternError(f"--limit: subscripts like '{body}' are not supported; name the hosts instead")
    if body.startswith("~"):
        try:
            regex = re.compile(body[1:])
        except re.error as exc:
            raise PatternError(f"--limit: bad regular expression '{body[1:]}': {exc}") from exc
        test = regex.search
    elif any(c in body for c in "*?["):
        def test(name: str) -> bool:
            return fnmatch.fnmatchcase(name, body)
    else:
        def test(name: str) -> bool:
            return name == body
    matched = {n for n in universe if test(n)}
    for group, members in groups.items():
        if test(group):
            matched.update(m for m in members if m in universe)
    return matched
