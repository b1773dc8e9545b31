"""The extranet address planner (`invoke network.plan`): deterministic, renumber-free, refuses bad input.

Offline: the sample city and copies of it edited the way a city grows (a new department, a new VLAN,
a new device) or breaks (a full share, a share moved under an existing plan, a hand-edited plan file).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml

import inventory
from inventory.loader import InventoryError
from network.model import AddressPlan, PlanError, PlannedAddresses, load_plan, save_plan
from network.plan import PlanningError, build_plan, default_plan_path, managed_interfaces, plan_inventory
from network.report import write_reports

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_plan(demo) -> AddressPlan:
    return build_plan(demo)


def copy_city(tmp_path: Path) -> Path:
    root = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, root)
    return root


def edit(root: Path, name: str, change) -> None:
    """Load one inventory file, let `change` edit the data, write it back (comments are lost: fine for a copy)."""
    path = root / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def device(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in data["devices"] if d["name"] == name)


def entries(plan: AddressPlan) -> tuple[dict, dict]:
    return ({s.key: (s.ipv4, s.ipv6) for s in plan.subnets}, {a.key: (a.ipv4, a.ipv6) for a in plan.addresses})


# --- the sample city -------------------------------------------------------------------------------------


def test_every_department_vlan_interface_gets_a_subnet_and_addresses(demo, demo_plan):
    managed = managed_interfaces(demo)
    assert {m.key for m in managed} == {a.key for a in demo_plan.addresses}
    assert all(m.device.name != "swj-jr1" for m in managed)  # the 金税 device is not planned
    assert not any(m.interface.golden_network for m in managed)
    shares = {a.department: a for a in demo.extranet.departments}
    for s in demo_plan.subnets:
        assert s.ipv6.prefixlen == 64
        if s.department is None:
            assert s.ipv4.subnet_of(demo.extranet.interconnect.ipv4) and s.ipv4.prefixlen == 28
        else:
            assert s.ipv4.subnet_of(shares[s.department].ipv4) and s.ipv4.prefixlen == 24
            assert s.ipv6.subnet_of(shares[s.department].ipv6)
    # two devices on one department VLAN (dx-hj1 and dxjyj-jr1 on 310) share the subnet, one address each
    on_310 = sorted((a for a in demo_plan.addresses if a.vlan == 310), key=lambda a: a.device)
    assert [a.device for a in on_310] == ["dx-hj1", "dxjyj-jr1"]
    assert on_310[0].ipv4.network == on_310[1].ipv4.network and on_310[0].ipv4 != on_310[1].ipv4
    # on a shared interconnect the core gets the first address
    assert demo_plan.address("sj-hx1", "Vlanif100").ipv4 == ipaddress.IPv4Interface("10.83.255.1/28")
    assert demo_plan.address("sj-hx1", "Vlanif100").ipv6.ip == ipaddress.IPv6Address("2001:db8:8000:ff00::1")
    assert demo_plan.check(demo) == []


def test_the_same_inventory_gives_the_same_plan_file(demo, tmp_path):
    first, path = plan_inventory(demo, tmp_path / "demo.yaml")
    text = path.read_text(encoding="utf-8")
    again, _ = plan_inventory(demo, path)
    assert path.read_text(encoding="utf-8") == text  # even the time is kept when nothing changed
    fresh = build_plan(demo, now=first.generated)
    assert fresh.model_dump() == first.model_dump() == again.model_dump()
    assert load_plan(path, demo).model_dump() == first.model_dump()


def test_plan_reports_have_chinese_headers_and_a_self_contained_page(demo, demo_plan, tmp_path):
    xlsx, html = write_reports(PlannedAddresses(demo, demo_plan, tmp_path / "demo.yaml"), tmp_path)
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames[:3] == ["部门地址分配", "VLAN子网", "接口地址"]
    headers = [c.value for c in book["接口地址"][1]]
    assert headers[:5] == ["设备", "平台", "位置", "角色", "接口"]
    rows = list(book["接口地址"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(demo_plan.addresses)
    page = html.read_text(encoding="utf-8")
    assert "电子政务外网地址规划" in page and "<script" not in page and "2001:db8:8000:ff00::1/64" in page
    _, html_en = write_reports(PlannedAddresses(demo, demo_plan, tmp_path / "demo.yaml"), tmp_path / "en", lang="en")
    assert "Interface addresses" in html_en.read_text(encoding="utf-8")


# --- growth never renumbers ------------------------------------------------------------------------------


def test_a_new_department_vlan_and_device_never_renumber_what_exists(tmp_path):
    root = copy_city(tmp_path)
    before = build_plan(inventory.load(root))

    def grow_city(data):
        # a new department listed *first* among the allocations, in the middle of the county block
        data["departments"].append({"code": "dxwjw", "name": "东县卫生健康局", "level": "county", "parent": "dxzf"})
        data["extranet"]["departments"].insert(0, {"department": "dxwjw", "ipv4": "10.81.12.0/24",
                                                   "ipv6": "2001:db8:8000:1300::/56"})

    def grow_network(data):
        device(data, "sj-hj1")["interfaces"].append({"name": "Vlanif111", "vlan": 111, "department": "szfb",
                                                     "description": "szfb second floor"})
        device(data, "dx-hj1")["interfaces"].append({"name": "Vlan-interface330", "vlan": 330,
                                                     "department": "dxwjw"})
        data["devices"].append({"name": "dxwjw-jr1", "platform": "cisco_ios", "address": "198.18.30.43",
                                "site": "东县卫健局", "role": "access", "department": "dxwjw", "upstream": "dx-hj1",
                                "interfaces": [{"name": "Vlan200", "vlan": 200},
                                               {"name": "Vlan330", "vlan": 330, "department": "dxwjw"}]})

    edit(root, "city.yaml", grow_city)
    edit(root, "network.yaml", grow_network)
    grown = inventory.load(root)
    after = build_plan(grown, before)
    old_subnets, old_addresses = entries(before)
    new_subnets, new_addresses = entries(after)
    assert {k: new_subnets[k] for k in old_subnets} == old_subnets
    assert {k: new_addresses[k] for k in old_addresses} == old_addresses
    assert set(new_subnets) - set(old_subnets) == {("szfb", 111), ("dxwjw", 330)}
    assert new_subnets[("szfb", 111)][0] == ipaddress.IPv4Network("10.80.1.0/24")  # next free /24 of szfb's /22
    assert new_addresses[("dxwjw-jr1", "Vlan330")][0] == ipaddress.IPv4Interface("10.81.12.2/24")
    assert new_addresses[("dxwjw-jr1", "Vlan200")][0] == ipaddress.IPv4Interface("10.83.255.36/28")
    assert after.released == [] and after.check(grown) == []
    # without the previous plan the new department (listed first) would have moved nothing either: the
    # shares are the inventory's, and inside each share first-fit depends only on that share's VLANs
    assert entries(build_plan(grown))[0][("szfb", 110)] == old_subnets[("szfb", 110)]


def test_a_removed_vlan_is_released_and_the_rest_kept(tmp_path):
    root = copy_city(tmp_path)
    before = build_plan(inventory.load(root))
    edit(root, "network.yaml", lambda data: device(data, "sj-hj1")["interfaces"].pop(
        next(i for i, x in enumerate(device(data, "sj-hj1")["interfaces"]) if x["name"] == "Vlanif170")))
    after = build_plan(inventory.load(root), before)
    assert any("VLAN 170 (wjw)" in r for r in after.released)
    assert any("sj-hj1 Vlanif170" in r for r in after.released)
    old_subnets, _ = entries(before)
    new_subnets, _ = entries(after)
    assert new_subnets == {k: v for k, v in old_subnets.items() if k != ("wjw", 170)}


# --- bad input -------------------------------------------------------------------------------------------


def test_overlapping_or_outside_shares_are_refused_at_their_line(tmp_path):
    root = copy_city(tmp_path)

    def bad(data):
        ext = data["extranet"]
        ext["departments"][1]["ipv4"] = "10.80.2.0/24"  # inside szfb's 10.80.0.0/22
        ext["departments"][2]["ipv6"] = "2001:db8:9000:300::/56"  # outside the city /48
        ext["interconnect"]["ipv4"] = "10.80.28.0/24"  # dsj's share

    edit(root, "city.yaml", bad)
    with pytest.raises(InventoryError) as info:
        inventory.load(root)
    messages = [str(p) for p in info.value.problems]
    assert any("extranet.departments[1].ipv4" in m and "overlaps the allocation of 'szfb'" in m for m in messages)
    assert any("extranet.departments[2].ipv6" in m and "outside the city block" in m for m in messages)
    assert any("extranet.interconnect.ipv4" in m and "overlaps the allocation of 'dsj'" in m for m in messages)
    assert all(m.split(":")[0].endswith("city.yaml") and int(m.split(":")[1]) > 1 for m in messages)


def test_an_exhausted_share_names_the_interface_that_does_not_fit(tmp_path):
    root = copy_city(tmp_path)
    # qszf has a /24: one VLAN subnet. A second VLAN cannot fit.
    edit(root, "network.yaml", lambda data: device(data, "qs-jr1")["interfaces"].append(
        {"name": "VLAN321", "vlan": 321, "department": "qszf"}))
    with pytest.raises(PlanningError) as info:
        build_plan(inventory.load(root))
    [problem] = info.value.problems
    assert "qs-jr1 VLAN321" in str(problem) and "exhausted" in str(problem) and "10.81.8.0/24" in str(problem)
    assert str(problem).startswith(str(Path("network.yaml"))) or "network.yaml:" in str(problem)
    assert problem.line > 1


def test_a_full_interconnect_subnet_is_refused(tmp_path):
    root = copy_city(tmp_path)
    edit(root, "city.yaml", lambda data: data["extranet"]["interconnect"].update(ipv4_prefix=30))
    with pytest.raises(PlanningError) as info:  # VLAN 100 joins four devices: a /30 holds two
        build_plan(inventory.load(root))
    assert any("no free address left" in str(p) and "VLAN 100" in str(p) for p in info.value.problems)


def test_a_department_vlan_on_a_golden_interface_is_refused(tmp_path):
    root = copy_city(tmp_path)
    edit(root, "network.yaml", lambda data: next(
        i for i in device(data, "rsj-jr1")["interfaces"] if i["name"] == "VLAN140").update(golden_network="金保"))
    with pytest.raises(PlanningError) as info:
        build_plan(inventory.load(root))
    [problem] = info.value.problems
    assert "rsj-jr1 VLAN140" in problem.message and "金保" in problem.message and "rsj" in problem.message
    assert problem.path == "devices[rsj-jr1].interfaces[3].department"


def test_a_vlan_without_an_allocation_is_refused(tmp_path):
    root = copy_city(tmp_path)
    edit(root, "network.yaml", lambda data: device(data, "sj-hj1")["interfaces"].append(
        {"name": "Vlanif155", "vlan": 155, "department": "swj"}))  # swj (金税 only) has no extranet share
    with pytest.raises(PlanningError) as info:
        build_plan(inventory.load(root))
    assert any("sj-hj1 Vlanif155" in str(p) and "no extranet allocation" in str(p) for p in info.value.problems)


def test_a_moved_share_under_an_existing_plan_is_an_error_not_a_renumbering(tmp_path):
    root = copy_city(tmp_path)
    before = build_plan(inventory.load(root))
    edit(root, "city.yaml", lambda data: data["extranet"]["departments"][1].update(ipv4="10.82.4.0/22"))
    with pytest.raises(PlanningError) as info:
        build_plan(inventory.load(root), before, previous_path=Path("network/plans/city.yaml"))
    text = str(info.value)
    assert "disagrees with the inventory" in text and "subnets[VLAN 120 (fgw)]" in text
    assert "10.80.4.0/24 is outside the share of 'fgw' (10.82.4.0/22)" in text


def test_two_cities_in_directories_of_one_name_keep_their_own_plans(tmp_path):
    a, b = (shutil.copytree(inventory.DEFAULT_INVENTORY, tmp_path / city / "inventory") for city in ("a", "b"))
    inv_a, inv_b = inventory.load(a), inventory.load(b)
    assert default_plan_path(inv_a) != default_plan_path(inv_b)
    plan_a, path = plan_inventory(inv_a, tmp_path / "a.yaml")
    assert plan_a.inventory == str(a)
    with pytest.raises(PlanError, match=r"made for the inventory .*/a/inventory, not this one"):
        load_plan(path, inv_b)
    with pytest.raises(PlanningError, match="made for the inventory"):  # never renumbered from a's memory
        plan_inventory(inv_b, path)


def test_a_hand_edited_plan_with_an_address_outside_its_subnet_is_refused(demo, demo_plan, tmp_path):
    path = save_plan(demo_plan, tmp_path / "demo.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = next(a for a in data["addresses"] if a["device"] == "gaj-jr1" and a["interface"] == "Vlan130")
    entry["ipv4"] = "10.80.9.1/24"  # the subnet is 10.80.8.0/24
    twin = next(a for a in data["addresses"] if a["device"] == "rsj-jr1" and a["interface"] == "VLAN140")
    twin["ipv6"] = next(a for a in data["addresses"] if a["interface"] == "Vlan130")["ipv6"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PlanError) as info:
        load_plan(path, demo)
    text = str(info.value)
    assert "addresses[gaj-jr1 Vlan130]: 10.80.9.1/24 is not in its VLAN's subnet 10.80.8.0/24" in text
    assert "addresses[rsj-jr1 VLAN140]" in text and "is not in its VLAN's subnet" in text


def test_the_command_line_plans_and_exits_2_on_bad_input(tmp_path):
    root = copy_city(tmp_path)
    plan_file = tmp_path / "plan.yaml"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "jiyue", "network.plan", "--inventory", str(root), "--plan",
                               str(plan_file), "--out", str(tmp_path / "out"), *args],
                              capture_output=True, text=True, cwd=REPO, timeout=300)

    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert plan_file.exists() and (tmp_path / "out" / "network-plan.xlsx").exists()
    text = plan_file.read_text(encoding="utf-8")
    edit(root, "network.yaml", lambda data: device(data, "qs-jr1")["interfaces"].append(
        {"name": "VLAN321", "vlan": 321, "department": "qszf"}))
    bad = run()
    assert bad.returncode == 2
    assert "qs-jr1 VLAN321" in bad.stderr and "exhausted" in bad.stderr and "nothing was written" in bad.stderr
    assert plan_file.read_text(encoding="utf-8") == text  # the plan on disk is untouched


def test_the_inventory_rules_for_the_network_fields_point_at_their_lines(tmp_path):
    root = copy_city(tmp_path)

    def bad_city(data):
        ext = data["extranet"]
        ext["departments"][0]["ipv4"] = "10.80.0.0/25"  # smaller than one VLAN subnet (/24)
        ext["ospfv3"]["devices"] += ["swj-jr1", "nowhere", "sj-hx1"]

    def bad_network(data):
        device(data, "gaj-jr1")["upstream"] = "swj-jr1"
        device(data, "rsj-jr1")["upstream"] = "rsj-jr1"
        device(data, "qs-jr1")["upstream"] = "nowhere"

    edit(root, "city.yaml", bad_city)
    edit(root, "network.yaml", bad_network)
    with pytest.raises(InventoryError) as info:
        inventory.load(root)
    found = {(p.path, p.message) for p in info.value.problems}
    paths = {p for p, _ in found}
    assert "extranet.departments[0].ipv4" in paths
    assert any(p == "extranet.ospfv3.devices[4]" and "golden network 金税" in m for p, m in found)
    assert any(p == "extranet.ospfv3.devices[5]" and "unknown device" in m for p, m in found)
    assert any(p == "extranet.ospfv3.devices[6]" and "listed twice" in m for p, m in found)
    assert any(p == "devices[gaj-jr1].upstream" and "golden network 金税" in m for p, m in found)
    assert any(p == "devices[rsj-jr1].upstream" and "its own upstream" in m for p, m in found)
    assert any(p == "devices[qs-jr1].upstream" and "unknown device 'nowhere'" in m for p, m in found)
    assert all(p.line > 1 for p in info.value.problems)


def test_a_new_city_block_under_an_existing_plan_is_refused(tmp_path):
    root = copy_city(tmp_path)
    before = build_plan(inventory.load(root))

    def move(data):  # a new /14 and every share with it: nothing of the old plan fits
        ext = data["extranet"]
        ext["ipv4"] = "10.96.0.0/14"
        ext["interconnect"]["ipv4"] = "10.99.255.0/24"
        for a in ext["departments"]:
            a["ipv4"] = a["ipv4"].replace("10.80.", "10.96.").replace("10.81.", "10.97.")

    edit(root, "city.yaml", move)
    moved = inventory.load(root)
    with pytest.raises(PlanningError, match=r"subnets\[VLAN 110 \(szfb\)\]: 10.80.0.0/24 is outside"):
        build_plan(moved, before)
    assert any("the plan was made for the city blocks 10.80.0.0/14" in p for p in before.check(moved))
