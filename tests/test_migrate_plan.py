"""The migration planner (`invoke migrate.plan`): dispositions, sizing, targets, waves, work orders, reports.

No lab needed: a temporary store gets the lab's seeded history (30 daily utilisation samples a host,
lab/history.py) plus one full collection shaped like real facts (memory, disks, data paths,
listening ports, connections), so verdicts, sizes and measured dependencies come from history as they
do after `invoke audit`. The hard rule is tested from every side: a classified (涉密) system never goes
to the cloud or the site cluster, whatever the inventory, the audit, the planning file or a hand edit says.
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pydantic
import pytest
import yaml

import inventory
from audit.history import AuditView, HostMeasure
from audit.model import REPLATFORM
from audit.zombies import ACTIVE, ZOMBIE, Judge, Verdict
from inventory.model import Classification, CloudZone, Inventory, Priority
from jiyue.runner import Result
from jiyue.store import AUDIT_COLLECT, Store
from lab.history import seed_history
from migrations import plan as planner
from migrations.model import Disposition, Plan, PlanError, PlannedMigration, WorkOrderStatus, load_plan, save_plan
from migrations.plan import Planning, PoolProvider, build_plan, load_planning
from migrations.report import write_reports

REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC).replace(microsecond=0)
START = date(2026, 12, 1)
GB = 1024**3
# A document number as the source itself gives it: 盘政办发〔2017〕144号, 开府〔2020〕3号
CITATION = r"〔\d{4}〕\d+号"
UNMEASURED = "gaj-hjyy-db1"  # no full collection: memory and disk fall back to the declared/default size
CLASSIFIED = ("szfb-jmwj", "gaj-qbyp")
CLOUD = {"szfb-oa", "szfb-dcdb", "fgw-xmk", "fgw-tzsp", "fgw-xyxx", "gaj-hjyy", "rsj-jyfw", "rsj-ldjc", "zjj-jzsc",
         "zjj-zlaq", "zjj-gjj", "wjw-jkda", "wjw-jtys", "jyj-zsbm", "dsj-gxjh", "dsj-zwfw", "dxzf-oa", "dxzf-wgzl",
         "dxjyj-xszz", "dxjyj-zhxy", "qszf-nyfw"}


# --- history ----------------------------------------------------------------------------------------------


def full_facts(inv: Inventory, host: str, at: datetime, connections: list[dict] | None = None) -> dict:
    """One host's facts as audit/probes.py shapes them (cf. /tmp/sample_facts.json), without a sample."""
    system = inv.owner(host)
    address = str(inv.hosts[host].address)
    services = [s for s in system.services if s.host == host] if system else []
    return {
        "os": {"id": "debian", "id_like": [], "version_id": "12", "name": "Debian GNU/Linux",
               "pretty_name": "Debian GNU/Linux 12 (bookworm)", "distribution": "Debian"},
        "kernel": "6.1.0-28-amd64",
        "cpu": {"model": "Hygon C86 7285", "count": 2},
        "memory": {"total_kb": 8 * 1024**2, "available_kb": 6 * 1024**2},  # 2 GB used
        "disks": [{"device": "/dev/vda", "mount": "/", "size_kb": 100 * 1024**2, "used_kb": 30 * 1024**2}],
        "data": {p: {"exists": True, "files": 120, "bytes": 2 * GB, "last_modified": at.isoformat()}
                 for p in (system.data_paths if system else [])},
        "listening": [{"proto": "tcp", "address": address, "port": s.port, "process": "app", "pid": 100 + i}
                      for i, s in enumerate(services)],
        "connections": connections or [],
        "logins": {"users_last": {}, "logins_per_day": {}, "sources": []},
        "packages": {"last_transaction": (at - timedelta(days=5)).isoformat(), "source": "apt", "detail": ""},
        "hostname": host,
    }


def connect(inv: Inventory, client: str, server: str, port: int) -> dict:
    return {"local": str(inv.hosts[client].address), "local_port": 41000, "peer": str(inv.hosts[server].address),
            "peer_port": port, "process": "app"}


def make_history(inv: Inventory, url: str, extra: dict[str, list[dict]] | None = None) -> Store:
    """Seeded utilisation for 30 days, then one full collection of every host but UNMEASURED."""
    store = Store(url)
    seed_history(store, inv, now=NOW - timedelta(hours=1))
    at = NOW - timedelta(minutes=30)
    results = [Result(h, True, full_facts(inv, h, at, (extra or {}).get(h)), started=at)
               for h in sorted(inv.hosts) if h != UNMEASURED]
    store.record(AUDIT_COLLECT, results, inventory=str(inv.root), started=at, seeded=True)
    return store


def audit_view(inv: Inventory, store: Store) -> AuditView:
    judge = Judge(inv, store, now=NOW)
    return AuditView.from_judge(judge)


@pytest.fixture(scope="module")
def demo_inv() -> Inventory:
    return inventory.load(inventory.DEFAULT_INVENTORY)


@pytest.fixture(scope="module")
def history(demo_inv, tmp_path_factory) -> AuditView:
    # rsj-jyfw talks to dsj-gxjh without declaring it: a measured dependency.
    extra = {"rsj-jyfw-app1": [connect(demo_inv, "rsj-jyfw-app1", "dsj-gxjh-app1", 8080)]}
    store = make_history(demo_inv, f"sqlite:///{tmp_path_factory.mktemp('h')}/h.sqlite", extra)
    return audit_view(demo_inv, store)


@pytest.fixture(scope="module")
def rules() -> Planning:
    return load_planning()


@pytest.fixture(scope="module")
def sample(demo_inv, history, rules) -> Plan:
    return build_plan(demo_inv, history, rules, start=START, now=NOW)


def variant(inv: Inventory, system_id: str, **changes) -> Inventory:
    """The inventory with one system changed (the planner must not need the loader's cross-checks)."""
    systems = dict(inv.systems)
    systems[system_id] = inv.systems[system_id].model_copy(update=changes)
    return inv.model_copy(update={"systems": systems})


def with_rules(rules: Planning, **changes) -> Planning:
    data = rules.model_dump(by_alias=True)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Planning.model_validate(data)


def by_id(plan: Plan) -> dict:
    return {s.system: s for s in plan.systems}


# --- dispositions -----------------------------------------------------------------------------------------


def test_sample_city_every_disposition_represented_and_explained(sample, demo_inv):
    systems = by_id(sample)
    assert set(systems) == set(demo_inv.systems)
    expected = {
        Disposition.confidential_handover: set(CLASSIFIED),
        Disposition.retain: {"gaj-jd", "swj-js", "rsj-sb"},
        Disposition.site_cluster: {"szfb-web", "gaj-web", "jyj-web", "dxzf-web"},
        Disposition.idc_move: {"szfb-dzyz"},
        # the seeded history makes the quiet systems idle (criterion 3); the others need the lab's logs
        Disposition.decommission: {"fgw-hgjj", "wjw-yqdj", "fgw-jgjc"},
    }
    for disposition, ids in expected.items():
        assert {s for s, p in systems.items() if p.disposition == disposition} == ids, disposition
    cloud = {s for s, p in systems.items() if p.disposition == Disposition.cloud_rehost}
    assert cloud >= CLOUD
    assert cloud == set(demo_inv.systems) - set().union(*expected.values())
    for p in sample.systems:
        zh, sep, en = p.rule.partition(" / ")
        assert sep and zh and en, p.rule  # bilingual
        assert re.search(CITATION, zh) and re.search(CITATION, en), p.rule  # the document itself, never our notes
        assert "policy.md" not in p.rule
    assert "盘政办发〔2017〕144号" in systems["szfb-jmwj"].rule and "never the cloud" in systems["szfb-jmwj"].rule
    assert "金盾" in systems["gaj-jd"].rule
    assert "criteria 3" in systems["fgw-hgjj"].rule
    assert "国密" in systems["szfb-dzyz"].rule
    assert sample.check(demo_inv) == []
    assert not sample.awaiting_capacity
    assert planner.counts(sample)["decommission"] == 3


def test_without_history_nothing_is_decommissioned_and_the_rule_says_so(demo_inv, rules):
    plan = build_plan(demo_inv, AuditView(), rules, start=START, now=NOW)
    assert not [s for s in plan.systems if s.disposition == Disposition.decommission]
    for s in plan.systems:
        if s.disposition in (Disposition.cloud_rehost, Disposition.site_cluster, Disposition.idc_move):
            assert "no audit history" in s.rule and "无审计历史" in s.rule
        assert s.verdict is None
    assert "no audit history" in plan.history
    # the enlarged pool takes every cloud rehost even at the default sizes
    assert not plan.awaiting_capacity and plan.check(demo_inv) == []
    for t in by_id(plan)["fgw-xmk"].targets:
        assert t.measured == [] and "not measured" in t.basis


# --- the hard gate: classified never to the cloud -----------------------------------------------------


def _assert_handed_over(plan: Plan, system_id: str) -> None:
    s = by_id(plan)[system_id]
    assert s.disposition == Disposition.confidential_handover
    assert s.wave is None and s.targets == [] and not s.awaiting_capacity
    assert s.classification == Classification.classified
    assert all(system_id not in w.systems for w in plan.waves)
    orders = [o for o in plan.work_orders if o.system == system_id]
    assert [o.kind for o in orders] == [Disposition.confidential_handover]
    assert any("never the cloud" in n for n in orders[0].notes)


@pytest.mark.parametrize("changes", [
    {"website": True},  # a classified website: not the site cluster
    {"special_hardware": None},  # no special hardware: not a fall-through to the cloud
    {"department": "dsj"},  # in the department that runs the city cloud
    {"website": True, "department": "dsj", "zone": "extranet", "services": []},
])
def test_classified_never_to_the_cloud_whatever_the_inventory_says(demo_inv, history, rules, changes):
    inv = variant(demo_inv, "szfb-jmwj", **changes)
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    _assert_handed_over(plan, "szfb-jmwj")
    assert plan.check(inv) == []


def test_classified_never_to_the_cloud_whatever_planning_yaml_overrides(demo_inv, history, rules):
    for disposition in ("cloud_rehost", "site_cluster", "idc_move", "decommission", "retain", "replatform"):
        overrides = {"szfb-jmwj": {"disposition": disposition, "reason": "部门申请 / the department asked"}}
        plan = build_plan(demo_inv, history, with_rules(rules, overrides=overrides), start=START, now=NOW)
        _assert_handed_over(plan, "szfb-jmwj")
        assert any("refused" in n for n in by_id(plan)["szfb-jmwj"].notes)


@pytest.mark.parametrize("verdict", [ACTIVE, ZOMBIE, REPLATFORM])
def test_classified_never_to_the_cloud_whatever_the_audit_says(demo_inv, history, rules, verdict):
    audit = copy.copy(history)
    audit.verdicts = {**history.verdicts, "gaj-qbyp": Verdict("gaj-qbyp", verdict, [], None, None, 30,
                                                             ["gaj-qbyp-app1"], [])}
    audit.hosts = {**history.hosts, "gaj-qbyp-app1": HostMeasure(2, 50.0, 30, 2.0, 30.0, GB, NOW)}
    plan = build_plan(demo_inv, audit, rules, start=START, now=NOW)
    _assert_handed_over(plan, "gaj-qbyp")
    if verdict == ZOMBIE:
        assert any("confidential bureau's decision" in n for n in by_id(plan)["gaj-qbyp"].notes)


def test_classified_alone_with_limit(demo_inv, history, rules):
    plan = build_plan(demo_inv, history, rules, start=START, systems=["szfb-jmwj"], limit="szfb-jmwj-app1", now=NOW)
    assert [s.system for s in plan.systems] == ["szfb-jmwj"]
    assert plan.waves == []
    _assert_handed_over(plan, "szfb-jmwj")


def test_hand_edited_plan_moving_a_classified_system_to_the_cloud_is_refused(sample, demo_inv, tmp_path):
    path = save_plan(sample, tmp_path / "plan.yaml")
    assert load_plan(path, demo_inv).check(demo_inv) == []
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = next(s for s in data["systems"] if s["system"] == "szfb-jmwj")
    donor = next(s for s in data["systems"] if s["system"] == "szfb-oa")
    edits = {
        "cloud": {"disposition": "cloud_rehost", "wave": 1,
                  "targets": [{**donor["targets"][0], "source": "szfb-jmwj-app1"}]},
        "site": {"disposition": "site_cluster"},
        # the editor also claims it is not classified: the inventory says otherwise
        "relabelled": {"disposition": "cloud_rehost", "classification": "non_classified", "wave": 1,
                       "targets": [{**donor["targets"][0], "source": "szfb-jmwj-app1"}]},
        "unlabelled": {"disposition": "site_cluster", "classification": None},
    }
    for name, change in edits.items():
        edited = copy.deepcopy(data)
        target = next(s for s in edited["systems"] if s["system"] == "szfb-jmwj")
        target.update(change)
        if change.get("wave"):
            edited["waves"][0]["systems"].append("szfb-jmwj")
        bad = tmp_path / f"{name}.yaml"
        bad.write_text(yaml.safe_dump(edited, allow_unicode=True), encoding="utf-8")
        with pytest.raises((PlanError, pydantic.ValidationError)) as caught:
            load_plan(bad, demo_inv)
        assert "classified" in str(caught.value), name
    assert entry["disposition"] == "confidential_handover"


def test_hand_edit_that_moves_a_system_before_its_dependency_is_refused(sample, demo_inv, tmp_path):
    data = sample.model_dump(mode="json")
    gxjh = next(s for s in data["systems"] if s["system"] == "dsj-gxjh")
    dependent = next(s for s in data["systems"] if s["system"] == "dsj-zwfw")
    assert dependent["wave"] >= gxjh["wave"]
    last = max(w["number"] for w in data["waves"])
    for w in data["waves"]:  # move dsj-gxjh to the last wave, after what depends on it
        if "dsj-gxjh" in w["systems"]:
            w["systems"].remove("dsj-gxjh")
        if w["number"] == last:
            w["systems"].append("dsj-gxjh")
    gxjh["wave"] = last
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, demo_inv)
    assert any("before dsj-gxjh" in p for p in caught.value.problems)


# --- sizing and targets -------------------------------------------------------------------------------


def test_sizing_from_history_with_headroom_onto_the_smallest_flavor(sample, demo_inv, history, rules):
    flavors = {f.name: f for f in demo_inv.cloud.flavors}
    targets = {t.source: t for s in sample.systems for t in s.targets}
    t = targets["dsj-gxjh-app1"]
    m = history.hosts["dsj-gxjh-app1"]
    assert t.measured == ["cpu", "memory", "disk"]
    assert t.need_vcpus == max(math.ceil(m.cpu_pct / 100 * 2 * 1.3 * 100) / 100, 0.5)
    assert t.need_memory_gb == pytest.approx(2 * 1.3, abs=0.01)  # 2 GB used + 30 %
    assert t.need_disk_gb == pytest.approx((2 + 10) * 1.5, abs=0.01)  # data + application, + 50 %
    assert t.sized_flavor == "c2m4"
    assert "CPU P95" in t.basis and "memory used 2.00 GB" in t.basis
    # the host never fully collected: CPU measured (samples), memory and disk from the role's default
    u = targets[UNMEASURED]
    assert u.measured == ["cpu"]
    default = rules.sizing.unmeasured.roles["db"]
    assert (u.need_memory_gb, u.need_disk_gb) == (default.memory_gb, default.disk_gb)
    assert "memory not measured" in u.basis and "default for role db" in u.basis
    for t in targets.values():
        sized = flavors[t.sized_flavor]
        assert planner.fits(sized, t.need_vcpus, t.need_memory_gb, t.need_disk_gb)
        smaller = [f for f in flavors.values() if f.vcpus < sized.vcpus]
        assert not any(planner.fits(f, t.need_vcpus, t.need_memory_gb, t.need_disk_gb) for f in smaller)


def test_no_target_gets_two_services_on_one_port_two_departments_or_more_than_its_flavor(sample, demo_inv):
    flavors = {f.name: f for f in demo_inv.cloud.flavors}
    pool = {p.host: flavors[p.flavor] for p in demo_inv.cloud.pool}
    ports: dict[str, list[int]] = {}
    depts: dict[str, set[str]] = {}
    load: dict[str, list[float]] = {}
    for s in sample.systems:
        system = demo_inv.systems[s.system]
        for t in s.targets:
            assert t.flavor == pool[t.target].name
            ports.setdefault(t.target, []).extend(svc.port for svc in system.services if svc.host == t.source)
            depts.setdefault(t.target, set()).add(s.department)
            used = load.setdefault(t.target, [0, 0, 0])
            for i, v in enumerate((t.need_vcpus, t.need_memory_gb, t.need_disk_gb)):
                used[i] += v
            assert demo_inv.hosts[t.target].os_family == demo_inv.hosts[t.source].os_family
    assert ports and max(len(v) for v in ports.values()) >= 2  # hosts do share
    for target, p in ports.items():
        assert len(p) == len(set(p)), (target, p)
        assert len(depts[target]) == 1, (target, depts[target])
        f = pool[target]
        assert load[target][0] <= f.vcpus and load[target][1] <= f.memory_gb and load[target][2] <= f.disk_gb


def test_pool_provider_refuses_a_taken_port_another_department_and_another_zone(demo_inv, rules):
    one = [p for p in demo_inv.cloud.pool if p.host == "zwy-08"]  # c16m32, redhat, extranet zone: room for many
    inv = demo_inv.model_copy(update={"cloud": demo_inv.cloud.model_copy(update={"pool": one})})
    provider = PoolProvider(inv, rules)
    tzsp, xyxx, hjyy_db, xmk = (planner.size_host(inv, h, None, rules) for h in
                                ("fgw-tzsp-app1", "fgw-xyxx-app1", "gaj-hjyy-db1", "fgw-xmk-app1"))
    assert (tzsp.zone, xmk.zone) == ("extranet", None)  # this pool has no intranet host: xmk may go nowhere
    first = provider.assign(tzsp)
    assert first is not None and first.target == "zwy-08" and first.zone == "extranet"
    assert provider.assign(xyxx) is None  # 8080 is taken on zwy-08
    assert provider.assign(hjyy_db) is None  # 3306 is free, but gaj is another department
    assert provider.assign(xmk) is None
    assert provider.assign(replace(xmk, zone=CloudZone.intranet)) is None  # never a host of another zone
    provider.release(first)
    assert provider.assign(xyxx) is not None
    mixed = PoolProvider(inv, with_rules(rules, assignment={"separate_departments": False}))
    assert mixed.assign(tzsp) is not None and mixed.assign(hjyy_db) is not None
    assert mixed.assign(xmk) is None  # whatever the assignment rules allow, the zone gate holds


def test_a_migrated_target_is_held_at_the_size_it_was_placed_with(sample, demo_inv, history, rules):
    # The demo's third plan: the old source hosts' later readings grew, and re-sizing the migrated systems from
    # them overcommitted the target two of them share (the plan failed its own checks). The replaced plan's
    # sizes hold; without a replaced plan the readings size it.
    xyxx = by_id(sample)["fgw-xyxx"].targets
    where = {"fgw-xyxx": {"system": "fgw-xyxx", "hosts": {t.source: t.target for t in xyxx}, "what": "migrated",
                          "run_key": "r1", "at": NOW.isoformat()}}
    previous = sample.model_dump(mode="json")
    for system in previous["systems"]:
        for t in system["targets"] if system["system"] == "fgw-xyxx" else []:
            t["need_memory_gb"] = 0.42
    migrated = replace(history, locations=where)
    kept = by_id(build_plan(demo_inv, migrated, rules, start=START, now=NOW, previous=previous))
    assert {t.need_memory_gb for t in kept["fgw-xyxx"].targets} == {0.42}
    fresh = by_id(build_plan(demo_inv, migrated, rules, start=START, now=NOW))
    assert [t.need_memory_gb for t in fresh["fgw-xyxx"].targets] == [t.need_memory_gb for t in xyxx]


def test_a_migrated_system_stays_where_it_runs_and_nothing_lands_on_its_ports(sample, demo_inv, history, rules):
    # Planned afresh, fgw-xyxx would go elsewhere; it really runs on the target the sample gave fgw-tzsp (both
    # serve 8080). Planning again must keep it there and put fgw-tzsp anywhere but beside it.
    tzsp, (xyxx, *rest) = by_id(sample)["fgw-tzsp"].targets[0], by_id(sample)["fgw-xyxx"].targets
    assert tzsp.target != xyxx.target
    # As the demo's second plan had it: its two hosts swapped, app1 beside fgw-tzsp's place.
    hosts = {xyxx.source: tzsp.target} | {t.source: xyxx.target if t.target == tzsp.target else t.target
                                          for t in rest}
    where = {"fgw-xyxx": {"system": "fgw-xyxx", "hosts": hosts, "what": "migrated", "run_key": "r1",
                          "at": NOW.isoformat()}}
    plan = by_id(build_plan(demo_inv, replace(history, locations=where), rules, start=START, now=NOW))
    assert {t.source: t.target for t in plan["fgw-xyxx"].targets} == hosts
    assert any("stays on" in n for n in plan["fgw-xyxx"].notes)
    assert plan["fgw-tzsp"].targets and plan["fgw-tzsp"].targets[0].target != tzsp.target
    # Out of the plan's scope it still holds its capacity and ports.
    alone = by_id(build_plan(demo_inv, replace(history, locations=where), rules, start=START, now=NOW,
                             systems=["fgw-tzsp"]))
    assert alone["fgw-tzsp"].targets[0].target != tzsp.target
    # Rolled back, it holds nothing: the plan is the one without a location.
    back = {"fgw-xyxx": {**where["fgw-xyxx"], "hosts": {h: h for h in hosts}, "what": "rolled back to the source"}}
    again = build_plan(demo_inv, replace(history, locations=back), rules, start=START, now=NOW)
    assert [s.targets for s in again.systems] == [s.targets for s in sample.systems]
    # A target outside the pool is kept and said.
    gone = {"fgw-xyxx": {**where["fgw-xyxx"], "hosts": hosts | {xyxx.source: "vm-elsewhere"}}}
    odd = build_plan(demo_inv, replace(history, locations=gone), rules, start=START, now=NOW)
    assert by_id(odd)["fgw-xyxx"].targets[0].target == "vm-elsewhere"
    assert any("vm-elsewhere" in w and "cloud.pool" in w for w in odd.warnings)


def test_too_small_a_pool_leaves_systems_awaiting_capacity_with_what_to_request(demo_inv, history, rules):
    pool = [p for p in demo_inv.cloud.pool if p.host in ("zwy-01", "zwy-08", "zwy-09")]
    inv = demo_inv.model_copy(update={"cloud": demo_inv.cloud.model_copy(update={"pool": pool})})
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    waiting = [s for s in plan.systems if s.awaiting_capacity]
    assert waiting and plan.awaiting_capacity
    for s in waiting:
        assert s.wave is None and s.targets == [] and s.disposition == Disposition.cloud_rehost
    assert all(sf.request_flavor for sf in plan.awaiting_capacity)
    assert any("await capacity" in w and "request" in w for w in plan.warnings)
    assert plan.check(inv) == []
    # nothing that waits is needed by something that moves
    moving = {s.system for s in plan.systems if s.wave is not None}
    for s in plan.systems:
        if s.system in moving:
            assert not any(d in {w.system for w in waiting} for d in s.depends_on)


# --- network zones: the hard gate, from the plan's side ------------------------------------------------------

INTRANET_CATEGORIES = {"internal_office", "coordination", "management", "supervision", "decision"}


def _pool_zones(inv: Inventory) -> dict[str, str]:
    return {p.host: p.zone for p in inv.cloud.pool}


def test_every_cloud_rehost_lands_in_the_zone_of_its_category_with_the_clause_cited(sample, demo_inv, rules):
    zones = _pool_zones(demo_inv)
    systems = by_id(sample)
    for sid in ("szfb-oa", "szfb-dcdb", "fgw-xmk", "dxzf-oa"):  # the intranet systems
        assert systems[sid].zone == "intranet" and {zones[t.target] for t in systems[sid].targets} == {"intranet"}
    for p in sample.systems:
        system = demo_inv.systems[p.system]
        if p.disposition != Disposition.cloud_rehost:
            assert p.zone is None and p.targets == []
            continue
        expected = "intranet" if system.category in INTRANET_CATEGORIES else "extranet"
        if system.zone == "internet":
            expected = "internet"
        assert p.zone == expected and p.category == system.category, p.system
        assert p.allowed_zones == rules.routing.allowed(system.category)
        assert p.targets and all(t.zone == expected == zones[t.target] for t in p.targets), p.system
        zh, _, en = p.rule.partition(" / ")
        assert "网络区域" in zh and "network zone" in en
        if expected == "intranet":
            assert "贺州市" in zh and "向电子政务内网迁移" in zh and "汉中市" in zh and "intranet" in en
        else:
            assert "贺州市" in zh and "向外网迁移" in zh and "extranet" in en
    assert sample.check(demo_inv) == []
    # the exchange platform sits on the intranet platform: its extranet dependents cross networks, and are told so
    assert any("fgw-xyxx → dsj-gxjh" in w and "secure exchange boundary" in w for w in sample.warnings)
    assert any("dsj-gxjh" in n and "crosses networks" in n for n in systems["fgw-xyxx"].notes)
    assert not any("crosses networks" in n for n in systems["szfb-oa"].notes)  # intranet on intranet


def _without_zone(inv: Inventory, zone: str) -> Inventory:
    cloud = inv.cloud.model_copy(update={"zones": [z for z in inv.cloud.zones if z != zone],
                                         "pool": [p for p in inv.cloud.pool if p.zone != zone]})
    return inv.model_copy(update={"cloud": cloud})


def test_without_an_intranet_platform_intranet_systems_wait_and_never_go_to_the_extranet(demo_inv, history, rules):
    inv = _without_zone(demo_inv, "intranet")
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    systems = by_id(plan)
    intranet = {s.system for s in plan.systems if s.disposition == Disposition.cloud_rehost
                and demo_inv.systems[s.system].category in INTRANET_CATEGORIES}
    assert {"szfb-oa", "szfb-dcdb", "fgw-xmk", "dxzf-oa", "dsj-gxjh"} <= intranet
    for sid in intranet:
        s = systems[sid]
        assert s.awaiting_capacity and s.wave is None and s.targets == [] and s.zone is None, sid
        assert any("intranet platform" in n for n in s.notes), (sid, s.notes)
    reasons = {sf.reason for sf in plan.awaiting_capacity if sf.system == "dsj-gxjh"}  # needs nothing first
    assert reasons and all("内网平台" in r and "never goes to another zone" in r for r in reasons)
    assert any("szfb-oa" in w and "intranet platform" in w for w in plan.warnings)
    # nothing intranet landed anywhere, and what does move is extranet
    for s in plan.systems:
        assert all(t.zone == "extranet" for t in s.targets)
        if s.wave is not None:
            assert demo_inv.systems[s.system].category not in INTRANET_CATEGORIES
    assert plan.check(inv) == []


def test_a_system_declared_on_a_network_its_category_forbids_waits(demo_inv, history, rules):
    # the inventory refuses this (tests/test_inventory.py); the planner holds the gate on its own as well
    inv = variant(demo_inv, "fgw-xmk", zone="extranet")
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    s = by_id(plan)["fgw-xmk"]
    assert s.awaiting_capacity and s.targets == [] and s.zone is None
    assert any("correct the inventory" in n for n in s.notes)


def test_routing_rules_are_data(demo_inv, history, rules):
    """A city whose documents put coordination systems on the extranet changes planning.yaml, not code."""
    categories = {**rules.routing.categories, "coordination": ["extranet"]}
    inv = variant(demo_inv, "dsj-gxjh", zone="extranet")
    changed = with_rules(rules, routing={**rules.routing.model_dump(), "categories": categories})
    plan = build_plan(inv, history, changed, start=START, now=NOW)
    s = by_id(plan)["dsj-gxjh"]
    assert s.zone == "extranet" and s.allowed_zones == ["extranet"]
    assert not any("correct the inventory" in n for n in s.notes)
    assert all(t.zone == "extranet" for t in s.targets)  # the extranet zone's capacity decides the rest
    assert by_id(build_plan(inv, history, rules, start=START, now=NOW))["dsj-gxjh"].zone is None  # default: waits


def test_hand_edit_moving_a_system_to_a_zone_its_category_forbids_is_refused(sample, demo_inv, tmp_path):
    data = sample.model_dump(mode="json")
    zones = _pool_zones(demo_inv)
    extranet_host = next(h for h, z in zones.items() if z == "extranet")
    edits = {
        # the target swapped to an extranet host, the zone left alone: the validator sees the mismatch
        "target": lambda s: s["targets"][0].update(target=extranet_host, zone="extranet"),
        # the zone and the allowed zones rewritten too: the inventory's pool zones and category still say no
        "relabelled": lambda s: (s["targets"][0].update(target=extranet_host, zone="extranet"),
                                 s.update(zone="extranet", allowed_zones=["extranet"])),
        # every trace of routing removed: the inventory still says no
        "stripped": lambda s: (s["targets"][0].update(target=extranet_host, zone=None),
                               s.update(zone=None, allowed_zones=[], category=None)),
    }
    for name, edit in edits.items():
        edited = copy.deepcopy(data)
        edit(next(s for s in edited["systems"] if s["system"] == "szfb-oa"))
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(edited, allow_unicode=True), encoding="utf-8")
        with pytest.raises((PlanError, pydantic.ValidationError)) as caught:
            load_plan(path, demo_inv)
        assert "zone" in str(caught.value) and "szfb-oa" in str(caught.value), name


def test_hand_edit_moving_a_system_to_another_allowed_zone_than_its_network_is_refused(sample, demo_inv, tmp_path):
    # public_service may use the internet-facing zone, but fgw-tzsp is declared on the extranet: a reviewer's swap
    # to an internet-zone host is a misroute the plan's check refuses
    data = sample.model_dump(mode="json")
    internet_host = next(h for h, z in _pool_zones(demo_inv).items() if z == "internet")
    entry = next(s for s in data["systems"] if s["system"] == "fgw-tzsp")
    entry["targets"][0].update(target=internet_host, zone=None)
    path = tmp_path / "misrouted.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, demo_inv)
    assert any("fgw-tzsp" in p and "routes it to the extranet zone" in p for p in caught.value.problems)


def test_model_validator_refuses_a_zone_the_category_forbids(sample):
    s = by_id(sample)["fgw-xmk"]
    data = s.model_dump()
    with pytest.raises(pydantic.ValidationError, match="forbidden to its category"):
        type(s).model_validate({**data, "zone": "extranet", "targets": []})
    with pytest.raises(pydantic.ValidationError, match="extranet zone"):
        type(s).model_validate({**data, "targets": [{**data["targets"][0], "zone": "extranet"}]})


def test_private_networks_join_the_extranet_through_a_vlan_or_stay_national(sample, demo_inv):
    systems = by_id(sample)
    gjj = systems["zjj-gjj"].private_network
    assert gjj.joins_extranet and (gjj.department, gjj.vlan, gjj.device) == ("zjj", 160, "sj-hj1")
    assert systems["zjj-gjj"].zone == "extranet" and "VLAN 160" in gjj.reason
    for sid, gn in (("gaj-jd", "金盾"), ("swj-js", "金税"), ("rsj-sb", "金保")):
        pn = systems[sid].private_network
        assert not pn.joins_extranet and pn.golden_network == gn and "national network" in pn.reason, sid
        assert systems[sid].zone is None
    assert all(p.private_network is None for p in sample.systems if demo_inv.systems[p.system].zone != "private")


def test_a_private_network_whose_department_has_no_extranet_vlan_waits(demo_inv, history, rules):
    devices = {n: d.model_copy(update={"interfaces": [i for i in d.interfaces if i.department != "zjj"]})
               for n, d in demo_inv.devices.items()}
    inv = demo_inv.model_copy(update={"devices": devices})
    s = by_id(build_plan(inv, history, rules, start=START, now=NOW))["zjj-gjj"]
    assert not s.private_network.joins_extranet and s.awaiting_capacity and s.targets == []
    assert any("no extranet allocation or VLAN" in n for n in s.notes)


def test_the_plan_report_shows_zone_and_private_network(sample, demo_inv, rules, tmp_path):
    paths = write_reports(PlannedMigration(demo_inv, sample, rules), tmp_path, lang="en")
    ws = openpyxl.load_workbook(paths[0])["Systems"]
    rows = list(ws.iter_rows(values_only=True))
    headers = list(rows[0])
    row = {r[headers.index("System ID")]: r for r in rows[1:]}
    assert row["szfb-oa"][headers.index("Network zone")] == "Intranet platform"
    assert row["fgw-tzsp"][headers.index("Network zone")] == "Extranet zone"
    private = headers.index("Private network")
    assert "joins the extranet" in row["zjj-gjj"][private] and "VLAN 160" in row["zjj-gjj"][private]
    assert "national network" in row["gaj-jd"][private]
    assert not row["szfb-oa"][private]
    zh = write_reports(PlannedMigration(demo_inv, sample, rules), tmp_path / "zh", lang="zh")
    ws = openpyxl.load_workbook(zh[0]).worksheets[0]
    assert "网络区域" in [c.value for c in ws[1]] and "电子政务内网平台" in [c.value for col in ws.iter_cols()
                                                                        for c in col]


# --- waves --------------------------------------------------------------------------------------------


def test_tightly_coupled_systems_share_a_wave(sample):
    s = by_id(sample)
    assert s["wjw-jkda"].wave == s["wjw-jtys"].wave is not None
    assert s["wjw-jkda"].group == s["wjw-jtys"].group is not None
    assert ["wjw-jkda", "wjw-jtys"] in [sorted(g) for w in sample.waves for g in w.groups]


def test_nothing_moves_before_what_it_needs(sample, demo_inv):
    s = by_id(sample)
    chain = ["fgw-xmk", "fgw-tzsp", "fgw-xyxx", "dsj-gxjh"]
    waves = [s[x].wave for x in chain]
    assert None not in waves and waves == sorted(waves, reverse=True)
    for p in sample.systems:
        if p.wave is None:
            continue
        for dep in p.depends_on:
            d = s[dep]
            if d.disposition == Disposition.cloud_rehost:
                assert d.wave is not None and d.wave <= p.wave, (p.system, dep)
                if d.wave == p.wave:  # same wave: it comes first in the cutover order
                    order = sample.wave(p.wave).systems
                    assert order.index(dep) < order.index(p.system) or p.group == d.group
    # the measured dependency counts too, and says how it was found
    assert "dsj-gxjh" in s["rsj-jyfw"].depends_on
    assert any("TCP" in n for n in s["rsj-jyfw"].notes)
    assert s["dsj-gxjh"].wave == 1  # urgency 5 × importance 5, and five systems need it


def test_what_an_urgent_system_needs_moves_early_however_low_its_own_priority(demo_inv, history, rules):
    """A group's priority is the highest of everything that waits for it, two dependencies down."""
    one_a_wave = with_rules(rules, waves={"max_systems": 1})
    low = Priority(urgency=1, importance=1)
    alone = variant(variant(demo_inv, "zjj-zlaq", priority=low), "zjj-gjj", priority=low)
    chained = variant(variant(variant(alone, "zjj-gjj", depends_on=["zjj-zlaq"]), "qszf-nyfw",
                              depends_on=["zjj-gjj"]), "qszf-nyfw", priority=Priority(urgency=5, importance=5))
    before = by_id(build_plan(alone, history, one_a_wave, start=START, now=NOW))
    after = by_id(build_plan(chained, history, one_a_wave, start=START, now=NOW))
    assert after["zjj-zlaq"].wave < after["zjj-gjj"].wave < after["qszf-nyfw"].wave
    assert after["zjj-zlaq"].wave < before["zjj-zlaq"].wave


def test_dependencies_on_systems_that_do_not_move_do_not_block(demo_inv, history, rules):
    inv = variant(demo_inv, "qszf-nyfw", depends_on=["gaj-jd", "szfb-jmwj", "szfb-dzyz"])
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    s = by_id(plan)["qszf-nyfw"]
    assert s.wave is not None
    assert sum("not blocking" in n for n in s.notes) == 3


def test_a_dependency_on_a_zombie_is_a_warning(demo_inv, history, rules):
    inv = variant(demo_inv, "dxzf-wgzl", depends_on=["dsj-gxjh", "fgw-hgjj"])
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    assert by_id(plan)["fgw-hgjj"].disposition == Disposition.decommission
    assert any("dxzf-wgzl depends on fgw-hgjj" in w and "decommission" in w for w in plan.warnings)
    order = next(o for o in plan.work_orders if o.system == "fgw-hgjj")
    assert any("dxzf-wgzl" in n for n in order.notes)


@pytest.mark.parametrize("limits", [{"max_systems": 2, "max_hosts": 4, "max_data_gb": 10},
                                    {"max_systems": 3, "max_hosts": 8, "max_data_gb": 500}])
def test_wave_limits_hold(demo_inv, history, rules, limits):
    plan = build_plan(demo_inv, history, with_rules(rules, waves=limits), start=START, now=NOW)
    systems = by_id(plan)
    for w in plan.waves:
        assert len(w.systems) <= limits["max_systems"]
        assert w.hosts <= limits["max_hosts"]
        assert w.data_bytes <= limits["max_data_gb"] * GB
        assert w.hosts == sum(len(demo_inv.systems[s].hosts) for s in w.systems)
        assert w.data_bytes == sum(systems[s].data_bytes for s in w.systems)
    assert plan.check(demo_inv) == []


def test_a_group_larger_than_a_wave_gets_a_wave_of_its_own_and_a_warning(demo_inv, history, rules):
    plan = build_plan(demo_inv, history, with_rules(rules, waves={"max_systems": 1}), start=START, now=NOW)
    wave = plan.wave(by_id(plan)["wjw-jkda"].wave)
    assert sorted(wave.systems) == ["wjw-jkda", "wjw-jtys"]
    assert any("wjw-jkda" in w and "wave of their own" in w for w in plan.warnings)


@pytest.mark.parametrize("start", [date(2026, 9, 20), date(2027, 1, 20), date(2027, 2, 25)])
def test_waves_start_in_change_windows_and_never_on_blackout_dates(demo_inv, history, rules, start):
    plan = build_plan(demo_inv, history, rules, start=start, now=NOW)
    tz = rules.tz
    assert plan.waves and plan.start == start
    numbers = [w.number for w in plan.waves]
    assert numbers == list(range(1, len(numbers) + 1))
    for w in plan.waves:
        local = w.start.astimezone(tz)
        assert local.date() >= start
        assert local.strftime("%A %H:%M") == "Saturday 22:00"
        assert w.end - w.start == timedelta(hours=8)
        for day in (local.date(), w.end.astimezone(tz).date()):
            assert rules.blackout(day) is None, (w.number, day)
    starts = [w.start for w in plan.waves]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    skipped = {date(2026, 10, 3), date(2027, 2, 6), date(2027, 3, 6), date(2027, 3, 13)}
    assert not skipped & {w.start.astimezone(tz).date() for w in plan.waves}


def test_blackouts_recur_or_happen_once(rules):
    assert rules.blackout(date(2030, 10, 4)).name == "国庆节"
    assert rules.blackout(date(2031, 3, 5)).name == "全国两会"
    assert rules.blackout(date(2026, 2, 17)).name == "春节 2026"
    assert rules.blackout(date(2028, 2, 17)) is None
    assert rules.blackout(date(2026, 12, 5)) is None


def test_default_start_is_the_next_change_window(demo_inv, rules):
    plan = build_plan(demo_inv, AuditView(), rules, now=NOW)
    begin, _ = planner.next_window(rules, NOW)
    assert plan.waves[0].start == begin and begin > NOW


# --- work orders ----------------------------------------------------------------------------------------


def test_work_orders_for_every_move_no_playbook_makes(sample, demo_inv):
    orders = {o.system: o for o in sample.work_orders}
    kinds = {s.system: s.disposition for s in sample.systems
             if s.disposition in (Disposition.idc_move, Disposition.confidential_handover, Disposition.decommission,
                                  Disposition.site_cluster)}
    assert {k: o.kind for k, o in orders.items()} == kinds
    idc = orders["szfb-dzyz"]
    assert idc.owner == "szfb" and idc.assets == ["szfb-dzyz-app1"] and idc.rack_units == 1
    assert any("20 m²" in n for n in idc.notes) and any("国密" in n for n in idc.notes)
    zombie = orders["fgw-hgjj"]
    assert zombie.assets == ["fgw-hgjj-app1", "fgw-hgjj-db1"]
    assert sum("移交划转" in n or "报损报废" in n for n in zombie.notes) >= 2
    assert any("invoke migrate.offline --system fgw-hgjj" in n for n in zombie.notes)  # its playbook path
    assert all(o.status == WorkOrderStatus.open for o in sample.work_orders)
    assert len({o.id for o in sample.work_orders}) == len(sample.work_orders)


def test_work_order_status_is_kept_when_planning_again(sample, demo_inv, history, rules, tmp_path):
    path = tmp_path / "plan.yaml"
    data = sample.model_dump(mode="json")
    for o in data["work_orders"]:
        if o["system"] == "szfb-dzyz":
            o["status"] = "in_progress"
        if o["system"] == "fgw-hgjj":
            o["status"] = "done"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    again = build_plan(demo_inv, history, rules, start=START, previous=planner.read_previous(path), now=NOW)
    status = {o.system: o.status for o in again.work_orders}
    assert status["szfb-dzyz"] == WorkOrderStatus.in_progress and status["fgw-hgjj"] == WorkOrderStatus.done
    assert status["szfb-jmwj"] == WorkOrderStatus.open


# --- determinism, files, command line ----------------------------------------------------------------------


def test_the_plan_is_deterministic(demo_inv, history, rules, tmp_path):
    one = build_plan(demo_inv, history, rules, start=START, now=NOW)
    two = build_plan(demo_inv, history, rules, start=START, now=NOW + timedelta(seconds=5))
    assert one.model_dump(exclude={"generated"}) == two.model_dump(exclude={"generated"})
    path = tmp_path / "plan.yaml"
    planner.write_plan(one, path, planner.read_previous(path))
    first = path.read_bytes()
    planner.write_plan(two, path, planner.read_previous(path))
    assert path.read_bytes() == first
    assert load_plan(path, demo_inv).model_dump(exclude={"generated"}) == one.model_dump(exclude={"generated"})


def test_reports_neutralise_cells_and_stay_static(demo_inv, history, rules, tmp_path):
    inv = variant(demo_inv, "qszf-nyfw", name='=HYPERLINK("http://x","<script>alert(1)</script>")')
    plan = build_plan(inv, history, rules, start=START, now=NOW)
    paths = write_reports(PlannedMigration(inv, plan, rules), tmp_path, lang="en")
    assert [p.name for p in paths] == ["migration-plan.xlsx", "migration-plan.html"]
    wb = openpyxl.load_workbook(paths[0])
    assert wb.sheetnames == ["Systems", "Waves", "Work orders", "Target hosts", "Awaiting capacity", "Warnings"]
    cells = [c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert any(v.startswith("'=HYPERLINK") for v in cells)
    assert not any(v.startswith("=") for v in cells)
    html = paths[1].read_text(encoding="utf-8")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert 'class="chart timeline"' in html and "Wave 1" in html
    assert "http://" not in html.replace('http://www.w3.org/2000/svg', '').replace("http://x", "")


def jiyue(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jiyue", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_cli_writes_plan_excel_and_html(demo_inv, tmp_path):
    url = f"sqlite:///{tmp_path}/h.sqlite"
    make_history(demo_inv, url)
    out, plan_path = tmp_path / "out", tmp_path / "plans" / "demo.yaml"
    args = ("migrate.plan", "--out", str(out), "--store", url, "--start", "2026-12-01", "--plan", str(plan_path))
    proc = jiyue(*args)
    assert proc.returncode == 0, proc.stderr
    assert (out / "migration-plan.xlsx").exists() and (out / "migration-plan.html").exists()
    plan = load_plan(plan_path, demo_inv)
    assert plan.start == date(2026, 12, 1) and plan.waves and plan.check(demo_inv) == []
    html = (out / "migration-plan.html").read_text(encoding="utf-8")
    assert "迁移批次时间线" in html and "第 1 批" in html and "<svg" in html
    first = plan_path.read_bytes()
    again = jiyue(*args, "--lang", "en")
    assert again.returncode == 0, again.stderr
    assert plan_path.read_bytes() == first  # same inputs, same plan
    assert "Wave timeline" in (out / "migration-plan.html").read_text(encoding="utf-8")


def test_cli_default_plan_path_and_limit(demo_inv, tmp_path):
    proc = jiyue("migrate.plan", "--out", str(tmp_path), "--store", f"sqlite:///{tmp_path}/empty.sqlite",
                 "--limit", "szfb-jmwj-app1", "--plan", str(tmp_path / "p.yaml"))
    assert proc.returncode == 0, proc.stderr
    plan = load_plan(tmp_path / "p.yaml", demo_inv)
    assert [s.system for s in plan.systems] == ["szfb-jmwj"] and plan.limit == "szfb-jmwj-app1"
    assert planner.default_plan_path(demo_inv) == demo_inv.plan_file(REPO / "migrations" / "plans")
    assert planner.default_plan_path(demo_inv).name.startswith("demo-")


def test_two_cities_in_directories_of_one_name_keep_their_own_plans(demo_inv, rules, tmp_path):
    a, b = (shutil.copytree(inventory.DEFAULT_INVENTORY, tmp_path / city / "inventory") for city in ("a", "b"))
    inv_a, inv_b = inventory.load(a), inventory.load(b)
    assert planner.default_plan_path(inv_a) != planner.default_plan_path(inv_b)
    path = save_plan(build_plan(inv_a, AuditView(), rules, now=NOW), tmp_path / "a.yaml")
    assert load_plan(path, inv_a).inventory == str(a)
    with pytest.raises(PlanError, match=r"made for the inventory .*/a/inventory, not this one"):
        load_plan(path, inv_b)


def test_cli_bad_input_exits_2(tmp_path):
    assert jiyue("migrate.plan", "--start", "next week", "--out", str(tmp_path)).returncode == 2
    assert jiyue("migrate.plan", "--lang", "fr", "--out", str(tmp_path)).returncode == 2
    assert jiyue("migrate.plan", "--limit", "no_such_group", "--out", str(tmp_path)).returncode == 2
    bad = tmp_path / "planning.yaml"
    bad.write_text("waves: {max_systems: 0}\n", encoding="utf-8")
    proc = jiyue("migrate.plan", "--planning", str(bad), "--out", str(tmp_path))
    assert proc.returncode == 2 and "planning" in proc.stderr
