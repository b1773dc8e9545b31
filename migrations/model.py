"""The migration plan: what `migrate.plan` writes for review and `migrate.run` carries out.

A plan is a YAML file (reviewable in a merge request, editable by hand: a reviewer may move a
system to another wave or swap a target host). Loading it validates it again, so an edit cannot
smuggle a classified system onto the cloud or point a wave at an unknown host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from inventory.model import Category, Classification, CloudZone, GoldenNetwork, Inventory
from jiyue.reports import write_yaml
from jiyue.runner import Result

if TYPE_CHECKING:
    from migrations.plan import Planning


class Disposition(StrEnum):
    """Where a system goes (Panjin, 盘政办发〔2017〕144号; docs/policy-basis.md)."""

    cloud_rehost = "cloud_rehost"  # 迁移上云: non-classified systems onto the city cloud
    idc_move = "idc_move"  # 物理迁移至IDC机房: what the cloud cannot host
    confidential_handover = "confidential_handover"  # 移交机要网: classified systems, never the cloud
    decommission = "decommission"  # 清理下线: zombies (audit verdicts)
    replatform = "replatform"  # 重新部署/升级改造: in use, but on an unmaintained stack (audit verdicts)
    site_cluster = "site_cluster"  # 网站集约化平台: department websites
    retain = "retain"  # 保留: national golden networks, as the state deploys them


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostTarget(Model):
    """One source host of a cloud rehost and the pre-provisioned cloud host it moves to."""

    source: str
    target: str
    flavor: str
    # Sizing: measured need (audit history) plus headroom, and what the flavor gives.
    need_vcpus: float
    need_memory_gb: float
    need_disk_gb: float
    # The smallest catalog flavor this source host fits alone (what to request for a VM of its own).
    sized_flavor: str | None = None
    measured: list[str] = []  # which of cpu, memory, disk came from the audit history (the rest: fallback)
    basis: str = ""  # how the need was worked out, for people
    zone: CloudZone | None = None  # the target's network zone (the inventory's pool host `zone`)


class Shortfall(Model):
    """A source host of a cloud rehost that no target could take: what to request from the cloud."""

    system: str
    source: str
    need_vcpus: float
    need_memory_gb: float
    need_disk_gb: float
    request_flavor: str | None = None  # None: bigger than every flavor of the catalog
    reason: str = ""


class PrivateNetwork(Model):
    """A system on a business private network (业务专网, zone `private`): whether it joins the extranet, and through
    which department's VLAN, or stays on its national network."""

    joins_extranet: bool
    department: str | None = None  # whose extranet VLAN it joins through
    vlan: int | None = None
    device: str | None = None
    interface: str | None = None
    golden_network: GoldenNetwork | None = None  # the national network it stays on
    reason: str = ""  # zh / en

    @model_validator(mode="after")
    def _one_way(self) -> PrivateNetwork:
        if self.joins_extranet and (self.vlan is None or self.golden_network is not None):
            raise ValueError("a private network joins the extranet through a VLAN, and never a golden network")
        return self


class SystemPlan(Model):
    system: str
    name: str
    department: str
    disposition: Disposition
    rule: str  # the rule that decided the disposition, for people: "classified → confidential network (§2)"
    urgency: Annotated[int, Field(ge=1, le=5)]
    importance: Annotated[int, Field(ge=1, le=5)]
    wave: int | None = None  # cloud rehosts only
    group: str | None = None  # systems that must move together (a strongly connected component)
    depends_on: list[str] = []  # declared and measured
    targets: list[HostTarget] = []
    data_bytes: int = 0
    downtime_budget_s: int = 300
    classification: Classification | None = None  # copied from the inventory; re-checked against it on load
    verdict: str | None = None  # the audit's zombie verdict; None when no audit history exists
    awaiting_capacity: bool = False  # a cloud rehost no target could take yet: no wave, see Plan.awaiting_capacity
    notes: list[str] = []  # dependencies that do not block, sizing fall-backs, overrides refused, …
    # Routing (planning.yaml `routing`): the category copied from the inventory, the cloud zones it allows, the zone
    # the system lands in (None: it does not land on the cloud, or waits for its zone) and, on a business private
    # network, how that network is treated. All re-checked against the inventory on load (`Plan.check`).
    category: Category | None = None
    allowed_zones: list[CloudZone] = []
    zone: CloudZone | None = None
    private_network: PrivateNetwork | None = None

    @model_validator(mode="after")
    def _classified_never_moves_to_the_cloud(self) -> SystemPlan:
        if self.classification == Classification.classified and (
                self.disposition != Disposition.confidential_handover or self.targets or self.wave is not None):
            raise ValueError(f"{self.system}: a classified (涉密) system is handed over to the confidential network "
                             "only: no cloud, no site cluster, no targets, no wave (盘政办发〔2017〕144号)")
        return self

    @model_validator(mode="after")
    def _never_a_zone_its_category_forbids(self) -> SystemPlan:
        """The zone gate, as hard as the classified one: a plan that lands a system, or any of its hosts, outside the
        zones its category allows does not load."""
        if self.zone is None and not self.allowed_zones:
            return self  # not routed (classified: the confidential bureau's network; a plan without routing data):
            # `Plan.check` still holds every target to the inventory's zones
        if self.zone is not None and self.zone not in self.allowed_zones:
            raise ValueError(f"{self.system}: the {self.zone} zone is forbidden to its category {self.category} "
                             f"(allowed: {', '.join(map(str, self.allowed_zones)) or 'none'})")
        for t in self.targets:
            if t.zone is not None and (t.zone != self.zone or t.zone not in self.allowed_zones):
                raise ValueError(f"{self.system}: target {t.target} is in the {t.zone} zone, but the system goes to "
                                 f"{self.zone or 'no zone'} (its category {self.category} allows "
                                 f"{', '.join(map(str, self.allowed_zones)) or 'none'})")
        if self.private_network is not None and self.private_network.joins_extranet and self.zone not in (
                None, CloudZone.extranet):
            raise ValueError(f"{self.system}: joins the extranet, so it cannot land in the {self.zone} zone")
        return self


class Wave(Model):
    number: int
    start: datetime
    end: datetime
    systems: list[str]  # in cutover order: what a system needs comes before it
    hosts: int
    data_bytes: int
    groups: list[list[str]] = []  # systems that move together (strongly connected), when more than one


class WorkOrderStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    done = "done"


class WorkOrder(Model):
    """A move no playbook makes: IDC physical move, confidential hand-over, decommission, site cluster."""

    id: str
    kind: Disposition
    system: str
    owner: str  # owning department (谁建设、谁负责)
    assets: list[str]  # host names
    notes: list[str] = []  # rack/space needs, the 20 m² machine-room rule, disposal (移交划转 / 报损报废)
    status: WorkOrderStatus = WorkOrderStatus.open
    rule: str = ""  # why this work order exists (the system's disposition rule)
    rack_units: int = 0  # IDC moves: rack space to reserve


class Plan(Model):
    generated: datetime
    inventory: str
    systems: list[SystemPlan]
    waves: list[Wave]
    work_orders: list[WorkOrder]
    start: date | None = None  # the first day a wave may start (--start)
    timezone: str = "Asia/Shanghai"  # of the change windows
    limit: str | None = None  # the --limit the plan was made for
    planning: str | None = None  # the planning file used (migrations/planning.yaml)
    history: str = ""  # what audit history the plan rests on, for people
    awaiting_capacity: list[Shortfall] = []
    warnings: list[str] = []

    def system(self, system_id: str) -> SystemPlan:
        return next(s for s in self.systems if s.system == system_id)

    def wave(self, number: int) -> Wave:
        return next(w for w in self.waves if w.number == number)

    def check(self, inv: Inventory) -> list[str]:
        """Problems that make a plan unsafe to run, however it was edited. Empty when sound."""
        foreign = inv.foreign_plan(self.inventory)
        if foreign:
            return [foreign]
        problems = []
        pool = {p.host: p.flavor for p in inv.cloud.pool} if inv.cloud else {}
        flavors = {f.name: f for f in inv.cloud.flavors} if inv.cloud else {}
        waves = {w.number for w in self.waves}
        seen = set()
        for s in self.systems:
            system = inv.systems.get(s.system)
            if system is None:
                problems.append(f"{s.system}: not in the inventory")
                continue
            if s.system in seen:
                problems.append(f"{s.system}: planned twice")
            seen.add(s.system)
            if system.classification == Classification.classified and (
                    s.disposition != Disposition.confidential_handover or s.targets or s.wave is not None):
                problems.append(f"{s.system}: classified (涉密) systems never go to the cloud or the site cluster: "
                                "they are handed over to the confidential network (盘政办发〔2017〕144号)")
            for t in s.targets:
                if t.source not in system.hosts:
                    problems.append(f"{s.system}: {t.source} is not one of its hosts")
                if t.target not in pool:
                    problems.append(f"{s.system}: target {t.target} is not a cloud-pool host")
            if s.disposition == Disposition.cloud_rehost and not s.awaiting_capacity and (
                    s.wave is None or not s.targets):
                problems.append(f"{s.system}: a cloud rehost needs a wave and targets")
            if s.disposition != Disposition.cloud_rehost and (s.wave is not None or s.targets):
                problems.append(f"{s.system}: only cloud rehosts have a wave and targets ({s.disposition})")
            if s.awaiting_capacity and (s.wave is not None or s.targets):
                problems.append(f"{s.system}: awaiting capacity, so it can have neither a wave nor targets")
            if s.wave is not None and s.wave not in waves:
                problems.append(f"{s.system}: wave {s.wave} does not exist")
        problems += self._check_waves(inv)
        problems += self._check_targets(inv, pool, flavors)
        problems += self._check_zones(inv)
        for o in self.work_orders:
            system = inv.systems.get(o.system)
            if system is None:
                problems.append(f"work order {o.id}: {o.system} is not in the inventory")
            elif system.classification == Classification.classified and o.kind != Disposition.confidential_handover:
                problems.append(f"work order {o.id}: {o.system} is classified (涉密): only a hand-over to the "
                                "confidential network (盘政办发〔2017〕144号)")
        return problems

    def _check_waves(self, inv: Inventory) -> list[str]:
        """Nothing moves before what it needs: a cloud rehost's dependencies that are cloud rehosts too move in an
        earlier wave or the same one."""
        problems = []
        by_id = {s.system: s for s in self.systems}
        for w in self.waves:
            for sid in w.systems:
                s = by_id.get(sid)
                if s is None or s.wave != w.number:
                    problems.append(f"wave {w.number}: {sid} is listed but not planned in that wave")
        for s in self.systems:
            if s.wave is None:
                continue
            system = inv.systems.get(s.system)
            declared = system.depends_on if system else []
            for dep in sorted({*s.depends_on, *declared}):
                d = by_id.get(dep)
                if d is None or d.disposition != Disposition.cloud_rehost:
                    continue
                if d.wave is None or d.wave > s.wave:
                    where = "has no wave" if d.wave is None else f"moves in wave {d.wave}"
                    problems.append(f"{s.system}: wave {s.wave} moves it before {dep}, which it depends on ({where})")
        return problems

    def _check_zones(self, inv: Inventory) -> list[str]:
        """The zone gate against the inventory and the planning file the plan was made with: each target host's zone
        (the inventory's, not the plan's copy) is one the system's category (the inventory's) allows."""
        from migrations.plan import PlanningError, planning_named

        try:
            routing = planning_named(self.planning).routing
        except PlanningError as exc:
            return [f"cannot check the network zones: {exc}"]
        zones = {p.host: p.zone for p in inv.cloud.pool} if inv.cloud else {}
        problems = []
        for s in self.systems:
            system = inv.systems.get(s.system)
            if system is None:
                continue
            allowed = routing.allowed(system.category)
            if s.zone is not None and s.zone not in allowed:
                problems.append(f"{s.system}: the {s.zone} zone is forbidden to its category {system.category} "
                                f"(allowed: {', '.join(map(str, allowed))})")
            routed = routing.declared[system.zone]
            for t in s.targets:
                zone = zones.get(t.target)
                if zone is not None and zone not in allowed:
                    problems.append(f"{s.system}: target {t.target} is in the {zone} zone, forbidden to its category "
                                    f"{system.category} (allowed: {', '.join(map(str, allowed))})")
                elif zone is not None and zone != routed:
                    problems.append(f"{s.system}: target {t.target} is in the {zone} zone, but its declared network "
                                    f"({system.zone}) routes it to the {routed} zone")
        return problems

    def _check_targets(self, inv: Inventory, pool: dict[str, str], flavors: dict) -> list[str]:
        """No target host gets two services on one port or more than its flavor gives."""
        problems = []
        ports: dict[tuple[str, str, int], str] = {}
        used: dict[str, list[float]] = {}
        sources: dict[str, str] = {}
        for s in self.systems:
            system = inv.systems.get(s.system)
            for t in s.targets:
                if t.source in sources:
                    problems.append(f"{s.system}: source host {t.source} already moves with {sources[t.source]}")
                sources[t.source] = s.system
                for svc in (system.services if system else []):
                    if svc.host != t.source:
                        continue
                    key = (t.target, svc.protocol, svc.port)
                    if key in ports:
                        problems.append(f"{t.target}: port {svc.port}/{svc.protocol} taken twice "
                                        f"({ports[key]} and {s.system}/{t.source})")
                    ports[key] = f"{s.system}/{t.source}"
                total = used.setdefault(t.target, [0.0, 0.0, 0.0])
                total[0] += t.need_vcpus
                total[1] += t.need_memory_gb
                total[2] += t.need_disk_gb
        for target, (cpu, mem, disk) in sorted(used.items()):
            flavor = flavors.get(pool.get(target, ""))
            if flavor is None:
                continue
            if cpu > flavor.vcpus + 1e-9 or mem > flavor.memory_gb + 1e-9 or disk > flavor.disk_gb + 1e-9:
                problems.append(f"{target}: needs {cpu:g} vCPUs, {mem:g} GB memory, {disk:g} GB disk; flavor "
                                f"{flavor.name} gives {flavor.vcpus}, {flavor.memory_gb}, {flavor.disk_gb}")
        return problems


class PlanError(ValueError):
    """A plan file that must not be run: it does not parse, or `Plan.check` found problems."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_plan(path: Path, inv: Inventory | None = None) -> Plan:
    """Read a plan file. With `inv`, also check it against the inventory and refuse it (PlanError) when unsound:
    a hand edit cannot move a classified system to the cloud, nor a system before what it needs."""
    plan = Plan.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    if inv is not None:
        problems = plan.check(inv)
        if problems:
            raise PlanError(problems)
    return plan


def save_plan(plan: Plan, path: Path) -> Path:
    header = ("# Migration plan written by `invoke migrate.plan`; review it, edit it if you must (it is\n"
              "# checked again on load), then `invoke migrate.run --wave N`.\n")
    return write_yaml(path, plan.model_dump(mode="json"), header)


@dataclass
class PlannedMigration:
    """What planning returns (`migrations.service.plan_migration`) and the plan's reports are written from: the
    plan, the inventory it is for, the planning data it was made with and where the plan file was written."""

    inventory: Inventory
    plan: Plan
    planning: Planning | None = None
    path: Path | None = None

    @property
    def awaiting_capacity(self) -> list[str]:
        """The cloud rehosts that wait for capacity (a problem to report: the planned waves can still move)."""
        return sorted({s.system for s in self.plan.awaiting_capacity})


# --- a run's results --------------------------------------------------------------------------------------

# Ends that count as ok (a zombie's offline run ends `offline`, or `already_offline` when asked again).
GOALS = ("migrated", "rehearsed", "decommissioned", "already_migrated", "offline", "already_offline")


@dataclass
class MigrationOutcome:
    """How one system's migration run ended: `result` names the end (migrated, rehearsed, refused, rolled_back,
    failed, locked, interrupted, decommissioned, already_migrated; a zombie: offline, already_offline), the downtime
    and client outage are measured on the controller's clock, `changed` and `diff` say what the steps changed (in a
    rehearsal: would change)."""

    system: str
    run_key: str
    result: str
    message: str = ""
    downtime_s: float | None = None
    outage_s: float | None = None
    steps_run: list[str] = field(default_factory=list)
    changed: bool = False
    diff: str = ""

    @property
    def ok(self) -> bool:
        return self.result in GOALS

    def to_result(self) -> Result:
        """The kernel's `Result` of this system, as every domain's runs report and the store records it."""
        return Result(self.system, self.ok, asdict(self), None if self.ok else self.result, self.message,
                      changed=self.changed, diff=self.diff)
