"""The baseline engine: evidence in, one verdict per (target, control point, check) out, and the host path.

`evaluate()` is the whole judgement and is pure: a target's evidence, its level, the profile's
parameters and the catalog give the result rows. Where the evidence comes from does not matter:

- the fleet path (`check_host()`, run over the fleet by service.check): one SSH session per host
  runs the one read-only script composed from the baseline probes by audit's `Script`;
- the testinfra path (testinfra/): the same probes' commands run through a testinfra host and the
  same `evaluate()`;
- the device path (devices.py): a network device's running configuration as its own evidence
  object, judged with `kind="device"`; the catalog items list their device checks beside the Linux ones.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from audit.baseline.evidence import Evidence
from audit.baseline.model import (
    NEEDS_EVIDENCE,
    NOT_APPLICABLE,
    REGISTRY,
    Catalog,
    CheckOptions,
    CheckVerdict,
    Row,
    TargetVerdicts,
)
from audit.baseline.probes import PROBES, probes
from audit.baseline.sshd import Connection
from audit.probes import Context, Script
from inventory.model import Inventory
from jiyue import ssh


def evaluate(evidence: Any, level: int, params: dict[str, Any], catalog: Catalog, kind: str = "linux") -> list[Row]:
    """Judge one target's evidence at its level: every item of the level that has a check of `kind`
    (or is not applicable by the catalog) gives one row per check. A check that raises is reported
    as needing evidence with the error, never as a pass."""
    rows = []
    for item in catalog.items_at(level):
        clause = item.clause_at(level)
        not_applicable = item.not_applicable_for(kind)
        if not_applicable:
            rows.append(Row(item.id, clause, item.test_id, "-", NOT_APPLICABLE, not_applicable["en"], (), False))
            continue
        for check_id in item.checks:
            chk = REGISTRY[check_id]
            if chk.kind != kind:
                continue
            try:
                verdict = chk.evaluate(evidence, params)
            except Exception as exc:  # a parser bug on odd host output must be visible, not a silent pass
                verdict = CheckVerdict(NEEDS_EVIDENCE, f"could not evaluate: {type(exc).__name__}: {exc}")
            rows.append(Row(item.id, clause, item.test_id, check_id, verdict.status, verdict.summary,
                            verdict.evidence, chk.fixable))
    return rows


def host_params(inv: Inventory, host: str, params: dict[str, Any]) -> dict[str, Any]:
    """The profile's parameters plus what the inventory declares for the host's system (its service ports)."""
    system = inv.owner(host)
    ports = [s.port for s in system.services if s.host == host] if system else []
    return {**params, "_declared_services": ports}


def host_levels(inv: Inventory, hosts: list[str], level: int | None) -> dict[str, int | None]:
    """Each host's level: --level when given, else its system's graded-protection level (2 or 3)."""
    out: dict[str, int | None] = {}
    for name in hosts:
        system = inv.owner(name)
        declared = system.protection.level if system and system.protection else None
        out[name] = level or (declared if declared in (2, 3) else None)
    return out


# Addresses that stand for "anyone outside": TEST-NET-3, -2, -1 (RFC 5737) and IPv6's documentation prefix.
OUTSIDE = ("203.0.113.7", "198.51.100.7", "192.0.2.7", "2001:db8:ffff::7")


def connections(inv: Inventory | None) -> tuple[tuple[str, Connection], ...]:
    """The SSH connections sshd is asked about: root from an address outside the inventory's networks and its
    declared management sources (the connection that matters), then root from each declared management source."""
    mgmt = inv.extranet.management if inv is not None and inv.extranet else None
    sources = list(mgmt.sources) if mgmt else []
    own = [*sources, *(s.prefix for s in inv.subnets.values())] if inv is not None else []
    outside = next(a for a in OUTSIDE if not any(ipaddress.ip_address(a) in n for n in own
                                                if n.version == ipaddress.ip_address(a).version))
    out = [(f"from outside the management networks ({outside})", Connection("root", outside))]
    for net in sources:
        address = str(next(iter(net.hosts()), net.network_address))
        out.append((f"from management source {net} ({address})", Connection("root", address)))
    return tuple(out)


def script(inv: Inventory | None = None) -> Script:
    return Script(secrets.token_hex(8), Context(), probes=probes(connections(inv)))


def collect_facts(target: ssh.Target, options: CheckOptions | None = None, inv: Inventory | None = None,
                  ) -> dict[str, Any]:
    """The fleet path's evidence: one session, one script, parsed locally."""
    options = options or CheckOptions()
    sc = script(inv)
    out = ssh.run(target, sc.text, timeout=options.timeout, trust_on_first_use=options.trust_on_first_use)
    facts = sc.parse(out.stdout)
    if "clock" not in facts or "config" not in facts:
        raise ssh.SSHError("error", f"the baseline script's output is incomplete (exit {out.exit_status}): "
                                    f"{out.stderr.decode('utf-8', 'replace')[:200]}")
    facts["collect_seconds"] = round(out.elapsed, 3)
    return facts


# The testinfra path runs each probe as its own command, as a testinfra test would (Processes and
# Sockets share one: Sockets names each socket's process from the pids Processes finds).
PROBE_GROUPS: tuple[tuple[str, ...], ...] = tuple(
    (("processes", "sockets") if p.name == "processes" else (p.name,)) for p in PROBES
    if p.name not in ("clock", "sockets"))


def collect_facts_by_commands(run: Callable[[str], str], inv: Inventory | None = None) -> dict[str, Any]:
    """Evidence gathered one probe per command through `run(shell_text) -> stdout` (e.g. a testinfra
    host's `run`); each command carries the clock probe, so times are read in the host's zone."""
    by_name = {p.name: p for p in probes(connections(inv))}
    facts: dict[str, Any] = {}
    for group in PROBE_GROUPS:
        sc = Script(secrets.token_hex(8), Context(), probes=(by_name["clock"], *(by_name[n] for n in group)))
        facts.update(sc.parse(run(sc.text).encode()))
    return facts


def judge_host(facts: dict[str, Any], level: int, params: dict[str, Any], catalog: Catalog,
               declared_family: str | None = None) -> TargetVerdicts:
    """One host's verdicts from its facts, in the shape a run and the store keep."""
    ev = Evidence(facts, declared_family)
    rows = evaluate(ev, level, params, catalog)
    os_ = facts.get("os") or {}
    return {"level": level, "family": ev.family, "os": os_.get("pretty_name") or os_.get("distribution"),
            "distribution": os_.get("distribution"), "collect_seconds": facts.get("collect_seconds"),
            "rows": [asdict(r) for r in rows]}


def check_host(inv: Inventory, host: str, level: int, params: dict[str, Any], catalog: Catalog,
               options: CheckOptions | None = None) -> TargetVerdicts:
    """The fleet path on one host: collect over one SSH session, judge at `level`."""
    try:
        target = ssh.Target.of(inv, host, options.jump if options else None)
    except LookupError as exc:
        raise ssh.SSHError("error", str(exc)) from exc
    facts = collect_facts(target, options, inv)
    return judge_host(facts, level, host_params(inv, host, params), catalog, inv.hosts[host].os_family.value)
