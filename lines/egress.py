"""The egress probe (`invoke lines.egress`): which way a host's internet traffic really leaves.

One read-only script per host over one SSH session (the audit collector's way: `audit.probes.Script`, a
per-run token marking each section): the route the host's kernel picks for the inventory's internet test
address (`ip route get`, JSON where `ip` has it, else its text), the host's default routes, and a
TTL-limited trace towards the address (`tracepath -n -m N`, else `traceroute -n -q 1 -w 1 -m N`; iputils'
tracepath needs no root and ships on Debian, Kylin, openEuler and the RHEL family). Nothing is sent but
the trace's few probes.

The path is read from the route's gateway and the trace's hops, in that order: the first address that is a
leased line's `next_hop` names the line; the first that is one of `internet_probe.extranet_hops` means the
extranet's egress; a route through neither is `unknown`, and no route at all `none`. Host output is
untrusted: only addresses that parse are kept.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import shlex
from typing import Any

from audit.probes import Clock, Context, Probe, Script
from inventory.model import InternetProbe, Inventory
from lines.model import EgressFacts, EgressPath

MAX_OUTPUT = 64 * 1024  # characters of one section kept for parsing


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("()[]")))
    except ValueError:
        return None


class Egress(Probe[dict[str, Any]]):
    """The route to the test address, the default routes, the trace."""

    name = "egress"

    def __init__(self, probe: InternetProbe) -> None:
        self.probe = probe

    def command(self, ctx: Context) -> str:
        t = shlex.quote(str(self.probe.address))
        hops = int(self.probe.max_hops)
        return (f"echo '@route'; ip -j route get {t} || ip route get {t}\n"
                "echo '@default'; ip route show default; ip -6 route show default\n"
                "echo '@trace'\n"
                f"if command -v tracepath >/dev/null 2>&1; then echo 'tool=tracepath'; tracepath -n -m {hops} {t}\n"
                "elif command -v traceroute >/dev/null 2>&1; then echo 'tool=traceroute'; "
                f"traceroute -n -q 1 -w 1 -m {hops} {t}\n"
                "else echo 'tool='; fi")

    def process(self, text: str, ctx: Context) -> dict[str, Any]:
        parts = dict(re.findall(r"^@(\w+)\n(.*?)(?=^@\w+\n|\Z)", text[:MAX_OUTPUT], re.S | re.M))
        hops, reached, tool = parse_trace(parts.get("trace", ""), str(self.probe.address))
        return {"route": parse_route(parts.get("route", "")),
                "default": [line.strip() for line in parts.get("default", "").splitlines() if line.strip()][:8],
                "hops": hops, "reached": reached, "tool": tool}


def parse_route(text: str) -> dict[str, Any]:
    """`ip -j route get` (a JSON list of one route) or its text form: {gateway, dev, src}; {} for no route."""
    text = text.strip()
    if not text:
        return {}
    try:
        data = json.loads(text.splitlines()[0])
        route = data[0] if isinstance(data, list) and data else {}
    except (ValueError, IndexError):
        route = {}
        words = text.split()
        for key in ("via", "dev", "src"):
            if key in words and words.index(key) + 1 < len(words):
                route["gateway" if key == "via" else key] = words[words.index(key) + 1]
        if not words or "unreachable" in words[:2] or "prohibit" in words[:2]:
            return {}
    if not isinstance(route, dict) or route.get("type") in ("unreachable", "prohibit", "blackhole"):
        return {}
    out: dict[str, Any] = {}
    gateway = _address(str(route.get("gateway", "")))
    if gateway:
        out["gateway"] = gateway
    for key in ("dev", "src"):
        value = str(route.get(key, route.get("prefsrc", "") if key == "src" else ""))
        if re.fullmatch(r"[A-Za-z0-9_.:@-]{1,40}", value):
            out[key] = value
    return out


def parse_trace(text: str, target: str) -> tuple[list[str], bool, str]:
    """The addresses hop by hop ("*": no answer), whether the target answered, and the tool that ran."""
    tool_line = re.search(r"^tool=(\w*)$", text, re.M)
    tool = tool_line.group(1) if tool_line else ""
    hops: dict[int, str] = {}
    reached = False
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+)\??:?\s+(\S+)", line)
        if m is None or "LOCALHOST" in line:
            continue
        n = int(m.group(1))
        address = _address(m.group(2))
        if address is None:
            hops.setdefault(n, "*")
            continue
        if hops.get(n, "*") == "*":
            hops[n] = address
        if address == target or "reached" in line:
            reached = True
    return [hops[n] for n in sorted(hops)], reached, tool


def classify(inv: Inventory, route: dict[str, Any], hops: list[str],
             host: str | None = None) -> tuple[EgressPath, str | None, str | None]:
    """(path, the line it leaves by, the address that decided it), from the route's gateway and the hops. The
    extranet's egress gateway itself (`host` at one of `extranet_hops`) leaves by the extranet: it is the egress."""
    if not route and not any(h != "*" for h in hops):
        return EgressPath.none, None, None
    probe = inv.extranet.internet_probe if inv.extranet else None
    extranet = {str(a) for a in probe.extranet_hops} if probe else set()
    own = inv.hosts.get(host) if host else None
    if own is not None and str(own.address) in extranet:
        return EgressPath.extranet, None, str(own.address)
    lines = {str(line.next_hop): line.id for line in inv.leased_lines.values() if line.next_hop is not None}
    for address in [route.get("gateway"), *hops]:
        if address in lines:
            return EgressPath.line, lines[address], address
        if address in extranet:
            return EgressPath.extranet, None, address
    return EgressPath.unknown, None, None


def script_for(inv: Inventory) -> Script:
    probe = inv.extranet.internet_probe if inv.extranet else None
    if probe is None:
        raise ValueError("the inventory declares no internet test address (extranet.internet_probe)")
    return Script(secrets.token_hex(8), Context(), probes=(Clock(), Egress(probe)))


def facts_of(inv: Inventory, section: dict[str, Any], host: str | None = None) -> EgressFacts:
    probe = inv.extranet.internet_probe if inv.extranet else None
    path, line, via = classify(inv, section["route"], section["hops"], host)
    return EgressFacts(target=str(probe.address) if probe else "", route=section["route"],
                       default=section["default"], hops=section["hops"], reached=section["reached"],
                       tool=section["tool"], path=str(path), line=line, via=via)
