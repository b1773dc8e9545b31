"""The network domain's services: plan, render, diff and push, each returning its result.

What `invoke network.*` and the demo call. Nothing here prints or exits: bad input raises
`NetworkInputError` (or `PlanningError`, whose `problems` list every problem of the plan's input),
and a push that fails on devices is a `PushRun` saying so, not an exception.

- `plan` writes the address plan file and returns `PlannedAddresses` (network/report.py writes its report);
- `render` renders the selected devices' intended configs and, given `out`, writes them;
- `diff` reads each device and computes what a push would send (read-only);
- `push` pushes (a dry run without `options.apply`), recorded in the store as it finishes;
- `restore` brings one device back to a backup (what a failed rollback's message tells the operator to run).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from inventory.model import Inventory
from jiyue.device import DeviceError
from jiyue.runner import StoreRecorder
from jiyue.store import NETWORK_PUSH, Store
from network import plan as planner
from network.model import AddressPlan, PlanError, PlannedAddresses, load_plan
from network.push import DevicePush, Pusher, PushOptions, PushRun
from network.reach import Verification, summary_lines
from network.reach import verify as verify_reach
from network.render import Rendered, RenderError, load_baseline, select_devices, write_configs
from network.render import render as render_devices

__all__ = ["DeviceError", "NetworkInputError", "ReachabilityError", "Rendering", "diff", "intended_configs", "plan",
           "push", "render", "restore", "verify"]


class NetworkInputError(ValueError):
    """Bad input for a network service: no plan file, a plan or limit that does not fit, … (exit 2)."""


class ReachabilityError(NetworkInputError):
    """The plan's intended configs fail the reachability check (network/reach.py); render refuses them."""

    def __init__(self, result: Verification) -> None:
        self.result = result
        super().__init__(f"the plan fails the reachability check ({len(result.failures)} failure(s)):\n"
                         + "\n".join(summary_lines(result))
                         + "\nnothing was written: fix the plan or inventory (see `invoke network.verify`), "
                         "or give --force to render anyway")


@dataclass
class Rendering:
    """The intended configs of the selected devices, those left out (golden networks) with why, and the
    files written (`<out>/<device>.cfg`)."""

    rendered: dict[str, Rendered]
    skipped: dict[str, str] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)


def plan(inv: Inventory, plan_path: Path | None = None) -> PlannedAddresses:
    """Plan the extranet addresses against the plan file (default network/plans/<inventory dir>-<digest>.yaml), keeping
    every existing entry, and write it back. Raises PlanningError on bad input."""
    planned, path = planner.plan_inventory(inv, plan_path)
    return PlannedAddresses(inv, planned, path)


def _load_plan(inv: Inventory, plan_path: Path | None) -> AddressPlan:
    path = plan_path or planner.default_plan_path(inv)
    if not path.exists():
        raise NetworkInputError(f"no address plan at {path}: make it with `invoke network.plan` (or give --plan)")
    try:
        return load_plan(path, inv)
    except PlanError as exc:
        raise NetworkInputError(str(exc)) from None


def verify(inv: Inventory, plan_path: Path | None = None, baseline: Path | None = None) -> Verification:
    """The reachability check of the whole city's intended configs (every device the plan covers)."""
    loaded = _load_plan(inv, plan_path)
    try:
        return verify_reach(inv, loaded, load_baseline(baseline))
    except RenderError as exc:
        raise NetworkInputError(str(exc)) from None


def render(inv: Inventory, out: Path | None = None, *, limit: str | None = None, plan_path: Path | None = None,
           baseline: Path | None = None, force: bool = False) -> Rendering:
    """Render each selected device's intended config from the address plan; with `out`, write
    `<out>/<device>.cfg` and `<device>.features.yaml`. Golden-network devices are skipped with the reason
    (all of them skipped: nothing is rendered). A plan whose city fails the reachability check is refused
    (ReachabilityError) unless `force`."""
    loaded = _load_plan(inv, plan_path)
    try:
        rules = load_baseline(baseline)
        if not force:
            checked = verify_reach(inv, loaded, rules)
            if not checked.ok:
                raise ReachabilityError(checked)
        selection = select_devices(inv, limit)
        if not selection.names:
            return Rendering({}, selection.skipped)
        rendered = render_devices(inv, loaded, selection.names, rules)
    except RenderError as exc:
        raise NetworkInputError(str(exc)) from None
    written = write_configs(rendered, out) if out is not None else []
    return Rendering(rendered, selection.skipped, written)


def intended_configs(inv: Inventory, limit: str | None = None, intended_dir: Path | None = None,
                     plan_path: Path | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each selected device's intended lines (rendered from the plan, or hand-written
    `<intended_dir>/<device>.cfg`), and the devices left out with why (golden networks)."""
    try:
        selection = select_devices(inv, limit)
    except RenderError as exc:
        raise NetworkInputError(str(exc)) from None
    if intended_dir is not None:
        configs = {name: (intended_dir / f"{name}.cfg").read_text(encoding="utf-8").splitlines()
                   for name in selection.names if (intended_dir / f"{name}.cfg").exists()}
        if not configs:
            raise NetworkInputError(f"{intended_dir} holds no <device>.cfg for the selected devices")
        return configs, selection.skipped
    loaded = _load_plan(inv, plan_path)
    try:
        rendered = render_devices(inv, loaded, selection.names)
    except RenderError as exc:
        raise NetworkInputError(f"cannot render the intended configs: {exc}") from None
    return {name: r.lines for name, r in rendered.items()}, selection.skipped


def _pusher(inv: Inventory, configs: dict[str, list[str]], options: PushOptions) -> Pusher:
    pusher = Pusher(inv, configs, options)
    try:
        pusher.batches(list(configs))  # a bad --canary or --batch-size is bad input, before anything runs
    except ValueError as exc:
        raise NetworkInputError(str(exc)) from None
    return pusher


def diff(inv: Inventory, limit: str | None = None, *, options: PushOptions | None = None,
         intended_dir: Path | None = None, plan_path: Path | None = None) -> PushRun:
    """Read each selected device and compute the lines a push would send; nothing is changed or stored."""
    options = replace(options or PushOptions(), apply=False)
    configs, skipped = intended_configs(inv, limit, intended_dir, plan_path)
    run = _pusher(inv, configs, options).run(list(configs), "diff")
    run.skipped = skipped
    return run


def push(inv: Inventory, limit: str | None = None, *, options: PushOptions | None = None,
         intended_dir: Path | None = None, plan_path: Path | None = None, store: Store | None = None,
         params: dict | None = None) -> PushRun:
    """Push the selected devices' intended configs (a dry run unless `options.apply`): canary, batches,
    commit safety, verification, rollback. The run is recorded in `store` (default: the default store)
    under NETWORK_PUSH, one row per device; `params` are stored with it (the command line's options)."""
    options = options or PushOptions()
    configs, skipped = intended_configs(inv, limit, intended_dir, plan_path)
    pusher = _pusher(inv, configs, options)
    recorder = StoreRecorder(store or Store(), NETWORK_PUSH, inventory=str(inv.root), rows=pusher.store_rows,
                             params=params if params is not None else {
                                 "apply": options.apply, "limit": limit, "canary": options.canary,
                                 "batch_size": options.batch_size, "max_fail_percent": options.max_fail_percent,
                                 "workers": options.workers, "jump": options.jump})
    run = pusher.run(list(configs), observers=[recorder])
    run.run_id, run.skipped = recorder.run_id, skipped
    return run


def restore(inv: Inventory, name: str, backup: Path | None = None, *,
            options: PushOptions | None = None) -> tuple[DevicePush, list[str]]:
    """Bring a device back to `backup` (default: its newest under `options.backups`): the device's outcome
    (differing lines, what was done) and the restore lines; a dry run unless `options.apply`. Raises
    DeviceError when the device cannot be read."""
    options = options or PushOptions()
    if name not in inv.devices:
        raise NetworkInputError(f"no device {name!r} in the inventory")
    if backup is None:
        found = sorted((options.backups / name).glob("*.cfg"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise NetworkInputError(f"no backup of {name} under {options.backups}: give --backup")
        backup = found[-1]
    if not backup.is_file():
        raise NetworkInputError(f"no backup file {backup}")
    pusher = Pusher(inv, {}, options)
    try:
        return pusher.restore(name, backup)
    except DeviceError as exc:
        if exc.kind == "refused":
            raise NetworkInputError(str(exc)) from None
        raise
