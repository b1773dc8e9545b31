"""`invoke inventory.*`: check the inventory, list what a --limit selects, export it for other tools."""

from __future__ import annotations

from collections import Counter

from invoke import task
from rich.table import Table

from inventory import export
from inventory.groups import all_groups
from jiyue.cli import HELP, console, fail, limit_devices, limit_hosts, load_inventory, out_dir


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
            "include_classified": HELP["include_classified"]})
def export_(c, inventory=None, limit=None, out=None, format="all", include_classified=False):
    """Write the inventory for Ansible (YAML), pyinfra (module) and Nornir (SimpleInventory) under OUT/inventory/;
    hosts of classified (涉密) systems are left out."""
    if format != "all" and format not in export.FORMATS:
        raise fail(f"--format must be one of {', '.join(export.FORMATS)} or all, not {format!r}")
    inv = load_inventory(inventory)
    hosts, devices = limit_hosts(inv, limit, include_classified), limit_devices(inv, limit)
    target = out_dir(out)
    for fmt in export.FORMATS if format == "all" else (format,):
        for path in export.write(inv, fmt, hosts, devices, target, include_classified):
            console.print(f"wrote {path}")
    console.print(f"{len(hosts)} hosts, {len(devices)} devices. "
                  f"Try: ansible all -i {target}/inventory/ansible.yml -m ping")
