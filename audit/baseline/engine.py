"""The baseline engine: evidence in, one verdict per (target, control point, check) out.

`evaluate()` is the whole judgement and is pure: a target's evidence, its level, the profile's
parameters and the catalog give the result rows. Where the evidence comes from does not matter:

- the fleet path (`check()`): one SSH session per host runs the one read-only script composed from
  the baseline probes by audit's `Script`, through jiyue.ssh and the shared runner (parallel, with
  progress; unreachable hosts are results, never a stop);
- the testinfra path (testinfra_suite.py): the same probes' commands run through a testinfra host
  and the same `evaluate()`;
- device checks: a collector for network devices gives `evaluate()` its own evidence object and
  `kind` (e.g. "device"); the catalog items list their device checks beside the Linux ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console

from audit.baseline import checks as checks_module
from audit.baseline.checks import NOT_APPLICABLE, SEVERITY, Outcome
from audit.baseline.evidence import Evidence
from audit.baseline.model import Catalog, Profile
from audit.baseline.probes import PROBES
from audit.probes import Context, Script
from inventory.model import Inventory
from jiyue import runner, ssh
from jiyue.runner import Result
from jiyue.store import BASELINE_CHECK, Store


@dataclass(frozen=True)
class Row:
    """One verdict: a control point decided by one check on one target."""

    item: str  # the level-3 clause id (catalog key)
    clause: str  # the clause at the target's level (7.1.4.x at level 2)
    test_id: str
    check: str
    status: str
    summary: str
    evidence: tuple[str, ...]
    fixable: bool


@dataclass(frozen=True)
class Options:
    workers: int = runner.DEFAULT_WORKERS
    timeout: float = 60.0
    trust_on_first_use: bool = False


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
            chk = checks_module.REGISTRY[check_id]
            if chk.kind != kind:
                continue
            try:
                outcome = chk.evaluate(evidence, params)
            except Exception as exc:  # a parser bug on odd host output must be visible, not a silent pass
                outcome = Outcome(checks_module.NEEDS_EVIDENCE, f"could not evaluate: {type(exc).__name__}: {exc}")
            rows.append(Row(item.id, clause, item.test_id, check_id, outcome.status, outcome.summary,
                            outcome.evidence, chk.fixable))
    return rows


def item_status(rows: list[Row]) -> str:
    """An item is as bad as its worst check."""
    return max((r.status for r in rows), key=lambda s: SEVERITY[s])


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


def script() -> Script:
    return Script(secrets.token_hex(8), Context(), probes=PROBES)


def collect_facts(target: ssh.Target, options: Options = Options()) -> dict[str, Any]:
    """The fleet path's evidence: one session, one script, parsed locally."""
    sc = script()
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


def collect_facts_by_commands(run: Callable[[str], str]) -> dict[str, Any]:
    """Evidence gathered one probe per command through `run(shell_text) -> stdout` (e.g. a testinfra
    host's `run`); each command carries the clock probe, so times are read in the host's zone."""
    by_name = {p.name: p for p in PROBES}
    facts: dict[str, Any] = {}
    for group in PROBE_GROUPS:
        sc = Script(secrets.token_hex(8), Context(), probes=(by_name["clock"], *(by_name[n] for n in group)))
        facts.update(sc.parse(run(sc.text).encode()))
    return facts


def judge_host(facts: dict[str, Any], level: int, params: dict[str, Any], catalog: Catalog,
               declared_family: str | None = None) -> dict[str, Any]:
    ev = Evidence(facts, declared_family)
    rows = evaluate(ev, level, params, catalog)
    os_ = facts.get("os") or {}
    return {"level": level, "family": ev.family, "os": os_.get("pretty_name") or os_.get("distribution"),
            "distribution": os_.get("distribution"), "collect_seconds": facts.get("collect_seconds"),
            "rows": [asdict(r) for r in rows]}


def check(inv: Inventory, hosts: list[str], profile: Profile, catalog: Catalog, level: int | None = None,
          options: Options = Options(), store: Store | None = None, console: Console | None = None,
          progress: bool = True) -> tuple[int | None, list[Result], dict[str, int | None]]:
    """The fleet path on every host that has a level; store the run. Hosts without one are returned
    with level None and not contacted."""
    levels = host_levels(inv, hosts, level)
    targets = [h for h in hosts if levels[h]]
    params = profile.params(catalog)

    def one(host: str) -> dict[str, Any]:
        facts = collect_facts(ssh.Target.of(inv, host), options)
        return judge_host(facts, levels[host], host_params(inv, host, params), catalog,
                          inv.hosts[host].os_family.value)

    results = runner.run(targets, one, workers=options.workers, label="baseline", console=console, progress=progress)
    run_id = None
    if store is not None:
        run_id = store.record(BASELINE_CHECK, results, inventory=str(inv.root),
                              params={"profile": profile.name, "level": level, "hosts": len(targets),
                                      "parameters": params})
    return run_id, results, levels
