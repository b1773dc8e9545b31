"""City scale without starting a city: the address plan and limits of a 1,000-host lab, and the shared pieces a
thousand connections lean on (the indexed known_hosts, the probe output's split), against what they replace."""

from __future__ import annotations

import ipaddress
import re

import paramiko
import pytest

import inventory
from audit.probes import Context, Script
from bench.fleet import addresses, host_inventory
from jiyue import ssh
from lab.bastion import BASTION_ADDRESS, BastionLab
from lab.hosts import BRIDGE_PORTS, Lab, LabError, neighbour_thresholds
from lab.keys import ed25519_keypair


def test_a_thousand_bench_hosts_fit_the_bench_networks_and_one_more_than_fits_is_refused():
    for network in ("198.19.100.0/22", "198.19.160.0/22", "198.19.168.0/22", "198.19.108.0/22"):
        net = ipaddress.ip_network(network)
        plan = addresses(network, 1000)
        assert len(set(plan)) == 1000
        assert all(ipaddress.ip_address(a) in net for a in plan)
        # clear of the gateway and control node's first addresses, the bastion's inside address and the broadcast
        assert ipaddress.ip_address(plan[0]) > net[9] and ipaddress.ip_address(plan[-1]) < net[-2]
    with pytest.raises(ValueError, match="do not fit"):
        addresses("198.19.100.0/22", 1013)


def test_the_neighbour_table_fits_every_host_of_a_thousand_with_room():
    first, soft, hard = (neighbour_thresholds(1000)[i] for i in (1, 2, 3))
    assert 2 * 1000 < first < soft < hard  # the host's entry for the control node and the control node's for it


def test_a_lab_larger_than_one_bridge_is_refused_before_anything_starts(tmp_path):
    lab = Lab(tmp_path / "lab", tag="zq")
    inv = inventory.load(host_inventory(tmp_path, lab, BRIDGE_PORTS + 1, "198.19.176.0/21", "z"))
    try:
        with pytest.raises(LabError, match=f"at most {BRIDGE_PORTS} hosts"):
            lab.up(inv)
    except LabError as exc:  # not root here: preflight says so first
        pytest.skip(str(exc))
    assert not (tmp_path / "lab" / "hosts").exists()


def test_a_bastion_lab_on_other_networks_derives_its_addresses(tmp_path):
    assert BastionLab(tmp_path / "a").address == BASTION_ADDRESS
    other = BastionLab(tmp_path / "b", tag="jq", source=ipaddress.ip_network("198.19.160.0/22"),
                       ops=ipaddress.ip_network("198.19.164.0/24"))
    assert (other.control_address, other.address, other.inside) == ("198.19.164.1", "198.19.164.2", "198.19.163.254")
    inv_dir = host_inventory(tmp_path, other.hosts, 3, "198.19.160.0/22", "q", jump=(other.address, other.known_hosts))
    inv = inventory.load(inv_dir)
    assert [t.address for t in ssh.Target.of(inv, "q000").jumps] == ["198.19.164.2"]


def test_indexed_known_hosts_find_what_paramiko_finds(tmp_path):
    keys = [ed25519_keypair(f"h{i}")[1].split()[:2] for i in range(4)]
    lines = [f"h{i:03d},198.19.1.{i} {keys[i % 3][0]} {keys[i % 3][1]}" for i in range(1000)]
    hashed = paramiko.HostKeys.hash_host("[198.19.9.9]:2222")
    lines += ["# a comment", "", f"{hashed} {keys[3][0]} {keys[3][1]}", "garbage line",
              f"h001 {keys[3][0]} {keys[3][1]}"]  # a second key of one type for h001: the first line wins
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    theirs = paramiko.HostKeys(str(path))
    for address, port in (("198.19.1.7", 22), ("h001", 22), ("h999", 22), ("198.19.9.9", 2222), ("nowhere", 22)):
        expected = {t: k.get_base64() for t, k in (theirs.lookup(ssh.host_key_name(address, port)) or {}).items()}
        assert {t: k.get_base64() for t, k in ssh.host_keys(path, address, port).items()} == expected
    assert ssh.known_host_lines(path, "198.19.9.9", 2222) == [f"[198.19.9.9]:2222 {keys[3][0]} {keys[3][1]}"]


def test_probe_sections_split_as_the_per_token_pattern_did():
    script = Script("feedc0de12345678", Context())
    marker = "<<<feedc0de12345678:"
    text = (f"noise{marker}clock>>>\n1 +0800\n{marker}not a name>>>\nstill clock\n{marker}host_os>>>\nx\n"
            f"{marker}clock>>>\n2 +0800\n{marker}")
    old = dict(re.findall(rf"<<<{script.token}:(\w+)>>>\n(.*?)(?=<<<{script.token}:\w+>>>\n|\Z)", text, re.S))
    assert script.sections(text) == old == {"clock": f"2 +0800\n{marker}", "host_os": "x\n"}
