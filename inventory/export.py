"""Exports of the inventory for the tools ops teams already use: Ansible, pyinfra and Nornir.

Each export is complete for its tool: host key checking on, keys and known_hosts as absolute
paths, no edits needed. Hosts of classified (涉密) systems are left out unless asked for explicitly.
Device passwords are never written: the Nornir export carries only the
reference, and the `jiyue_credentials` transform function (registered as a Nornir plugin by this
project's packaging) reads the secret when Nornir loads the inventory.

Jump hosts (堡垒机): hosts and devices behind one are reached through it by the one OpenSSH client config jiyue
writes (jiyue/sshconfig.py, `ssh_config` beside the export): each jump host's own address, port, user, key and
known_hosts with StrictHostKeyChecking on, so the bastion's key is checked apart from the target's. Ansible gets
`-F <ssh_config>` in `ansible_ssh_common_args`, pyinfra `ssh_config_file` in the host's data, Nornir netmiko's
`ssh_config_file` in the connection options; each finds the way in the block of the target's address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from inventory.groups import device_groups, host_groups, refuse_classified
from inventory.model import Host, Inventory, SecretRef
from jiyue import sshconfig

FORMATS = ("ansible", "pyinfra", "nornir")


def _hostvars(inv: Inventory, host: Host) -> dict[str, Any]:
    """What every tool and playbook may want to know about a host, prefixed `jiyue_`."""
    system = inv.owner(host.name)
    out: dict[str, Any] = {"jiyue_role": host.role, "jiyue_os": host.os, "jiyue_os_family": str(host.os_family)}
    if system is not None:
        out |= {
            "jiyue_system": system.id,
            "jiyue_system_name": system.name,
            "jiyue_department": system.department,
            "jiyue_zone": str(system.zone),
            "jiyue_classification": str(system.classification),
            "jiyue_protection_scheme": str(system.protection.scheme),
            "jiyue_protection_level": system.protection.level,
            "jiyue_data_paths": list(system.data_paths),
            "jiyue_log_paths": list(system.log_paths),
            "jiyue_services": [s.model_dump(mode="json", exclude_none=True) for s in system.services
                               if s.host == host.name],
        }
    return out


def _filtered(groups: dict[str, list[str]], names: list[str]) -> dict[str, list[str]]:
    keep = set(names)
    out = {g: [m for m in members if m in keep] for g, members in groups.items()}
    return {g: members for g, members in out.items() if members}


def ansible(inv: Inventory, names: list[str], config: Path | None = None, jump: str | None = None) -> dict[str, Any]:
    """A YAML inventory: every host under `all` with its vars, and one group per grouping. A host behind jump
    hosts gets `-F <config>` (the export's ssh_config, jiyue.sshconfig.ansible_args)."""
    hosts: dict[str, Any] = {}
    for name in names:
        host = inv.hosts[name]
        ssh = inv.ssh_for(host)
        hv: dict[str, Any] = {"ansible_host": ssh.address, "ansible_port": ssh.port, "ansible_user": ssh.user}
        if ssh.key:
            hv["ansible_ssh_private_key_file"] = str(ssh.key)
        hv["ansible_ssh_common_args"] = sshconfig.ansible_args(inv, host, config, jump)
        hosts[name] = hv | _hostvars(inv, host)
    children = {g: {"hosts": {m: None for m in members}} for g, members in
                _filtered(host_groups(inv), names).items()}
    return {"all": {"vars": {"ansible_python_interpreter": "auto_silent"}, "hosts": hosts, "children": children}}


def pyinfra(inv: Inventory, names: list[str], config: Path | None = None, jump: str | None = None) -> str:
    """A pyinfra inventory module: one list per group, host data defined once in `_data`. A host behind jump hosts
    gets `ssh_config_file` (`config`, whose block for its address has the way)."""
    data: dict[str, dict[str, Any]] = {}
    for name in names:
        host = inv.hosts[name]
        ssh = inv.ssh_for(host)
        hd: dict[str, Any] = {"ssh_hostname": ssh.address, "ssh_port": ssh.port, "ssh_user": ssh.user,
                              "ssh_strict_host_key_checking": "yes"}
        if ssh.key:
            hd["ssh_key"] = str(ssh.key)
        if ssh.known_hosts:
            hd["ssh_known_hosts_file"] = str(ssh.known_hosts)
        if config is not None and inv.jump_chain(host, jump):
            hd["ssh_config_file"] = str(config)
        data[name] = hd | _hostvars(inv, host)
    lines = [
        '"""pyinfra inventory exported by jiyue (`invoke inventory.export`); regenerate, do not edit."""',
        "",
        f"_data = {data!r}",
        "",
        "all_hosts = [(name, data) for name, data in _data.items()]",
    ]
    for group, members in _filtered(host_groups(inv), names).items():
        lines.append(f"{group} = [(name, _data[name]) for name in {members!r}]")
    return "\n".join(lines) + "\n"


def nornir(inv: Inventory, names: list[str], out_dir: Path, config: Path | None = None) -> dict[str, Any]:
    """A Nornir SimpleInventory (hosts, groups, defaults) for the devices, plus a config file; `config`: the
    devices' ssh_config when some are behind jump hosts (netmiko's `ssh_config_file`)."""
    known_hosts = inv.path(inv.defaults.ssh.known_hosts)
    hosts: dict[str, Any] = {}
    for name in names:
        device = inv.devices[name]
        creds = inv.credentials_for(device)
        refs = {"username": creds.username, "password": _ref(inv, creds.password)}
        if creds.secret is not None:
            refs["secret"] = _ref(inv, creds.secret)
        hosts[name] = {
            "hostname": str(device.address),
            "port": device.port,
            "platform": device.platform.netmiko_device_type,
            "groups": [g for g, members in device_groups(inv).items() if name in members],
            "data": {
                "jiyue_platform": str(device.platform),
                "site": device.site,
                "role": str(device.role),
                "department": device.department,
                "golden_network": str(device.golden_network) if device.golden_network else None,
                "interfaces": [i.model_dump(mode="json", exclude_none=True) for i in device.interfaces],
                "jiyue_credentials": refs,
            },
        }
    groups = {g: {"data": {}} for g in _filtered(device_groups(inv), names)}
    netmiko_extras: dict[str, Any] = {"ssh_strict": True}
    if known_hosts:
        netmiko_extras |= {"alt_host_keys": True, "alt_key_file": str(known_hosts)}
    if config is not None:
        netmiko_extras["ssh_config_file"] = str(config)
    defaults = {"connection_options": {"netmiko": {"extras": netmiko_extras}}}
    config = {
        "inventory": {
            "plugin": "SimpleInventory",
            "options": {"host_file": str(out_dir / "hosts.yaml"), "group_file": str(out_dir / "groups.yaml"),
                        "defaults_file": str(out_dir / "defaults.yaml")},
            "transform_function": "jiyue_credentials",
        },
        "runner": {"plugin": "threaded", "options": {"num_workers": 20}},
        "logging": {"enabled": False},
    }
    return {"hosts.yaml": hosts, "groups.yaml": groups, "defaults.yaml": defaults, "config.yaml": config}


def _ref(inv: Inventory, ref: SecretRef) -> dict[str, str]:
    return {"env": ref.env} if ref.env else {"file": str(inv.path(ref.file))}


def nornir_credentials(host: Any) -> None:
    """Nornir transform function: fill username and password from the references at load time."""
    refs = host.data.get("jiyue_credentials")
    if not refs:
        return
    host.username = refs["username"]
    host.password = SecretRef(**refs["password"]).resolve(Path("/"))
    if "secret" in refs:
        netmiko = host.connection_options.get("netmiko")
        if netmiko is not None:
            netmiko.extras = {**(netmiko.extras or {}), "secret": SecretRef(**refs["secret"]).resolve(Path("/"))}


def write(inv: Inventory, fmt: str, hosts: list[str], devices: list[str], out: Path,
          include_classified: bool = False, jump: str | None = None) -> list[Path]:
    """Write one export under `out/inventory/`; return the files written (the export first, then its
    `ssh_config` when some of its hosts or devices are behind jump hosts). `jump` is a run's `--jump NAME|none`.

    An export hands its hosts to Ansible or pyinfra, so hosts of classified (涉密) systems are refused
    (ClassifiedRefused) unless `include_classified`: under 分级保护 they are the confidential bureau's."""
    if not include_classified:
        refuse_classified(inv, hosts, "asked to export ")
    base = out / "inventory"
    base.mkdir(parents=True, exist_ok=True)
    if fmt in ("ansible", "pyinfra"):
        config = sshconfig.write(inv, [inv.hosts[h] for h in hosts], base / sshconfig.SSH_CONFIG, jump,
                                 only_behind=True)
        if fmt == "ansible":
            path = base / "ansible.yml"
            path.write_text(_yaml(ansible(inv, hosts, config, jump)))
        else:
            path = base / "pyinfra_inventory.py"
            path.write_text(pyinfra(inv, hosts, config, jump))
        return [path] + ([config] if config else [])
    if fmt == "nornir":
        nr_dir = base / "nornir"
        nr_dir.mkdir(exist_ok=True)
        config = sshconfig.write(inv, [inv.devices[d] for d in devices], nr_dir / sshconfig.SSH_CONFIG, jump,
                                 only_behind=True)
        written = []
        for filename, content in nornir(inv, devices, nr_dir.resolve(), config).items():
            (nr_dir / filename).write_text(_yaml(content))
            written.append(nr_dir / filename)
        return written + ([config] if config else [])
    raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")


def _yaml(data: Any) -> str:
    header = "# exported by jiyue (`invoke inventory.export`); regenerate, do not edit\n"
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False)
