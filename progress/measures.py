"""The measure registry: for each `inventory.model.Measure`, the function that counts it from the inventory and
the store as it stood at one moment. Nothing here is typed in by a person where jiyue records the fact itself:

| measure | what is counted | done when the store holds |
|---|---|---|
| archived | every system, drafts included | a complete record and, unless classified, a collection of each host |
| zombies_decommissioned | systems judged zombie (audit rules, as of then) | every host freed (`asset.freed`) |
| migrated | non-classified systems bound for the cloud | the migration engine's location: migrated |
| websites | department websites | every host freed, or the system migrated |
| exchange | non-classified systems but the platform | a TCP connection with the platform, collected |
| leased_lines | the inventory's leased lines (`lines.service.progress`) | its `cancelled_on` date has come |
| extranet_coverage | town and village units (policy) | an allocation, VLANs, and a push applied to each device |
| baseline | hosts of 等保 level 2+ systems | a latest check without a failing row |

Each function takes a `Facts` (one moment's view, read lazily and once) and returns `Item`s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from audit.model import ZOMBIE
from audit.zombies import Judge, load_policy
from inventory.model import Classification, Inventory, Measure, System
from jiyue.store import (
    ASSET_FREED,
    AUDIT_COLLECT,
    BASELINE_CHECK,
    MIGRATE_LOCATION,
    NETWORK_PUSH,
    Record,
    Store,
    StoreSnapshot,
)
from lines import service as lines_service
from lines.model import LinesPlan, LinesProgress, LineStatus
from progress.model import Item

PUSHED = ("applied", "unchanged")  # a device push that left the planned config on the device (not a dry run)


class Facts:
    """What the store held at `at` (a read-only `Store.as_of` view), read once per moment for every measure."""

    def __init__(self, inv: Inventory, store: Store | StoreSnapshot, at: datetime, policy: dict[str, Any],
                 audit_policy: dict[str, Any] | None = None, lines_plan: LinesPlan | None = None) -> None:
        self.inv, self.at, self.policy, self.lines_plan = inv, at, policy, lines_plan
        self.store = store.as_of(at)
        self.audit_policy = audit_policy or load_policy()

    @cached_property
    def judge(self) -> Judge:
        """The zombie rules over the history known then (audit/policy.yaml, its window back from `at`)."""
        return Judge(self.inv, self.store, self.audit_policy, now=self.at)  # type: ignore[arg-type]  # reads history/readings only

    @cached_property
    def zombies(self) -> set[str]:
        return {v.system for v in self.judge.judge_all() if v.verdict == ZOMBIE}

    @cached_property
    def freed(self) -> dict[str, Record]:
        """host -> its latest `asset.freed` record."""
        return {r.target: r for r in self.store.history(ASSET_FREED, list(self.inv.hosts), ok_only=True)}

    @cached_property
    def locations(self) -> dict[str, dict[str, Any]]:
        """system -> the migration engine's latest location record."""
        return {r.target: dict(r.data or {}) for r in self.store.history(MIGRATE_LOCATION, list(self.inv.systems))}

    @cached_property
    def collected(self) -> set[str]:
        """Hosts with at least one full collection (the facts the archive's resource columns come from)."""
        return {r.target for r in self.store.history(AUDIT_COLLECT, self.inv.contactable_hosts(), ok_only=True)
                if isinstance(r.data, dict) and r.data.get("os")}

    @cached_property
    def baseline(self) -> dict[str, Record]:
        """host -> its latest baseline check record (a failed connection included: it is no pass)."""
        return {r.target: r for r in self.store.history(BASELINE_CHECK, list(self.inv.hosts))}

    @cached_property
    def pushes(self) -> dict[str, Record]:
        """device -> its latest push record."""
        return {r.target: r for r in self.store.history(NETWORK_PUSH, list(self.inv.devices))}

    @cached_property
    def day(self) -> date:
        """`at` as the city counts days (the policy's time zone)."""
        return self.at.astimezone(ZoneInfo(str(self.policy.get("timezone", "UTC")))).date()

    @cached_property
    def lines(self) -> LinesProgress:
        """The lines module's measure as of then: its plan's lines, done by the day, and the newest egress probe
        known then (its findings: lines carrying traffic past their cancellation date)."""
        return lines_service.progress(self.inv, self.store, self.day,  # type: ignore[arg-type]  # reads history
                                      self.lines_plan or lines_service.plan_or_dates(self.inv, self.day))

    def migrated(self, system: str) -> bool:
        return self.locations.get(system, {}).get("what") == "migrated"


def _plain(system: System) -> bool:
    """Ours to move: not classified (分级保护, the confidential bureau's) and not a golden network (the state's)."""
    return system.classification != Classification.classified and system.golden_network is None


def archived(f: Facts) -> list[Item]:
    """档案库: each system's record complete (no `draft`), and its resource usage measured: every host collected
    at least once (a classified system is archived with its declared fields only, so the record suffices)."""
    items = []
    for s in f.inv.systems.values():
        if s.classification == Classification.classified:
            items.append(Item(s.id, s.department, True, "涉密：仅申报信息 / classified: declared fields only"))
            continue
        missing = [h for h in s.hosts if h not in f.collected]
        items.append(Item(s.id, s.department, not missing,
                          f"主机未采集：{', '.join(missing)} / hosts never collected: {', '.join(missing)}" if missing
                          else ""))
    for key, draft in f.inv.drafts.get("systems", {}).items():
        department = draft.data.get("department")
        items.append(Item(key, department if isinstance(department, str) else "", False,
                          f"草稿，缺少：{', '.join(draft.missing)} / draft, missing: {', '.join(draft.missing)}"))
    return items


def _all_freed(f: Facts, system: System) -> list[str]:
    return [h for h in system.hosts if h not in f.freed]


def zombies_decommissioned(f: Facts) -> list[Item]:
    """清理下线: the systems the zombie rules judge zombie as of then, and those already freed as zombies (a system
    taken offline stops being measured, its verdict stays what the history says); done once every host is freed."""
    freed_as_zombie = {str((r.data or {}).get("system")) for r in f.freed.values()
                       if (r.data or {}).get("cause") == "zombie"}
    items = []
    for s in f.inv.systems.values():
        if s.id not in f.zombies and s.id not in freed_as_zombie:
            continue
        left = _all_freed(f, s)
        items.append(Item(s.id, s.department, not left,
                          f"主机未释放：{', '.join(left)} / hosts not freed: {', '.join(left)}" if left else ""))
    return items


def migrated(f: Facts) -> list[Item]:
    """迁移上云 (Panjin: 非涉密信息系统迁移至市大数据中心云平台): the non-classified systems whose route is the
    cloud."""
    skip_hardware = bool(f.policy["measures"].get("migrated_excludes_special_hardware", True))
    items = []
    for s in f.inv.systems.values():
        if not _plain(s) or s.website or s.id in f.zombies or (skip_hardware and s.special_hardware):
            continue
        where = f.locations.get(s.id, {})
        done = where.get("what") == "migrated"
        why = "" if done else ("已回退 / rolled back" if where.get("what") == "rolled_back" else
                               "未迁移 / not migrated")
        items.append(Item(s.id, s.department, done, why))
    return items


def websites(f: Facts) -> list[Item]:
    """网站集约化: a department website has moved once its own server no longer serves it: its hosts freed (or the
    system migrated by the engine)."""
    items = []
    for s in f.inv.systems.values():
        if not (_plain(s) and s.website):
            continue
        left = _all_freed(f, s)
        done = not left or f.migrated(s.id)
        items.append(Item(s.id, s.department, done,
                          "" if done else f"原服务器仍在：{', '.join(left)} / own servers still up: {', '.join(left)}"))
    return items


def exchange(f: Facts) -> list[Item]:
    """共享交换: systems connected to the data-sharing exchange platform, as collection saw them on the wire (a TCP
    connection between their hosts and the platform's). A declared `depends_on` alone is not a connection."""
    platform = f.inv.catalog.exchange_platform
    if platform is None:
        return []
    dependents = f.judge.history.dependents
    items = []
    for s in f.inv.systems.values():
        if s.id == platform or not _plain(s) or s.id in f.zombies:
            continue
        how = [h for h in (dependents.get(platform, {}).get(s.id), dependents.get(s.id, {}).get(platform))
               if h and "TCP" in h]
        items.append(Item(s.id, s.department, bool(how), "; ".join(how) if how else
                          "未见与交换平台的连接 / no connection to the exchange platform seen"))
    return items


def leased_lines(f: Facts) -> list[Item]:
    """互联网专线 (Panjin: departments' own leased lines cancelled, the internet reached through the extranet): the
    lines module's reading of them (`lines.service.progress`: done once the carrier's `cancelled_on` has come),
    one item per line; a line the newest egress probe still sees carrying traffic says so; 0 of 0 without
    lines."""
    lp = f.lines
    items = []
    for c in lp.cancellations:
        done = lines_service.cancelled_by(c, f.day)
        hosts = lp.carrying.get(c.line, ())
        if done:
            why = bilingual_join(c.reason, _carrying(hosts))
        else:
            status = {LineStatus.planned: f"计划 {c.date} 撤销 / cancellation planned for {c.date}",
                      LineStatus.waiting: "待定 / waiting",
                      LineStatus.cancelled: f"运营商确认于 {c.date} 撤销 / cancelled by the carrier on {c.date}"}
            why = bilingual_join(status[c.status], _carrying(hosts) or c.reason)
        items.append(Item(c.line, c.department, done, why))
    return items


def _carrying(hosts: tuple[str, ...]) -> str:
    return f"仍有流量：{', '.join(hosts)} / still carries traffic: {', '.join(hosts)}" if hosts else ""


def bilingual_join(*parts: str) -> str:
    """"zh / en" texts joined into one "zh；zh / en; en" (what `jiyue.i18n.bilingual` splits)."""
    split = [p.split(" / ", 1) if " / " in p else [p, p] for p in parts if p]
    return "；".join(z for z, _ in split) + " / " + "; ".join(e for _, e in split) if split else ""


def extranet_coverage(f: Facts) -> list[Item]:
    """外网覆盖 (Panjin, Hohhot: the extranet reaches every town unit; 村/居 below them): a unit is covered once it has
    an extranet allocation and department VLANs, and the latest push of every device carrying them left the
    config there (the access switch and the gateway alike: one without the other connects nobody)."""
    levels = set(f.policy["measures"]["coverage_levels"])
    allocated = {a.department for a in f.inv.extranet.departments} if f.inv.extranet else set()
    items = []
    for d in f.inv.departments.values():
        if d.level not in levels:
            continue
        devices = sorted({dev.name for dev in f.inv.devices.values() for i in dev.interfaces if i.department == d.code})
        left = [n for n in devices if not (n in f.pushes and f.pushes[n].status == "ok"
                                           and (f.pushes[n].data or {}).get("status") in PUSHED)]
        if d.code not in allocated:
            why = "无外网地址分配 / no extranet allocation"
        elif not devices:
            why = "无部门 VLAN 接口 / no department VLAN on any device"
        elif left:
            why = f"配置未下发：{', '.join(left)} / not pushed: {', '.join(left)}"
        else:
            why = f"已下发：{', '.join(devices)} / pushed: {', '.join(devices)}"
        items.append(Item(d.code, d.code, d.code in allocated and bool(devices) and not left, why))
    return items


def baseline(f: Facts) -> list[Item]:
    """等级保护: each host of a 等保 system at a checked level passes when its latest check found no failing row."""
    levels = set(f.policy["measures"]["baseline_levels"])
    failing = set(f.policy["measures"]["failing_statuses"])
    items = []
    for s in f.inv.systems.values():
        if s.classification == Classification.classified or s.protection.level not in levels:
            continue
        for h in s.hosts:
            record = f.baseline.get(h)
            if record is None:
                items.append(Item(h, s.department, False, "未核查 / never checked"))
                continue
            if record.status != "ok":
                items.append(Item(h, s.department, False, f"核查失败：{record.error or record.status} / check failed: "
                                                          f"{record.error or record.status}"))
                continue
            bad = sorted({row.get("item", "") for row in (record.data or {}).get("rows", [])
                          if row.get("status") in failing})
            items.append(Item(h, s.department, not bad,
                              f"未通过：{', '.join(bad)} / failing: {', '.join(bad)}" if bad else ""))
    return items


REGISTRY: dict[Measure, Callable[[Facts], list[Item]]] = {
    Measure.archived: archived,
    Measure.zombies_decommissioned: zombies_decommissioned,
    Measure.migrated: migrated,
    Measure.websites: websites,
    Measure.exchange: exchange,
    Measure.leased_lines: leased_lines,
    Measure.extranet_coverage: extranet_coverage,
    Measure.baseline: baseline,
}
