"""The benches' synthetic fleets: an inventory of `n` lab hosts in one subnet, written for a lab of the bench's own."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lab.hosts import Lab


def host_inventory(root: Path, lab: Lab, n: int, network: str, prefix: str,
                   oses: tuple[str, ...] = ("Debian 12",)) -> Path:
    """`root/inventory/hosts.yaml`: hosts <prefix>000.. from the 10th address of `network`, cycling through `oses`
    (UOS and Debian count as the debian family, the rest as redhat), reached with the lab's key; the directory."""
    inv_dir = root / "inventory"
    inv_dir.mkdir()
    net = ipaddress.ip_network(network)
    lines = ["defaults:", f"  ssh: {{user: root, key: {lab.key}, known_hosts: {lab.known_hosts}}}",
             "subnets:", f"  - {{name: bench, kind: source, prefix: {net}, gateway: {net[1]}}}", "hosts:"]
    for i in range(n):
        os_ = oses[i % len(oses)]
        family = "debian" if os_.startswith(("UOS", "Debian")) else "redhat"
        lines.append(f"  - {{name: {prefix}{i:03d}, address: {net[10 + i]}, os_family: {family}, os: {os_}, "
                     "role: app}")
    (inv_dir / "hosts.yaml").write_text("\n".join(lines) + "\n")
    return inv_dir
