"""Collection: one read-only script per host over one SSH session, parsed locally, stored.

The script is composed from the probes (audit/probes.py) with the host's own declarations (its
system's log and data paths), runs with `sh -s` (nothing is written to the host) and comes back
as sections parsed into facts. Failures are results, not exceptions: the runner records the
kind (unreachable, auth_failed, timeout, host_key) and the fleet run goes on. Hosts of classified
(涉密) systems are refused before anything connects, unless the caller overrides it explicitly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from rich.console import Console

from audit.model import HostFacts
from audit.probes import Context, Script
from inventory.groups import refuse_classified
from inventory.model import Inventory
from jiyue import runner, ssh
from jiyue.runner import Result
from jiyue.store import AUDIT_COLLECT, Store


@dataclass(frozen=True)
class CollectOptions:
    """How a collection runs: hosts at once, the time each may take, the sample, host-key trust."""

    workers: int = runner.DEFAULT_WORKERS
    timeout: float = 60.0  # per host, connect included
    sample_seconds: int = 1
    trust_on_first_use: bool = False
    # Hosts of classified (涉密) systems are the confidential bureau's (分级保护): only an explicit override
    # (`--include-classified`) lets a collection reach them.
    include_classified: bool = False
    # A run's `--jump NAME|none`: replaces the inventory's jump host settings for every host (None: as declared).
    jump: str | None = None


def context(inv: Inventory, host: str, sample_seconds: int = 1) -> Context:
    """The probes' context for one host: its system's declared log and data paths."""
    system = inv.owner(host)
    if system is None:
        return Context(sample_seconds=sample_seconds)
    return Context(log_paths=tuple(system.log_paths), data_paths=tuple(system.data_paths),
                   sample_seconds=sample_seconds)


def script_for(inv: Inventory, host: str, sample_seconds: int = 1) -> Script:
    return Script(secrets.token_hex(8), context(inv, host, sample_seconds))


def collect_host(inv: Inventory, host: str, options: CollectOptions, pool: ssh.JumpPool | None = None) -> HostFacts:
    """One host's facts; through its jump hosts on `pool`'s connections (the fleet run's) when it has any."""
    script = script_for(inv, host, options.sample_seconds)
    try:
        target = ssh.Target.of(inv, host, options.jump)
    except LookupError as exc:
        raise ssh.SSHError("error", str(exc)) from exc
    out = ssh.run(target, script.text, timeout=options.timeout, trust_on_first_use=options.trust_on_first_use,
                  pool=pool)
    facts = script.parse(out.stdout)
    if "clock" not in facts:
        raise ssh.SSHError("error", f"the collection script's output is incomplete (exit {out.exit_status}): "
                                    f"{out.stderr.decode('utf-8', 'replace')[:200]}")
    facts["collect_seconds"] = round(out.elapsed, 3)
    return facts


def collect(inv: Inventory, hosts: list[str], options: CollectOptions = CollectOptions(), store: Store | None = None,
            console: Console | None = None, progress: bool = True) -> tuple[int | None, list[Result]]:
    """Collect from every host; store the run (when a store is given) and return its id and results.

    Raises ClassifiedRefused, before any session opens, when `hosts` holds a host of a classified
    system and `options.include_classified` is not set."""
    if not options.include_classified:
        refuse_classified(inv, hosts, "asked to collect ")
    observers: list[object] = [runner.ProgressBar(console)] if progress else []
    recorder = None
    if store is not None:
        recorder = runner.StoreRecorder(store, AUDIT_COLLECT, inventory=str(inv.root),
                                        params={"hosts": len(hosts), "sample_seconds": options.sample_seconds})
        observers.append(recorder)
    pool = ssh.JumpPool()  # the run's connections to jump hosts, shared by its hosts
    try:
        results = runner.run(hosts, lambda h: collect_host(inv, h, options, pool), workers=options.workers,
                             label="collect", observers=observers)
    finally:
        pool.close()
    return (recorder.run_id if recorder else None), results
