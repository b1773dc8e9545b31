"""The baseline's service: check hosts and devices in one run, read a stored run back, remediate.

What the command line (tasks.py) and the demo call; each returns its result object (model.py)
and never prints or exits. `check()` runs the host path (engine.check_host: one SSH session and
one script per host) and the device path (devices.check_device: one read-only session per device)
through jiyue.runner, in parallel with progress; an unreachable target is a result, never a stop.
The run is stored as one `baseline.check` run, so one report shows hosts and devices alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from audit.baseline import devices as device_path
from audit.baseline import engine
from audit.baseline import remediate as playbook
from audit.baseline.model import (
    BaselineRun,
    Catalog,
    CheckOptions,
    Profile,
    Remediation,
    TargetVerdicts,
    load_catalog,
    load_profile,
)
from inventory.groups import refuse_classified
from inventory.model import Inventory
from jiyue import runner, ssh
from jiyue.runner import Result
from jiyue.store import BASELINE_CHECK, Store


class NothingToCheck(ValueError):
    """None of the selected hosts or devices has a level to be checked at: bad input (exit 2)."""


class NoRun(LookupError):
    """No (such) baseline run in the store."""


def levels(inv: Inventory, hosts: Sequence[str], devices: Sequence[str] = (),
           level: int | None = None) -> dict[str, int | None]:
    """Each target's level: `level` when given, else its own (a host: its system's; a device: the highest
    of the systems it carries); None when that is not 2 or 3, and the target is not checked."""
    return {**engine.host_levels(inv, list(hosts), level), **device_path.device_levels(inv, list(devices), level)}


def check(inv: Inventory, hosts: Sequence[str], devices: Sequence[str] = (), *, level: int | None = None,
          profile: Profile | None = None, catalog: Catalog | None = None, options: CheckOptions | None = None,
          store: Store | None = None, console: Console | None = None, progress: bool = True) -> BaselineRun:
    """Check every selected host, then every selected device, that has a level (`level` for all when
    given); store the run when `store` is given. The profile defaults to level3's.

    Raises NothingToCheck when no selected target has a level, and ClassifiedRefused, before any session
    opens, when `hosts` holds a host of a classified system: 分级保护 is the confidential bureau's, and 等保
    is not its baseline (`options.include_classified` overrides, explicitly)."""
    catalog = catalog or load_catalog()
    profile = profile or load_profile(None, catalog)
    options = options or CheckOptions()
    if not options.include_classified:
        refuse_classified(inv, hosts, "asked to check against 等保 ")
    by_target = levels(inv, hosts, devices, level)
    if not any(by_target.values()):
        raise NothingToCheck("none of the selected hosts or devices belongs to (or carries) a system of level 2 "
                             "or 3: give --level 2 or --level 3")
    params = profile.params(catalog)
    selected = {"hosts": [h for h in hosts if by_target[h]], "devices": [d for d in devices if by_target[d]]}
    # Hosts and devices go in one run, so the store holds them as one and one report shows both.
    check_one: dict[str, Callable[..., TargetVerdicts]] = dict.fromkeys(selected["hosts"], engine.check_host)
    pool = ssh.JumpPool()  # the run's connections to the devices' jump hosts, shared by their sessions
    check_one.update(dict.fromkeys(selected["devices"], functools.partial(device_path.check_device, pool=pool)))

    def one(name: str) -> TargetVerdicts:
        return check_one[name](inv, name, by_target[name], params, catalog, options)

    observers: list[object] = [runner.ProgressBar(console)] if progress else []
    recorder = None
    if store is not None:
        recorder = runner.StoreRecorder(store, BASELINE_CHECK, inventory=str(inv.root), params={
            "profile": profile.name, "level": level, "hosts": len(selected["hosts"]),
            "devices": len(selected["devices"]), "parameters": params})
        observers.append(recorder)
    try:
        results = runner.run([*selected["hosts"], *selected["devices"]], one, workers=options.workers,
                             label="baseline", observers=observers)
    finally:
        pool.close()
    run_id = recorder.run_id if recorder else None
    return BaselineRun(inv, catalog, profile.name, results, by_target, level, run_id)


def load_run(inv: Inventory, store: Store, run_id: int | None = None, catalog: Catalog | None = None) -> BaselineRun:
    """A stored baseline run (default: the latest) as the BaselineRun the check returned, for the reports.
    Levels are known for the targets that were checked (the store keeps no level for the others)."""
    history = store.history(BASELINE_CHECK)
    if not history:
        raise NoRun("no baseline run in the store: run `invoke baseline.check` first")
    run_id = run_id or max(r.run_id for r in history)
    records = [r for r in history if r.run_id == run_id]
    if not records:
        raise NoRun(f"no baseline run {run_id} in the store")
    results = [Result(r.target, r.status == "ok", r.data, None if r.status == "ok" else r.status, r.error, r.at)
               for r in records]
    by_target = {r.target: (r.value or {}).get("level") if r.ok else None for r in results}
    return BaselineRun(inv, catalog or load_catalog(), "", results, by_target, None, run_id)


def remediate(inv: Inventory, hosts: Sequence[str], *, level: int | None = None, profile: Profile | None = None,
              catalog: Catalog | None = None, store: Store | None = None, apply: bool = False,
              workdir: Path | None = None, progress: bool = True, jump: str | None = None) -> Remediation:
    """Check the hosts (stored), fix their failed fixable checks with the playbook (check mode with a diff
    unless `apply`) and, after an applied run, check the remediated hosts again (stored): each host's
    `still_failing` are the fixes that did not take. Hosts without a level: nothing to fix. `jump`: a run's
    `--jump NAME|none`, for the checks and the playbook alike."""
    catalog = catalog or load_catalog()
    profile = profile or load_profile(None, catalog)
    if not any(levels(inv, hosts, (), level).values()):
        refuse_classified(inv, hosts, "asked to remediate ")
        return Remediation(apply, {})
    options = CheckOptions(jump=jump)
    before = check(inv, hosts, level=level, profile=profile, catalog=catalog, store=store, progress=progress,
                   options=options)
    fixes, families = playbook.planned_fixes(before.results)
    if not fixes:
        return Remediation(apply, {}, before=before)
    done = playbook.run(inv, fixes, families, profile, catalog, apply=apply, workdir=workdir, jump=jump)
    if not (done.ok and apply):
        return replace(done, before=before)
    after = check(inv, sorted(fixes), level=level, profile=profile, catalog=catalog, store=store, progress=progress,
                  options=options)
    still = {r.target: tuple(sorted(set(after.failed_checks(r)) & set(fixes[r.target]))) for r in after.checked()}
    return replace(done, hosts={h: replace(x, still_failing=still.get(h, ())) for h, x in done.hosts.items()},
                   before=before, after=after)
