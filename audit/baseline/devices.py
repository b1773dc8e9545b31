"""The device path of the baseline: one read-only session per device, judged by the same engine.

Each device's running configuration is read over netmiko through jiyue/device.py (the one place
jiyue opens device sessions: host keys verified, secrets kept out of messages), parsed with
hier_config, and judged by `engine.evaluate(..., kind="device")` against the same catalog and
profile as the hosts. Devices run in parallel (service.check, through jiyue.runner); an unreachable
device is a result with its reason, never a stop. service.check runs hosts and devices and stores
them as one `baseline.check` run, so one report shows both.

A device's level: `--level` when given, else the highest level (2 or 3) of the systems whose
traffic it carries, because the device is inside each of those systems' assessment boundary: the
systems of its own department and of its interfaces' departments, and of every device below it
(whose `upstream` chain reaches it); a core device carries the whole city. A device that carries
only unlevelled or level-1 systems is not checked unless `--level` says so (like hosts).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from audit.baseline import engine
from audit.baseline.device_checks import KIND as DEVICE_KIND
from audit.baseline.device_evidence import DeviceEvidence
from audit.baseline.model import Catalog, CheckOptions, TargetVerdicts
from inventory.model import Device, DeviceRole, Inventory, SubnetKind
from jiyue.device import DeviceSession, DeviceTarget
from jiyue.ssh import JumpPool


def _below(inv: Inventory, name: str) -> list[Device]:
    """Devices whose upstream chain reaches `name` (loops in a bad inventory end the walk)."""
    out = []
    for device in inv.devices.values():
        seen, up = {device.name}, device.upstream
        while up and up not in seen:
            if up == name:
                out.append(device)
                break
            seen.add(up)
            up = inv.devices[up].upstream if up in inv.devices else None
    return out


def _departments(device: Device) -> set[str]:
    return {d for d in (device.department, *(i.department for i in device.interfaces)) if d}


def carried_departments(inv: Inventory, name: str) -> set[str]:
    device = inv.devices[name]
    if device.role == DeviceRole.core:
        return {s.department for s in inv.systems.values()}
    out = _departments(device)
    for below in _below(inv, name):
        out |= _departments(below)
    return out


def device_levels(inv: Inventory, names: list[str], level: int | None) -> dict[str, int | None]:
    """Each device's level: --level when given, else the highest level of the systems it carries (2 or 3)."""
    out: dict[str, int | None] = {}
    for name in names:
        if level:
            out[name] = level
            continue
        departments = carried_departments(inv, name)
        levels = [s.protection.level for s in inv.systems.values()
                  if s.department in departments and s.protection.level is not None]
        best = max(levels, default=None)
        out[name] = best if best in (2, 3) else None
    return out


def management_networks(inv: Inventory) -> list[str]:
    """Where management logins may come from: the inventory's management subnets."""
    return [str(s.prefix) for s in inv.subnets.values() if s.kind == SubnetKind.management]


def read_config(inv: Inventory, name: str, options: CheckOptions | None = None,
                pool: JumpPool | None = None) -> tuple[str, float]:
    """The device's running configuration, read in one session (no configuration mode entered); through its jump
    hosts (the run's `--jump`, else the inventory's) on `pool`'s connections when it has any."""
    options = options or CheckOptions()
    began = time.monotonic()
    target = DeviceTarget.of(inv, name, jump=options.jump)
    with DeviceSession(target, trust_on_first_use=options.trust_on_first_use, pool=pool,
                       connect_timeout=min(10.0, options.timeout), read_timeout=options.timeout) as session:
        raw = session.running_config()
    return raw, time.monotonic() - began


def judge_device(name: str, platform: str, config: str, level: int, params: dict[str, Any], catalog: Catalog,
                 context: dict[str, Any] | None = None) -> TargetVerdicts:
    """One device's verdicts, shaped like a host's (level, os, rows) so reports treat both alike."""
    ev = DeviceEvidence(name, platform, config, context)
    rows = engine.evaluate(ev, level, params, catalog, kind=DEVICE_KIND)
    return {"kind": DEVICE_KIND, "level": level, "platform": platform, "os": ev.label,
            "rows": [asdict(r) for r in rows]}


def check_device(inv: Inventory, name: str, level: int, params: dict[str, Any], catalog: Catalog,
                 options: CheckOptions | None = None, pool: JumpPool | None = None) -> TargetVerdicts:
    """The device path on one device: read its configuration in one session, judge at `level`."""
    raw, seconds = read_config(inv, name, options, pool)
    device = inv.devices[name]
    context = {"management_networks": management_networks(inv)}
    value = judge_device(name, device.platform.value, raw, level, params, catalog, context)
    value.update(address=str(device.address), site=device.site, role=device.role.value,
                 collect_seconds=round(seconds, 3))
    return value
