"""The plan for lines and private networks: a cancellation date per leased line, a join per private network.

Why here, and from both plans: the dates are the migration plan's (its waves say when each system moves, its
planning file holds the blackout calendar), the joins are the network plan's (the department VLAN's planned
subnet, the device carrying it, the boundary ACL and routes `network.render` writes). This module writes no
plan file of its own: it reads the two, so a line's date moves when a wave moves, and a join follows the
address plan, never a copy of either.

A line's date: the end of the last wave moving a system it serves (the systems of its `hosts`, and of the hosts
inside its `subnets`), plus `grace_days` (lines/policy.yaml), moved past blackout dates and, with
`working_days_only`, to a working day. A line serving a system that stays (golden network, replatform, awaiting
capacity, not in the plan) waits, naming it. A line the carrier has cancelled (`cancelled_on`) is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inventory.model import Inventory, LeasedLine
from jiyue.yamlfile import load_model
from lines.model import JoinRow, LineCancellation, LinesPlan, LineStatus
from migrations.model import Disposition, Plan
from migrations.plan import Planning
from network.joins import JoinError, planned_joins
from network.model import AddressPlan

HERE = Path(__file__).resolve().parent
DEFAULT_POLICY = HERE / "policy.yaml"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_days: int = Field(ge=0, le=365)
    working_days_only: bool = True
    timeout: float = Field(default=30, gt=0, le=600)


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and field."""


def load_policy(path: Path | None = None) -> Policy:
    return load_model(path or DEFAULT_POLICY, Policy, PolicyError)


def served_hosts(inv: Inventory, line: LeasedLine) -> list[str]:
    """The line's hosts and the inventory hosts inside its subnets, in inventory order."""
    named = set(line.hosts)
    return [h.name for h in inv.hosts.values()
            if h.name in named or any(h.address in net for net in line.subnets)]


def served_systems(inv: Inventory, line: LeasedLine) -> list[str]:
    return sorted({s.id for h in served_hosts(inv, line) if (s := inv.owner(h)) is not None})


# Dispositions that take a system off its source hosts without a wave: no date in the plan to wait for.
UNDATED = {Disposition.idc_move: ("物理迁移至 IDC 机房（无波次日期）", "physical move to the IDC (no wave date)"),
           Disposition.site_cluster: ("迁入网站集约化平台（无波次日期）", "to the site cluster (no wave date)"),
           Disposition.decommission: ("清理下线（无波次日期）", "decommission (no wave date)"),
           Disposition.confidential_handover: ("移交机要网", "handed over to the confidential network"),
           Disposition.replatform: ("重新部署，仍在原主机", "re-platformed, stays on its hosts"),
           Disposition.retain: ("保留（国家金字工程）", "retained (national golden network)")}


def first_day(day: date, planning: Planning | None, policy: Policy) -> date:
    """`day`, or the first day after it outside every blackout and, with `working_days_only`, on a weekday."""
    for _ in range(366 * 2):
        if not (planning is not None and planning.blackout(day)) and not (policy.working_days_only
                                                                          and day.weekday() >= 5):
            return day
        day += timedelta(days=1)
    raise ValueError("no day outside the blackouts within two years: check the planning file's blackouts")


def cancellation(inv: Inventory, line: LeasedLine, plan: Plan | None, planning: Planning | None,
                 policy: Policy) -> LineCancellation:
    """The line's cancellation: done, planned for a date, or waiting (with what it waits for)."""
    systems = tuple(served_systems(inv, line))
    base: dict[str, Any] = {"line": line.id, "department": line.department, "systems": systems,
                            "annual_cost": line.annual_cost, "contract_end": line.contract_end}
    if line.cancelled_on is not None:
        return LineCancellation(status=LineStatus.cancelled, date=line.cancelled_on, last_move=None,
                                reason=f"运营商已于 {line.cancelled_on} 撤销 / cancelled by the carrier on "
                                       f"{line.cancelled_on}", **base)
    if plan is None:
        return LineCancellation(status=LineStatus.waiting, date=None, last_move=None,
                                reason="尚无迁移计划：先运行 `invoke migrate.plan` / no migration plan yet: run "
                                       "`invoke migrate.plan` first", **base)
    planned = {s.system: s for s in plan.systems}
    waves = {w.number: w for w in plan.waves}
    tz = planning.tz if planning is not None else None
    moves: list[date] = []
    waits: list[str] = []
    for sid in systems:
        sp = planned.get(sid)
        if sp is None:
            waits.append(f"{sid}: 不在迁移计划中 / not in the migration plan")
        elif sp.wave is not None and sp.wave in waves:
            end = waves[sp.wave].end
            moves.append((end.astimezone(tz) if tz else end).date())
        elif sp.disposition in UNDATED:
            zh, en = UNDATED[sp.disposition]
            waits.append(f"{sid}: {zh} / {en}")
        else:
            waits.append(f"{sid}: 尚无波次（等待资源） / no wave yet (awaiting capacity)")
    if waits:
        return LineCancellation(status=LineStatus.waiting, date=None, last_move=max(moves, default=None),
                                reason="等待所服务系统迁移 / waits for the systems it serves: " + "; ".join(waits),
                                **base)
    if not moves:
        return LineCancellation(status=LineStatus.waiting, date=None, last_move=None,
                                reason="所服务主机不属于任何系统：请确认后手工撤销 / it serves no host of any system: "
                                       "confirm and cancel by hand", **base)
    last = max(moves)
    day = first_day(last + timedelta(days=policy.grace_days), planning, policy)
    held = []
    if planning is not None and (b := planning.blackout(last + timedelta(days=policy.grace_days))):
        held.append(f"避开{b.name} / after the {b.name} blackout")
    reason = (f"最后一个系统于 {last} 迁移完成，{policy.grace_days} 天功能验证后撤销 / the last system it serves moves "
              f"by {last}; cancelled {policy.grace_days} days later, after functional verification")
    if held:
        reason += "；" + "；".join(held)
    return LineCancellation(status=LineStatus.planned, date=day, last_move=last, reason=reason,
                            early=day < line.contract_end, **base)


def join_rows(inv: Inventory, plan: AddressPlan | None, warnings: list[str]) -> list[JoinRow]:
    """Each private network: where it joins (from the network plan), or why it stays."""
    joined: dict[str, Any] = {}
    if plan is not None:
        try:
            joined = {j.network: j for j in planned_joins(inv, plan)}
        except JoinError as exc:
            warnings.extend(map(str, exc.problems))
    rows = []
    for net in sorted(inv.private_networks.values(), key=lambda n: n.id):
        common = {"network": net.id, "name": net.name, "department": net.department, "owner": str(net.owner),
                  "owner_name": net.owner_name, "prefixes": tuple(map(str, net.prefixes)),
                  "boundary": tuple(f"{b.name} {b.address}" for b in net.boundary_devices)}
        j = joined.get(net.id)
        if j is not None:
            hops = tuple(str(h) for h in (j.hop4, j.hop6) if h is not None)
            reason = (f"经 {j.device} {j.interface}（VLAN {j.vlan}）并入电子政务外网，边界 ACL 仅放行其地址段"
                      f" / joins the extranet through {j.device} {j.interface} (VLAN {j.vlan}); the boundary ACL "
                      "lets in its prefixes only")
            rows.append(JoinRow(joins=True, vlan=j.vlan, device=j.device, interface=j.interface, next_hops=hops,
                                reason=reason, **common))
        elif net.qualifies:
            rows.append(JoinRow(joins=False, vlan=net.join.vlan if net.join else None, device=None, interface=None,
                                next_hops=(), reason="符合条件，待网络规划（`invoke network.plan`） / qualifies; waits "
                                                     "for the network plan (`invoke network.plan`)", **common))
        else:
            rows.append(JoinRow(joins=False, vlan=None, device=None, interface=None, next_hops=(),
                                reason=f"不并入：{net.reason} / stays apart: {net.reason}", **common))
    return rows


@dataclass(frozen=True)
class Sources:
    """The plans a lines plan reads, each optional (a missing one makes its part wait), and where they came from."""

    migration: Plan | None = None
    planning: Planning | None = None
    network: AddressPlan | None = None
    migration_path: str = ""
    network_path: str = ""


def build(inv: Inventory, sources: Sources, policy: Policy, today: date) -> LinesPlan:
    warnings: list[str] = []
    cancellations = [cancellation(inv, line, sources.migration, sources.planning, policy)
                     for line in sorted(inv.leased_lines.values(), key=lambda x: (x.department, x.id))]
    return LinesPlan(inv, today, cancellations, join_rows(inv, sources.network, warnings), warnings,
                     sources.migration_path, sources.network_path)
