"""The push engine against simulated devices: the lab's five platforms (tests/lab/netsim) and
fake-switches, a Cisco simulator nobody here wrote.

Every change is checked on the device itself: after a push the running configuration holds every
intended line, after a failure it equals the backup taken before the change (compared with
hier_config, both ways), and a second push finds nothing to do.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inventory.model import Device, DeviceCredentials, DeviceRole, Interface, Platform, SecretRef
from jiyue.runner import Result, run_staged
from network.diff import diff, restore_commands, same_config, scope_key
from network.push import APPLIED, DRY_RUN, FAILED, NOT_ATTEMPTED, REFUSED, UNCHANGED, Options, Pusher
from network.session import DeviceError, DeviceSession, DeviceTarget, cli

REPO = Path(__file__).resolve().parent.parent


# --- pure parts: scope, diff, restore, staging --------------------------------------------------------------

VRP_RUNNING = """\
#
sysname sj-hj1
#
ip vpn-instance OTHER
 ipv4-family
  route-distinguisher 1:1
#
acl number 3001
 rule 5 permit source 10.9.9.0 0.0.0.255
 rule 10 permit source 10.80.0.0 0.0.0.255
#
acl number 2000
 rule 5 permit source 192.0.2.0 0.0.0.255
#
interface Vlanif110
 description old text
 ip address 10.9.9.1 255.255.255.0
 arp-proxy enable
#
interface GigabitEthernet0/0/2
 port link-type access
#
ip route-static vpn-instance EGOV-EXTRANET 0.0.0.0 0 10.80.0.200
ip route-static vpn-instance OTHER 0.0.0.0 0 10.1.1.1
ip route-static 0.0.0.0 0 192.0.2.1
#
return
"""
VRP_INTENDED = """\
acl number 3001
 rule 10 permit source 10.80.0.0 0.0.0.255
 rule 65000 deny ip
ip vpn-instance EGOV-EXTRANET
 ipv4-family
  route-distinguisher 65010:100
interface Vlanif110
 description szfb extranet
 ip binding vpn-instance EGOV-EXTRANET
 ip address 10.80.0.1 255.255.255.0
ip route-static vpn-instance EGOV-EXTRANET 0.0.0.0 0 10.80.0.254
"""


def test_diff_replaces_managed_lines_and_never_negates_unrelated_ones():
    d = diff("sj-hj1", "huawei_vrp", cli("huawei_vrp").config_text(VRP_RUNNING), VRP_INTENDED)
    sent = d.remediation
    assert "undo ip address 10.9.9.1 255.255.255.0" in sent  # same key (ip address) under a managed interface
    assert "undo ip route-static vpn-instance EGOV-EXTRANET 0.0.0.0 0 10.80.0.200" in sent  # the VPN's old default
    assert "ip route-static vpn-instance EGOV-EXTRANET 0.0.0.0 0 10.80.0.254" in sent
    # an ACL jiyue renders is jiyue's whole: a rule it no longer renders goes (in the CLI's short form)
    assert "undo rule 5" in sent and "rule 65000 deny ip" in sent
    assert "rule 10 permit source 10.80.0.0 0.0.0.255" not in sent  # already there
    unrelated = ("arp-proxy", "OTHER", "192.0.2.1", "GigabitEthernet0/0/2", "sysname", "acl number 2000")
    assert not [line for line in sent if any(u in line for u in unrelated)], sent
    # sections are entered and left with the platform's exit, top-level removals come last
    assert sent[sent.index("interface Vlanif110") + 1:].index("quit") >= 1
    assert sent[0].startswith("acl number 3001") and sent[-1].startswith("undo ip route-static")


def test_scope_keys_come_from_the_data_file():
    assert scope_key("ip address 10.1.1.1 255.255.255.0") == "ip address"
    assert scope_key("ipv6 route-static vpn-instance X :: 0 2001:db8::1") == "ipv6 route-static vpn-instance X :: 0"
    assert scope_key("stp edged-port enable") == "stp edged-port enable"


def test_restore_makes_a_changed_config_equal_its_backup():
    backup = cli("huawei_vrp").config_text(VRP_RUNNING)
    d = diff("sj-hj1", "huawei_vrp", backup, VRP_INTENDED)
    assert not same_config("huawei_vrp", backup, VRP_INTENDED)
    # a device that took half of the change: the restore is computed from what it has now
    half = backup.replace(" ip address 10.9.9.1 255.255.255.0\n", " ip address 10.80.0.1 255.255.255.0\n")
    lines = restore_commands("huawei_vrp", half, backup)
    assert "undo ip address 10.80.0.1 255.255.255.0" in lines and "ip address 10.9.9.1 255.255.255.0" in lines
    assert d.rollback and not d.empty


def test_comware_global_commands_parse_as_top_level():
    raw = "#\n version 7.1.064\n#\n sysname dx-hj1\n ssh server enable\n#\ninterface Vlan-interface300\n" \
          " ip address 10.81.0.1 255.255.255.0\n#\n info-center loghost 10.0.0.1\n#\nreturn\n"
    text = cli("hp_comware").config_text(raw)
    assert text.splitlines() == ["version 7.1.064", "sysname dx-hj1", "ssh server enable",
                                 "interface Vlan-interface300", " ip address 10.81.0.1 255.255.255.0",
                                 "info-center loghost 10.0.0.1"]


def test_staged_run_stops_after_a_batch_over_the_threshold_like_ansible():
    failing = {"b1", "c1"}

    def task(name: str) -> str:
        if name in failing:
            raise DeviceError("rejected", f"{name} refused a line")
        return name

    batches = [["a1"], ["b1", "b2", "b3", "b4"], ["c1", "c2"], ["d1"]]
    # 1 of 4 failed = 25%: over 20 -> stop; the later batches are not attempted
    staged = run_staged(batches, task, max_fail_percent=20, progress=False)
    assert [r.target for r in staged.results] == ["a1", "b1", "b2", "b3", "b4"]
    assert staged.not_attempted == ["c1", "c2", "d1"] and staged.stopped_after == 1
    # 25% is not *more than* 25: carry on; c1 then fails 50% of its batch: stop before d1
    staged = run_staged(batches, task, max_fail_percent=25, progress=False)
    assert staged.not_attempted == ["d1"] and staged.stopped_after == 2
    # no threshold: everything is attempted
    assert run_staged(batches, task, progress=False).not_attempted == []
    # what counts as a failure is the caller's (a refusal is not a failed change)
    staged = run_staged(batches, task, max_fail_percent=0, progress=False,
                        counts_as_failure=lambda r: not r.ok and r.target != "b1")
    assert staged.stopped_after == 2
    assert isinstance(staged.results[0], Result)


def test_batches_canary_by_number_group_and_percent(demo):
    names = list(demo.devices)
    p = Pusher(demo, {}, Options(canary="2", batch_size="50%"))
    batches = p.batches(names)
    assert batches[0] == names[:2] and sum(map(len, batches)) == len(names)
    assert all(len(b) <= -(-(len(names) - 2) // 2) for b in batches[1:])
    p = Pusher(demo, {}, Options(canary="role_core", batch_size="3"))
    assert set(p.batches(names)[0]) == {n for n, d in demo.devices.items() if d.role == DeviceRole.core}
    with pytest.raises(ValueError, match="canary"):
        Pusher(demo, {}, Options(canary="no-such-device")).batches(names)


def test_golden_device_and_golden_interface_are_refused_before_any_session(demo):
    pusher = Pusher(demo, {"swj-jr1": ["interface Vlanif150", " description x"],
                           "rsj-jr1": ["interface GigabitEthernet 0/2", " description x"]},
                    Options(apply=True, progress=False))
    run = pusher.run(["swj-jr1", "rsj-jr1"])
    by = {o.device: o for o in run.outcomes}
    assert by["swj-jr1"].status == REFUSED and "金税" in by["swj-jr1"].reason
    assert by["rsj-jr1"].status == REFUSED and "GigabitEthernet0/2" in by["rsj-jr1"].reason
    assert not any(o.backup for o in run.outcomes)  # refused before connecting: nothing read, nothing saved


# --- fake-switches: a Cisco simulator nobody here wrote -----------------------------------------------------

FSW_PASSWORD_ENV = "JIYUE_TEST_FSW_PASSWORD"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fake_switch(tmp_path_factory):
    """fake-switches' cisco_generic on a free local port; its host key is recorded by TOFU in a test file."""
    pytest.importorskip("fake_switches", reason="fake-switches is installed by bin/jiyue setup")
    port = _free_port()
    log = tmp_path_factory.mktemp("fsw") / "fake-switches.log"
    code = "import sys; from fake_switches.cmd.main import main; sys.exit(main())"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", code, "--model", "cisco_generic", "--hostname", "fsw1",
                                 "--username", "netops", "--password", "fsw-secret", "--listen-host", "127.0.0.1",
                                 "--listen-port", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"fake-switches did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    os.environ[FSW_PASSWORD_ENV] = "fsw-secret"
    yield port
    proc.terminate()
    proc.wait(10)


def _fsw_inventory(demo, port: int, known_hosts: Path):
    device = Device(name="fsw1", platform=Platform.cisco_ios, address="127.0.0.1", port=port, site="test",
                    role=DeviceRole.access, interfaces=[Interface(name="FastEthernet0/4", golden_network="金保")],
                    credentials=DeviceCredentials(username="netops", password=SecretRef(env=FSW_PASSWORD_ENV)))
    ssh = demo.defaults.ssh.model_copy(update={"known_hosts": str(known_hosts)})
    return demo.model_copy(update={"devices": {"fsw1": device},
                                   "defaults": demo.defaults.model_copy(update={"ssh": ssh})})


FSW_CHANGE = ["vlan 130", " name gaj-extranet", "interface FastEthernet0/2", " description gaj office floor 3",
              " switchport access vlan 130", " switchport mode access"]


def test_fake_switches_push_with_the_same_engine(demo, fake_switch, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    inv = _fsw_inventory(demo, fake_switch, known_hosts)
    target = DeviceTarget.of(inv, "fsw1")
    # unknown host key: refused; trust on first use records it; after that the key is checked
    with pytest.raises(DeviceError) as refused:
        DeviceSession(target).open()
    assert refused.value.kind == "host_key"
    with DeviceSession(target, trust_on_first_use=True) as s:
        before = s.config_text()
    assert known_hosts.read_text().startswith(f"[127.0.0.1]:{fake_switch} ")
    assert "fsw-secret" not in known_hosts.read_text()

    backups = tmp_path / "backups"
    dry = Pusher(inv, {"fsw1": FSW_CHANGE}, Options(backups=backups, progress=False)).run(["fsw1"])
    assert dry.outcomes[0].status == DRY_RUN and "vlan 130" in dry.outcomes[0].diff and not backups.exists()
    with DeviceSession(target) as s:
        assert same_config("cisco_ios", s.config_text(), before)  # the dry run changed nothing

    run = Pusher(inv, {"fsw1": FSW_CHANGE}, Options(apply=True, backups=backups, progress=False)).run(["fsw1"])
    o = run.outcomes[0]
    assert o.status == APPLIED, o
    # fake-switches takes `configure terminal revert timer` as plain `configure terminal` and knows no
    # `configure confirm`: detected, and the engine said so; it has no `end` either (left with `exit`)
    assert "no revert timer" in o.safety and o.notes
    assert Path(o.backup).read_text() and same_config("cisco_ios", cli("cisco_ios").config_text(
        Path(o.backup).read_text()), before)
    with DeviceSession(target) as s:
        after = s.config_text()
        assert not s.in_config_mode()
    assert " description gaj office floor 3" in after and "vlan 130" in after

    again = Pusher(inv, {"fsw1": FSW_CHANGE}, Options(apply=True, backups=backups, progress=False)).run(["fsw1"])
    assert again.outcomes[0].status == UNCHANGED and again.outcomes[0].lines == 0

    # a rejected line: the device is rolled back to its backup (restored line by line: no vendor undo here)
    bad = [*FSW_CHANGE, "interface FastEthernet0/3", " description will be undone", " bogus-command here"]
    failed = Pusher(inv, {"fsw1": bad}, Options(apply=True, backups=backups, progress=False)).run(["fsw1"])
    f = failed.outcomes[0]
    assert f.status == FAILED and f.kind == "rejected" and "bogus-command here" in f.reason
    assert "verified: the device equals its backup" in f.rollback
    with DeviceSession(target) as s:
        assert same_config("cisco_ios", s.config_text(), after)

    # a golden-network interface on this device is refused before anything is sent
    golden = [*FSW_CHANGE, "interface FastEthernet0/4", " description not ours"]
    refused_run = Pusher(inv, {"fsw1": golden}, Options(apply=True, backups=backups, progress=False)).run(["fsw1"])
    assert refused_run.outcomes[0].status == REFUSED
    assert NOT_ATTEMPTED not in refused_run.counts() or refused_run.counts()[NOT_ATTEMPTED] == 0
