"""Undeclared hosts (未登记主机): the inventory's declared subnets scanned with nmap, the findings judged.

nmap (Debian's package) does the scanning, driven through its XML output (`-oX -`, read with the stdlib's
xml.etree): host discovery (ARP on the local segment, ICMP and TCP pings beyond it), then a SYN scan of the
ports in `discover.yaml` at a bounded rate (`--max-rate`). Hosts of classified (涉密) systems are never
scanned: their addresses go to nmap's `--exclude`, so no probe is ever sent to them.

Two things are done outside nmap, each for a reason:

- nmap runs with `-n`: its own resolver retries a DNS server it cannot reach for minutes; reverse names
  are asked of the machine's resolver (`socket.gethostbyaddr`: /etc/hosts, then DNS, as nsswitch says), in
  parallel and with a bound, and only for the undeclared addresses, where a name matters;
- the SSH banner is the first line the server sends (RFC 4253 4.2), read with one plain connection to port
  22 of each undeclared host. nmap's `-sV` would probe every open port with its whole probe list, sending
  payloads to databases nobody declared, and limiting it to 22 would take a second scan.

Live addresses that no inventory record declares are undeclared hosts. A host that answers only on Windows'
ports (RDP, SMB) is reported as a probable Windows server, out of scope for collection. The others with SSH
open are collected with the audit's own collector (audit/collect.py) and its host-key rules (a key nobody
recorded is refused unless `--trust-on-first-use`), and draft system records are proposed for them, grouped
by who they talk to and what they listen on (`propose`). Declared hosts and devices in the scanned subnets
that did not answer are reported too.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from audit.collect import CollectOptions, collect
from audit.model import (
    UNDECLARED,
    Discovery,
    DraftService,
    DraftSystem,
    FoundHost,
    HostFacts,
    SilentHost,
)
from inventory.model import JUMP_NONE, Host, Inventory
from jiyue import ssh
from jiyue.runner import Result
from jiyue.store import AUDIT_DISCOVER, Store

POLICY = Path(__file__).with_name("discover.yaml")
NMAP = "nmap"
SSH_PORT = 22
LOOPBACK = ("127.", "::1")


class DiscoverError(Exception):
    """The scan could not run (nmap missing or failing, a --limit naming no subnet): the message says why."""


def load_policy(path: Path | None = None) -> dict[str, Any]:
    data = yaml.safe_load((path or POLICY).read_text(encoding="utf-8")) or {}
    data["ports"] = {int(p): str(n) for p, n in (data.get("ports") or {}).items()}
    return data


@dataclass(frozen=True)
class DiscoverOptions:
    """How a discovery runs: the rate, whether undeclared hosts are collected, and with what trust."""

    rate: int | None = None  # packets a second (None: the policy's)
    collect: bool = True
    trust_on_first_use: bool = False
    workers: int = 32
    timeout: float = 60.0
    jump: str | None = None
    policy: dict[str, Any] = field(default_factory=load_policy)


# --- what the inventory declares -------------------------------------------------------------------


def select_subnets(inv: Inventory, limit: str | None) -> list[str]:
    """Subnet names a --limit selects: `subnet_<name>` or `<name>` terms (shell patterns), comma- or colon-
    separated; every subnet without one. A term that matches nothing is a DiscoverError."""
    names = list(inv.subnets)
    if not limit:
        return names
    chosen: list[str] = []
    for term in filter(None, (x.strip() for x in limit.replace(":", ",").split(","))):
        found = fnmatch.filter(names, term.removeprefix("subnet_"))
        if not found:
            raise DiscoverError(f"--limit {term}: no such subnet (declared: "
                                f"{', '.join('subnet_' + n for n in names) or 'none'})")
        chosen += [n for n in found if n not in chosen]
    return chosen


def declared_addresses(inv: Inventory) -> dict[str, tuple[str, str]]:
    """address -> (what declares it, its name): hosts, devices, jump hosts, draft hosts, subnet gateways, the
    servers the extranet's management names (syslog, NTP), leased lines' routers and private networks' boundary
    devices (declared, though not hosts jiyue manages)."""
    out: dict[str, tuple[str, str]] = {}
    for subnet in inv.subnets.values():
        out[str(subnet.gateway)] = ("gateway", subnet.name)
    for line in inv.leased_lines.values():
        if line.next_hop is not None:
            out[str(line.next_hop)] = ("leased_line", line.id)
    for network in inv.private_networks.values():
        for boundary in network.boundary_devices:
            out[str(boundary.address)] = ("boundary_device", f"{network.id}: {boundary.name}")
    if inv.extranet is not None:
        management = inv.extranet.management
        for address in [*(management.syslog_hosts or []), *(management.ntp_servers or [])]:
            out.setdefault(str(address), ("server", "extranet.management"))
    for draft in inv.drafts.get("hosts", {}).values():
        if draft.data.get("address"):
            out[str(ipaddress.ip_address(str(draft.data["address"])))] = ("draft_host", draft.key)
    for jump in inv.jump_hosts.values():
        out[str(jump.address)] = ("jump_host", jump.name)
    for device in inv.devices.values():
        out[str(device.address)] = ("device", device.name)
    for host in inv.hosts.values():
        out[str(host.address)] = ("host", host.name)
    return out


def classified_addresses(inv: Inventory) -> list[str]:
    """Addresses of every host jiyue must not contact: classified (涉密) systems' hosts, and hosts only a draft
    system lists without declaring them non-classified (inventory.model.Inventory.is_classified)."""
    out = {str(h.address) for h in inv.hosts.values() if inv.is_classified(h.name)}
    out |= {str(ipaddress.ip_address(str(d.data["address"]))) for d in inv.drafts.get("hosts", {}).values()
            if d.data.get("address") and inv.is_classified(d.key)}
    return sorted(out, key=ipaddress.ip_address)


# --- nmap ------------------------------------------------------------------------------------------


@dataclass
class ScanHost:
    address: str
    ports: list[int]
    mac: str = ""


def nmap_command(targets: list[str], excluded: list[str], ports: Iterable[int], rate: int, max_retries: int,
                 ipv6: bool = False) -> list[str]:
    """The nmap command line: XML to stdout, no DNS, the ports, the rate, the excluded addresses. Pings: ARP on
    the local segment (nmap's own choice as root), beyond it ICMP echo and timestamp, TCP SYN to the ports
    servers answer on and ACK to 80, so a host whose firewall drops ICMP is still found."""
    port_list = ",".join(str(p) for p in sorted(ports))
    cmd = [NMAP, "-oX", "-", "-n", "-p", port_list, "--max-rate", str(rate), "--max-retries", str(max_retries),
           "-PS22,80,443,445,3389"]
    if os.geteuid() == 0:  # raw packets: ICMP and ACK pings, SYN scan (half-open: no service's accept() sees it)
        cmd += ["-PE", "-PA80", "-sS"] + ([] if ipv6 else ["-PP"])  # ICMP timestamp has no ICMPv6 counterpart
    # without root nmap pings and scans with connect(): the -PS ports only, a full TCP handshake each
    if ipv6:
        cmd.append("-6")
    if excluded:
        cmd += ["--exclude", ",".join(excluded)]
    return cmd + targets


def run_nmap(cmd: list[str], timeout: float) -> tuple[list[ScanHost], str]:
    """Run one scan; (the hosts that answered, the command line nmap recorded in its XML)."""
    if shutil.which(NMAP) is None:
        raise DiscoverError("nmap is not installed: apt-get install nmap (bin/jiyue setup installs it)")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DiscoverError(f"nmap did not finish in {timeout:.0f} s: scan fewer subnets (--limit) or raise "
                            "--rate") from None
    if done.returncode != 0:
        raise DiscoverError(f"nmap failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return parse_nmap_xml(done.stdout)


def parse_nmap_xml(text: str) -> tuple[list[ScanHost], str]:
    """nmap's XML (`-oX`): each host nmap saw up, with its open TCP ports and MAC address; and its `args`."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DiscoverError(f"nmap's XML output cannot be read: {exc}") from None
    hosts = []
    for node in root.iter("host"):
        status = node.find("status")
        if status is None or status.get("state") != "up":
            continue
        address = mac = ""
        for a in node.findall("address"):
            if a.get("addrtype") in ("ipv4", "ipv6"):
                address = str(ipaddress.ip_address(a.get("addr", "")))
            elif a.get("addrtype") == "mac":
                mac = a.get("addr", "")
        ports = sorted(int(p.get("portid", 0)) for p in node.iter("port")
                       if p.get("protocol") == "tcp" and (p.find("state") is not None)
                       and p.find("state").get("state") == "open")  # type: ignore[union-attr]
        if address:
            hosts.append(ScanHost(address, ports, mac))
    return hosts, root.get("args", "")


def scan_plan(inv: Inventory, subnets: list[str], policy: dict[str, Any]) -> list[tuple[list[str], bool]]:
    """(targets, ipv6) per nmap run: IPv4 subnets swept whole; IPv6 subnets swept when narrow enough, otherwise
    their declared addresses only."""
    v4 = [str(inv.subnets[s].prefix) for s in subnets if inv.subnets[s].prefix.version == 4]
    v6: list[str] = []
    declared = declared_addresses(inv)
    for name in subnets:
        prefix = inv.subnets[name].prefix
        if prefix.version != 6:
            continue
        if prefix.prefixlen >= int(policy.get("ipv6_sweep_min_prefix", 120)):
            v6.append(str(prefix))
        else:
            v6 += [a for a in declared if ipaddress.ip_address(a) in prefix]
    return [(t, six) for t, six in ((v4, False), (v6, True)) if t]


# --- finding out about undeclared hosts -----------------------------------------------------------


def reverse_names(addresses: list[str], timeout: float) -> dict[str, str]:
    """Each address's reverse name from the machine's resolver, "" when none answers within `timeout`."""
    def lookup(address: str) -> str:
        try:
            return socket.gethostbyaddr(address)[0]
        except OSError:
            return ""

    if not addresses:
        return {}
    pool = ThreadPoolExecutor(min(32, len(addresses)))
    futures = {a: pool.submit(lookup, a) for a in addresses}
    wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)  # a resolver still waiting is left behind, not waited for
    return {a: f.result() if f.done() else "" for a, f in futures.items()}


def proposed_name(address: str, reverse: str, taken: set[str]) -> str:
    """A host name the inventory accepts: the reverse name's first label, else `host-` and the address."""
    label = re.sub(r"[^a-z0-9-]+", "-", reverse.split(".")[0].lower()).strip("-")[:63] if reverse else ""
    name = label or "host-" + re.sub(r"[.:]+", "-", address).strip("-")
    base, n = name, 2
    while name in taken:
        name, n = f"{base[:60]}-{n}", n + 1
    taken.add(name)
    return name


def _os_family(facts: HostFacts) -> str | None:
    os_ = facts.get("os") or {}
    ids = {str(os_.get("id", "")).lower(), *(str(x).lower() for x in os_.get("id_like") or [])}
    if ids & {"debian", "ubuntu", "kylin", "uos", "deepin"}:
        return "debian"
    if ids & {"rhel", "fedora", "centos", "openeuler", "anolis", "kylin-server"}:
        return "redhat"
    return None


def draft_host(found: FoundHost, facts: HostFacts | None) -> dict[str, Any]:
    """The draft host record of an undeclared host: its name and address, and the OS its collection saw."""
    record: dict[str, Any] = {"name": found.name, "address": found.address}
    if facts:
        family = _os_family(facts)
        if family:
            record["os_family"] = family
        os_ = facts.get("os") or {}
        shown = " ".join(x for x in (os_.get("distribution") or os_.get("name"), os_.get("version_id")) if x)
        if shown:
            record["os"] = shown
    return record


class _Groups:
    """Union-find over host names."""

    def __init__(self, names: Iterable[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def propose(inv: Inventory, found: list[FoundHost], facts: dict[str, HostFacts]) -> list[DraftSystem]:
    """Draft systems for the collected undeclared hosts (`facts`: name -> facts): hosts connected to each other,
    or listening on the same ports with the same programs, are one system; its services are what they listen on
    (SSH and loopback aside), `depends_on` the inventory systems they connect to, `dependents` those that
    connect to them: the measured dependency map the audit builds (audit.history), seen from the other side."""
    by_address = {f.address: f.name for f in found if f.name in facts}
    inventory_hosts = {str(h.address): name for name, h in inv.hosts.items()}
    groups = _Groups(facts)
    services: dict[str, list[DraftService]] = {}
    outbound: dict[str, set[str]] = defaultdict(set)
    inbound: dict[str, set[str]] = defaultdict(set)
    evidence: dict[str, list[str]] = defaultdict(list)
    for name, f in facts.items():
        listening = sorted({(x["port"], x.get("process") or "") for x in f.get("listening", [])
                            if x.get("proto") == "tcp" and x["port"] != SSH_PORT
                            and not str(x.get("address", "")).startswith(LOOPBACK)})
        ports = {p for p, _ in listening}
        seen: set[int] = set()
        services[name] = []
        for port, process in listening:
            if port not in seen:
                seen.add(port)
                services[name].append(DraftService(name, port, process))
                evidence[name].append(f"{name} listens on tcp/{port} ({process or '?'})")
        for conn in f.get("connections", []):
            peer, local_port = str(conn.get("peer", "")), conn.get("local_port")
            if local_port == SSH_PORT or peer.startswith(LOOPBACK):
                continue  # our own collection's session, or the host talking to itself
            into_us = local_port in ports
            how = (f"TCP {peer} -> {name}:{local_port}" if into_us else
                   f"TCP {name} -> {peer}:{conn.get('peer_port')}")
            if peer in by_address and by_address[peer] != name:
                groups.join(name, by_address[peer])
                evidence[name].append(how)
            elif peer in inventory_hosts:
                owner = inv.owner(inventory_hosts[peer])
                label = owner.id if owner else inventory_hosts[peer]
                (inbound if into_us else outbound)[name].add(label)
                evidence[name].append(f"{how} ({label})")
            else:
                evidence[name].append(f"{how} (not in the inventory)")
    signature: dict[tuple[tuple[int, str], ...], str] = {}
    for name in sorted(facts):
        key = tuple(sorted((s.port, s.process) for s in services[name]))
        if key:
            if key in signature:
                groups.join(name, signature[key])
            else:
                signature[key] = name
    members: dict[str, list[str]] = defaultdict(list)
    for name in sorted(facts):
        members[groups.find(name)].append(name)
    drafts = []
    for root, names in sorted(members.items()):
        sid = "discovered-" + root.removeprefix("host-")
        depends = sorted({s for n in names for s in outbound[n]} - {sid})
        users = sorted({s for n in names for s in inbound[n]})
        lines = list(dict.fromkeys(e for n in names for e in evidence[n]))
        departments = {inv.systems[s].department for s in (*depends, *users) if s in inv.systems}
        if len(departments) == 1:  # a hint for whoever completes it, not a field: a department confirms it
            lines.append(f"every system it talks to is department {next(iter(departments))}'s: probably its own")
        drafts.append(DraftSystem(sid, names, [s for n in names for s in services[n]], depends, users, lines))
    return drafts


# --- the run ---------------------------------------------------------------------------------------


def discover(inv: Inventory, subnets: list[str] | None = None, options: DiscoverOptions | None = None,
             store: Store | None = None) -> Discovery:
    """Scan `subnets` (default: all declared), judge what answered against the inventory, collect the undeclared
    hosts that accept the city's credentials and propose draft records for them; store the run when a store
    is given. Raises DiscoverError when the scan cannot run."""
    options = options or DiscoverOptions()
    policy = options.policy
    ports = sorted(policy["ports"])
    rate = int(options.rate or policy.get("rate", 300))
    windows_only = {int(p) for p in policy.get("windows_only", [3389, 445])}
    subnets = list(inv.subnets) if subnets is None else subnets
    behind = {s: jump for s in subnets
              if (jump := options.jump or inv.subnets[s].jump or inv.defaults.jump) not in (None, JUMP_NONE)}
    subnets = [s for s in subnets if s not in behind]
    networks = [ipaddress.ip_network(str(inv.subnets[s].prefix)) for s in subnets]
    excluded = [a for a in classified_addresses(inv) if any(ipaddress.ip_address(a) in n for n in networks)]
    started, began = datetime.now(UTC), time.monotonic()
    live: dict[str, ScanHost] = {}
    args: list[str] = []
    for targets, ipv6 in scan_plan(inv, subnets, policy):
        size = sum(ipaddress.ip_network(t, strict=False).num_addresses for t in targets)
        budget = 120 + 6 * size * (len(ports) + 3) / rate  # retries and waits included, generously
        hosts, recorded = run_nmap(nmap_command(targets, [a for a in excluded if (":" in a) == ipv6], ports, rate,
                                                int(policy.get("max_retries", 2)), ipv6), budget)
        args.append(recorded)
        live.update({h.address: h for h in hosts if h.address not in excluded})
    declared = declared_addresses(inv)
    taken = set(inv.hosts) | set(inv.devices) | set(inv.drafts.get("hosts", {}))
    undeclared = sorted((a for a in live if a not in declared), key=ipaddress.ip_address)
    names = reverse_names(undeclared, float(policy.get("dns_timeout", 3)))
    with ThreadPoolExecutor(16) as pool:
        banners = dict(zip(undeclared, pool.map(
            lambda a: ssh.identification(a, SSH_PORT, float(policy.get("banner_timeout", 3)))
            if SSH_PORT in live[a].ports else "", undeclared), strict=True))
    found: list[FoundHost] = []
    for address in sorted(live, key=ipaddress.ip_address):
        scan = live[address]
        kind, record = declared.get(address, (UNDECLARED, ""))
        f = FoundHost(address, scan.ports, kind, record, scan.mac)
        if kind == UNDECLARED:
            f.reverse_name, f.ssh_banner = names.get(address, ""), banners.get(address, "")
            f.name = proposed_name(address, f.reverse_name, taken)
            f.windows = bool(scan.ports) and set(scan.ports) <= windows_only
        found.append(f)
    silent = [SilentHost(name, str(h.address), "host", (inv.owner(name).id if inv.owner(name) else ""))
              for name, h in sorted(inv.hosts.items())
              if str(h.address) not in live and str(h.address) not in excluded
              and any(h.address in n for n in networks)]
    silent += [SilentHost(name, str(d.address), "device") for name, d in sorted(inv.devices.items())
               if str(d.address) not in live and any(d.address in n for n in networks)]
    result = Discovery(inv, [str(n) for n in networks], excluded, ports, rate, args, started, 0.0, found, silent)
    # nmap runs here: a subnet this machine reaches only through a jump host (堡垒机) cannot be scanned from here,
    # and scanning it anyway would call every declared host silent.
    result.notes += [f"behind_jump:{s}:{jump}" for s, jump in behind.items()]
    if options.collect:
        _collect(inv, result, options, store)
    result.seconds = round(time.monotonic() - began, 2)
    if store is not None:
        result.run_id = store.record(
            AUDIT_DISCOVER,
            [Result(f.address, True, f.as_dict(), started=started) for f in found]
            + [Result(s.address, False, s.as_dict(), "unreachable", f"{s.kind} {s.name} did not answer",
                      started=started) for s in silent],
            inventory=str(inv.root), started=started,
            params={"networks": result.networks, "excluded": len(excluded), "ports": ports, "rate": rate,
                    "nmap": args, "collect_run": result.collect_run_id,
                    "drafts": [d.as_dict() for d in result.drafts]})
    return result


def _collect(inv: Inventory, result: Discovery, options: DiscoverOptions, store: Store | None) -> None:
    """Collect the undeclared hosts with SSH open (not the Windows-like ones) as the audit collects any host, then
    propose drafts for those that answered. Each is given a provisional host record (its proposed name and
    address, the inventory's SSH defaults), so the collector's host-key rules and jump hosts apply unchanged."""
    candidates = [f for f in result.undeclared if SSH_PORT in f.ports and not f.windows]
    if not candidates:
        return
    provisional = {f.name: Host(name=f.name, address=f.address, os_family="debian", os="unknown", role="undeclared")
                   for f in candidates}
    scanning = inv.model_copy(update={"hosts": {**inv.hosts, **provisional}})
    run_id, results = collect(scanning, list(provisional),
                              CollectOptions(workers=options.workers, timeout=options.timeout,
                                             trust_on_first_use=options.trust_on_first_use, jump=options.jump),
                              store=store, progress=False)
    result.collect_run_id = run_id
    by_name = {r.target: r for r in results}
    facts: dict[str, HostFacts] = {}
    for f in candidates:
        r = by_name[f.name]
        f.collection = "ok" if r.ok else (r.error_kind or "error")
        f.collection_error = "" if r.ok else (r.error or "")
        if r.ok:
            facts[f.name] = r.value
    if any(f.collection == "host_key" for f in candidates) and not options.trust_on_first_use:
        result.notes.append("host_key")
    result.drafts = propose(inv, candidates, facts)
    result.draft_hosts = [draft_host(f, facts[f.name]) for f in candidates if f.name in facts]


def draft_records(result: Discovery) -> dict[str, Any]:
    """The proposal `inventory.import --from-discovery` reads: draft host and system records in the inventory's
    own shape (what is unknown is left out: the survey completes it)."""
    systems = []
    for d in result.drafts:
        record: dict[str, Any] = {"id": d.id, "hosts": d.hosts}
        if d.services:
            record["services"] = [{"name": s.name, "host": s.host, "port": s.port} for s in d.services]
        if d.depends_on:
            record["depends_on"] = d.depends_on
        systems.append(record)
    return {"hosts": [dict(h) for h in result.draft_hosts], "systems": systems}
