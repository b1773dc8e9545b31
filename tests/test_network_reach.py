"""The extranet reachability check (`invoke network.verify`, and `network.render`'s gate): the sample city
passes in both families; a missing return route, a management subnet left open and a forwarding loop are each
reported with the device where forwarding stops; render refuses a failing city unless --force.

Offline: the graph is built from the renderer's own structured data for the sample city's plan."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import inventory
from network.model import save_plan
from network.plan import build_plan
from network.reach import build_fabric, verify, verify_fabric

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plan(demo):
    return build_plan(demo)


@pytest.fixture(scope="module")
def fabric(demo, plan):
    return build_fabric(demo, plan)


def _run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "jiyue", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_the_sample_city_passes_in_both_families(demo, plan):
    result = verify(demo, plan)
    assert result.ok, [f.as_dict() for f in result.failures]
    assert result.checked > 0



def test_the_ospfv3_test_city_passes_in_both_families():
    """The test city with Cisco IOS and Ruijie in OSPFv3 beside Huawei and H3C (tests/fixtures/city-ospf3)."""
    city = inventory.load(Path(__file__).parent / "fixtures" / "city-ospf3")
    result = verify(city, build_plan(city))
    assert result.ok, [f.as_dict() for f in result.failures]
    assert result.checked > 0

def test_packets_leave_by_the_egress_port_and_without_it_the_default_route_leads_nowhere(demo, fabric):
    """The egress is the carrier-facing port (its connected subnet holds the carrier's next hop), not assumed from
    the default route: without sj-hx1's GE1/0/1 its default route points at an address on no link."""
    from network.reach import EGRESS_PROBE, walk

    hx1 = {p.name: p for p in fabric.nodes["sj-hx1"].ports}
    assert hx1["GE1/0/1"].egress == "dianxin" and str(hx1["GE1/0/1"].network(4)) == "203.0.113.0/30"
    w = walk(fabric, "sj-hx1", EGRESS_PROBE[4])
    assert (w.outcome, w.stopped_at, w.missing) == ("egress", "sj-hx1", "dianxin")
    broken = verify_fabric(fabric.without_port("sj-hx1", "GE1/0/1"), demo)
    failed = {(f.check, f.family, f.stopped_at) for f in broken.failures}
    assert ("egress", 4, "sj-hx1") in failed and ("egress", 6, "sj-hx1") in failed, broken.failures
    assert all("no device in the VPN has it" in f.missing for f in broken.failures if f.check == "egress")
    assert not [f for f in broken.failures if f.stopped_at == "sj-hx2"]  # the other exit still works


def test_every_department_vlan_has_a_return_route_on_every_device_above_it(fabric, plan):
    gaj = plan.subnet("gaj", 130)
    rsj = plan.subnet("rsj", 140)
    for device in ("sj-hj1", "sj-hx1", "sj-hx2"):  # 130 and 140 sit behind access switches
        prefixes = {r.prefix for r in fabric.nodes[device].routes if r.source == "static"}
        assert {gaj.ipv4, gaj.ipv6, rsj.ipv4, rsj.ipv6} <= prefixes, device


def test_a_missing_return_route_fails_naming_the_hop(demo, plan, fabric):
    gaj = plan.subnet("gaj", 130)
    broken = fabric.without_route("sj-hj1", str(gaj.ipv4))
    result = verify_fabric(broken, demo)
    failures = [f for f in result.failures if f.check == "return"]
    assert failures and all(f.family == 4 and "VLAN 130 (gaj)" in f.source for f in failures)
    assert {f.stopped_at for f in failures} == {"sj-hj1"}
    assert all(str(gaj.ipv4) in f.missing or "10.80.8." in f.missing for f in failures), failures
    assert not [f for f in result.failures if f.check != "return"]


def test_a_vlan_that_could_reach_the_management_subnet_is_reported(demo, fabric):
    result = verify_fabric(fabric.without_acl_deny("gaj-jr1", "Vlan130"), demo)
    [failure] = [f for f in result.failures if f.check == "isolation"]
    assert "VLAN 130 (gaj)" in failure.source and "198.18.30.0/24" in failure.destination
    assert "Vlan130" in failure.missing


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    """The sample city with one wrong `upstream`: sj-hj1 points at its own access switch (a forwarding loop)."""
    root = tmp_path_factory.mktemp("looped") / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, root)
    path = root / "network.yaml"
    text = path.read_text(encoding="utf-8")
    marker = "    upstream: sj-hx1 "
    assert marker in text
    path.write_text(text.replace(marker, "    upstream: rsj-jr1 "), encoding="utf-8")
    inv = inventory.load(root)
    return root, save_plan(build_plan(inv), root.parent / "plan.yaml")


def test_verify_prints_the_failures_and_exits_1(looped):
    root, plan_file = looped
    run = _run("network.verify", "--inventory", str(root), "--plan", str(plan_file), "--lang", "en",
               "--format", "json")
    assert run.returncode == 1, run.stderr
    assert '"check": "egress"' in run.stdout and "forwarding loop" in run.stdout and "sj-hj1 -> rsj-jr1" in run.stdout


def test_render_refuses_a_failing_city_unless_forced(looped, tmp_path):
    root, plan_file = looped
    out = tmp_path / "out"
    refused = _run("network.render", "--inventory", str(root), "--plan", str(plan_file), "--out", str(out))
    assert refused.returncode == 2
    assert "reachability" in refused.stderr and "--force" in refused.stderr and "sj-hj1" in refused.stderr
    assert not (out / "network").exists()
    forced = _run("network.render", "--inventory", str(root), "--plan", str(plan_file), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "network" / "sj-hj1.cfg").exists()


def test_verify_passes_the_sample_city_on_the_command_line(demo, plan, tmp_path):
    plan_file = save_plan(plan, tmp_path / "plan.yaml")
    run = _run("network.verify", "--plan", str(plan_file))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "全部通过" in run.stdout


def test_the_return_routes_are_rendered_in_each_platforms_syntax(demo, plan):
    from network.render import render

    out = render(demo, plan, ["sj-hj1", "sj-hx2", "gaj-jr1"])
    hj1, hx2 = out["sj-hj1"].lines, out["sj-hx2"].lines
    tag = "description jiyue-return"  # jiyue's mark on its return routes (network/scope.yaml return_routes)
    assert f"ip route-static vpn-instance EGOV-EXTRANET 10.80.8.0 255.255.255.0 10.83.255.18 {tag}" in hj1
    assert f"ipv6 route-static vpn-instance EGOV-EXTRANET 2001:DB8:8000:300:: 64 2001:DB8:8000:FF01::2 {tag}" in hj1
    assert f"ip route-static vpn-instance EGOV-EXTRANET 10.80.8.0 24 10.83.255.4 {tag}" in hx2  # Comware: mask length
    assert not [line for line in out["gaj-jr1"].lines if line.startswith("ip route") and " 0.0.0.0 " not in line]
