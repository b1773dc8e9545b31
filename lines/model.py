"""What the lines domain returns: a cancellation per leased line, a join per private network, an egress path per
host, and the findings. Plain dataclasses: the results are computed, never loaded from a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypedDict

from inventory.model import Inventory


class LineStatus(StrEnum):
    cancelled = "cancelled"  # 已撤销: the carrier confirmed it (inventory `cancelled_on`)
    planned = "planned"  # 已排期: a cancellation date after its systems' moves
    waiting = "waiting"  # 待定: a system it serves has no move date (stays, or not planned yet)


@dataclass(frozen=True)
class LineCancellation:
    """One line's cancellation: the date and why, the systems it waits for, and whether it ends the contract early."""

    line: str
    department: str
    status: LineStatus
    date: date | None  # cancelled_on, or the planned date; None while waiting
    systems: tuple[str, ...]  # the systems of the hosts it serves
    last_move: date | None  # the end of the last wave moving one of them
    reason: str  # zh / en
    annual_cost: Decimal
    contract_end: date
    early: bool = False  # the date falls before the contract's end: negotiate the early termination


class EgressPath(StrEnum):
    """Which way a host's internet traffic leaves."""

    extranet = "extranet"  # through the extranet's egress (统一使用电子政务外网访问互联网)
    line = "line"  # through a leased line's router
    unknown = "unknown"  # a route, but through neither
    none = "none"  # no route to the internet test address at all


class EgressFacts(TypedDict):
    """What the probe stores per host (`jiyue.store` kind `lines.egress`)."""

    target: str  # the internet test address
    route: dict[str, Any]  # `ip route get`: gateway (via), dev, src; {} when there is no route
    default: list[str]  # the host's default routes, as `ip route` prints them
    hops: list[str]  # the addresses the trace saw, hop by hop ("*" for no answer)
    reached: bool
    tool: str  # tracepath, traceroute, or "" when the host has neither
    path: str  # EgressPath
    line: str | None  # the leased line it leaves by, when path is "line"
    via: str | None  # the hop that decided the path


@dataclass(frozen=True)
class EgressFinding:
    """A leased line still carrying traffic after its cancellation date: the hosts that still leave by it."""

    line: str
    department: str
    date: date
    hosts: tuple[str, ...]
    status: LineStatus

    @property
    def message(self) -> str:
        hosts = ", ".join(self.hosts)
        return (f"专线 {self.line} 已过撤销日期 {self.date}，仍有流量经其出口：{hosts} / the leased line {self.line} "
                f"still carries traffic after its cancellation date {self.date}: {hosts}")


@dataclass(frozen=True)
class JoinRow:
    """One private network: joins (where, which prefixes, via which boundary device) or stays (why)."""

    network: str
    name: str
    department: str
    owner: str
    owner_name: str
    joins: bool
    vlan: int | None
    device: str | None
    interface: str | None
    prefixes: tuple[str, ...]
    next_hops: tuple[str, ...]
    boundary: tuple[str, ...]
    reason: str  # zh / en


@dataclass
class LinesPlan:
    """`lines.plan`'s result: every line's cancellation and every private network's join."""

    inventory: Inventory
    today: date
    cancellations: list[LineCancellation]
    joins: list[JoinRow]
    warnings: list[str] = field(default_factory=list)
    migration_plan: str = ""  # the file the move dates came from ("" : none)
    network_plan: str = ""


@dataclass
class EgressResult:
    """`lines.egress`'s result: each host's path (or why it was not probed), the plan it was judged against."""

    inventory: Inventory
    run_id: int | None
    facts: dict[str, EgressFacts]
    failed: dict[str, str]  # host -> why it could not be probed (unreachable, timeout, ...)
    plan: LinesPlan
    findings: list[EgressFinding]
    today: date


@dataclass(frozen=True)
class DepartmentProgress:
    department: str
    done: int
    total: int
    annual_cost_saved: Decimal
    annual_cost_total: Decimal


@dataclass(frozen=True)
class LinesProgress:
    """What the progress report shows of leased lines (`lines.service.progress`)."""

    departments: tuple[DepartmentProgress, ...]
    done: int
    total: int
    annual_cost_saved: Decimal
    annual_cost_total: Decimal
    findings: tuple[EgressFinding, ...]
    probed_at: str | None  # when the egress was last probed (ISO, UTC); None: never
    cancellations: tuple[LineCancellation, ...] = ()  # every line counted, with its status, date and reason
    carrying: dict[str, tuple[str, ...]] = field(default_factory=dict)  # line -> hosts the newest probe sees on it

    @property
    def finding_lines(self) -> set[str]:
        return {f.line for f in self.findings}
