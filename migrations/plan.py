"""The planner (`invoke migrate.plan`): where every system goes, what it needs, where it lands and when.

1. **Dispositions** (docs/policy-basis.md), first rule that applies: classified → hand-over to the confidential
   network (a hard gate: nothing below, no website flag, no override, no verdict reaches it); national
   golden network → retain; zombie verdict of the audit → decommission; website → site cluster; re-platform
   verdict (maintenance stopped, still in use) → re-platform; special hardware → IDC move; everything else →
   cloud rehost. Without audit history nothing is decommissioned
   (a verdict not known is not a zombie) and the rule says so.
   **Routing** (planning.yaml `routing`): the network zone of the cloud each cloud-bound system lands in, by its
   category and declared network, with the clause cited in its rule. A hard gate like the classified one: never a
   zone its category forbids; where the city's cloud lacks the zone, the system waits and never goes to another.
   A business private network joins the extranet through its department's VLAN, or stays on its golden network.
2. **Sizing** of each cloud rehost's hosts from the audit history (P95 CPU, memory used, data under the
   data paths) plus headroom (planning.yaml), onto the smallest fitting flavor; what was never measured
   falls back to a declared or default size, and the plan says which.
3. **Assignment** behind `TargetProvider` (`PoolProvider`: the inventory's pre-provisioned cloud pool; a
   cloud API provider can create VMs instead): several source hosts per pool host of the routed zone while its
   flavor lasts, never two services on one port, never two departments on one host (planning.yaml). What
   cannot be placed awaits capacity (or its zone), with what to request.
4. **Waves**: the dependency graph (declared plus measured), strongly connected systems move together,
   nothing moves before what it needs, then by priority (urgency × importance), within the per-wave
   limits, one wave per change window, blackout dates skipped.
5. **Work orders** for the moves no playbook makes (IDC, confidential hand-over, decommission, site
   cluster), their status kept across re-planning.

Everything is sorted before it is used, so the same inputs give the same plan.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from audit.history import AuditView, HostMeasure
from audit.model import REPLATFORM, ZOMBIE, Verdict
from inventory.model import Category, Classification, CloudZone, Flavor, Inventory, System, Zone
from jiyue.yamlfile import load_model
from migrations.model import (
    Disposition,
    HostTarget,
    Plan,
    PrivateNetwork,
    Shortfall,
    SystemPlan,
    Wave,
    WorkOrder,
    WorkOrderStatus,
    save_plan,
)

HERE = Path(__file__).resolve().parent
DEFAULT_PLANNING = HERE / "planning.yaml"
PLANS_DIR = HERE / "plans"
GB = 1024**3
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The order dispositions are listed in reports and counted.
DISPOSITION_ORDER = (Disposition.cloud_rehost, Disposition.site_cluster, Disposition.idc_move,
                     Disposition.confidential_handover, Disposition.retain, Disposition.replatform,
                     Disposition.decommission)


class PlanningError(ValueError):
    """planning.yaml cannot be read or is invalid."""


# --- planning.yaml -------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Size(_Model):
    vcpus: float = Field(gt=0)
    memory_gb: float = Field(gt=0)
    disk_gb: float = Field(gt=0)


class Headroom(_Model):
    cpu: float = Field(ge=0)
    memory: float = Field(ge=0)
    disk: float = Field(ge=0)


class Unmeasured(_Model):
    default: Size
    roles: dict[str, Size] = {}
    hosts: dict[str, Size] = {}


class Sizing(_Model):
    percentile: float = Field(gt=0, le=100)
    min_samples: int = Field(ge=1)
    headroom: Headroom
    app_disk_gb: float = Field(ge=0)
    floor: Size
    unmeasured: Unmeasured


class Assignment(_Model):
    separate_departments: bool = True
    match_os_family: bool = True


class WaveLimits(_Model):
    max_systems: int = Field(ge=1)
    max_hosts: int = Field(ge=1)
    max_data_gb: float = Field(gt=0)


class ChangeWindow(_Model):
    weekday: str
    start: str
    hours: float = Field(gt=0, le=72)

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        if value.lower() not in WEEKDAYS:
            raise ValueError(f"weekday must be one of {', '.join(WEEKDAYS)}")
        return value.lower()

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"start must be HH:MM, got {value!r}") from None
        return value


class Blackout(_Model):
    """A span of dates with no wave: "MM-DD" strings recur every year, full dates happen once."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    start: date | str = Field(alias="from")
    end: date | str = Field(alias="to")

    @field_validator("start", "end")
    @classmethod
    def _day(cls, value: date | str) -> date | str:
        if isinstance(value, date):
            return value
        try:
            date.fromisoformat(f"2000-{value}")  # a leap year: 02-29 is allowed
        except ValueError:
            raise ValueError(f"use YYYY-MM-DD (once) or \"MM-DD\" (every year), got {value!r}") from None
        return value

    def covers(self, day: date) -> bool:
        if isinstance(self.start, date) and isinstance(self.end, date):
            return self.start <= day <= self.end
        start, end = (str(x)[-5:] if isinstance(x, date) else x for x in (self.start, self.end))
        key = day.strftime("%m-%d")
        return start <= key <= end if start <= end else (key >= start or key <= end)  # across New Year


class ArchiveLocation(_Model):
    """Where a zombie's data is archived before it goes offline: a host of the inventory and a directory on it."""

    host: str = Field(min_length=1)
    path: str = Field(pattern=r"^/[^\n]*[^/\n]$")  # absolute, not / itself, no trailing slash


class Decommission(_Model):
    grace_days: int = Field(default=30, ge=0)  # read by the engine (migrations/engine.py)
    archive: ArchiveLocation | None = None  # a zombie's data; without it no zombie can be taken offline


class Routing(_Model):
    """Which cloud zone each system may land in (by category) and asks for (by declared network), with the clause
    cited for each zone. The hard gate reads `categories`; planning.yaml says where the rules come from."""

    categories: dict[Category, list[CloudZone]]
    declared: dict[Zone, CloudZone]
    clauses: dict[Zone, str]

    @field_validator("categories")
    @classmethod
    def _every_category(cls, value: dict[Category, list[CloudZone]]) -> dict[Category, list[CloudZone]]:
        missing = [str(c) for c in Category if not value.get(c)]
        if missing:
            raise ValueError(f"give the zones each category may use; missing: {', '.join(missing)}")
        return value

    @field_validator("declared", "clauses")
    @classmethod
    def _every_zone(cls, value: dict) -> dict:
        missing = [str(z) for z in Zone if z not in value]
        if missing:
            raise ValueError(f"give every declared zone; missing: {', '.join(missing)}")
        return value

    def allowed(self, category: Category) -> list[CloudZone]:
        return self.categories[category]


class Override(_Model):
    disposition: Disposition
    reason: str = Field(min_length=1)


class Planning(_Model):
    timezone: str = "Asia/Shanghai"
    sizing: Sizing
    assignment: Assignment = Assignment()
    waves: WaveLimits
    change_windows: list[ChangeWindow] = Field(min_length=1)
    blackouts: list[Blackout] = []
    overrides: dict[str, Override] = {}
    decommission: Decommission = Decommission()
    routing: Routing

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def blackout(self, day: date) -> Blackout | None:
        return next((b for b in self.blackouts if b.covers(day)), None)


def load_planning(path: Path | None = None) -> Planning:
    return load_model(path or DEFAULT_PLANNING, Planning, PlanningError)


def planning_named(name: str | None) -> Planning:
    """The planning file a plan names (`Plan.planning`: absolute, or relative to the checkout as the command line
    records it); the default one when it names none or the file is gone."""
    path = Path(name) if name else DEFAULT_PLANNING
    if not path.is_absolute() and not path.exists():
        path = HERE.parent / path
    return load_planning(path if path.exists() else None)


# --- dispositions -------------------------------------------------------------------------------------

NO_HISTORY = ("；无审计历史，未判定是否僵尸系统，不作下线处理 / "
              "; no audit history: zombie verdict unknown, not decommissioned")


def _rule(zh: str, en: str, suffix: str = "") -> str:
    if not suffix:
        return f"{zh} / {en}"
    szh, _, sen = suffix.partition(" / ")
    return f"{zh}{szh} / {en}{sen}"


def decide(system: System, verdict: Verdict | None, planning: Planning, has_history: bool
           ) -> tuple[Disposition, str, list[str]]:
    """(disposition, the rule that decided it, notes) for one system: the documents' rules in their precedence
    (docs/policy-basis.md)."""
    notes: list[str] = []
    override = planning.overrides.get(system.id)
    if system.classification == Classification.classified:
        # The hard gate: checked first, on the inventory's own field, before anything that could route elsewhere.
        if system.website:
            notes.append("声明为网站，但涉密系统不进网站群 / declared a website, but a classified system never goes "
                         "to the site cluster")
        if override and override.disposition != Disposition.confidential_handover:
            notes.append(f"planning.yaml 的处置覆盖（{override.disposition}）被拒绝：涉密系统只能移交机要网 / "
                         f"override to {override.disposition} in planning.yaml refused: classified systems are "
                         "handed over to the confidential network only")
        if verdict is not None and verdict.verdict == ZOMBIE:
            notes.append("审计判定为僵尸系统：由市委机要局决定清理下线 / the audit calls it a zombie: its "
                         "decommissioning is the confidential bureau's decision")
        return (Disposition.confidential_handover,
                _rule("涉密系统：按照市委机要局机要网建设的统一部署迁移整合，绝不上云（盘锦市 盘政办发〔2017〕144号）",
                      "classified: follows the confidential bureau's network deployment, never the cloud or the "
                      "site cluster (Panjin, 盘政办发〔2017〕144号)"), notes)
    if system.golden_network is not None:
        if override and override.disposition != Disposition.retain:
            notes.append(f"planning.yaml 的处置覆盖（{override.disposition}）被拒绝：金字工程按国家统一部署 / "
                         f"override to {override.disposition} refused: golden networks follow the state's deployment")
        gn = system.golden_network.value
        return (Disposition.retain,
                _rule(f"国家金字工程（{gn}）：按国家统一部署整合，地方整合不触动，保留（盘锦市 盘政办发〔2017〕144号）",
                      f"national golden network ({gn}): integrated only as the state deploys it; retained "
                      "(Panjin, 盘政办发〔2017〕144号)"), notes)
    suffix = "" if has_history else NO_HISTORY
    if override is not None:
        if override.disposition == Disposition.confidential_handover:
            notes.append("planning.yaml 的处置覆盖被拒绝：只有清单中声明为涉密的系统移交机要网 / override refused: "
                         "only systems the inventory declares classified are handed over to the confidential network")
        else:
            zh, sep, en = override.reason.partition(" / ")
            return (override.disposition, _rule(f"规划文件指定：{zh}", f"set in planning.yaml: {en if sep else zh}"),
                    notes)
    if verdict is not None and verdict.verdict == ZOMBIE:
        criteria = "、".join(str(n) for n in verdict.met)
        return (Disposition.decommission,
                _rule(f"僵尸系统（符合认定标准第 {criteria} 条）：清理下线（盘锦市 盘政办发〔2017〕144号）",
                      f"zombie (criteria {', '.join(map(str, verdict.met))} met): decommission "
                      "(Panjin, 盘政办发〔2017〕144号)"), notes)
    if verdict is not None and verdict.verdict != "active":
        notes.append(f"审计结论：{verdict.verdict}，不作下线处理 / audit verdict {verdict.verdict}: not decommissioned")
    if system.website:
        return (Disposition.site_cluster,
                _rule("部门网站：迁入网站集约化平台，不再单独运行"
                      "（盘锦市 盘政办发〔2017〕144号、开平市 开府〔2020〕3号）",
                      "department website: moves onto the consolidated site-cluster platform "
                      "(Panjin, 盘政办发〔2017〕144号; Kaiping, 开府〔2020〕3号)",
                      suffix), notes)
    if verdict is not None and verdict.verdict == REPLATFORM:  # after the website: the site cluster re-platforms it
        return (Disposition.replatform,
                _rule("运行维护已停止但系统仍在使用：在政务云上以受支持的操作系统重新部署或升级改造，不清理下线"
                      "（盘政办发〔2017〕144号：可利用已有政务信息系统运行或适当升级改造后可满足需求的业务事项，不再新建）",
                      "maintenance stopped, still in use: redeploy or upgrade it onto a supported stack on the cloud, "
                      "never decommission it (Panjin plan 盘政办发〔2017〕144号)"), notes)
    if system.special_hardware:
        return (Disposition.idc_move,
                _rule(f"含专用硬件（{system.special_hardware}）：云平台无法满足，物理迁移至市大数据中心IDC机房"
                      "（盘锦市 盘政办发〔2017〕144号）",
                      f"special hardware ({system.special_hardware}): the cloud cannot host it; physical move into "
                      "the IDC machine room (Panjin, 盘政办发〔2017〕144号)", suffix), notes)
    return (Disposition.cloud_rehost,
            _rule("非涉密信息系统：迁移至市大数据中心云平台（盘锦市 盘政办发〔2017〕144号）",
                  "non-classified: moves onto the city big-data centre's cloud platform "
                  "(Panjin, 盘政办发〔2017〕144号)",
                  suffix), notes)


# --- routing: which network and which zone of the cloud ---------------------------------------------------------

# The dispositions that land on pool hosts, and so in a zone of the cloud.
CLOUD_BOUND = (Disposition.cloud_rehost,)
ZONE_NAMES = {CloudZone.intranet: ("电子政务内网平台", "the intranet platform"),
              CloudZone.extranet: ("政务外网区", "the extranet zone"),
              CloudZone.internet: ("互联网区", "the internet-facing zone")}


@dataclass(frozen=True)
class Route:
    """Where a system's network puts it on the cloud: the zone it lands in (None: it waits, `waits` says why), the
    zones its category allows, the clause that decides it and, on a business private network, how that is treated."""

    zone: CloudZone | None
    allowed: tuple[CloudZone, ...]
    clause: str  # zh / en
    waits: str | None = None  # zh / en
    private: PrivateNetwork | None = None


def private_network(inv: Inventory, system: System) -> PrivateNetwork | None:
    """A business private network (业务专网) system: a national golden network stays on it; any other joins the
    extranet through its department's extranet VLAN, once the department has one. None for other zones."""
    if system.zone != Zone.private or system.classification == Classification.classified:
        return None
    if system.golden_network is not None:
        gn = system.golden_network.value
        zh = f"国家金字工程（{gn}）专网：按国家统一部署整合，留在其国家专网，不并入电子政务外网"
        en = f"national golden network ({gn}): stays on its national network as the state deploys it"
        return PrivateNetwork(joins_extranet=False, golden_network=system.golden_network, reason=f"{zh} / {en}")
    dept = system.department
    record = next((n for n in inv.private_networks.values() if system.id in n.systems), None)
    if record is not None and not record.qualifies:
        zh = f"业务专网 {record.name}（{record.id}）不符合并入电子政务外网的条件：{record.reason}"
        en = f"the private network {record.id} does not qualify to join the extranet: {record.reason}"
        return PrivateNetwork(joins_extranet=False, reason=f"{zh} / {en}")
    allocated = inv.extranet is not None and any(a.department == dept for a in inv.extranet.departments)
    # the department's extranet VLANs, a VLAN interface before a port in the same VLAN; the one a private network
    # record names (`private_networks[].join.vlan`) when there is one
    vlans = sorted((i.vlan, "lan" not in i.name.lower(), d.name, i.name) for d in inv.devices.values()
                   if d.golden_network is None for i in d.interfaces
                   if i.department == dept and i.vlan is not None and i.golden_network is None
                   and (record is None or record.join is None or i.vlan == record.join.vlan))
    if not allocated or not vlans:
        zh = f"{dept} 尚无电子政务外网地址段或 VLAN（清单 extranet.departments、devices 的接口）：业务专网并入前等待"
        en = (f"{dept} has no extranet allocation or VLAN yet (inventory extranet.departments, device interfaces): "
              "the private network waits to join")
        return PrivateNetwork(joins_extranet=False, reason=f"{zh} / {en}")
    vlan, _, device, interface = vlans[0]
    name = inv.departments[dept].name if dept in inv.departments else dept
    zh = f"业务专网明确边界，经{name}（{dept}）的电子政务外网 VLAN {vlan}（{device} {interface}）并入电子政务外网"
    en = (f"the private network gets a clear boundary and joins the extranet through {dept}'s extranet VLAN {vlan} "
          f"({device} {interface})")
    return PrivateNetwork(joins_extranet=True, department=dept, vlan=vlan, device=device, interface=interface,
                          reason=f"{zh} / {en}")


def route(inv: Inventory, system: System, routing: Routing) -> Route:
    """The zone a system lands in: the one its declared network asks for (planning.yaml `routing.declared`), if its
    category allows it (`routing.categories`, the hard gate) and the city's cloud has it; else it waits, and never
    lands in another zone."""
    allowed = tuple(routing.allowed(system.category))
    private = private_network(inv, system)
    wanted = routing.declared[system.zone]
    clause = routing.clauses[system.zone]
    if private is not None:
        zh, _, en = clause.partition(" / ")
        wzh, _, wen = routing.clauses[Zone(wanted.value)].partition(" / ")
        clause = f"{zh}；{wzh} / {en}; {wen}"
    present = set(inv.cloud.zones) & {p.zone for p in inv.cloud.pool} if inv.cloud else set()
    name_zh, name_en = ZONE_NAMES[wanted]
    waits = None
    if wanted not in allowed:
        waits = (f"声明的网络（{system.zone}）不在其类别（{system.category}）允许的区域"
                 f"（{'、'.join(map(str, allowed))}）内：不迁移，先更正清单 / its declared network ({system.zone}) is "
                 f"not one its category ({system.category}) may use ({', '.join(map(str, allowed))}): it does not "
                 "move; correct the inventory")
    elif private is not None and not private.joins_extranet:
        waits = private.reason
    elif wanted not in present:
        waits = (f"本市政务云没有{name_zh}：等待其建成，绝不迁往其他区域 / the city's cloud has no {name_en}: it waits "
                 "for one and never goes to another zone")
    return Route(None if waits else wanted, allowed, clause, waits, private)


def _with_clause(rule: str, zone: CloudZone, clause: str) -> str:
    """The disposition's rule with the zone it routes to and the clause that says so, in both languages."""
    zh, _, en = rule.partition(" / ")
    czh, _, cen = clause.partition(" / ")
    name_zh, name_en = ZONE_NAMES[zone]
    return f"{zh}；网络区域：{name_zh}（{czh}） / {en}; network zone: {name_en} ({cen or czh})"


# --- sizing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One source host to place: what it needs after headroom, and what it must not collide with."""

    source: str
    system: str
    department: str
    os_family: str
    ports: frozenset[tuple[str, int]]  # (protocol, port) of its declared services
    vcpus: float
    memory_gb: float
    disk_gb: float
    measured: tuple[str, ...] = ()
    basis: str = ""
    # The whole system's hosts still to place, this one included: a provider may pick a target that takes them
    # all, so that a system stays on one host where it can (None: this host alone).
    together: tuple[float, float, float] | None = None
    zone: CloudZone | None = None  # the only zone it may land in (routing); None: nowhere


def _up(value: float, step: float = 0.01) -> float:
    """Round up to `step` (two decimals), so that a need is never understated by rounding."""
    return round(math.ceil(round(value / step, 6)) * step, 2)


def size_host(inv: Inventory, host: str, measure: HostMeasure | None, planning: Planning,
              routed: Route | None = None) -> Need:
    """A source host's need: measured use plus headroom (at least the floor), else the declared or default size;
    in the zone its system is routed to (`routed`, worked out here when not given)."""
    s = planning.sizing
    system = inv.owner(host)
    assert system is not None, f"{host} belongs to no system"
    m = measure or HostMeasure()
    role = inv.hosts[host].role
    fallback = s.unmeasured.hosts.get(host) or s.unmeasured.roles.get(role) or s.unmeasured.default
    fallback_how = ("declared in planning.yaml" if host in s.unmeasured.hosts else
                    f"default for role {role}" if role in s.unmeasured.roles else "default")
    measured, basis = [], []
    if m.cpu_pct is not None and m.cpus and m.samples >= s.min_samples:
        used = m.cpu_pct / 100 * m.cpus
        vcpus = max(_up(used * (1 + s.headroom.cpu)), s.floor.vcpus)
        measured.append("cpu")
        basis.append(f"CPU P{s.percentile:g} {m.cpu_pct:.2f}% of {m.cpus} over {m.samples} samples = {used:.2f} "
                     f"+{s.headroom.cpu:.0%}")
    else:
        vcpus = fallback.vcpus
        basis.append(f"CPU not measured: {fallback.vcpus:g} ({fallback_how})")
    if m.memory_used_gb is not None:
        memory = max(_up(m.memory_used_gb * (1 + s.headroom.memory)), s.floor.memory_gb)
        measured.append("memory")
        basis.append(f"memory used {m.memory_used_gb:.2f} GB +{s.headroom.memory:.0%}")
    else:
        memory = fallback.memory_gb
        basis.append(f"memory not measured: {fallback.memory_gb:g} GB ({fallback_how})")
    if m.data_bytes is not None:
        data_gb = m.data_bytes / GB
        disk = max(_up((data_gb + s.app_disk_gb) * (1 + s.headroom.disk)), s.floor.disk_gb)
        measured.append("disk")
        basis.append(f"data {data_gb:.2f} GB + application {s.app_disk_gb:g} GB +{s.headroom.disk:.0%}"
                     + (f" (source disks: {m.disk_used_gb:.1f} GB used)" if m.disk_used_gb is not None else ""))
    elif m.disk_used_gb is not None:
        disk = max(_up(m.disk_used_gb * (1 + s.headroom.disk)), s.floor.disk_gb)
        measured.append("disk")
        basis.append(f"data paths not measured: disks used {m.disk_used_gb:.2f} GB +{s.headroom.disk:.0%}")
    else:
        disk = fallback.disk_gb
        basis.append(f"disk not measured: {fallback.disk_gb:g} GB ({fallback_how})")
    ports = frozenset((svc.protocol, svc.port) for svc in system.services if svc.host == host)
    return Need(host, system.id, system.department, str(inv.hosts[host].os_family), ports, vcpus, memory, disk,
                tuple(measured), "; ".join(basis), zone=(routed or route(inv, system, planning.routing)).zone)


def fits(flavor: Flavor, vcpus: float, memory_gb: float, disk_gb: float) -> bool:
    eps = 1e-9
    return vcpus <= flavor.vcpus + eps and memory_gb <= flavor.memory_gb + eps and disk_gb <= flavor.disk_gb + eps


def smallest_flavor(flavors: Iterable[Flavor], vcpus: float, memory_gb: float, disk_gb: float) -> Flavor | None:
    """The smallest flavor of the catalog that fits (fewest vCPUs, then memory, then disk); None if none does."""
    fitting = [f for f in flavors if fits(f, vcpus, memory_gb, disk_gb)]
    return min(fitting, key=lambda f: (f.vcpus, f.memory_gb, f.disk_gb, f.name)) if fitting else None


# --- targets ------------------------------------------------------------------------------------------


class TargetProvider(Protocol):
    """Where a source host lands. The pool provider picks a pre-provisioned cloud host; a cloud API
    provider would create one of `need`'s size instead."""

    def assign(self, need: Need) -> HostTarget | None:
        """A target for `need`, reserved; None when none can take it."""
        ...

    def release(self, target: HostTarget) -> None:
        """Give back a reservation (a group that could not be placed whole)."""
        ...

    def hold(self, need: Need, host: str) -> HostTarget | None:
        """Reserve `host` for `need` whatever the rules say: the source already runs there (an applied
        migration). None when `host` is not one of the provider's."""
        ...


@dataclass
class _Slot:
    host: str
    flavor: Flavor
    os_family: str
    index: int
    zone: CloudZone
    vcpus: float = 0.0
    memory_gb: float = 0.0
    disk_gb: float = 0.0
    ports: set[tuple[str, int]] = field(default_factory=set)
    departments: dict[str, int] = field(default_factory=dict)
    systems: dict[str, int] = field(default_factory=dict)
    needs: dict[str, Need] = field(default_factory=dict)


class PoolProvider:
    """The inventory's cloud pool: a pool host takes several source hosts while its flavor's capacity lasts,
    never two hosts of one system, never two services on one port, never two departments (planning.yaml),
    the same package family, and only in the zone the need was routed to."""

    def __init__(self, inv: Inventory, planning: Planning) -> None:
        self.inv, self.rules = inv, planning.assignment
        self.flavors = {f.name: f for f in inv.cloud.flavors} if inv.cloud else {}
        self.slots = [_Slot(p.host, self.flavors[p.flavor], str(inv.hosts[p.host].os_family), i, p.zone)
                      for i, p in enumerate(inv.cloud.pool if inv.cloud else []) if p.flavor in self.flavors]
        self._holding: dict[str, dict[str, _Slot]] = {}  # department -> the pool hosts holding some of its hosts

    def _ok(self, slot: _Slot, need: Need) -> bool:
        if need.zone is None or slot.zone != need.zone:  # the zone gate: never a zone the routing did not choose
            return False
        # One source host of a system per pool host: every host of a system keeps the system's data paths
        # and /etc/app/<system> at the same paths, so two of them on one target would overwrite each other.
        if need.system in slot.systems:
            return False
        if not fits(slot.flavor, slot.vcpus + need.vcpus, slot.memory_gb + need.memory_gb, slot.disk_gb + need.disk_gb):
            return False
        if slot.ports & need.ports:
            return False
        if self.rules.separate_departments and slot.departments and need.department not in slot.departments:
            return False
        return not (self.rules.match_os_family and slot.os_family != need.os_family)

    def assign(self, need: Need) -> HostTarget | None:
        # A pool host already holding the department ranks before every other (`together` leads the preference),
        # so the whole pool is scanned only when none of those can take the host: a large city's pool is not
        # walked once per source host.
        near = sorted(self._holding.get(need.department, {}).values(), key=lambda s: s.index)
        candidates = [s for s in near if self._ok(s, need)] or [s for s in self.slots if self._ok(s, need)]
        if not candidates:
            return None

        def preference(s: _Slot) -> tuple:
            # Keep a system together, then a department; among empty hosts the smallest flavor that fits; the
            # fullest host first (best fit); inventory order last, so the choice is always the same.
            together = 0 if need.system in s.systems else 1 if need.department in s.departments else 2
            size = (s.flavor.vcpus, s.flavor.memory_gb, s.flavor.disk_gb)
            whole = need.together is not None and fits(s.flavor, *(a + b for a, b in zip(
                need.together, (s.vcpus, s.memory_gb, s.disk_gb), strict=True)))
            left = ((s.flavor.vcpus - s.vcpus - need.vcpus) / s.flavor.vcpus
                    + (s.flavor.memory_gb - s.memory_gb - need.memory_gb) / s.flavor.memory_gb)
            return (together, not whole, size if together == 2 else (0, 0, 0), round(left, 6), s.index)

        return self._take(min(candidates, key=preference), need)

    def hold(self, need: Need, host: str) -> HostTarget | None:
        slot = next((s for s in self.slots if s.host == host), None)
        return None if slot is None else self._take(slot, need)

    def _take(self, slot: _Slot, need: Need) -> HostTarget:
        slot.vcpus += need.vcpus
        slot.memory_gb += need.memory_gb
        slot.disk_gb += need.disk_gb
        slot.ports |= need.ports
        slot.departments[need.department] = slot.departments.get(need.department, 0) + 1
        self._holding.setdefault(need.department, {})[slot.host] = slot
        slot.systems[need.system] = slot.systems.get(need.system, 0) + 1
        slot.needs[need.source] = need
        sized = smallest_flavor(self.flavors.values(), need.vcpus, need.memory_gb, need.disk_gb)
        return HostTarget(source=need.source, target=slot.host, flavor=slot.flavor.name, need_vcpus=need.vcpus,
                          need_memory_gb=need.memory_gb, need_disk_gb=need.disk_gb,
                          sized_flavor=sized.name if sized else None, measured=list(need.measured), basis=need.basis,
                          zone=slot.zone)

    def release(self, target: HostTarget) -> None:
        slot = next(s for s in self.slots if s.host == target.target)
        need = slot.needs.pop(target.source)
        slot.vcpus -= need.vcpus
        slot.memory_gb -= need.memory_gb
        slot.disk_gb -= need.disk_gb
        slot.ports -= need.ports
        for counter, key in ((slot.departments, need.department), (slot.systems, need.system)):
            counter[key] -= 1
            if not counter[key]:
                del counter[key]
        if need.department not in slot.departments:
            del self._holding[need.department][slot.host]


# --- change windows -----------------------------------------------------------------------------------


def change_windows(planning: Planning, start: date, not_before: datetime | None = None
                   ) -> Iterator[tuple[datetime, datetime]]:
    """Change windows from `start` on, in order, skipping any that touches a blackout date (endless)."""
    tz = planning.tz
    day = start
    while True:
        for w in sorted(planning.change_windows, key=lambda w: w.start):
            if WEEKDAYS[day.weekday()] != w.weekday:
                continue
            begin = datetime.combine(day, time.fromisoformat(w.start), tz)
            end = begin + timedelta(hours=w.hours)
            if not_before is not None and begin < not_before:
                continue
            last = (end - timedelta(microseconds=1)).date()
            days = [begin.date() + timedelta(days=i) for i in range((last - begin.date()).days + 1)]
            if any(planning.blackout(d) for d in days):
                continue
            yield begin, end
        day += timedelta(days=1)


def next_window(planning: Planning, now: datetime | None = None) -> tuple[datetime, datetime]:
    now = (now or datetime.now(UTC)).astimezone(planning.tz)
    return next(change_windows(planning, now.date(), not_before=now))


# --- dependencies and waves ---------------------------------------------------------------------------


def dependency_edges(inv: Inventory, audit: AuditView) -> dict[tuple[str, str], str]:
    """(dependent, provider) -> how it is known: declared depends_on and, with history, measured connections."""
    edges: dict[tuple[str, str], str] = {}
    for s in sorted(inv.systems.values(), key=lambda s: s.id):
        for dep in s.depends_on:
            edges[(s.id, dep)] = "declared depends_on"
    for provider, dependents in sorted(audit.dependents.items()):
        for dependent, how in sorted(dependents.items()):
            if provider in inv.systems and dependent in inv.systems and provider != dependent:
                known = edges.get((dependent, provider))
                if known is None or "TCP" in how:
                    edges[(dependent, provider)] = how
    return edges


def priority(system: System) -> int:
    return system.priority.urgency * system.priority.importance


@dataclass
class _Group:
    key: str
    systems: list[str]  # cutover order inside the group
    hosts: int
    data_bytes: int
    priority: int = 0  # effective: the highest of its own and everything that (transitively) depends on it


def _schedule(groups: dict[str, _Group], needs: Mapping[str, set[str]], limits: WaveLimits
              ) -> tuple[list[list[str]], list[str]]:
    """Groups into waves: a group goes into the current wave once everything it needs is in an earlier wave or
    the current one, highest priority first, while the limits hold. A group over a limit on its own gets a
    wave of its own (and a warning).

    The groups whose needs are met wait in priority order (`ready`); adding a group to the wave releases those
    that waited only for it, and the next pick is again the first ready group that fits. So a city of thousands
    of groups is not rescanned whole for every group placed."""
    waves: list[list[str]] = []
    warnings: list[str] = []
    max_bytes = limits.max_data_gb * GB
    order = sorted(groups, key=lambda g: (-groups[g].priority, g))
    rank = {g: i for i, g in enumerate(order)}
    unmet = {g: len(needs.get(g, set())) for g in groups}
    waiting_on: dict[str, list[str]] = {}
    for g in groups:
        for d in needs.get(g, set()):
            waiting_on.setdefault(d, []).append(g)
    ready = [rank[g] for g in order if not unmet[g]]  # sorted: ranks of the groups free to go
    remaining = len(groups)
    while remaining:
        current: list[str] = []
        n_sys = n_hosts = n_bytes = 0
        while ready and n_sys < limits.max_systems:  # every group has a system, so a full wave takes no more
            pick = None
            for pos, r in enumerate(ready):
                grp = groups[order[r]]
                over = (n_sys + len(grp.systems) > limits.max_systems or n_hosts + grp.hosts > limits.max_hosts
                        or n_bytes + grp.data_bytes > max_bytes)
                if not over or not current:
                    pick = pos
                    break
            if pick is None:
                break
            g = order[ready.pop(pick)]
            grp = groups[g]
            if not current and (len(grp.systems) > limits.max_systems or grp.hosts > limits.max_hosts
                                or grp.data_bytes > max_bytes):
                warnings.append(f"{', '.join(grp.systems)}: move together but exceed one wave's limits "
                                f"({len(grp.systems)} systems, {grp.hosts} hosts, {grp.data_bytes / GB:.1f} GB); "
                                "they get a wave of their own")
            current.append(g)
            remaining -= 1
            n_sys, n_hosts, n_bytes = n_sys + len(grp.systems), n_hosts + grp.hosts, n_bytes + grp.data_bytes
            for dependent in waiting_on.get(g, []):
                unmet[dependent] -= 1
                if not unmet[dependent]:
                    bisect.insort(ready, rank[dependent])
        if not current:  # cannot happen on a DAG; guards an endless loop
            raise RuntimeError(f"waves: cannot schedule {sorted(g for g in groups if unmet[g])}")
        waves.append(current)
    return waves, warnings


# --- work orders --------------------------------------------------------------------------------------

ROOM_RULE = ("迁移后部门原则上不再保留机房；确因网络接入设备或保密要求需要的，只保留一间不超过20平方米的独立机房"
             "（盘锦市 盘政办发〔2017〕144号 机房腾退） / after the move the department keeps no machine room, "
             "except one independent room of at most 20 m² where network access equipment or confidentiality "
             "requires it (Panjin, 盘政办发〔2017〕144号, 机房腾退)")
OWNER_RULE = ("谁建设、谁负责：部门继续负责应用和软件安全运维，运管中心负责基础设施并提供等保测评"
              "（盘锦市 盘政办发〔2017〕144号） / whoever built it runs it: the department keeps application and "
              "software security operations, the operations centre runs the infrastructure and provides "
              "graded-protection assessment (Panjin, 盘政办发〔2017〕144号)")
VERIFY_RULE = ("迁移后完成功能验证（盘锦市 盘政办发〔2017〕144号） / functional verification after the move "
               "(Panjin, 盘政办发〔2017〕144号)")
WORK_ORDER_PREFIX = {Disposition.idc_move: "idc", Disposition.confidential_handover: "handover",
                     Disposition.decommission: "decommission", Disposition.site_cluster: "site",
                     Disposition.replatform: "replatform"}


def _disposal_notes(inv: Inventory, system: System, audit: AuditView, today: date) -> list[str]:
    """Per host, 移交划转 or 报损报废 (audit.archive.asset_list's rule) with its reason."""
    from audit.archive import asset_list, asset_reasons
    from jiyue.i18n import t

    verdict = audit.verdicts.get(system.id)
    collected = {h: m.collected for h, m in audit.hosts.items() if m.collected}
    entries = [a for a in asset_list(inv, [verdict], audit.facts, today, collected, "zh")
               if a.kind == "host" and a.system == system.id] if verdict else []
    if not entries:
        return [f"{h}：处置待定（无僵尸判定依据） / {h}: disposal to decide (no zombie verdict to go by)"
                for h in system.hosts]
    out = []
    for a in entries:
        zh = f"{t(f'disposal.{a.disposal}', 'zh')}（{asset_reasons(a, 'zh').replace(chr(10), '；')}）"
        en = f"{t(f'disposal.{a.disposal}', 'en')} ({asset_reasons(a, 'en').replace(chr(10), '; ')})"
        out.append(f"{a.name}：{zh} / {a.name}: {en}")
    return out


def work_order(inv: Inventory, sp: SystemPlan, planning_rack: int, audit: AuditView, today: date,
               dependents: list[str]) -> WorkOrder | None:
    kind = sp.disposition
    if kind not in WORK_ORDER_PREFIX:
        return None
    system = inv.systems[sp.system]
    notes: list[str] = []
    rack = 0
    if kind == Disposition.idc_move:
        rack = planning_rack * len(system.hosts)
        notes += [f"机柜空间 {rack}U（每台主机 {planning_rack}U，另有说明的除外） / rack space {rack}U "
                  f"({planning_rack}U per host unless noted)",
                  f"专用硬件随主机搬迁：{system.special_hardware} / special hardware moves with its host: "
                  f"{system.special_hardware}",
                  ROOM_RULE, OWNER_RULE, VERIFY_RULE]
    elif kind == Disposition.confidential_handover:
        notes += ["按照市委机要局机要网建设的统一部署迁移整合：绝不上云，不进网站群，不经电子政务外网传输 / follow the "
                  "confidential bureau's deployment of its network: never the cloud, the site cluster or the "
                  "extranet (Panjin, 盘政办发〔2017〕144号)",
                  "资产清单与档案随系统移交，交接双方签字确认 / hand over the asset list and archive record with the "
                  "system, signed by both sides",
                  ROOM_RULE]
    elif kind == Disposition.decommission:
        notes += ["下线前公告用户；按剧本下线：invoke migrate.offline --system "
                  f"{system.id} --signed-off-by 签批人 --apply（摘除网关路由、停止服务、数据归档并按 SHA-256 清单校验、"
                  "主机保留至宽限期满），宽限期内 migrate.rollback 可恢复，期满后 migrate.decommission 释放主机 / "
                  f"tell the users first; taken offline by playbook: invoke migrate.offline --system {system.id} "
                  "--signed-off-by NAME --apply (route removed, services stopped, data archived and verified against "
                  "its SHA-256 manifests, hosts kept for the grace period); migrate.rollback brings it back within "
                  "the grace period, migrate.decommission frees the hosts after it"]
        if dependents:
            notes.append(f"仍有系统依赖本系统：{', '.join(dependents)}，下线前先解除依赖 / still depended on by "
                         f"{', '.join(dependents)}: remove the dependency first")
        notes += ["资产处置（移交划转或报损报废，盘锦市 盘政办发〔2017〕144号）： / asset disposal (transfer or scrap; "
                  "Panjin, 盘政办发〔2017〕144号):",
                  *_disposal_notes(inv, system, audit, today), ROOM_RULE]
    elif kind == Disposition.replatform:
        notes += ["在受支持的操作系统与软件栈上重新部署（或由承建单位升级改造），数据迁移后功能验证，再切换访问入口；"
                  "原主机随后按资产清单处置 / redeploy on a supported OS and stack (or have the contractor upgrade "
                  "it), migrate the data, verify its functions, then switch its entry point; the old hosts then go to "
                  "the asset list", OWNER_RULE, VERIFY_RULE]
    elif kind == Disposition.site_cluster:
        notes += ["内容与栏目迁入市网站集约化平台，原服务器停止单独对外服务（盘锦市 盘政办发〔2017〕144号）"
                  " / content moves onto the city's site-cluster platform; the old server stops serving on its own "
                  "(Panjin, 盘政办发〔2017〕144号)",
                  "域名解析与 ICP 备案信息变更到网站群 / move the DNS name and the ICP filing to the site cluster",
                  "原主机按资产清单移交划转或报损报废 / the old hosts are transferred or scrapped via the asset list",
                  VERIFY_RULE]
    return WorkOrder(id=f"{WORK_ORDER_PREFIX[kind]}-{system.id}", kind=kind, system=system.id,
                     owner=system.department, assets=list(system.hosts), notes=notes, rule=sp.rule, rack_units=rack)


# --- the plan -----------------------------------------------------------------------------------------

IDC_RACK_UNITS_PER_HOST = 1  # 1U per host unless noted: what a typical rack server takes


def build_plan(inv: Inventory, audit: AuditView | None = None, planning: Planning | None = None, *,
               start: date | None = None, systems: Iterable[str] | None = None,
               provider: TargetProvider | None = None, previous: Plan | Mapping[str, Any] | None = None,
               limit: str | None = None, planning_path: str | None = None, now: datetime | None = None) -> Plan:
    """The migration plan for `systems` (default: every system of the inventory), in six stages, each a function.

    `audit` is what the history says (`AuditView.from_judge`; empty: no history). `start` is the first day a
    wave may start (default: the next change window from `now`). `previous` is the plan this one replaces:
    its work orders' statuses are kept.
    """
    audit = audit or AuditView()
    planning = planning or load_planning()
    provider = provider or PoolProvider(inv, planning)
    now = now or datetime.now(UTC)
    scope = sorted(set(systems) if systems is not None else set(inv.systems))
    unknown = [s for s in scope if s not in inv.systems]
    if unknown:
        raise ValueError(f"not in the inventory: {', '.join(unknown)}")
    warnings: list[str] = []
    decided = decide_all(inv, audit, planning, warnings)
    edges = dependency_edges(inv, audit)
    plans = system_plans(inv, audit, scope, decided, edges, warnings)
    routes = route_systems(inv, planning, plans, warnings)
    groups, needs = move_groups(inv, plans, edges)
    placed, shortfalls = place_groups(inv, audit, planning, provider, plans, groups, needs, warnings, routes,
                                      previous)
    start, waves = schedule_waves(planning, plans, groups, needs, placed, start, now, warnings)
    orders = plan_work_orders(inv, audit, plans, scope, decided, edges, previous,
                              now.astimezone(planning.tz).date(), warnings)
    return Plan(generated=now, inventory=inv.identity, systems=list(plans.values()), waves=waves,
                work_orders=orders, start=start, timezone=planning.timezone, limit=limit, planning=planning_path,
                history=audit.describe(), awaiting_capacity=shortfalls, warnings=warnings)


Decided = dict[str, tuple[Disposition, str, list[str]]]


def decide_all(inv: Inventory, audit: AuditView, planning: Planning, warnings: list[str]) -> Decided:
    """1. The disposition of every system, in scope or not (a dependency outside the scope still needs its own)."""
    decided = {sid: decide(s, audit.verdicts.get(sid), planning, audit.has_history)
               for sid, s in sorted(inv.systems.items())}
    for sid in sorted(planning.overrides):
        if sid not in inv.systems:
            warnings.append(f"planning.yaml overrides {sid}, which is not in the inventory")
    return decided


def system_plans(inv: Inventory, audit: AuditView, scope: Sequence[str], decided: Decided,
                 edges: Mapping[tuple[str, str], str], warnings: list[str]) -> dict[str, SystemPlan]:
    """2. Each system's plan with its dependencies (declared plus measured, among all systems) and what they mean
    for its move."""
    deps_of: dict[str, dict[str, str]] = {}
    for (dependent, provider_id), how in edges.items():
        deps_of.setdefault(dependent, {})[provider_id] = how

    plans: dict[str, SystemPlan] = {}
    in_scope = set(scope)
    for sid in scope:
        s = inv.systems[sid]
        disposition, rule, notes = decided[sid]
        verdict = audit.verdicts.get(sid)
        data = [audit.hosts[h].data_bytes for h in s.hosts if h in audit.hosts]
        notes = list(notes)
        for dep, how in sorted(deps_of.get(sid, {}).items()):
            if "TCP" in how and "declared" not in how:
                notes.append(f"实测依赖 {dep}（{how}） / measured dependency on {dep}: {how}")
            dep_disp = decided[dep][0]
            if dep_disp == Disposition.decommission:
                warnings.append(f"{sid} depends on {dep}, which is to be decommissioned (zombie): resolve the "
                                "dependency before the decommission")
                notes.append(f"依赖的 {dep} 将清理下线 / depends on {dep}, which is to be decommissioned")
            elif disposition == Disposition.cloud_rehost and dep_disp != Disposition.cloud_rehost:
                notes.append(f"依赖的 {dep}（{dep_disp}）不随批次迁移，不阻塞 / depends on {dep} ({dep_disp}), which "
                             "does not move in a wave: not blocking")
            elif disposition == Disposition.cloud_rehost and dep not in in_scope:
                notes.append(f"依赖的 {dep} 不在本计划范围（--limit）：须在同批或更早迁移 / depends on {dep}, outside "
                             "this plan (--limit): it must move in an earlier wave or the same one")
        if disposition == Disposition.cloud_rehost and (not data or any(d is None for d in data)):
            notes.append("部分主机数据量未测得 / data volume not measured on some hosts")
        plans[sid] = SystemPlan(
            system=sid, name=s.name, department=s.department, disposition=disposition, rule=rule,
            urgency=s.priority.urgency, importance=s.priority.importance,
            depends_on=sorted(deps_of.get(sid, {})), data_bytes=sum(d or 0 for d in data),
            downtime_budget_s=s.downtime_budget, classification=s.classification,
            verdict=verdict.verdict if verdict else None, notes=notes)
    return plans


def route_systems(inv: Inventory, planning: Planning, plans: dict[str, SystemPlan], warnings: list[str]
                  ) -> dict[str, Route]:
    """2b. Each system's network: the zone a cloud-bound system lands in, with the clause in its rule, and how a
    business private network is treated. Classified systems get none: their network is the confidential bureau's."""
    routes: dict[str, Route] = {}
    waiting: dict[str, list[str]] = {}
    for sid, sp in plans.items():
        system = inv.systems[sid]
        if system.classification == Classification.classified:
            continue
        r = route(inv, system, planning.routing)
        routes[sid] = r
        sp.category, sp.allowed_zones, sp.private_network = system.category, list(r.allowed), r.private
        if sp.private_network is not None:
            sp.notes.append(sp.private_network.reason)
        if sp.disposition not in CLOUD_BOUND:
            continue
        sp.zone = r.zone
        sp.rule = _with_clause(sp.rule, r.zone or planning.routing.declared[system.zone], r.clause)
        if r.waits:
            sp.notes.append(r.waits)
            waiting.setdefault(r.waits.partition(" / ")[2], []).append(sid)
    for reason, sids in sorted(waiting.items()):
        warnings.append(f"{', '.join(sids)}: {reason}")
    crossing = []
    for sid, sp in plans.items():
        for dep in sp.depends_on:
            other = plans[dep].zone if dep in plans else None
            if sp.zone is not None and other is not None and other != sp.zone:
                # The intranet is physically apart from the extranet: such a dependency needs a sanctioned crossing.
                dzh, den = ZONE_NAMES[other]
                sp.notes.append(f"依赖的 {dep} 位于{dzh}：跨网访问须经安全隔离与信息交换边界 / depends on {dep} in "
                                f"{den}: the access crosses networks and needs a secure isolation and exchange gateway")
                crossing.append(f"{sid} → {dep}")
    if crossing:
        warnings.append(f"dependencies across network zones, each needing a secure exchange boundary: "
                        f"{', '.join(crossing)}")
    return routes


def move_groups(inv: Inventory, plans: dict[str, SystemPlan], edges: Mapping[tuple[str, str], str]
                ) -> tuple[dict[str, _Group], dict[str, set[str]]]:
    """3. The cloud rehosts that must move together (they depend on each other), and what each group needs first;
    each group's priority is the highest of those that wait for it."""
    movers = sorted(sid for sid, p in plans.items() if p.disposition == Disposition.cloud_rehost)
    graph = nx.DiGraph()
    graph.add_nodes_from(movers)
    graph.add_edges_from((a, b) for (a, b) in sorted(edges) if a in graph and b in graph)
    condensed = nx.condensation(graph)
    groups: dict[str, _Group] = {}
    node_key: dict[int, str] = {}
    for node in sorted(condensed.nodes, key=lambda n: min(condensed.nodes[n]["members"])):
        members = sorted(condensed.nodes[node]["members"])
        # inside a group: what more of the others need first (most dependents), then by id
        sub = graph.subgraph(members) if len(members) > 1 else None
        inner = sorted(members, key=lambda m: (-sub.in_degree(m), m)) if sub is not None else members
        key = members[0]
        node_key[node] = key
        groups[key] = _Group(key, inner, sum(len(inv.systems[m].hosts) for m in members),
                             sum(plans[m].data_bytes for m in members))
    needs = {node_key[n]: {node_key[d] for d in condensed.successors(n)} for n in condensed.nodes}
    # Dependents come before what they need in topological order, so one pass carries each group's highest
    # priority down to everything it waits for (an ancestors() walk per group is quadratic on a large city).
    for n in nx.topological_sort(condensed):
        own = max(priority(inv.systems[m]) for m in condensed.nodes[n]["members"])
        groups[node_key[n]].priority = max([own, *(groups[node_key[d]].priority for d in condensed.predecessors(n))])
    for key, grp in groups.items():
        if len(grp.systems) > 1:
            for m in grp.systems:
                plans[m].group = key
                plans[m].notes.append(f"与 {', '.join(x for x in grp.systems if x != m)} 相互依赖，同批迁移 / "
                                      f"depends on {', '.join(x for x in grp.systems if x != m)} and back: they move "
                                      "together")
    return groups, needs


def place_groups(inv: Inventory, audit: AuditView, planning: Planning, provider: TargetProvider,
                 plans: dict[str, SystemPlan], groups: dict[str, _Group], needs: Mapping[str, set[str]],
                 warnings: list[str], routes: Mapping[str, Route] | None = None,
                 previous: Plan | Mapping[str, Any] | None = None) -> tuple[set[str], list[Shortfall]]:
    """4. Targets, group by group in dependency order and priority: all of a group or none of it. Returns the
    groups placed and what the others lack (the flavors to request). A group with a system that waits for its zone
    (`routes`) waits whole, and its shortfall says which zone to build."""
    routes = routes or {}
    held = hold_migrated(inv, audit, planning, provider, routes, warnings, previous)
    dag = nx.DiGraph()
    dag.add_nodes_from(groups)
    dag.add_edges_from((d, g) for g, ds in needs.items() for d in ds)  # what is needed comes first
    order = list(nx.lexicographical_topological_sort(dag, key=lambda g: (-groups[g].priority, g)))
    shortfalls: list[Shortfall] = []
    placed: set[str] = set()
    flavors = list(inv.cloud.flavors) if inv.cloud else []
    for g in order:
        grp = groups[g]
        waiting = sorted(d for d in needs[g] if d not in placed)
        if waiting:
            for m in grp.systems:
                plans[m].awaiting_capacity = True
                plans[m].notes.append(f"等待 {', '.join(waiting)} 获得资源后再迁移 / waits for {', '.join(waiting)}, "
                                      "which awaits capacity")
            continue
        host_needs = [size_host(inv, h, audit.hosts.get(h), planning, routes.get(m)) for m in grp.systems
                      for h in inv.systems[m].hosts if h not in held]
        host_needs.sort(key=lambda n: (-(n.vcpus / 2 + n.memory_gb / 4 + n.disk_gb / 50), n.source))
        zone_waits = {m: routes[m].waits for m in grp.systems if m in routes and routes[m].waits
                      and not set(inv.systems[m].hosts) <= held.keys()}
        if zone_waits:
            for need in sorted(host_needs, key=lambda n: n.source):
                flavor = smallest_flavor(flavors, need.vcpus, need.memory_gb, need.disk_gb)
                reason = zone_waits.get(need.system) or ("同组其他系统等待其网络区域，整组等待 / another system of its "
                                                         "group waits for its zone: the group waits")
                shortfalls.append(Shortfall(system=need.system, source=need.source, need_vcpus=need.vcpus,
                                            need_memory_gb=need.memory_gb, need_disk_gb=need.disk_gb,
                                            request_flavor=flavor.name if flavor else None, reason=reason))
            for m in grp.systems:
                plans[m].awaiting_capacity = True
            continue
        got = [held[h] for m in grp.systems for h in inv.systems[m].hosts if h in held]
        missing: set[str] = set()
        for i, need in enumerate(host_needs):
            rest = [n for n in host_needs[i:] if n.system == need.system]
            if len(rest) > 1 and not any(a.ports & b.ports for a in rest for b in rest if a is not b):
                need = replace(need, together=(sum(n.vcpus for n in rest), sum(n.memory_gb for n in rest),
                                               sum(n.disk_gb for n in rest)))
            target = provider.assign(need)
            if target is None:
                missing.add(need.source)
            else:
                got.append(target)
        if missing:
            for target in got:
                if target.source not in held:
                    provider.release(target)
            for need in sorted(host_needs, key=lambda n: n.source):
                flavor = smallest_flavor(flavors, need.vcpus, need.memory_gb, need.disk_gb)
                reason = ("没有能容纳它的资源池主机 / no pool host can take it" if need.source in missing else
                          "同组其他主机无法放置，整组等待 / another host of its group cannot be placed: "
                          "the group waits")
                shortfalls.append(Shortfall(system=need.system, source=need.source, need_vcpus=need.vcpus,
                                            need_memory_gb=need.memory_gb, need_disk_gb=need.disk_gb,
                                            request_flavor=flavor.name if flavor else None, reason=reason))
            for m in grp.systems:
                plans[m].awaiting_capacity = True
                plans[m].notes.append("资源池容量不足，等待扩容 / the cloud pool lacks capacity: awaiting capacity")
            continue
        placed.add(g)
        for target in got:
            owner = inv.owner(target.source)
            plans[owner.id].targets.append(target)
        for m in grp.systems:
            plans[m].targets.sort(key=lambda t: inv.systems[m].hosts.index(t.source))
            stays = [f"{t.source} → {t.target}" for t in plans[m].targets if t.source in held]
            if stays:
                plans[m].notes.append(f"已迁移，保持现位置 {', '.join(stays)} / migrated already: stays on "
                                      f"{', '.join(stays)}")
    shortfalls.sort(key=lambda sf: (sf.system, sf.source))
    if shortfalls:
        wanted: dict[str, int] = {}
        for sf in shortfalls:
            wanted[sf.request_flavor or "?"] = wanted.get(sf.request_flavor or "?", 0) + 1
        ask = ", ".join(f"{n} × {f}" for f, n in sorted(wanted.items()))
        systems_waiting = sorted({p.system for p in plans.values() if p.awaiting_capacity})
        warnings.append(f"{len(systems_waiting)} cloud rehosts await capacity ({', '.join(systems_waiting)}): "
                        f"request {ask} from the cloud, or enlarge the pool, and plan again")
    return placed, shortfalls


def placed_needs(previous: Plan | Mapping[str, Any] | None) -> dict[tuple[str, str], tuple[float, float, float, str]]:
    """(source, target) -> the vCPUs, memory, disk and basis the plan being replaced placed it with."""
    out: dict[tuple[str, str], tuple[float, float, float, str]] = {}
    if previous is None:
        return out
    raw = previous.model_dump(mode="json") if isinstance(previous, Plan) else previous
    for system in raw.get("systems") or []:
        for t in (system.get("targets") or []) if isinstance(system, Mapping) else []:
            try:
                out[(str(t["source"]), str(t["target"]))] = (float(t["need_vcpus"]), float(t["need_memory_gb"]),
                                                             float(t["need_disk_gb"]), str(t.get("basis") or ""))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def hold_migrated(inv: Inventory, audit: AuditView, planning: Planning, provider: TargetProvider,
                  routes: Mapping[str, Route], warnings: list[str],
                  previous: Plan | Mapping[str, Any] | None = None) -> dict[str, HostTarget]:
    """Where an applied migration put a system, it stays: its targets are held before anything else is placed,
    so that nothing is planned onto capacity or a port it really occupies (in the plan's scope or not). A target
    the plan being replaced placed is held at the size it was placed (and migrated) with: the old source host's
    later readings say nothing of the system any more, and re-sizing from them could overcommit a target the
    planner cannot move. Returns the held targets by source host."""
    before = placed_needs(previous)
    held: dict[str, HostTarget] = {}
    for sid, where in sorted(audit.locations.items()):
        if where.get("what") != "migrated" or sid not in inv.systems:
            continue
        for source, host in sorted((where.get("hosts") or {}).items()):
            if source not in inv.systems[sid].hosts or host == source:
                continue
            need = size_host(inv, source, audit.hosts.get(source), planning, routes.get(sid))
            if (source, host) in before:
                vcpus, memory, disk, basis = before[(source, host)]
                need = replace(need, vcpus=vcpus, memory_gb=memory, disk_gb=disk, basis=basis or need.basis)
            target = provider.hold(need, host)
            if target is None:
                warnings.append(f"{sid}: {source} was migrated to {host}, which is not in the cloud pool: it stays "
                                "there, but its capacity is not counted; add the host to cloud.pool")
                target = HostTarget(source=source, target=host, flavor="", need_vcpus=need.vcpus,
                                    need_memory_gb=need.memory_gb, need_disk_gb=need.disk_gb,
                                    measured=list(need.measured), basis=need.basis)
            held[source] = target
    return held


def schedule_waves(planning: Planning, plans: dict[str, SystemPlan], groups: dict[str, _Group],
                   needs: Mapping[str, set[str]], placed: set[str], start: date | None, now: datetime,
                   warnings: list[str]) -> tuple[date, list[Wave]]:
    """5. The placed groups in waves within the limits, one per change window from `start` (default: the next
    window after `now`)."""
    placed_groups = {g: groups[g] for g in placed}
    wave_groups, wave_warnings = _schedule(placed_groups, {g: needs[g] & placed for g in placed}, planning.waves)
    warnings += wave_warnings
    if start is None:
        first, _ = next_window(planning, now)
        start = first.date()
    if start < now.astimezone(planning.tz).date() and wave_groups:
        warnings.append(f"the first wave may start on {start}, which is in the past: give --start a coming date")
    windows = change_windows(planning, start)
    waves: list[Wave] = []
    for number, members in enumerate(wave_groups, 1):
        begin, end = next(windows)
        ordered: list[str] = []
        for g in members:  # already in dependency order: a group enters only after what it needs
            ordered += groups[g].systems
        for m in ordered:
            plans[m].wave = number
        waves.append(Wave(number=number, start=begin, end=end, systems=ordered,
                          hosts=sum(groups[g].hosts for g in members),
                          data_bytes=sum(groups[g].data_bytes for g in members),
                          groups=[groups[g].systems for g in members if len(groups[g].systems) > 1]))
    return start, waves


def plan_work_orders(inv: Inventory, audit: AuditView, plans: dict[str, SystemPlan], scope: Sequence[str],
                     decided: Decided, edges: Mapping[tuple[str, str], str],
                     previous: Plan | Mapping[str, Any] | None, today: date, warnings: list[str]) -> list[WorkOrder]:
    """6. Work orders for the moves no playbook makes, their status carried over from the plan this one replaces."""
    old_status = _statuses(previous)
    dependents_of: dict[str, list[str]] = {}
    for d, p in edges:
        if decided[d][0] != Disposition.decommission:
            dependents_of.setdefault(p, []).append(d)
    orders: list[WorkOrder] = []
    for sid in scope:
        dependents = sorted(dependents_of.get(sid, []))
        order_ = work_order(inv, plans[sid], IDC_RACK_UNITS_PER_HOST, audit, today, dependents)
        if order_ is None:
            continue
        if order_.id in old_status:
            order_.status = old_status.pop(order_.id)
        orders.append(order_)
    for wid, status in sorted(old_status.items()):
        if status != WorkOrderStatus.open:
            warnings.append(f"work order {wid} ({status}) of the previous plan is no longer needed: check it")
    return orders


def _statuses(previous: Plan | Mapping[str, Any] | None) -> dict[str, WorkOrderStatus]:
    """Work-order statuses of an earlier plan, read leniently (a hand-edited file may not load whole)."""
    if previous is None:
        return {}
    if isinstance(previous, Plan):
        return {o.id: o.status for o in previous.work_orders}
    out = {}
    for o in previous.get("work_orders") or []:
        if isinstance(o, dict) and isinstance(o.get("id"), str) and o.get("status") in WorkOrderStatus.__members__:
            out[o["id"]] = WorkOrderStatus(o["status"])
    return out


def read_previous(path: Path) -> dict[str, Any] | None:
    """The plan file a new plan replaces, as plain data (None if there is none or it is not YAML)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def default_plan_path(inv: Inventory) -> Path:
    """migrations/plans/<inventory directory name>-<its identity's digest>.yaml"""
    return inv.plan_file(PLANS_DIR)


def write_plan(plan: Plan, path: Path, previous: Mapping[str, Any] | None = None) -> Path:
    """Save the plan; a plan equal to the one on disk but for its `generated` time keeps that time, so a rerun
    with the same inputs writes the same file."""
    if previous and previous.get("generated"):
        same = {**plan.model_dump(mode="json"), "generated": None} == {**previous, "generated": None}
        if same:
            plan.generated = datetime.fromisoformat(str(previous["generated"]))
    return save_plan(plan, path)


def counts(plan: Plan) -> dict[str, int]:
    """Systems per disposition, in report order."""
    return {str(d): sum(s.disposition == d for s in plan.systems) for d in DISPOSITION_ORDER}
