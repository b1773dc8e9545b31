"""The one OpenSSH client config jiyue writes: hosts and devices, behind jump hosts (堡垒机) or not, host keys checked.

Every tool jiyue hands a host to that does not use jiyue's own SSH layer reads this file: OpenSSH's `ssh` (Ansible,
testinfra's ssh backend, the migration playbooks), pyinfra (paramiko's SSHConfig, `ssh_config_file`) and netmiko
(Nornir; paramiko's SSHConfig too, `ssh_config_file`). One block convention serves all three:

- each jump host is a `Host jiyue-jump-<name>` block with its own address, port, user, key and known_hosts and
  `StrictHostKeyChecking yes`; the inner one of a chain of two has `ProxyJump` to the outer. Only OpenSSH reads
  these blocks, so the alias never clashes with a host of the same address (a bastion that is also managed);
- each host or device is a block named by its inventory name and its address, with its own settings and, behind a
  jump host, `ProxyCommand ssh -F <this file> -W [%h]:%p jiyue-jump-<innermost>`.

Why ProxyCommand and not ProxyJump in the target blocks (pyinfra 3.10, netmiko 4.8, OpenSSH 9.2 read):

- pyinfra's ProxyJump hands the hop's text on as the next `direct-tcpip` target, so an alias of the inner hop of a
  chain reaches the bastion unresolved; it takes an address, but an IPv6 one only bare, which OpenSSH refuses
  (a bare IPv6 ProxyJump anywhere in the file fails every `ssh -F` that reads it);
- netmiko's ProxyJump takes one hop and writes `-W host:port` without brackets (no IPv6 device);
- all three run a ProxyCommand (paramiko fills `%h`, `%p` from the block, hence the block's `Port` always), and
  the `ssh` it starts walks the chain with each hop's own known_hosts, never the target's.

Nothing here turns host-key checking off, and no private key leaves the control node: a block names the key file by
its path on the control node. A device block has no key and no `BatchMode` (devices log in by password).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

from inventory.model import Device, Host, Inventory, SSHTarget

SSH_CONFIG = "ssh_config"  # its name beside what uses it (an export, a run's work directory)
JUMP_PREFIX = "jiyue-jump-"


def jump_alias(jump: SSHTarget) -> str:
    """The Host name of a jump host's block."""
    return JUMP_PREFIX + (jump.name or jump.address)


def _value(path: Path | str) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


def _settings(t: SSHTarget, batch: bool = True) -> list[str]:
    lines = [f"  HostName {t.address}", f"  Port {t.port}", f"  User {t.user}"]
    if t.key is not None:
        lines += [f"  IdentityFile {_value(t.key)}", "  IdentitiesOnly yes"]
    if t.known_hosts is not None:
        lines.append(f"  UserKnownHostsFile {_value(t.known_hosts)}")
    return lines + ["  StrictHostKeyChecking yes"] + (["  BatchMode yes"] if batch else [])


def _target(inv: Inventory, record: Host | Device) -> SSHTarget:
    if isinstance(record, Device):
        return SSHTarget(str(record.address), record.port, inv.credentials_for(record).username, None,
                         inv.path(inv.defaults.ssh.known_hosts))
    return inv.ssh_for(record)


def config_text(inv: Inventory, records: Iterable[Host | Device], path: Path, jump: str | None = None) -> str:
    """The config for `records` (hosts and devices) and their jump hosts, to be written at `path` (absolute: the
    ProxyCommand names it); `jump` is a run's `--jump NAME|none`."""
    records = list(records)
    chains = {r.name: inv.jump_chain(r, jump) for r in records}
    lines = ["# written by jiyue (jiyue/sshconfig.py); regenerate, do not edit", ""]
    seen: set[str] = set()
    for chain in chains.values():
        for i, hop in enumerate(chain):
            alias = jump_alias(hop)
            if alias not in seen:
                seen.add(alias)
                lines += [f"Host {alias}", *_settings(hop)]
                lines += [f"  ProxyJump {jump_alias(chain[i - 1])}"] if i else []
                lines.append("")
    for record in records:
        t, chain = _target(inv, record), chains[record.name]
        lines += [f"Host {' '.join(dict.fromkeys([record.name, t.address]))}",
                  *_settings(t, batch=not isinstance(record, Device))]
        if chain:
            lines.append(f"  ProxyCommand ssh -F {shlex.quote(str(path))} -W [%h]:%p {jump_alias(chain[-1])}")
        lines.append("")
    return "\n".join(lines)


def write(inv: Inventory, records: Iterable[Host | Device], path: Path, jump: str | None = None, *,
          only_behind: bool = False) -> Path | None:
    """Write `config_text` to `path` (made absolute; mode 0600: it names key files) and return the path. With
    `only_behind` (the exports) nothing is written, and a stale file removed, when no record is behind a jump host:
    then None."""
    records = list(records)
    path = path.resolve()
    if only_behind and not through_jump_hosts(inv, records, jump):
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(inv, records, path, jump))
    path.chmod(0o600)
    return path


def ansible_args(inv: Inventory, host: Host, config: Path | None, jump: str | None = None) -> str:
    """The host's `ansible_ssh_common_args` (testinfra's ansible backend reads them too): its known_hosts with
    StrictHostKeyChecking, and behind a jump host `-F <config>`, whose block for the host's address has the way."""
    t = inv.ssh_for(host)
    args = [f"-o UserKnownHostsFile={_value(t.known_hosts)}"] if t.known_hosts else []
    args.append("-o StrictHostKeyChecking=yes")
    if config is not None and inv.jump_chain(host, jump):
        args.insert(0, f"-F {_value(config)}")
    return " ".join(args)


def through_jump_hosts(inv: Inventory, records: Sequence[Host | Device | str], jump: str | None = None) -> list[str]:
    """The names of those of `records` (records, or host names) reached through a jump host (in this run)."""
    out = []
    for r in records:
        record = inv.hosts[r] if isinstance(r, str) else r
        if inv.jump_chain(record, jump):
            out.append(record.name)
    return out
