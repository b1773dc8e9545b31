"""Hosts, departments and systems proposed from an inventory the city's Ansible already reads.

Whatever Ansible reads (INI, YAML, a directory of them with group_vars, an executable script, a plugin
config) is read by Ansible itself: `ansible-inventory -i PATH --list`, so variables, children and patterns
mean what they mean to the ops staff's playbooks. Each host gives its address (`ansible_host`, else its
name when that is an address) and SSH settings (`ansible_user`, `ansible_port`,
`ansible_ssh_private_key_file`); `ansible_os_family`/`ansible_distribution` when set. Group names become
departments and systems through a small mapping file of patterns (`MAPPING` below is the default, the
group names jiyue's own export writes). Everything an Ansible inventory cannot know (the archive fields)
is left to the survey: such records are written as drafts.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inventory.importer import Proposal, Written

DEFAULT_MAPPING: dict[str, Any] = {
    "groups": [
        {"match": r"dept_(?P<department>[a-z0-9_-]+)"},  # Ansible writes a group's - as _: read back as -
        {"match": r"system_(?P<system>[a-z0-9_-]+)"},
    ],
}
SSH_VARS = {"ansible_user": ("ssh", "user"), "ansible_ssh_user": ("ssh", "user"), "ansible_port": ("ssh", "port"),
            "ansible_ssh_port": ("ssh", "port"), "ansible_ssh_private_key_file": ("ssh", "key"),
            "ansible_private_key_file": ("ssh", "key")}
OS_FAMILIES = {"debian": "debian", "redhat": "redhat"}
IDENT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class AnsibleImportError(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    match: re.Pattern[str]
    department: str | None
    system: str | None


def load_mapping(path: Path | None) -> tuple[list[Rule], dict[str, Any], dict[str, Any]]:
    """(group rules, department names/levels, host defaults) of a mapping file::

        groups:                                   # group name (full match) -> department and/or system
          - match: 'dept_(?P<department>[a-z0-9-]+)'
          - match: 'ndrc_(?P<x>[a-z]+)'
            department: fgw
            system: 'fgw-{x}'
        departments:                              # what a department needs beyond its code
          fgw: {name: 市发展和改革委员会, level: city}
        hosts: {role: app}                        # fields every proposed host gets unless Ansible says
    """
    data = DEFAULT_MAPPING
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleImportError(f"{path}: cannot read the mapping: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"groups", "departments", "hosts"}:
        raise AnsibleImportError(f"{path}: a mapping has `groups`, `departments` and `hosts` only")
    rules = []
    for i, item in enumerate(data.get("groups") or []):
        if not isinstance(item, dict) or "match" not in item or set(item) - {"match", "department", "system"}:
            raise AnsibleImportError(f"{path}: groups[{i}]: give `match` (a pattern) and `department`/`system`")
        try:
            pattern = re.compile(str(item["match"]))
        except re.error as exc:
            raise AnsibleImportError(f"{path}: groups[{i}].match: not a regular expression: {exc}") from None
        rules.append(Rule(pattern, item.get("department"), item.get("system")))
    return rules, dict(data.get("departments") or {}), dict(data.get("hosts") or {})


def ansible_list(source: Path) -> dict[str, Any]:
    """`ansible-inventory --list` of any inventory source Ansible reads."""
    exe = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "ansible-inventory"
    cmd = [str(exe) if exe.exists() else "ansible-inventory", "-i", str(source), "--list"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except OSError as exc:
        raise AnsibleImportError(f"cannot run ansible-inventory: {exc}") from None
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    if done.returncode != 0 or any("Unable to parse" in w or "No inventory was parsed" in w for w in warnings):
        raise AnsibleImportError(f"ansible-inventory could not read {source}: "
                                 f"{' '.join(warnings or done.stderr.splitlines()[-3:])}")
    return json.loads(done.stdout)


def _groups_of(listing: Mapping[str, Any]) -> dict[str, list[str]]:
    """host -> every group it belongs to, directly or through children, in the listing's order."""
    out: dict[str, list[str]] = {}

    def walk(group: str, trail: tuple[str, ...]) -> None:
        body = listing.get(group) or {}
        for host in body.get("hosts") or []:
            out.setdefault(host, [])
            out[host] += [g for g in trail if g not in out[host]]
        for child in body.get("children") or []:
            if child not in trail:
                walk(child, (*trail, child))

    walk("all", ())
    return out


def _ident(name: str) -> str:
    return re.sub(r"[._]+", "-", name.strip().lower())


def _resolved(root: Path, value: Any, path: tuple[str, ...]) -> Any:
    """A key path as the inventory means it (relative paths are the inventory directory's)."""
    if path == ("ssh", "key") and value is not None:
        return str((root / Path(str(value)).expanduser()).resolve())
    return value


def _effective(written: Written, host: str, path: tuple[str, ...]) -> Any:
    """The host's SSH setting as jiyue would use it: its own, else the inventory's defaults, else SSH's."""
    node = written.get("hosts", host) or {}
    value = (node.get("ssh") or {}).get(path[1])
    if value is None:
        defaults = next((d["defaults"] for d in written.docs.values() if isinstance(d, dict) and "defaults" in d), {})
        value = ((defaults or {}).get("ssh") or {}).get(path[1])
    if value is None:
        value = {"user": "root", "port": 22}.get(path[1])
    return _resolved(written.root, value, path)


def ansible_proposals(source: Path, written: Written, mapping: Path | None = None
                      ) -> tuple[list[Proposal], list[str]]:
    """Hosts with addresses and SSH settings, and the departments and systems their groups map to."""
    rules, dept_info, host_defaults = load_mapping(mapping)
    listing = ansible_list(source)
    hostvars = (listing.get("_meta") or {}).get("hostvars") or {}
    shown = Path(source).name
    problems: list[str] = []
    proposals: list[Proposal] = []
    systems: dict[str, dict[str, Any]] = {}
    departments: set[str] = set()
    by_address = {str(node.get("address")): key for key, (_, node) in written.records["hosts"].items()}
    for host, groups in sorted(_groups_of(listing).items()):
        where = f"{shown}: host {host}"
        hv = hostvars.get(host) or {}
        found: dict[str, set[str]] = {"department": set(), "system": set()}
        for group in groups:
            for rule in rules:
                m = rule.match.fullmatch(group)
                if not m:
                    continue
                parts = m.groupdict()
                for what in ("department", "system"):
                    template = getattr(rule, what)
                    value = template.format(**parts) if template else parts.get(what)
                    if value:
                        found[what].add(_ident(value))
        if any(len(v) > 1 for v in found.values()):
            both = ", ".join(sorted(found["department"] | found["system"]))
            problems.append(f"{where}: its groups map it to {both}: "
                            "one department and one system per host; narrow the mapping's patterns")
            continue
        dept = next(iter(found["department"]), None)
        system = next(iter(found["system"]), None)
        values: dict[tuple[str, ...], Any] = {}
        address = hv.get("ansible_host", host)
        try:
            values[("address",)] = str(ipaddress.ip_address(str(address)))
        except ValueError:
            problems.append(f"{where}: ansible_host: {address!r} is not an IP address: give ansible_host as an "
                            "address (jiyue's inventory holds addresses, not names to resolve)")
            continue
        for var, path in SSH_VARS.items():
            if var in hv:
                value = hv[var]
                if isinstance(value, str) and "{{" in value:
                    problems.append(f"{where}: {var}: {value!r} is a template: give the value itself")
                    continue
                values[path] = int(value) if path == ("ssh", "port") else str(value)
        family = str(hv.get("ansible_os_family", "")).lower()
        if family in OS_FAMILIES:
            values[("os_family",)] = OS_FAMILIES[family]
        if hv.get("ansible_distribution"):
            values[("os",)] = " ".join(str(hv[k]) for k in ("ansible_distribution", "ansible_distribution_version")
                                       if hv.get(k))
        name = by_address.get(values[("address",)]) or _ident(host)
        if not IDENT.match(name):
            problems.append(f"{where}: '{name}' is not a jiyue host name (lower-case letters, digits, hyphens)")
            continue
        exists = written.get("hosts", name) is not None
        for path in [p for p in values if p[0] == "ssh"]:
            if _effective(written, name, path) == _resolved(written.root, values[path], path):
                del values[path]  # what the inventory already means (its defaults): nothing to propose
        if not exists:
            values = {**{(k,): v for k, v in host_defaults.items()}, **values}
        home = Path("departments") / f"{dept}.yaml" if dept else Path("imported.yaml")
        proposals.append(Proposal("hosts", name, values, where, file=home, may_draft=True))
        if dept:
            departments.add(dept)
        if system:
            entry = systems.setdefault(system, {"department": dept, "hosts": [], "where": where, "file": home})
            entry["hosts"].append(name)
    for code in sorted(departments | {_ident(d) for d in dept_info}):
        if written.get("departments", code) is None:
            info = dept_info.get(code) or {}
            proposals.append(Proposal("departments", code, {(k,): v for k, v in info.items()},
                                      f"{shown}: department {code}", file=Path("departments") / f"{code}.yaml",
                                      may_draft=True))
    for sid, entry in sorted(systems.items()):
        node = written.get("systems", sid)
        listed = list(node.get("hosts") or []) if node is not None else []
        values = {("hosts",): [*listed, *(h for h in entry["hosts"] if h not in listed)]}
        if node is None and entry["department"]:
            values[("department",)] = entry["department"]
        proposals.append(Proposal("systems", sid, values, f"{shown}: system {sid}", file=entry["file"],
                                  may_draft=True))
    return proposals, problems
