"""OpenSSH client configs from the inventory: jump hosts (堡垒机) as OpenSSH's ProxyJump, host keys checked.

The tools jiyue drives that run OpenSSH's `ssh` (Ansible, testinfra's ssh backend, rsync) reach a host behind a
jump host the way an operator's `ssh -J` does. One generated config serves them all:

- each jump host is a `Host jiyue-jump-<name>` block with its own address, user, port, key and known_hosts, and
  `StrictHostKeyChecking yes`; the inner jump host of a chain of two has `ProxyJump` to the outer one. OpenSSH
  passes `-F <config>` on to the `ssh` it starts for each hop, so every hop reads the same blocks and checks its
  own host key against its own known_hosts (never the target's);
- each host is a block named by its inventory name and its address, with its own settings and, behind a jump
  host, `ProxyJump jiyue-jump-<innermost>`.

Nothing here turns host-key checking off, and no private key leaves the control node: a block names the key
file by its path on the control node. `ansible_args` gives the same for one host as Ansible's
`ansible_ssh_common_args`, which testinfra's ansible backend reads too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from inventory.model import Inventory, SSHTarget

JUMP_PREFIX = "jiyue-jump-"


def jump_alias(jump: SSHTarget) -> str:
    """The Host name of a jump host's block."""
    return JUMP_PREFIX + (jump.name or jump.address)


def _block(patterns: Sequence[str], t: SSHTarget, proxy: str | None, *, identities: bool = True) -> list[str]:
    lines = [f"Host {' '.join(patterns)}", f"  HostName {t.address}", f"  Port {t.port}", f"  User {t.user}"]
    if identities and t.key is not None:
        lines += [f"  IdentityFile {t.key}", "  IdentitiesOnly yes"]
    if t.known_hosts is not None:
        lines.append(f"  UserKnownHostsFile {t.known_hosts}")
    lines += ["  StrictHostKeyChecking yes", "  BatchMode yes"]
    if proxy:
        lines.append(f"  ProxyJump {proxy}")
    return lines


def jump_blocks(chains: Iterable[Sequence[SSHTarget]]) -> list[str]:
    """The Host blocks of every jump host in `chains` (each outermost first), once each."""
    seen: dict[str, list[str]] = {}
    for chain in chains:
        for i, jump in enumerate(chain):
            alias = jump_alias(jump)
            if alias not in seen:
                seen[alias] = _block([alias], jump, jump_alias(chain[i - 1]) if i else None)
    return [line for block in seen.values() for line in block]


def config_text(inv: Inventory, hosts: Iterable[str], jump: str | None = None) -> str:
    """The config for `hosts` (inventory names) and their jump hosts; `jump` is a run's `--jump NAME|none`."""
    chains = {h: inv.jump_chain(inv.hosts[h], jump) for h in hosts}
    lines = ["# written by jiyue for one run (jiyue/sshconfig.py); regenerate, do not edit",
             *jump_blocks(chains.values())]
    for name, chain in chains.items():
        t = inv.ssh_for(inv.hosts[name])
        lines += _block(list(dict.fromkeys([name, t.address])), t, jump_alias(chain[-1]) if chain else None)
    return "\n".join(lines) + "\n"


def write(inv: Inventory, hosts: Iterable[str], path: Path, jump: str | None = None) -> Path:
    """Write `config_text` to `path` (mode 0600: it names key files) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(inv, hosts, jump))
    path.chmod(0o600)
    return path


def ansible_args(inv: Inventory, host: str, config: Path, jump: str | None = None) -> str:
    """The host's `ansible_ssh_common_args`: its known_hosts with StrictHostKeyChecking, and behind a jump host
    `-F <config> -o ProxyJump=…` (the config holds the jump hosts' blocks)."""
    t = inv.ssh_for(inv.hosts[host])
    args = [f"-o UserKnownHostsFile={t.known_hosts}"] if t.known_hosts else []
    args.append("-o StrictHostKeyChecking=yes")
    chain = inv.jump_chain(inv.hosts[host], jump)
    if chain:
        args = [f"-F {config}", f"-o ProxyJump={jump_alias(chain[-1])}", *args]
    return " ".join(args)


def through_jump_hosts(inv: Inventory, hosts: Iterable[str], jump: str | None = None) -> list[str]:
    """Those of `hosts` reached through a jump host (in this run)."""
    return [h for h in hosts if inv.jump_chain(inv.hosts[h], jump)]


def ansible_inventory(inv: Inventory, inventory_file: Path, jump: str | None = None) -> Path:
    """Route an exported Ansible inventory (inventory.export, `ansible` format) through the jump hosts: every
    host's `ansible_ssh_common_args` from `ansible_args`, the config written beside the file as `ssh_config`.
    Returns the config's path (written even when no host is behind a jump host: one layout for every run)."""
    data = yaml.safe_load(inventory_file.read_text())
    hosts = (data.get("all") or {}).get("hosts") or {}
    config = write(inv, list(hosts), inventory_file.parent / "ssh_config", jump)
    for name, hv in hosts.items():
        hv["ansible_ssh_common_args"] = ansible_args(inv, name, config.resolve(), jump)
    header = "".join(line + "\n" for line in inventory_file.read_text().splitlines() if line.startswith("#"))
    inventory_file.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False,
                                                      default_flow_style=False))
    return config
