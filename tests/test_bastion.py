"""Jump hosts (堡垒机): the inventory's jump host settings, and collection through a real bastion.

The bastion lab (lab/bastion.py) puts two source hosts behind a bastion namespace with forwarding off; the
test session's namespace (the control node) has no route to them, so whatever reaches them went through the
bastion's sshd. One lab for the module.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import inventory
from audit.collect import CollectOptions, collect, collect_host
from inventory import InventoryError
from jiyue import ssh
from lab.bastion import BASTION_ADDRESS, HOSTS

REPO = Path(__file__).resolve().parents[1]
FAST = CollectOptions(sample_seconds=0, timeout=10)


def _by_host(results):
    return {r.target: r for r in results}


# --- through the bastion ------------------------------------------------------------------------


def test_collection_goes_through_the_bastion_on_one_shared_connection(bastion, behind):
    _, results = collect(behind, sorted(behind.hosts), FAST, progress=False)
    assert all(r.ok for r in results), [(r.target, r.error) for r in results]
    assert sorted(r.target for r in results) == sorted(HOSTS)
    pool = ssh.JumpPool()
    try:
        for host in sorted(behind.hosts):
            assert "clock" in collect_host(behind, host, FAST, pool)
        assert pool.connections() == 1  # one transport to the bastion carried both targets
    finally:
        pool.close()


def test_a_pool_connection_carries_at_most_its_bound(bastion, behind):
    pool = ssh.JumpPool(per_connection=1)
    try:
        targets = [ssh.Target.of(behind, h) for h in sorted(behind.hosts)]
        with pool.channel(targets[0], 10, False), pool.channel(targets[1], 10, False):
            assert pool.connections() == 2  # the first connection is full: a second one opens
        with pool.channel(targets[0], 10, False):
            assert pool.connections() == 2  # a freed connection is reused
    finally:
        pool.close()


def test_without_the_jump_host_the_same_hosts_are_unreachable(bastion, tmp_path):
    """No leftover route: the hosts that answered through the bastion do not answer directly."""
    direct = inventory.load(bastion.write_inventory(tmp_path / "inv", jump=False))
    _, results = collect(direct, sorted(direct.hosts), FAST, progress=False)
    assert [r.error_kind for r in results] == ["unreachable"] * len(HOSTS), [(r.target, r.error) for r in results]


def test_jump_none_overrides_the_inventory_for_a_run(bastion, behind):
    _, results = collect(behind, sorted(behind.hosts), dataclasses.replace(FAST, jump="none"), progress=False)
    assert all(r.error_kind == "unreachable" for r in results)


def test_a_chain_of_two_jump_hosts(bastion, tmp_path):
    """Through the bastion to (the same) bastion, then to the host: two transports, two host key checks."""
    root = bastion.write_inventory(tmp_path / "inv")
    city = yaml.safe_load((root / "city.yaml").read_text())
    city["jump_hosts"].append({"name": "inner", "address": BASTION_ADDRESS, "jump": "bastion",
                               "ssh": {"known_hosts": str(bastion.known_hosts)}})
    city["defaults"]["jump"] = "inner"
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    inv = inventory.load(root)
    target = ssh.Target.of(inv, sorted(inv.hosts)[0])
    assert [j.name for j in target.jumps] == ["bastion", "inner"]
    _, results = collect(inv, sorted(inv.hosts), FAST, progress=False)
    assert all(r.ok for r in results), [(r.target, r.error) for r in results]


def test_wrong_bastion_host_key_is_refused(bastion, behind, tmp_path):
    source = sorted(behind.hosts)[0]
    other = (bastion.hosts.host_dir(source) / "sshd/ssh_host_ed25519_key.pub").read_text().split()[:2]
    forged = tmp_path / "known_hosts"
    forged.write_text(f"{BASTION_ADDRESS} {other[0]} {other[1]}\n")  # the bastion's address, a source host's key
    target = ssh.Target.of(behind, source)
    target = dataclasses.replace(target, jumps=(dataclasses.replace(target.jumps[0], known_hosts=forged),))
    for tofu in (False, True):
        with pytest.raises(ssh.SSHError) as info:
            ssh.run(target, "true", timeout=10, trust_on_first_use=tofu)
        assert info.value.kind == "host_key" and "CHANGED" in str(info.value) and "jump host bastion" in str(info.value)


def test_unknown_bastion_key_needs_trust_on_first_use(bastion, behind, tmp_path):
    source = sorted(behind.hosts)[0]
    empty = tmp_path / "known_hosts"
    target = ssh.Target.of(behind, source)
    target = dataclasses.replace(target, jumps=(dataclasses.replace(target.jumps[0], known_hosts=empty),))
    with pytest.raises(ssh.SSHError) as info:
        ssh.run(target, "true", timeout=10)
    assert info.value.kind == "host_key" and "jump host bastion" in str(info.value)
    assert ssh.run(target, "hostname", timeout=10, trust_on_first_use=True).stdout.decode().strip() == source
    assert BASTION_ADDRESS in empty.read_text()  # the bastion's key recorded, in the bastion's known_hosts


def test_the_cli_takes_jump(bastion, behind, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "invoke", "audit.collect", "--inventory", str(behind.root), "--sample", "0",
            "--timeout", "10", "--store", f"sqlite:///{tmp_path / 'h.sqlite'}"]
    ok = subprocess.run([*base, "--jump", "bastion"], capture_output=True, text=True, cwd=REPO, env=env)
    assert ok.returncode == 0, ok.stderr
    direct = subprocess.run([*base, "--jump", "none"], capture_output=True, text=True, cwd=REPO, env=env)
    assert direct.returncode == 1
    bad = subprocess.run([*base, "--jump", "nosuch"], capture_output=True, text=True, cwd=REPO, env=env)
    assert bad.returncode == 2 and "nosuch" in bad.stderr and "bastion" in bad.stderr


def test_a_bastion_without_tcp_forwarding_says_so(bastion, behind):
    bastion.set_forwarding(False)
    try:
        _, results = collect(behind, sorted(behind.hosts), FAST, progress=False)
    finally:
        bastion.set_forwarding(True)
    for r in results:
        assert not r.ok
        assert "the jump host bastion" in r.error and "refused TCP forwarding" in r.error
        assert "AllowTcpForwarding" in r.error and "direct-tcpip" in r.error


# --- the inventory ------------------------------------------------------------------------------

CITY = """\
defaults:
  jump: {defaults}
jump_hosts:
  - {{name: city, address: 198.18.0.1}}
  - {{name: dept, address: 198.18.0.2, ssh: {{user: ops, port: 2222, key: keys/ops, known_hosts: kh}}}}
  - {{name: net, address: 198.18.0.3, jump: city}}
departments:
  - {{code: d1, name: 一局, level: city, jump: {dept}}}
subnets:
  - {{name: s1, kind: source, prefix: 198.18.1.0/24, gateway: 198.18.1.1, jump: {subnet}}}
  - {{name: s2, kind: source, prefix: 198.18.2.0/24, gateway: 198.18.2.1}}
hosts:
  - {{name: h1, address: 198.18.1.11, os_family: debian, os: Debian 12, role: app, jump: {host}}}
  - {{name: h2, address: 198.18.2.11, os_family: debian, os: Debian 12, role: app}}
systems:
  - id: sys1
    name: 系统
    department: d1
    function: 测试
    category: internal_office
    scope: {{user_units: [一局], declared_users: 1}}
    frequency: daily
    approval: {{department: 市政府, date: 2020-01-01}}
    funding: {{source: 财政, amount: 1}}
    build_year: 2018
    vendor: 某公司
    classification: non_classified
    protection: {{level: 1}}
    zone: intranet
    hosts: [h1]
"""


def _city(tmp_path: Path, defaults="city", dept="null", subnet="null", host="null", extra="") -> Path:
    root = tmp_path / "inv"
    root.mkdir(exist_ok=True)
    (root / "city.yaml").write_text(CITY.format(defaults=defaults, dept=dept, subnet=subnet, host=host) + extra)
    return root


def _chain(inv, host: str, override=None) -> list[str]:
    return [t.address for t in inv.jump_chain(inv.hosts[host], override)]


def test_the_most_specific_jump_setting_wins(tmp_path):
    inv = inventory.load(_city(tmp_path))
    assert _chain(inv, "h1") == ["198.18.0.1"]  # defaults
    inv = inventory.load(_city(tmp_path, dept="dept"))
    assert _chain(inv, "h1") == ["198.18.0.2"] and _chain(inv, "h2") == ["198.18.0.1"]  # h2 has no department
    dept = inv.jump_chain(inv.hosts["h1"])[0]
    assert (dept.user, dept.port, dept.key, dept.known_hosts) == ("ops", 2222, inv.root / "keys/ops", inv.root / "kh")
    inv = inventory.load(_city(tmp_path, dept="dept", subnet="net"))
    assert _chain(inv, "h1") == ["198.18.0.1", "198.18.0.3"]  # the subnet's, a chain of two, outermost first
    inv = inventory.load(_city(tmp_path, dept="dept", subnet="net", host="none"))
    assert _chain(inv, "h1") == [] and _chain(inv, "h1", "dept") == ["198.18.0.2"] and _chain(inv, "h2", "none") == []


@pytest.mark.parametrize(("kwargs", "field", "message"), [
    ({"host": "nosuch"}, "hosts[h1].jump", "unknown jump host 'nosuch'"),
    ({"defaults": "nosuch"}, "defaults.jump", "unknown jump host 'nosuch'"),
    ({"subnet": "nosuch"}, "subnets[s1].jump", "unknown jump host 'nosuch'"),
    ({"extra": "  - {name: far, address: 198.18.0.4, jump: net}\n"}, "jump_hosts[far].jump", "at most 2"),
])
def test_bad_jump_settings_are_named_by_file_line_and_field(tmp_path, kwargs, field, message):
    extra = kwargs.pop("extra", "")
    root = _city(tmp_path, **kwargs)
    if extra:  # a third jump host, in front of the chain net → city
        text = (root / "city.yaml").read_text().replace("departments:\n", extra + "departments:\n", 1)
        (root / "city.yaml").write_text(text)
    with pytest.raises(InventoryError) as info:
        inventory.load(root)
    [problem] = [p for p in info.value.problems if "jump" in p.path]
    assert problem.path == field and message in problem.message
    lines = (root / "city.yaml").read_text().splitlines()
    assert "nosuch" in lines[problem.line - 1] or "far" in lines[problem.line - 1]


def test_a_jump_loop_is_refused(tmp_path):
    root = _city(tmp_path)
    text = (root / "city.yaml").read_text().replace("{name: city, address: 198.18.0.1}",
                                                    "{name: city, address: 198.18.0.1, jump: net}")
    (root / "city.yaml").write_text(text)
    with pytest.raises(InventoryError) as info:
        inventory.load(root)
    assert any("loops back" in p.message for p in info.value.problems)


def test_baseline_check_goes_through_the_bastion(bastion, behind):
    from audit.baseline import service
    from audit.baseline.model import CheckOptions

    hosts = sorted(behind.hosts)
    run = service.check(behind, hosts, level=3, options=CheckOptions(timeout=20), progress=False)
    assert len(run.checked()) == len(hosts) and not run.not_checked()
    run = service.check(behind, hosts, level=3, options=CheckOptions(timeout=10, jump="none"), progress=False)
    assert len(run.not_checked()) == len(hosts)


def test_concurrent_targets_share_the_first_connection(bastion, behind):
    from concurrent.futures import ThreadPoolExecutor

    pool = ssh.JumpPool()
    try:
        with ThreadPoolExecutor(len(behind.hosts)) as workers:
            facts = list(workers.map(lambda h: collect_host(behind, h, FAST, pool), sorted(behind.hosts)))
        assert all("clock" in f for f in facts)
        assert pool.connections() == 1  # the second target waited for the first's connection, then shared it
    finally:
        pool.close()


def test_a_refused_bastion_fails_every_host_behind_it_with_the_reason(bastion, tmp_path):
    root = bastion.write_inventory(tmp_path / "inv")
    city = yaml.safe_load((root / "city.yaml").read_text())
    forged = tmp_path / "forged_known_hosts"
    source = sorted(HOSTS)[0]
    keytype, key = (bastion.hosts.host_dir(source) / "sshd/ssh_host_ed25519_key.pub").read_text().split()[:2]
    forged.write_text(f"{BASTION_ADDRESS} {keytype} {key}\n")
    city["jump_hosts"][0]["ssh"]["known_hosts"] = str(forged)
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    inv = inventory.load(root)
    _, results = collect(inv, sorted(inv.hosts), FAST, progress=False)
    assert [r.error_kind for r in results] == ["host_key"] * len(HOSTS)
    assert all("jump host bastion" in r.error and "CHANGED" in r.error for r in results)
