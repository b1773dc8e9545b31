"""The migration plan: what `migrate.plan` writes for review and `migrate.run` carries out.

A plan is a YAML file (reviewable in a merge request, editable by hand: a reviewer may move a
system to another wave or swap a target host). Loading it validates it again, so an edit cannot
smuggle a classified system onto the cloud or point a wave at an unknown host.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from inventory.model import Classification, Inventory


class Disposition(StrEnum):
    """Where a system goes (policy.md §2)."""

    cloud_rehost = "cloud_rehost"  # 迁移上云: non-classified systems onto the city cloud
    idc_move = "idc_move"  # 物理迁移至IDC机房: what the cloud cannot host
    confidential_handover = "confidential_handover"  # 移交机要网: classified systems, never the cloud
    decommission = "decommission"  # 清理下线: zombies (audit verdicts)
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


class Wave(Model):
    number: int
    start: datetime
    end: datetime
    systems: list[str]
    hosts: int
    data_bytes: int


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


class Plan(Model):
    generated: datetime
    inventory: str
    systems: list[SystemPlan]
    waves: list[Wave]
    work_orders: list[WorkOrder]

    def system(self, system_id: str) -> SystemPlan:
        return next(s for s in self.systems if s.system == system_id)

    def wave(self, number: int) -> Wave:
        return next(w for w in self.waves if w.number == number)

    def check(self, inv: Inventory) -> list[str]:
        """Problems that make a plan unsafe to run, however it was edited. Empty when sound."""
        problems = []
        pool = {p.host for p in inv.cloud.pool} if inv.cloud else set()
        for s in self.systems:
            system = inv.systems.get(s.system)
            if system is None:
                problems.append(f"{s.system}: not in the inventory")
                continue
            if system.classification == Classification.classified and s.disposition in (
                    Disposition.cloud_rehost, Disposition.site_cluster):
                problems.append(f"{s.system}: classified (涉密) systems never go to the cloud (policy.md §2)")
            for t in s.targets:
                if t.source not in system.hosts:
                    problems.append(f"{s.system}: {t.source} is not one of its hosts")
                if t.target not in pool:
                    problems.append(f"{s.system}: target {t.target} is not a cloud-pool host")
            if s.disposition == Disposition.cloud_rehost and (s.wave is None or not s.targets):
                problems.append(f"{s.system}: a cloud rehost needs a wave and targets")
        return problems


def load_plan(path: Path) -> Plan:
    return Plan.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def save_plan(plan: Plan, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Migration plan written by `invoke migrate.plan`; review it, edit it if you must (it is\n"
              "# checked again on load), then `invoke migrate.run --wave N`.\n")
    path.write_text(header + yaml.safe_dump(plan.model_dump(mode="json"), allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path
