"""The bastion lab with a system to migrate: both ways a migration's copy can go, through a real bastion.

On top of lab/bastion.py's layout (tag `bm`, so it never meets a `lab.up --bastion` lab), one system `bmq-ywxt`
with a web host and a database host behind the bastion, a gateway behind it too, and two cloud targets:

- `bm-tgt1`, behind the bastion (a cloud subnet of its own, 198.19.243.0/24, on the source bridge): the web
  host's copy goes **direct** (one zone);
- `bm-tgt2`, on a cloud side of its own (198.19.242.0/24, bridge `bmcloud0`), which the control node reaches
  directly and the department's hosts do not (their one link ends on the source bridge, and neither the bastion
  nor the gateway forwards): the database host's copy goes **through the bastion** (`ssh -J`). The bastion has a
  leg on the cloud side (it opens the forwarded connections there), and so has the gateway (its reverse proxy
  reaches both sides, as a real one in front of both zones does; forwarding off).

`write_inventory` writes the matching inventory (its `cloud` section, the system, the subnets: the cloud side is
`jump: none`); seeding it (lab/seed.py) starts the web service, the database stand-in and the gateway's nginx.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import yaml

import inventory
from inventory.model import Inventory
from lab.bastion import BASTION_ADDRESS, BASTION_INSIDE, SOURCE, BastionLab
from lab.procs import run

TAG = "bm"
CLOUD = ipaddress.ip_network("198.19.242.0/24")
INNER_CLOUD = ipaddress.ip_network("198.19.243.0/24")  # cloud hosts behind the bastion, on the source bridge
CLOUD_GATEWAY = "198.19.242.1"  # the control node's address on the cloud side
BASTION_CLOUD = "198.19.242.254"
GATEWAY_CLOUD = "198.19.242.30"
SYSTEM = "bmq-ywxt"
WEB, DB, GATEWAY, NEAR, FAR = "bm-app1", "bm-db1", "bm-gw", "bm-tgt1", "bm-tgt2"
HOSTS = {WEB: ("198.19.240.11", "app"), DB: ("198.19.240.12", "db"), GATEWAY: ("198.19.240.30", "gateway"),
         NEAR: ("198.19.243.21", "cloud"), FAR: ("198.19.242.21", "cloud")}
PAIRS = [(WEB, NEAR), (DB, FAR)]  # the plan's source -> target: direct, and through the bastion


def system_record() -> dict:
    return {
        "id": SYSTEM, "name": "堡垒机后业务系统", "department": "bmq", "function": "迁移经堡垒机的实验系统。",
        "category": "internal_office", "scope": {"user_units": ["实验局"], "declared_users": 10},
        "frequency": "daily", "approval": {"department": "实验局", "date": "2020-01-01"},
        "funding": {"source": "财政", "amount": 1}, "build_year": 2020, "vendor": "某公司",
        "classification": "non_classified", "protection": {"level": 2, "filing_number": "21010099002-99001"},
        "zone": "intranet",
        "hosts": [WEB, DB],
        "services": [{"name": "web", "host": WEB, "port": 8080, "health_url": f"http://{HOSTS[WEB][0]}:8080/health"},
                     {"name": "db", "host": DB, "port": 3306}],
        "data_paths": [f"/srv/{SYSTEM}"], "log_paths": [f"/var/log/app/{SYSTEM}/access.log"],
    }


class MigrationBastionLab(BastionLab):
    """The bastion lab with `SYSTEM` to migrate and a cloud side; `up` and `down` as BastionLab's."""

    def __init__(self, state_dir: Path, tag: str = TAG) -> None:
        super().__init__(state_dir, tag)
        self.cloud_bridge = f"{tag}cloud0"
        self.bastion_cloud_link = f"{tag[:3]}jcld"
        self.gateway_cloud_link = f"{tag[:3]}gcld"

    def write_inventory(self, directory: Path, jump: bool = True) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        data: dict = {
            "defaults": {"ssh": {"user": "root", "key": str(self.hosts.key),
                                 "known_hosts": str(self.hosts.known_hosts)}},
            "jump_hosts": [{"name": "bastion", "address": BASTION_ADDRESS,
                            "ssh": {"known_hosts": str(self.known_hosts)}}],
            "departments": [{"code": "bmq", "name": "实验局", "level": "city"}],
            "subnets": [{"name": "src", "kind": "source", "prefix": str(SOURCE), "gateway": BASTION_INSIDE},
                        {"name": "cloud-in", "kind": "cloud", "prefix": str(INNER_CLOUD),
                         "gateway": str(INNER_CLOUD[1])},
                        {"name": "cloud", "kind": "cloud", "prefix": str(CLOUD), "gateway": CLOUD_GATEWAY,
                         "jump": "none"}],
            "cloud": {"flavors": [{"name": "c2m4", "vcpus": 2, "memory_gb": 4, "disk_gb": 50}],
                      "zones": ["intranet"],
                      "pool": [{"host": NEAR, "flavor": "c2m4", "zone": "intranet"},
                               {"host": FAR, "flavor": "c2m4", "zone": "intranet"}],
                      "gateway": GATEWAY},
            "hosts": [{"name": n, "address": a, "os_family": "debian", "os": "Debian 12", "role": r}
                      for n, (a, r) in HOSTS.items()],
            "systems": [system_record()],
        }
        if jump:
            data["defaults"]["jump"] = "bastion"
        (directory / "city.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        return directory

    def up(self, inv: Inventory | None = None, forwarding: bool = True) -> Inventory:
        inv = super().up(inv or inventory.load(self.write_inventory(self.state_dir / "inventory")), forwarding)
        if run("ip", "link", "show", self.cloud_bridge, check=False).returncode != 0:
            run("ip", "link", "add", self.cloud_bridge, "type", "bridge")
            run("ip", "addr", "add", f"{CLOUD_GATEWAY}/{CLOUD.prefixlen}", "dev", self.cloud_bridge)
        run("ip", "link", "set", self.cloud_bridge, "up")
        run("ip", "route", "replace", "unreachable", str(INNER_CLOUD))  # behind the bastion: no route in
        run("ip", "-n", self.netns, "route", "replace", str(INNER_CLOUD), "dev", "eth0")  # the bastion's way to it
        # The far target's one link moves to the cloud side: the department's hosts have no way to it.
        run("ip", "link", "set", self.hosts.link_name(FAR), "master", self.cloud_bridge)
        self._leg(self.netns, self.bastion_cloud_link, "eth2", BASTION_CLOUD)
        self._leg(self.hosts.netns(GATEWAY), self.gateway_cloud_link, "eth1", GATEWAY_CLOUD)
        return inv

    @contextlib.contextmanager
    def seeding(self) -> Iterator[None]:
        """A route in for the while: lab/seed.py and lab/baseline_seed.py wait for the seeded services' ports and
        the reloaded sshd's banner from the control node, which otherwise has no way to the hosts behind the
        bastion. The route goes again afterwards (and the tests show the hosts unreachable without the bastion)."""
        ways = [(SOURCE, str(SOURCE[1])), (INNER_CLOUD, str(INNER_CLOUD[1]))]
        for net, address in ways:
            run("ip", "route", "del", "unreachable", str(net), check=False)
            run("ip", "addr", "replace", f"{address}/{net.prefixlen}", "dev", self.hosts.bridge)
        try:
            yield
        finally:
            for net, address in ways:
                run("ip", "addr", "del", f"{address}/{net.prefixlen}", "dev", self.hosts.bridge, check=False)
                run("ip", "route", "replace", "unreachable", str(net))

    def _leg(self, ns: str, link: str, inside: str, address: str) -> None:
        """A second interface of namespace `ns` on the cloud side (once)."""
        if run("ip", "link", "show", link, check=False).returncode == 0:
            return
        run("ip", "link", "add", link, "type", "veth", "peer", "name", inside, "netns", ns)
        run("ip", "link", "set", link, "master", self.cloud_bridge, "up")
        run("ip", "-n", ns, "addr", "add", f"{address}/{CLOUD.prefixlen}", "dev", inside)
        run("ip", "-n", ns, "link", "set", inside, "up")

    def down(self) -> int:
        for link in (self.bastion_cloud_link, self.gateway_cloud_link, self.cloud_bridge):
            run("ip", "link", "del", link, check=False)
        run("ip", "route", "del", "unreachable", str(INNER_CLOUD), check=False)
        return super().down()
