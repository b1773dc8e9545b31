"""Draft records proposed by `audit.discover` for undeclared hosts, brought in through the shared import.

`audit.discover` writes `discovered.yaml`: host and system records in the inventory's own shape (a host's
name, address and the OS its collection saw; a system's hosts, services and the systems it was seen to use),
with everything a scan cannot know left out. Each record becomes a `Proposal` that may be a draft, so the
import's preview, its problems and `--apply` work as for the survey workbooks and Ansible inventories; the
survey completes the drafts.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from inventory.importer import Proposal, Written
from inventory.model import LIST_SECTIONS

SECTIONS = ("hosts", "systems")  # what a discovery proposes
HOME = Path("discovered.yaml")  # where new records go in the inventory


class DiscoveredError(Exception):
    pass


def discovery_proposals(path: Path, written: Written) -> tuple[list[Proposal], list[str]]:
    """The proposal file's records as proposals (drafts where incomplete), and the problems of its shape."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DiscoveredError(f"{path}: cannot read the discovery's proposal: {exc}") from None
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        raise DiscoveredError(f"{path}: a discovery's proposal has `hosts` and `systems` lists only "
                              "(written by invoke audit.discover)")
    proposals: list[Proposal] = []
    problems: list[str] = []
    for section in SECTIONS:
        key = LIST_SECTIONS[section][1]
        for i, record in enumerate(data.get(section) or []):
            where = f"{Path(path).name}: {section}[{i}]"
            if not isinstance(record, dict) or not isinstance(record.get(key), str):
                problems.append(f"{where}: {key}: each record needs its {key}")
                continue
            values = {(field,): value for field, value in record.items() if field not in (key, "draft")}
            if section == "systems" and written.get(section, record[key]) is not None:
                node = written.get(section, record[key]) or {}
                listed = list(node.get("hosts") or [])
                values[("hosts",)] = [*listed, *(h for h in record.get("hosts") or [] if h not in listed)]
            proposals.append(Proposal(section, record[key], values, f"{where} ({record[key]})", file=HOME,
                                      may_draft=True))
    return proposals, problems
