"""The benches' synthetic fleets: an inventory of `n` lab hosts in one subnet, written for a lab of the bench's own."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lab.hosts import Lab

FIRST_HOST = 10  # hosts from the subnet's 10th address: the first ones are the gateway's and the control node's


def addresses(network: str, n: int) -> list[str]:
    """The addresses of `n` bench hosts in `network`, from its 10th address, short of its last two (the last but
    one is a bastion's inside address, the last the broadcast); ValueError if they do not fit (a /22 takes
    1,012: a thousand hosts)."""
    net = ipaddress.ip_network(network)
    room = net.num_addresses - FIRST_HOST - 2
    if n > room:
        raise ValueError(f"{n} hosts do not fit in {net} (room for {room}): give the bench a larger network")
    return [str(net[FIRST_HOST + i]) for i in range(n)]


def host_inventory(root: Path, lab: Lab, n: int, network: str, prefix: str,
                   oses: tuple[str, ...] = ("Debian 12",), jump: tuple[str, Path] | None = None) -> Path:
    """`root/inventory/hosts.yaml`: hosts <prefix>000.. from the 10th address of `network`, cycling through `oses`
    (UOS and Debian count as the debian family, the rest as redhat), reached with the lab's key; the directory.

    `jump` (the bastion's address and known_hosts) puts every host behind the jump host `bastion`."""
    inv_dir = root / "inventory"
    inv_dir.mkdir()
    net = ipaddress.ip_network(network)
    lines = ["defaults:", f"  ssh: {{user: root, key: {lab.key}, known_hosts: {lab.known_hosts}}}"]
    if jump:
        lines += ["  jump: bastion", "jump_hosts:",
                  f"  - {{name: bastion, address: {jump[0]}, ssh: {{known_hosts: {jump[1]}}}}}"]
    lines += ["subnets:", f"  - {{name: bench, kind: source, prefix: {net}, gateway: {net[1]}}}", "hosts:"]
    for i, address in enumerate(addresses(network, n)):
        os_ = oses[i % len(oses)]
        family = "debian" if os_.startswith(("UOS", "Debian")) else "redhat"
        lines.append(f"  - {{name: {prefix}{i:03d}, address: {address}, os_family: {family}, os: {os_}, "
                     "role: app}")
    (inv_dir / "hosts.yaml").write_text("\n".join(lines) + "\n")
    return inv_dir
