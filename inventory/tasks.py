"""`invoke inventory.*`: check the inventory, list what a --limit selects, export it for other tools, and bring a
city's own material in: survey workbooks out and back, Ansible inventories (`import`)."""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from invoke import task
from rich.table import Table

from inventory import DEFAULT_INVENTORY, export, importer, survey
from inventory.ansible_import import AnsibleImportError, ansible_proposals
from inventory.discovered import DiscoveredError, discovery_proposals
from inventory.groups import all_groups
from inventory.model import Inventory
from jiyue.cli import HELP, console, err, fail, jump_override, limit_devices, limit_hosts, load_inventory, out_dir


@task(help={"inventory": HELP["inventory"]})
def check(c, inventory=None):
    """Validate the inventory; list every problem as file:line: field: message (exit 2), or summarise it."""
    inv = load_inventory(inventory)
    table = Table(title=f"inventory {inv.root} is valid", title_justify="left")
    for column in ("部门 department", "级别 level", "系统 systems", "主机 hosts", "设备 devices"):
        table.add_column(column, justify="right" if column[-1] == "s" else "left")
    systems = Counter(s.department for s in inv.systems.values())
    hosts = Counter(s.department for s in inv.systems.values() for _ in s.hosts)
    devices = Counter(d.department for d in inv.devices.values())
    for dept in inv.departments.values():
        table.add_row(f"{dept.name} ({dept.code})", str(dept.level), str(systems[dept.code]),
                      str(hosts[dept.code]), str(devices[dept.code]))
    pool = len(inv.cloud.pool) if inv.cloud else 0
    other = len(inv.hosts) - sum(hosts.values())
    table.add_row("云资源池与网关 cloud pool and gateway", "", "", str(other), str(devices[None]))
    table.add_section()
    table.add_row("合计 total", "", str(len(inv.systems)), str(len(inv.hosts)), str(len(inv.devices)))
    console.print(table)
    console.print(f"{len(inv.departments)} departments, {len(inv.systems)} systems, {len(inv.hosts)} hosts "
                  f"({pool} in the cloud pool), {len(inv.devices)} network devices, {len(inv.subnets)} subnets")
    drafts = [d for section in inv.drafts.values() for d in section.values()]
    if drafts:
        console.print(f"{len(drafts)} 草稿（不完整，尚不参与审计、迁移与下发） drafts: incomplete, left out of every "
                      "audit, plan, export and push until completed:")
        for d in drafts:
            todo = f"missing {', '.join(d.missing)}" if d.missing else "complete: remove `draft: true` to take it in"
            console.print(f"  {d.origin.file}:{d.origin.line()}: {d.origin.label}: {todo}", highlight=False,
                          markup=False, soft_wrap=True)
        console.print("Complete them in the survey workbooks: invoke inventory.survey, then inventory.import")


@task(name="list", help={"inventory": HELP["inventory"], "limit": HELP["limit"]})
def list_(c, inventory=None, limit=None):
    """Show the hosts and devices a --limit pattern selects, with their groups (classified hosts are shown, and
    marked: tasks that connect leave them out)."""
    inv = load_inventory(inventory)
    hosts, devices = limit_hosts(inv, limit, include_classified=True), limit_devices(inv, limit)
    groups = all_groups(inv)
    member_of: dict[str, list[str]] = {}
    for group, members in groups.items():
        for m in members:
            member_of.setdefault(m, []).append(group)
    table = Table(title=f"{len(hosts)} hosts, {len(devices)} devices", title_justify="left")
    for column in ("name", "kind", "address", "system / platform", "groups"):
        table.add_column(column)
    for name in hosts:
        owner = inv.owner(name)
        kind = "host (涉密: never contacted)" if inv.is_classified(name) else "host"
        table.add_row(name, kind, str(inv.hosts[name].address), owner.id if owner else "",
                      " ".join(member_of.get(name, [])))
    for name in devices:
        device = inv.devices[name]
        table.add_row(name, "device", str(device.address), str(device.platform), " ".join(member_of.get(name, [])))
    console.print(table)


@task(name="export", help={"inventory": HELP["inventory"], "limit": HELP["limit"], "out": HELP["out"],
            "format": f"one of {', '.join(export.FORMATS)}, or 'all' (default)",
            "include_classified": HELP["include_classified"],
            "jump": HELP["jump"].replace("every host", "every host and device exported")})
def export_(c, inventory=None, limit=None, out=None, format="all", include_classified=False, jump=None):
    """Write the inventory for Ansible (YAML), pyinfra (module) and Nornir (SimpleInventory) under OUT/inventory/;
    hosts of classified (涉密) systems are left out. Hosts and devices behind jump hosts are reached through
    them by the ssh_config written beside the export (jiyue.sshconfig)."""
    if format != "all" and format not in export.FORMATS:
        raise fail(f"--format must be one of {', '.join(export.FORMATS)} or all, not {format!r}")
    inv = load_inventory(inventory)
    jump = jump_override(inv, jump)
    hosts, devices = limit_hosts(inv, limit, include_classified), limit_devices(inv, limit)
    target = out_dir(out)
    for fmt in export.FORMATS if format == "all" else (format,):
        for path in export.write(inv, fmt, hosts, devices, target, include_classified, jump):
            console.print(f"wrote {path}")
    console.print(f"{len(hosts)} hosts, {len(devices)} devices. "
                  f"Try: ansible all -i {target}/inventory/ansible.yml -m ping")


def _departments(inv: Inventory, limit: str | None) -> list[str]:
    """Department codes (drafts included) a --limit of `dept_X` terms or codes selects, comma- or colon-separated."""
    codes = [*inv.departments, *inv.drafts.get("departments", {})]
    if not limit:
        return codes
    chosen: list[str] = []
    for term in filter(None, (x.strip() for x in limit.replace(":", ",").split(","))):
        found = fnmatch.filter(codes, term.removeprefix("dept_"))
        if not found:
            raise fail(f"--limit {term}: no such department (known: {', '.join(codes)})")
        chosen += [c for c in found if c not in chosen]
    return chosen


@task(name="survey", help={"inventory": HELP["inventory"], "out": HELP["out"], "store": HELP["store"],
                           "limit": "departments: dept_fgw, fgw, 'dept_f*', comma-separated (default: all)"})
def survey_(c, inventory=None, limit=None, out=None, store=None):
    """Write one survey workbook (调查表) per department, survey-<dept>.xlsx: the known records prefilled, drop-downs
    for every enumeration, measured facts from the audit history read-only, instructions in Chinese and English."""
    from audit.history import AuditHistory
    from jiyue.store import Store

    inv = load_inventory(inventory)
    history = AuditHistory.load(inv, Store(store), datetime(1970, 1, 1, tzinfo=UTC))
    measured = survey.Measured(inv, history.facts(), history.collected_at())
    target = out_dir(out)
    for code in _departments(inv, limit):
        console.print(f"wrote {survey.write_survey(inv, code, target, measured)}")
    console.print(f"Fill them in, then preview the import: invoke inventory.import -f {target}/")


def _workbooks(files: str) -> list[Path]:
    paths: list[Path] = []
    for item in filter(None, (x.strip() for x in files.split(","))):
        path = Path(item)
        paths += sorted(path.glob("survey-*.xlsx")) if path.is_dir() else [path]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        raise fail(f"no such workbook: {', '.join(missing) or files}")
    return paths


@task(name="import", help={
    "files": "(-f) filled survey workbooks: a file, a directory of survey-*.xlsx, or files separated by commas",
    "inventory": "inventory directory to change (default: the sample city; need not exist for --from-ansible)",
    "format": "table (default) or json", "apply": "write the YAML (without it: a preview that writes nothing)",
    "from_ansible": "an inventory Ansible reads (INI, YAML, directory, script), read through ansible-inventory",
    "mapping": "YAML file of group-name patterns -> department / system (default: dept_<code>, system_<id>)",
    "from_discovery": "the draft records audit.discover proposed for undeclared hosts (its discovered.yaml)"})
def import_(c, files=None, inventory=None, format="table", apply=False, from_ansible=None, mapping=None,
            from_discovery=None):
    """Compare filled survey workbooks, an Ansible inventory, or audit.discover's draft records with the YAML
    inventory: records added, changed field by field, removed. --apply writes the YAML, keeping comments, key
    order and files; nothing is written while any problem remains."""
    if format not in ("table", "json"):
        raise fail(f"--format must be table or json, not {format!r}")
    if sum(map(bool, (files, from_ansible, from_discovery))) != 1:
        raise fail("give the filled workbooks (FILES), --from-ansible PATH or --from-discovery FILE, one of them")
    root = Path(inventory) if inventory else DEFAULT_INVENTORY
    if from_ansible is None or (root.is_dir() and any(root.rglob("*.y*ml"))):
        load_inventory(str(root))  # the inventory as it is must be valid before anything is added to it
    try:
        written = importer.Written.read(root)
        if from_ansible:
            proposals, problems = ansible_proposals(Path(from_ansible), written, Path(mapping) if mapping else None)
        elif from_discovery:
            proposals, problems = discovery_proposals(Path(from_discovery), written)
        else:
            proposals, problems = survey.survey_proposals(_workbooks(files), written)
    except (AnsibleImportError, DiscoveredError, importer.UnreadableYAML) as exc:
        raise fail(str(exc)) from None
    plan = importer.plan(root, proposals, problems, written)
    say = err if format == "json" else console  # stdout holds the JSON alone
    if format == "json":
        print(json.dumps(plan.json(), ensure_ascii=False, indent=2))
    else:
        _print_plan(plan)
    if plan.problems:
        for problem in plan.problems:
            err.print(problem, highlight=False, markup=False, soft_wrap=True)
        n = len(plan.problems)
        raise fail(f"{n} problem{'s' * (n != 1)}; nothing was written. Fix them in the source and run again")
    if not plan.texts:
        say.print("无变化 nothing to change: the inventory already says what the source says")
        return
    if not apply:
        say.print(f"预览，未写入 preview only: run again with --apply to write {', '.join(map(str, plan.texts))}")
        return
    for path in importer.apply(plan):
        say.print(f"wrote {path}")
    drafts = sum(e.draft for e in plan.edits)
    if drafts:
        say.print(f"{drafts} record{'s' * (drafts != 1)} written as drafts (draft: true): complete them with "
                      f"invoke inventory.survey --inventory {root}")


def _print_plan(plan: importer.Plan) -> None:
    table = Table(title=f"import into {plan.root}", title_justify="left")
    for column in ("操作 action", "记录 record", "字段 field", "原值 old", "新值 new", "来源 from"):
        table.add_column(column)
    words = {"add": "新增 add", "change": "修改 change", "remove": "删除 remove"}
    for edit, change in importer.iter_changes(plan):
        record = f"{edit.section}[{edit.key}]" + (" (draft)" if edit.draft else "")
        if edit.action == "add":
            table.add_row(words["add"], record, "", "", f"→ {edit.file}", edit.where)
        elif change is None:
            table.add_row(words[edit.action], record, "", "", "", edit.where)
        else:
            table.add_row(words["change"], record, change.field, _shown(change.old), _shown(change.new), edit.where)
    console.print(table)
    counts = Counter(e.action for e in plan.edits)
    console.print(f"{counts['add']} added, {counts['change']} changed, {counts['remove']} removed")


def _shown(value: object) -> str:
    return "" if value is None else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
