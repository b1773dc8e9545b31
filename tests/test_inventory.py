"""The inventory: the sample city loads and covers every path, the broken fixture reports each
mistake at its exact file and line, and the individual rules hold on tiny inventories."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

import inventory
from inventory import InventoryError, Problem
from inventory.groups import ClassifiedRefused, host_groups, select_hosts

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "inventory" / "demo"
BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken"


# --- the sample city ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> inventory.Inventory:
    return inventory.load(DEMO)


def test_demo_loads_with_the_minimum_counts(demo: inventory.Inventory) -> None:
    assert len(demo.departments) >= 9
    assert len(demo.systems) >= 30
    assert len(demo.hosts) >= 40
    assert len(demo.devices) >= 8
    assert {d.platform.value for d in demo.devices.values()} == {
        "huawei_vrp", "huawei_vrpv8", "hp_comware", "cisco_ios", "ruijie_os"}


def test_demo_is_split_across_files(demo: inventory.Inventory) -> None:
    files = {Path(s._origin.file).name for s in demo.systems.values()}
    assert len(files) >= 9
    assert Path(demo.cloud._origin.file).name == "city.yaml"
    assert {Path(d._origin.file).name for d in demo.devices.values()} == {"network.yaml"}


def test_demo_organisation_spans_city_county_and_town(demo: inventory.Inventory) -> None:
    levels = Counter(d.level.value for d in demo.departments.values())
    assert levels["city"] >= 1 and levels["county"] >= 1 and levels["town"] >= 1
    for dept in demo.departments.values():
        assert (dept.parent is None) == (dept.level == "city")


def test_demo_covers_the_system_paths(demo: inventory.Inventory) -> None:
    systems = list(demo.systems.values())
    assert any(s.special_hardware for s in systems)
    assert any(s.classification == "classified" and s.zone == "intranet" for s in systems)
    assert any(s.golden_network for s in systems)
    assert sum(s.website for s in systems) >= 2
    assert all(s.category == "public_service" and s.zone in ("extranet", "internet") for s in systems if s.website)
    assert {s.zone.value for s in systems} == {"intranet", "extranet", "private", "internet"}
    assert {s.protection.level for s in systems} >= {1, 2, 3}
    assert any(s.replaced_by for s in systems) and any(s.overlaps_with for s in systems)
    assert any(s.scope.declared_users <= 5 and s.frequency == "rarely" for s in systems)
    # two offices of one department overlapping each other
    assert any(
        other in demo.systems and s.id in demo.systems[other].overlaps_with
        and s.department == demo.systems[other].department and s.office != demo.systems[other].office
        for s in systems for other in s.overlaps_with
    )
    # a pair depending on each other, and a chain of three or more
    assert any(s.id in demo.systems[d].depends_on for s in systems for d in s.depends_on)

    def depth(sid: str, seen: frozenset[str] = frozenset()) -> int:
        deps = [d for d in demo.systems[sid].depends_on if d not in seen]
        return 1 + max((depth(d, seen | {sid}) for d in deps), default=0)

    assert max(depth(s.id) for s in systems) >= 3


def test_demo_cloud_bound_systems_have_services_and_paths(demo: inventory.Inventory) -> None:
    with_services = [s for s in demo.systems.values() if s.services]
    assert len(with_services) >= 5
    for system in with_services:
        assert system.data_paths == [f"/srv/{system.id}"]
        assert system.log_paths == [f"/var/log/app/{system.id}/access.log"]
        for service in system.services:
            if service.health_url:
                address = demo.hosts[service.host].address
                assert service.health_url == f"http://{address}:{service.port}/health"


def test_demo_hosts_cloud_pool_and_gateway(demo: inventory.Inventory) -> None:
    hosts = demo.hosts.values()
    assert {h.os_family.value for h in hosts} == {"redhat", "debian"}
    declared = " | ".join(h.os for h in hosts)
    for os in ("Kylin V10", "UOS 20", "openEuler 24.03", "Anolis 8", "CentOS 6", "Debian 12", "Ubuntu 22.04"):
        assert os in declared, os
    assert "CentOS 6" in declared or "Kylin V4" in declared
    assert demo.cloud is not None
    assert len(demo.cloud.flavors) >= 4 and len(demo.cloud.pool) >= 8
    for member in demo.cloud.pool:
        host = demo.hosts[member.host]
        assert host.role == "cloud" and demo.owner(host.name) is None
        assert demo.subnet_of(host.address).kind == "cloud"
    gateway = demo.hosts[demo.cloud.gateway]
    assert gateway.role == "gateway" and demo.owner(gateway.name) is None
    assert demo.subnet_of(gateway.address).kind == "service"
    for host in hosts:
        if demo.owner(host.name) is not None:
            assert demo.subnet_of(host.address).name == "source"


def test_demo_network(demo: inventory.Inventory) -> None:
    devices = list(demo.devices.values())
    assert {d.role.value for d in devices} == {"core", "aggregation", "access"}
    assert any(i.golden_network == "金税" for d in devices for i in d.interfaces)
    assert all(demo.subnet_of(d.address).kind == "management" for d in devices)
    assert demo.defaults.device_credentials is not None
    # the lab writes a random password there on lab.up, so the demo needs nothing set by the user
    assert demo.defaults.device_credentials.password.file == "../../.lab/devices/password"
    ext = demo.extranet
    assert ext is not None and ext.vpn_instance == "EGOV-EXTRANET" and len(ext.egress) == 2
    assert all(demo.devices[e.device].role == "core" for e in ext.egress)
    assert all(a.ipv6.prefixlen == 56 for a in ext.departments)


def test_demo_readme_lists_every_system_with_a_disposition(demo: inventory.Inventory) -> None:
    text = (DEMO / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \|.*?\| \*\*([a-z0-9-]+)\*\* \|", text, flags=re.M))
    assert set(rows) == set(demo.systems)
    # Criterion 4 (maintenance stopped) on a system still in use is a re-platform, never a zombie.
    allowed = {"cloud", "idc", "classified", "golden", "website", "replatform"} | {f"zombie-{n}" for n in (1, 2, 3, 5)}
    assert set(rows.values()) == allowed  # every disposition, every zombie criterion, exercised
    for sid, disposition in rows.items():
        system = demo.systems[sid]
        if disposition == "classified":
            assert system.classification == "classified"
        if disposition == "golden":
            assert system.golden_network is not None
        if disposition == "website":
            assert system.website
        if disposition == "idc":
            assert system.special_hardware


# --- the broken fixture ------------------------------------------------------------------------

# (file name, line, path substring, message substring): one entry per problem the loader reports.
EXPECTED_BROKEN: list[tuple[str, int, str, str]] = [
    ("city.yaml", 6, "defaults.device_credentials.password", "valid dictionary or instance of SecretRef"),
    ("city.yaml", 13, "departments[fgw].level", "'city', 'county', 'town' or 'village'"),
    ("city.yaml", 14, "departments[dxzf].parent", "needs a parent"),
    ("city.yaml", 18, "departments[zjj].name", "must be one line"),
    ("city.yaml", 29, "cloud.pool[1].flavor", "unknown flavor 'c64m128'"),
    ("network.yaml", 7, "devices[sj-hx1].address", "already used by host 'szfb-oa-db1'"),
    ("network.yaml", 7, "devices[sj-hx1].address", "not a management subnet"),
    ("network.yaml", 13, "devices[sj-hx1].interfaces[1].department", "unknown department 'gtj'"),
    ("network.yaml", 19, "devices[dx-hj1].deparment", "unknown field"),
    ("network.yaml", 21, "devices[dx-hj1].interfaces[0].name", "should match pattern"),
    ("systems.yaml", 14, "systems[szfb-oa].vendor", "duplicate key 'vendor'"),
    ("systems.yaml", 20, "systems[szfb-oa].services[0].host", "is not one of this system's hosts"),
    ("systems.yaml", 21, "systems[szfb-oa].depends_on[0]", "unknown system 'dsj-gxjh'"),
    ("systems.yaml", 22, "systems[szfb-oa].id", "duplicate id 'szfb-oa'"),
    ("systems.yaml", 38, "systems[mzj-jz].department", "unknown department 'mzj'"),
    ("systems.yaml", 48, "systems[mzj-jz].protection.filing_number", "must be filed"),
    ("systems.yaml", 65, "systems[szfb-jmwj].zone", "classified"),
    ("systems.yaml", 80, "systems[fgw-xmk].hosts[1]", "already owned by system 'szfb-oa'"),
    ("systems.yaml", 84, "hosts[mzj-jz-app1].address", "not a valid IPv4 or IPv6 address: '198.18.10.300'"),
    ("systems.yaml", 85, "hosts[fgw-xmk-app1].address", "outside every declared subnet"),
    ("systems.yaml", 86, "hosts[fgw-xmk-db1].os_family", "Field required"),
]


def _matches(problem: Problem, expected: tuple[str, int, str, str]) -> bool:
    name, line, path, message = expected
    return Path(problem.file).name == name and problem.line == line and path in problem.path \
        and message in problem.message


def test_broken_fixture_reports_every_mistake_at_its_line() -> None:
    with pytest.raises(InventoryError) as info:
        inventory.load(BROKEN)
    problems = info.value.problems
    missing = [e for e in EXPECTED_BROKEN if not any(_matches(p, e) for p in problems)]
    unexpected = [str(p) for p in problems if not any(_matches(p, e) for e in EXPECTED_BROKEN)]
    assert not missing, f"not reported (or at another line): {missing}\nreported:\n{info.value}"
    assert not unexpected, f"reported but not expected: {unexpected}"
    assert len({(Path(p.file).name, p.line) for p in problems}) >= 12
    for p in problems:
        assert p.file and p.line >= 1 and p.path and p.message


def test_broken_fixture_marks_every_mistake_line() -> None:
    """Every expected line carries a MISTAKE comment, so the fixture documents itself."""
    for name, line, _, _ in EXPECTED_BROKEN:
        text = (BROKEN / name).read_text(encoding="utf-8").splitlines()[line - 1]
        assert "MISTAKE" in text, f"{name}:{line}: {text}"


# --- focused rules on tiny inventories ---------------------------------------------------------

CITY = {
    "departments": [
        {"code": "szfb", "name": "市人民政府办公室", "level": "city"},
        {"code": "dxzf", "name": "东县人民政府", "level": "county", "parent": "szfb"},
    ],
    "subnets": [
        {"name": "source", "kind": "source", "prefix": "198.18.10.0/24", "gateway": "198.18.10.1"},
        {"name": "cloud", "kind": "cloud", "prefix": "198.18.20.0/24", "gateway": "198.18.20.1"},
        {"name": "management", "kind": "management", "prefix": "198.18.30.0/24", "gateway": "198.18.30.1"},
    ],
    "hosts": [
        {"name": "szfb-oa-app1", "address": "198.18.10.11", "os_family": "redhat", "os": "Kylin V10 SP2",
         "role": "app"},
        {"name": "zwy-01", "address": "198.18.20.11", "os_family": "redhat", "os": "openEuler 22.03 LTS",
         "role": "cloud"},
    ],
}


def _system(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "szfb-oa", "name": "市政府协同办公系统", "department": "szfb", "function": "公文流转",
        "category": "internal_office", "scope": {"user_units": ["市直各部门"], "declared_users": 100},
        "frequency": "daily", "approval": {"department": "市发展和改革委员会", "date": dt.date(2016, 5, 12)},
        "funding": {"source": "市级财政专项资金", "amount": 1000.0}, "build_year": 2016,
        "vendor": "示范市天元软件有限公司", "classification": "non_classified",
        "protection": {"level": 2, "filing_number": "21010099001-19001"}, "zone": "intranet",
        "hosts": ["szfb-oa-app1"],
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def _write(root: Path, name: str, data: dict[str, Any] | str) -> Path:
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(root: Path) -> list[Problem]:
    with pytest.raises(InventoryError) as info:
        inventory.load(root)
    return info.value.problems


def _city(root: Path, **sections: Any) -> Path:
    _write(root, "city.yaml", {**CITY, **sections})
    return root


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text)


def test_tiny_valid_inventory_loads(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system()])
    inv = inventory.load(tmp_path)
    assert inv.owner("szfb-oa-app1").id == "szfb-oa"
    assert inv.owner("zwy-01") is None


@pytest.mark.parametrize("zone", ["extranet", "internet"])
def test_classified_system_outside_the_intranet_is_refused(tmp_path: Path, zone: str) -> None:
    _city(tmp_path)
    path = _write(tmp_path, "systems.yaml", {"systems": [_system(classification="classified", zone=zone,
                                                                 protection=FENBAO)]})
    [problem] = _problems(tmp_path)
    assert problem.path == "systems[szfb-oa].zone" and "classified" in problem.message
    assert problem.line == _line_of(path, "zone:")


def test_classified_system_in_the_intranet_is_accepted(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system(classification="classified", zone="intranet", protection=FENBAO)])
    assert inventory.load(tmp_path).systems["szfb-oa"].classification == "classified"


# --- protection: 分保 for classified systems, 等保 for the others ------------------------------------

FENBAO = {"scheme": "fenbao"}


def test_a_classified_system_is_under_fenbao_and_no_filing_number_is_asked(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system(classification="classified", protection=FENBAO)])
    system = inventory.load(tmp_path).systems["szfb-oa"]
    assert system.protection.scheme == "fenbao"
    assert system.protection.level is None and system.protection.filing_number is None


@pytest.mark.parametrize("protection", [{"level": 3, "filing_number": "21010099001-19001"}, {"level": 1},
                                        {"scheme": "dengbao", "level": 2, "filing_number": "21010099001-19001"}])
def test_a_classified_system_under_dengbao_is_refused(tmp_path: Path, protection: dict[str, Any]) -> None:
    _city(tmp_path)
    path = _write(tmp_path, "systems.yaml", {"systems": [_system(classification="classified",
                                                                 protection=protection)]})
    [problem] = _problems(tmp_path)
    assert problem.path == "systems[szfb-oa].protection" and "分级保护" in problem.message
    assert "scheme: fenbao" in problem.message and "落实涉密信息系统分级保护和非涉密信息系统等级保护" in problem.message
    assert problem.line == _line_of(path, "protection:")


def test_fenbao_is_only_for_classified_systems(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system(protection=FENBAO)])
    [problem] = _problems(tmp_path)
    assert problem.path == "systems[szfb-oa].protection.scheme" and "classified" in problem.message


@pytest.mark.parametrize(("protection", "message"), [
    ({"scheme": "fenbao", "level": 3}, "no 等保 level or filing number"),
    ({"scheme": "fenbao", "filing_number": "FB-2015-0031"}, "no 等保 level or filing number"),
    ({"scheme": "dengbao"}, "declares its level"),
    ({"scheme": "bmb17"}, "'dengbao' or 'fenbao'"),
])
def test_each_scheme_takes_its_own_fields(tmp_path: Path, protection: dict[str, Any], message: str) -> None:
    _city(tmp_path, systems=[_system(classification="classified", protection=protection)])
    problems = _problems(tmp_path)
    assert any(p.path.startswith("systems[szfb-oa].protection") and message in p.message for p in problems), problems


def test_the_sample_citys_classified_systems_are_under_fenbao(demo: inventory.Inventory) -> None:
    classified = {s.id: s.protection for s in demo.systems.values() if s.classification == "classified"}
    assert set(classified) == {"szfb-jmwj", "gaj-qbyp"}
    assert all(p.scheme == "fenbao" and p.level is None and p.filing_number is None for p in classified.values())


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("hunter2", "valid dictionary or instance of SecretRef"),  # inline password
        ({"value": "hunter2"}, "unknown field"),  # a made-up inline form
        ({"env": "NET_PASSWORD", "file": "/etc/jiyue/net"}, "exactly one"),
        ({}, "exactly one"),
        ({"env": "net-password"}, "should match pattern"),  # not an environment variable name
    ],
)
def test_secret_refs_never_hold_a_secret(tmp_path: Path, password: Any, message: str) -> None:
    _city(tmp_path, defaults={"device_credentials": {"username": "netops", "password": password}})
    problems = _problems(tmp_path)
    assert problems and all(p.path.startswith("defaults.device_credentials.password") for p in problems)
    assert any(message in p.message for p in problems), problems


@pytest.mark.parametrize("password", [{"env": "JIYUE_NET_PASSWORD"}, {"file": "/etc/jiyue/net-password"}])
def test_secret_refs_by_reference_are_accepted(tmp_path: Path, password: dict[str, str]) -> None:
    _city(tmp_path, defaults={"device_credentials": {"username": "netops", "password": password}})
    assert inventory.load(tmp_path).defaults.device_credentials.password.model_dump(exclude_none=True) == password


@pytest.mark.parametrize(("level", "filing", "ok"), [(1, None, True), (2, None, False), (3, None, False),
                                                     (3, "21010099001-19001", True)])
def test_level_two_and_above_need_a_filing_number(tmp_path: Path, level: int, filing: str | None, ok: bool) -> None:
    protection = {"level": level} if filing is None else {"level": level, "filing_number": filing}
    _city(tmp_path, systems=[_system(protection=protection)])
    if ok:
        inventory.load(tmp_path)
    else:
        [problem] = _problems(tmp_path)
        assert problem.path == "systems[szfb-oa].protection.filing_number"


def test_misspelt_field_is_reported_not_dropped(tmp_path: Path) -> None:
    record = _system()
    record["ofice"] = "秘书科"
    _city(tmp_path, systems=[record])
    [problem] = _problems(tmp_path)
    assert problem.path == "systems[szfb-oa].ofice" and "unknown field" in problem.message


def test_duplicate_yaml_key_is_reported_at_the_second_key(tmp_path: Path) -> None:
    _city(tmp_path)
    _write(tmp_path, "dept.yaml", "departments:\n  - code: fgw\n    name: 发改委\n    name: 市发展和改革委员会\n"
                                  "    level: city\n")
    [problem] = _problems(tmp_path)
    assert (Path(problem.file).name, problem.line) == ("dept.yaml", 4)
    assert "duplicate key 'name'" in problem.message


def test_control_characters_are_refused(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system(name="协同办公\x1b[31m")])
    [problem] = _problems(tmp_path)
    assert problem.path == "systems[szfb-oa].name" and "one line" in problem.message


def test_single_sections_may_appear_only_once(tmp_path: Path) -> None:
    _city(tmp_path, defaults={"ssh": {"user": "root"}})
    _write(tmp_path, "more.yaml", {"defaults": {"ssh": {"port": 2222}}})
    [problem] = _problems(tmp_path)
    assert Path(problem.file).name == "more.yaml" and "declared again" in problem.message


def test_list_sections_may_span_files(tmp_path: Path) -> None:
    _city(tmp_path)
    (tmp_path / "departments").mkdir()
    _write(tmp_path, "departments/szfb.yaml", {"systems": [_system()]})
    _write(tmp_path, "departments/szfb-more.yml", {"systems": [_system(id="szfb-dcdb", hosts=[])]})
    assert {"szfb-oa", "szfb-dcdb"} <= set(inventory.load(tmp_path).systems)


def test_unknown_section_is_reported(tmp_path: Path) -> None:
    _city(tmp_path)
    _write(tmp_path, "typo.yaml", "sytems: []\n")
    [problem] = _problems(tmp_path)
    assert problem.path == "sytems" and "unknown section" in problem.message


def test_department_levels_and_parents(tmp_path: Path) -> None:
    _city(tmp_path)
    _write(tmp_path, "towns.yaml", {"departments": [
        {"code": "qszf", "name": "青山镇人民政府", "level": "town"},  # no parent
        {"code": "xjj", "name": "某县局", "level": "county", "parent": "qszf"},  # county under a town
        {"code": "hzf", "name": "某镇", "level": "town", "parent": "nosuch"},  # unknown parent
    ]})
    messages = {p.path: p.message for p in _problems(tmp_path)}
    assert "needs a parent" in messages["departments[qszf].parent"]
    assert "cannot sit under" in messages["departments[xjj].parent"]
    assert "unknown department 'nosuch'" in messages["departments[hzf].parent"]


def test_a_host_has_at_most_one_owner_and_pool_hosts_none(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system(), _system(id="szfb-dcdb", hosts=["szfb-oa-app1", "zwy-01"])],
          cloud={"flavors": [{"name": "c2m4", "vcpus": 2, "memory_gb": 4, "disk_gb": 50}], "zones": ["intranet"],
                 "pool": [{"host": "zwy-01", "flavor": "c2m4", "zone": "intranet"}], "gateway": "zwy-01"})
    messages = {p.path: p.message for p in _problems(tmp_path)}
    assert "already owned by system 'szfb-oa'" in messages["systems[szfb-dcdb].hosts[0]"]
    assert "cloud-pool target" in messages["systems[szfb-dcdb].hosts[1]"]


def test_cloud_pool_host_must_sit_in_a_cloud_subnet(tmp_path: Path) -> None:
    _city(tmp_path, cloud={"flavors": [{"name": "c2m4", "vcpus": 2, "memory_gb": 4, "disk_gb": 50}],
                           "zones": ["extranet"],
                           "pool": [{"host": "szfb-oa-app1", "flavor": "c2m4", "zone": "extranet"}],
                           "gateway": "zwy-01"})
    problems = sorted((p for p in _problems(tmp_path) if p.path.startswith("cloud.pool")), key=lambda p: p.message)
    assert [p.path for p in problems] == ["cloud.pool[0].host", "cloud.pool[0].host"]
    assert any("has role 'app', not 'cloud'" in p.message for p in problems)
    assert any("not in a cloud subnet" in p.message for p in problems)


# --- network zones: the city's cloud zones and the category gate ------------------------------------------

C2M4 = {"name": "c2m4", "vcpus": 2, "memory_gb": 4, "disk_gb": 50}


def test_demo_cloud_zones_each_pool_host_in_one_declared_zone(demo: inventory.Inventory) -> None:
    assert set(demo.cloud.zones) == {"extranet", "internet", "intranet"}
    for zone in demo.cloud.zones:
        assert any(p.zone == zone for p in demo.cloud.pool), zone
    assert all(p.zone in demo.cloud.zones for p in demo.cloud.pool)


def test_pool_host_zone_must_be_declared_and_each_declared_zone_needs_hosts(tmp_path: Path) -> None:
    path = _write(tmp_path, "city.yaml", {**CITY, "cloud": {
        "flavors": [C2M4], "zones": ["extranet", "intranet", "extranet"],
        "pool": [{"host": "zwy-01", "flavor": "c2m4", "zone": "internet"}], "gateway": "zwy-01"}})
    problems = {(p.path, p.line): p.message for p in _problems(tmp_path) if p.path.startswith("cloud.")}
    zones_line = _line_of(path, "zones:")
    assert "not one of the city's cloud zones" in problems[("cloud.pool[0].zone", _line_of(path, "zone: internet"))]
    assert "has no pool host" in problems[("cloud.zones[0]", zones_line + 1)]
    assert "has no pool host" in problems[("cloud.zones[1]", zones_line + 2)]
    assert "declared twice" in problems[("cloud.zones[2]", zones_line + 3)]


def test_a_pool_host_without_a_zone_or_a_cloud_without_zones_is_refused(tmp_path: Path) -> None:
    _city(tmp_path, cloud={"flavors": [C2M4], "pool": [{"host": "zwy-01", "flavor": "c2m4"}], "gateway": "zwy-01"})
    paths = {p.path: p.message for p in _problems(tmp_path)}
    assert "Field required" in paths["cloud.zones"] and "Field required" in paths["cloud.pool[0].zone"]
    _city(tmp_path, cloud={"flavors": [C2M4], "zones": ["private"],
                           "pool": [{"host": "zwy-01", "flavor": "c2m4", "zone": "private"}], "gateway": "zwy-01"})
    paths = {p.path: p.message for p in _problems(tmp_path)}
    assert "'intranet', 'extranet' or 'internet'" in paths["cloud.zones[0]"]  # a private network is no cloud zone


@pytest.mark.parametrize(("category", "zone"), [
    ("internal_office", "extranet"), ("decision", "internet"), ("management", "private"),
    ("public_service", "intranet"), ("social_management", "intranet"),
])
def test_a_system_on_a_network_its_category_forbids_is_refused(tmp_path: Path, category: str, zone: str) -> None:
    """The zone gate from the inventory's side (Hezhou: internal office … decision → intranet, social management
    and public service → extranet), read from migrations/planning.yaml like the planner does."""
    path = _write(tmp_path, "systems.yaml", {"systems": [_system(category=category, zone=zone)]})
    _city(tmp_path)
    problems = [p for p in _problems(tmp_path) if p.path == "systems[szfb-oa].zone"]
    assert len(problems) == 1 and f"a {category} system cannot be on the {zone} network" in problems[0].message
    assert problems[0].line == _line_of(path, "zone:")


@pytest.mark.parametrize(("category", "zone"), [
    ("internal_office", "intranet"), ("public_service", "extranet"), ("public_service", "internet"),
    ("social_management", "private"),
])
def test_a_system_on_a_network_its_category_allows_loads(tmp_path: Path, category: str, zone: str) -> None:
    _city(tmp_path, systems=[_system(category=category, zone=zone)])
    assert inventory.load(tmp_path).systems["szfb-oa"].zone == zone


def test_golden_network_systems_are_not_routed_so_not_gated(tmp_path: Path) -> None:
    # 金税 front ends are "management" on their private network: they stay there, never routed to a zone
    _city(tmp_path, systems=[_system(category="management", zone="private", golden_network="金税")])
    assert inventory.load(tmp_path).systems["szfb-oa"].golden_network == "金税"


def test_the_zone_rule_is_read_from_the_planning_data() -> None:
    from inventory.validate import forbidden_zones

    demo = inventory.load(inventory.DEFAULT_INVENTORY)
    assert list(forbidden_zones(demo, {"internal_office": ["intranet"]}, {"intranet": "intranet"})) != []
    everything = {c: ["intranet", "extranet", "internet"] for c in
                  ("internal_office", "coordination", "management", "supervision", "decision",
                   "social_management", "public_service")}
    declared = {"intranet": "intranet", "extranet": "extranet", "internet": "internet", "private": "extranet"}
    assert list(forbidden_zones(demo, everything, declared)) == []
    strict = {**everything, "coordination": ["extranet"]}  # a city that puts coordination on the extranet
    flagged = {p.path for p in forbidden_zones(demo, strict, declared)}
    assert flagged == {f"systems[{s.id}].zone" for s in demo.systems.values()
                       if s.category == "coordination" and s.classification == "non_classified"}


def test_extranet_allocations_stay_inside_the_city_block_without_overlap(tmp_path: Path) -> None:
    _city(tmp_path, extranet={
        "vpn_instance": "EGOV-EXTRANET", "rd": "65010:100", "ipv4": "10.80.0.0/14", "ipv6": "2001:db8:8000::/48",
        "departments": [
            {"department": "szfb", "ipv4": "10.80.0.0/22", "ipv6": "2001:db8:8000:100::/56"},
            {"department": "dxzf", "ipv4": "10.80.2.0/24", "ipv6": "2001:db8:9000::/56"},
        ],
        "egress": [{"name": "dianxin", "device": "sj-hx1", "interface": "GE1/0/1", "ipv4": "203.0.113.2/30",
                    "ipv6": "2001:db8:ffff:1::2/64", "ipv4_next_hop": "203.0.113.1",
                    "ipv6_next_hop": "2001:db8:ffff:1::1"}],
    })
    messages = sorted(f"{p.path}: {p.message}" for p in _problems(tmp_path))
    assert any("departments[1].ipv4" in m and "overlaps the allocation of 'szfb'" in m for m in messages)
    assert any("departments[1].ipv6" in m and "outside the city block" in m for m in messages)
    assert any("egress[0].device" in m and "unknown device 'sj-hx1'" in m for m in messages)


def test_management_sources_that_admit_everyone_or_too_much_are_refused(tmp_path: Path) -> None:
    extranet = {
        "vpn_instance": "EGOV-EXTRANET", "rd": "65010:100", "ipv4": "10.80.0.0/14", "ipv6": "2001:db8:8000::/48",
        "departments": [], "egress": [{"name": "dianxin", "device": "sj-hx1", "interface": "GE1/0/1",
                                       "ipv4": "203.0.113.2/30", "ipv6": "2001:db8:ffff:1::2/64",
                                       "ipv4_next_hop": "203.0.113.1", "ipv6_next_hop": "2001:db8:ffff:1::1"}],
        "management": {"syslog_hosts": ["198.18.40.31"], "ntp_servers": ["198.18.40.32"],
                       "sources": ["0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/32", "198.18.30.0/24",
                                   "2001:db8:30::/48"]},
    }
    _city(tmp_path, extranet=extranet)
    found = {p.path: p.message for p in _problems(tmp_path)}
    sources = "extranet.management.sources"
    assert "admits every address" in found[f"{sources}[0]"] and "admits every address" in found[f"{sources}[1]"]
    assert "wider than /16" in found[f"{sources}[2]"] and "wider than /48" in found[f"{sources}[3]"]
    assert f"{sources}[4]" not in found and f"{sources}[5]" not in found
    assert "inventory/policy.yaml" in found[f"{sources}[0]"]


@pytest.mark.parametrize("field, value", [
    ("subnets", [{"name": "mgmt6", "kind": "management", "prefix": "fe80::%eth0/64", "gateway": "fe80::1"}]),
    ("hosts", [{"name": "zwy-01", "address": "fe80::1%eth0"}]),
])
def test_ipv6_zone_ids_are_refused(tmp_path: Path, field: str, value: list[dict[str, Any]]) -> None:
    data = {**CITY}
    data[field] = [{**data[field][0], **value[0]}, *data[field][1:]]
    _write(tmp_path, "city.yaml", data)
    problems = _problems(tmp_path)
    assert any("zone id (%eth0)" in p.message for p in problems), problems


def test_two_services_on_one_host_and_port_are_refused(tmp_path: Path) -> None:
    services = [{"name": "web", "host": "szfb-oa-app1", "port": 8080},
                {"name": "api", "host": "szfb-oa-app1", "port": 8080},
                {"name": "dns", "host": "szfb-oa-app1", "port": 8080, "protocol": "udp"}]
    _city(tmp_path, systems=[_system(services=services)])
    [problem] = _problems(tmp_path)
    assert problem.path == "systems[szfb-oa].services[1].port"
    assert "already service 'web'" in problem.message


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    _write(tmp_path, "city.yaml", "\n".join([*lines, "systems: *i", ""]))
    [problem] = _problems(tmp_path)  # was: built until the machine ran out of memory
    assert problem.path == "(yaml)" and "aliases expand" in problem.message
    _write(tmp_path, "city.yaml", "a: &a [*a]\n")
    [problem] = _problems(tmp_path)
    assert "recursive anchor" in problem.message


def test_anchors_for_shared_defaults_still_load(tmp_path: Path) -> None:
    text = yaml.safe_dump({**CITY, "systems": [_system()]}, allow_unicode=True, sort_keys=False)
    _write(tmp_path, "city.yaml", text.replace("scope:", "scope: &scope", 1))
    assert inventory.load(tmp_path).systems["szfb-oa"].scope.declared_users == 100


def test_interface_names_follow_the_vendor_style_without_spaces(tmp_path: Path) -> None:
    device = {"name": "qs-jr1", "platform": "ruijie_os", "address": "198.18.30.200", "site": "青山镇人民政府机房",
              "role": "access", "credentials": {"username": "netops", "password": {"env": "JIYUE_NET_PASSWORD"}}}
    _city(tmp_path, devices=[{**device, "interfaces": [{"name": "GigabitEthernet0/1"}, {"name": "VLAN320"}]}])
    inventory.load(tmp_path)
    _city(tmp_path, devices=[{**device, "interfaces": [{"name": "GigabitEthernet 0/1"}]}])
    [problem] = _problems(tmp_path)
    assert problem.path == "devices[qs-jr1].interfaces[0].name"


def test_missing_directory_is_an_inventory_error(tmp_path: Path) -> None:
    [problem] = _problems(tmp_path / "nowhere")
    assert "no such directory" in problem.message


# --- classified hosts and --limit ----------------------------------------------------------------------

CLASSIFIED_HOSTS = ["gaj-qbyp-app1", "szfb-jmwj-app1"]


def test_no_limit_leaves_the_classified_hosts_out_and_says_so(demo: inventory.Inventory) -> None:
    hosts, left_out = select_hosts(demo, None)
    assert left_out == CLASSIFIED_HOSTS and hosts == demo.contactable_hosts()
    assert set(hosts) | set(left_out) == set(demo.hosts)


@pytest.mark.parametrize("pattern", [
    "szfb-jmwj-app1",  # the host by name
    "system_szfb_jmwj",  # its system's group
    "classified",  # the group of them all
    "szfb-jmwj*",  # a wildcard that finds only it
    "~qbyp",  # a regular expression that finds only it
    "szfb-oa-app1,gaj-qbyp-app1",  # named beside a host that may be contacted
    "dept_szfb:&classified",  # an intersection that keeps only it
])
def test_a_classified_host_named_in_limit_is_refused(demo: inventory.Inventory, pattern: str) -> None:
    with pytest.raises(ClassifiedRefused) as refused:
        select_hosts(demo, pattern)
    message = str(refused.value)
    named = [h for h in CLASSIFIED_HOSTS if h in message]
    assert named and "分级保护" in message and "confidential bureau" in message
    assert "--include-classified" in message
    assert all(demo.owner(h).name in message for h in named)  # the system, by its name too


@pytest.mark.parametrize(("pattern", "left_out"), [
    ("dept_szfb", ["szfb-jmwj-app1"]),
    ("all", CLASSIFIED_HOSTS),
    ("role_app", CLASSIFIED_HOSTS),
    ("dept_szfb:!classified", []),
])
def test_a_broader_limit_leaves_them_out(demo: inventory.Inventory, pattern: str, left_out: list[str]) -> None:
    hosts, out = select_hosts(demo, pattern)
    assert out == left_out and not any(demo.is_classified(h) for h in hosts)
    assert hosts


@pytest.mark.parametrize("pattern", ["szfb-jmwj-app1", "classified", "dept_szfb", None])
def test_include_classified_is_the_explicit_override(demo: inventory.Inventory, pattern: str | None) -> None:
    hosts, left_out = select_hosts(demo, pattern, include_classified=True)
    assert left_out == [] and "szfb-jmwj-app1" in hosts


def test_fenbao_systems_are_in_no_level_group(demo: inventory.Inventory) -> None:
    groups = host_groups(demo)
    in_level = {h for g, members in groups.items() if g.startswith("level_") for h in members}
    assert in_level.isdisjoint(CLASSIFIED_HOSTS) and groups["classified"] == CLASSIFIED_HOSTS


# --- machine rooms (机房腾退) -------------------------------------------------------------------------

LEADING_GROUP = "市智慧城市建设与大数据应用开发工作领导小组"
APPROVED = {"body": LEADING_GROUP, "date": dt.date(2025, 9, 15), "document": "第 3 次会议纪要"}


def _room(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": "szfb-room", "department": "szfb", "address": "市政府大楼 105 室", "area_m2": 18,
                              "status": "kept", "reason": "confidentiality", "hosts": ["szfb-oa-app1"],
                              "approval": APPROVED}
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def _rule() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "audit" / "assets.yaml").read_text(encoding="utf-8"))["machine_rooms"]


def _findings(inv: inventory.Inventory, rule: dict[str, Any] | None = None) -> dict[str, list[Problem]]:
    from inventory.validate import room_findings

    rule = rule or _rule()
    return room_findings(inv, rule["max_area_m2"], rule["approval_body"], rule["max_rooms_per_department"],
                         rule["reasons"])


def test_demo_machine_rooms_and_their_one_finding(demo: inventory.Inventory) -> None:
    rooms = demo.machine_rooms
    assert {r.status.value for r in rooms.values()} == {"kept", "vacating"}
    assert any(e.retired and e.kind == "network" for r in rooms.values() for e in r.equipment)
    assert "szfb-jmwj-app1" in rooms["szfb-room"].remains
    [[finding]] = _findings(demo).values()  # zjj keeps 26 m², approved: over the 20 m² Panjin allows
    path = DEMO / "departments" / "zjj.yaml"
    assert finding.path == "machine_rooms[zjj-room].area_m2" and "20 m²" in finding.message
    assert finding.line == _line_of(path, "area_m2: 26")


def test_machine_room_references_are_checked(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system()])
    path = _write(tmp_path, "rooms.yaml", {"machine_rooms": [
        _room(),
        _room(id="mzj-room", department="mzj", hosts=["szfb-oa-app1", "nosuch-app1"]),
        _room(id="dxzf-room", department="dxzf", area_m2=0, status="closed"),
    ]})
    messages = {(p.path, p.line): p.message for p in _problems(tmp_path)}
    lines = path.read_text(encoding="utf-8").splitlines()

    def at(field: str, room: str, needle: str) -> tuple[str, int]:
        start = next(i for i, text in enumerate(lines, 1) if f"id: {room}" in text)
        return field, next(i for i, text in enumerate(lines[start - 1:], start) if needle in text)

    assert "unknown department 'mzj'" in messages[
        at("machine_rooms[mzj-room].department", "mzj-room", "department: mzj")]
    assert "already stands in machine room 'szfb-room'" in messages[
        at("machine_rooms[mzj-room].hosts[0]", "mzj-room", "- szfb-oa-app1")]
    assert "unknown host 'nosuch-app1'" in messages[
        at("machine_rooms[mzj-room].hosts[1]", "mzj-room", "- nosuch")]
    assert "greater than 0" in messages[
        at("machine_rooms[dxzf-room].area_m2", "dxzf-room", "area_m2")]
    assert "'kept', 'vacating' or 'vacated'" in messages[
        at("machine_rooms[dxzf-room].status", "dxzf-room", "status")]


@pytest.mark.parametrize(("room", "field", "message"), [
    (_room(), None, None),  # 18 m², approved, confidentiality: complies
    (_room(area_m2=20), None, None),  # at most 20 m²
    (_room(area_m2=20.5), "area_m2", "exceeds the 20 m²"),
    (_room(approval=None), "approval", "without the approval"),
    (_room(approval={**APPROVED, "body": "市政府办公室主任办公会"}), "approval.body", "not by the"),
    (_room(reason=None), "reason", "without a ground"),
    (_room(status="vacated", area_m2=120, approval=None, reason=None), None, None),  # vacated: nothing kept
])
def test_a_kept_room_over_20_m2_or_unapproved_is_a_finding(tmp_path: Path, room: dict[str, Any],
                                                            field: str | None, message: str | None) -> None:
    _city(tmp_path, systems=[_system()], machine_rooms=[room])
    found = _findings(inventory.load(tmp_path))  # a finding, not an invalid inventory: it loads
    if field is None:
        assert found == {}
    else:
        [[problem]] = found.values()
        assert problem.path == f"machine_rooms[szfb-room].{field}" and message in problem.message


def test_one_kept_room_per_department_and_the_rule_is_data(tmp_path: Path) -> None:
    _city(tmp_path, systems=[_system()], machine_rooms=[_room(), _room(id="szfb-room2", hosts=[], area_m2=25)])
    inv = inventory.load(tmp_path)
    found = _findings(inv)
    assert list(found) == ["szfb-room2"]
    assert {p.path for p in found["szfb-room2"]} == {"machine_rooms[szfb-room2].area_m2",
                                                     "machine_rooms[szfb-room2].status"}
    # an auditor's copy of the rule: two rooms of up to 30 m² each, and the second room complies
    assert _findings(inv, {**_rule(), "max_area_m2": 30, "max_rooms_per_department": 2}) == {}


def test_an_egress_names_a_routed_port_and_next_hops_on_its_link(tmp_path: Path) -> None:
    """The carrier-facing port of each egress: a physical port the device declares, valid on its platform, and the
    carrier's next hop of each family inside that port's subnet of the family; each error at its file:line."""
    city = Path(__file__).resolve().parent / "fixtures" / "city-ospf3"
    for f in city.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    text = (tmp_path / "city.yaml").read_text(encoding="utf-8")
    text = text.replace("      interface: GE1/0/1 ", "      interface: Vlanif100 ")
    text = text.replace("      ipv4_next_hop: 203.0.113.1", "      ipv4_next_hop: 203.0.113.9")
    text = text.replace('      ipv6_next_hop: "2001:db8:ffff:1::1"', '      ipv6_next_hop: "2001:db8:fffe:1::1"')
    text += ("    - {name: second, device: o3-jr1, interface: GigabitEthernet0/9, ipv4: 192.0.2.1/30,\n"
             "       ipv6: '2001:db8:9000:ff00::1/64', ipv4_next_hop: 192.0.2.2,\n"
             "       ipv6_next_hop: '2001:db8:9000:ff00::2'}\n")
    (tmp_path / "city.yaml").write_text(text, encoding="utf-8")
    found: dict[str, list[tuple[int, str]]] = {}
    for p in _problems(tmp_path):
        found.setdefault(p.path, []).append((p.line, p.message))
    path = tmp_path / "city.yaml"

    def at(field: str, text: str) -> int:
        return next(line for line, message in found[f"extranet.egress{field}"] if text in message)

    assert at("[0].interface", "cannot be a routed port on huawei_vrpv8") == _line_of(path, "interface: Vlanif100")
    assert at("[0].ipv4_next_hop", "outside the interface's subnet 203.0.113.0/30") == \
        _line_of(path, "ipv4_next_hop: 203.0.113.9")
    assert at("[0].ipv6_next_hop", "outside the interface's subnet 2001:db8:ffff:1::/64") == \
        _line_of(path, "ipv6_next_hop: \"2001:db8:fffe:1::1\"")
    assert at("[1].interface", "declares no interface 'GigabitEthernet0/9'")
    assert at("[1].ipv6", "overlaps the interconnect pool")
