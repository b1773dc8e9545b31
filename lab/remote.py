"""Running commands on lab hosts over real SSH, as collectors and auditors do (for tests)."""

from __future__ import annotations

from inventory.model import Inventory
from jiyue.ssh import verified_client


def ssh(inv: Inventory, name: str, command: str, timeout: float = 10) -> str:
    """Run a command over real SSH, with the host key verified against the inventory's known_hosts."""
    target = inv.ssh_for(inv.hosts[name])
    client = verified_client(target.address, target.port, target.known_hosts)
    client.connect(target.address, port=target.port, username=target.user, key_filename=str(target.key),
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        _, stdout, _ = client.exec_command(command, timeout=timeout)
        return stdout.read().decode()
    finally:
        client.close()
