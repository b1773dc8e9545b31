"""The lab's two ways to the internet: the extranet's egress, and a department's own leased line.

The sample city declares an internet test address (`extranet.internet_probe.address`). The lab gives it a home
beyond two uplinks, so that `lines.egress` has something real to tell apart:

- an "internet" namespace (`<tag>-_inet`) holds the test address on its loopback;
- the extranet egress: the gateway host (`cloud.gateway`, zwy-wg) routes towards it over a link of its own;
  it is also the extranet's first hop the inventory names (`internet_probe.extranet_hops`);
- each leased line `lab/scenario.yaml` lists under `leased_lines` (a line still in use) gets a namespace of its
  own (`<tag>-_line-<id>`) on the lab bridge at the line's `next_hop`: the line's router, with its own link to
  the internet namespace.

Every host routes the test address (and only it: everything else stays on-link, as `lab.hosts` says) through
its line's router when a plumbed line serves it, else through the gateway. The routers answer an expired TTL
(ICMP time exceeded) and the internet namespace a probe of a closed port (port unreachable), so a tracepath
from a host ends in two hops, and its first hop names the uplink. Forwarding is on in those namespaces only;
the machine's own stays off, so nothing leaves the machine. `lab.down` removes the namespaces with the hosts'
(they carry the lab's prefix, with a `_` no host name has).
"""

from __future__ import annotations

import hashlib
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from inventory.model import Inventory, LeasedLine
from lab.hosts import Lab
from lab.procs import LabError, run

SCENARIO = Path(__file__).with_name("scenario.yaml")
# The lab-internal links between the routers and the internet namespace: a /30 each from this block.
TRANSIT = ipaddress.IPv4Network("100.64.255.0/24")


def plumbed_lines(inv: Inventory, scenario: Path = SCENARIO) -> list[LeasedLine]:
    """The leased lines the scenario keeps in use and the lab can plumb: in the inventory, with a `next_hop` in one
    of its subnets (the lab bridge carries those)."""
    try:
        raw = yaml.safe_load(scenario.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"cannot read the scenario {scenario}: {exc}") from None
    out = []
    for line_id in raw.get("leased_lines") or []:
        line = inv.leased_lines.get(line_id)
        if line is not None and line.next_hop is not None and inv.subnet_of(line.next_hop) is not None:
            out.append(line)
    return out


def _link(lab: Lab, name: str) -> str:
    return f"{lab.tag[:3]}u" + hashlib.sha1(name.encode()).hexdigest()[:10]


def _router(ns: str) -> None:
    """Forwarding on, and no ICMP rate limit: every probe's expired TTL is answered."""
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0"):
        run("ip", "netns", "exec", ns, "sysctl", "-qw", key)


def _transit(n: int) -> tuple[str, str]:
    """The router's and the internet namespace's address on transit link `n`."""
    base = int(TRANSIT.network_address) + 4 * n
    return str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))


def uplinks_up(lab: Lab, inv: Inventory, scenario: Path = SCENARIO) -> list[str]:
    """Build (again) the internet namespace, the egress link of the gateway, the scenario's leased lines and every
    host's route to the test address; return the line ids plumbed. Nothing when the inventory has no internet test
    address or no running gateway host."""
    probe = inv.extranet.internet_probe if inv.extranet else None
    gateway = inv.cloud.gateway if inv.cloud else None
    if probe is None or probe.address.version != 4 or gateway is None or lab.sshd_pid(gateway) is None:
        return []
    target = f"{probe.address}/32"
    inet = lab.netns("_inet")
    lines = plumbed_lines(inv, scenario)
    gw_ns = lab.netns(gateway)
    # a namespace is destroyed asynchronously: take the links with a peer outside it down first, at once
    run("ip", "-n", gw_ns, "link", "del", "egress0", check=False)
    for ns in (inet, *(lab.netns(f"_line-{line.id}") for line in lines)):
        if Path("/run/netns", ns).exists():
            run("ip", "netns", "del", ns)
    run("ip", "netns", "add", inet)
    run("ip", "-n", inet, "link", "set", "lo", "up")
    run("ip", "-n", inet, "addr", "add", target, "dev", "lo")
    _router(inet)

    mine, theirs = _transit(0)
    run("ip", "-n", gw_ns, "link", "add", "egress0", "type", "veth", "peer", "name", "egress0", "netns", inet)
    run("ip", "-n", gw_ns, "addr", "add", f"{mine}/30", "dev", "egress0")
    run("ip", "-n", inet, "addr", "add", f"{theirs}/30", "dev", "egress0")
    for ns in (gw_ns, inet):
        run("ip", "-n", ns, "link", "set", "egress0", "up")
    run("ip", "-n", gw_ns, "route", "replace", target, "via", theirs)
    run("ip", "-n", inet, "route", "replace", "default", "via", mine)  # replies go back through the egress
    _router(gw_ns)

    served: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        ns = lab.netns(f"_line-{line.id}")
        subnet = inv.subnet_of(line.next_hop)
        assert subnet is not None  # plumbed_lines keeps only these
        link = _link(lab, line.id)
        run("ip", "link", "del", link, check=False)
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", link, "master", lab.bridge, "up")
        run("ip", "-n", ns, "addr", "add", f"{line.next_hop}/{subnet.prefix.prefixlen}", "dev", "eth0")
        mine, theirs = _transit(n)
        run("ip", "-n", ns, "link", "add", "line0", "type", "veth", "peer", "name", f"line{n}", "netns", inet)
        run("ip", "-n", ns, "addr", "add", f"{mine}/30", "dev", "line0")
        run("ip", "-n", inet, "addr", "add", f"{theirs}/30", "dev", f"line{n}")
        for dev in ("lo", "eth0", "line0"):
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", inet, "link", "set", f"line{n}", "up")
        run("ip", "-n", ns, "route", "add", "default", "dev", "eth0")  # on-link, as every lab host
        run("ip", "-n", ns, "route", "replace", target, "via", theirs)
        _router(ns)
        for host in line.hosts:
            served.setdefault(host, str(line.next_hop))
        for host in inv.hosts.values():
            if any(host.address in net for net in line.subnets):
                served.setdefault(host.name, str(line.next_hop))

    gw_address = str(inv.hosts[gateway].address)

    def route(name: str) -> None:
        if name == gateway or lab.sshd_pid(name) is None:
            return
        hop = served.get(name, gw_address)
        run("ip", "-n", lab.netns(name), "route", "replace", target, "via", hop, "dev", "eth0", "onlink")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(route, inv.hosts))
    return [line.id for line in lines]
