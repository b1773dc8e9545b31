"""The push engine against simulated devices: the lab's five platforms (lab/netsim) and
fake-switches, a Cisco simulator nobody here wrote.

Every change is checked on the device itself: after a push the running configuration holds every
intended line, after a failure it equals the backup taken before the change (compared with
hier_config, both ways), and a second push finds nothing to do.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path

import pytest
from invoke import Exit

from inventory.model import Device, DeviceCredentials, DeviceRole, Interface, Platform, SecretRef
from jiyue.cli import PROBLEMS
from jiyue.device import DeviceError, DeviceSession, DeviceTarget
from jiyue.platforms import cli
from jiyue.runner import NOT_ATTEMPTED as RUNNER_NOT_ATTEMPTED
from jiyue.runner import Changed, Result, StoreRecorder, run_staged
from jiyue.store import NETWORK_PUSH, Store
from lab.netsim import DeviceSpec
from lab.netsim.fakeswitches import start_fake_switch
from lab.netsim.lab import netsim, start_devices
from network.diff import diff, missing_lines, restore_commands, same_config, scope_key
from network.plan import build_plan
from network.push import (
    APPLIED,
    AS_BEFORE,
    CHANGED,
    DRY_RUN,
    FAILED,
    NOT_ATTEMPTED,
    REFUSED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    UNCHANGED,
    Pusher,
    PushOptions,
    differing_lines,
)
from network.render import render, select_devices
from network.report import write_reports
from network.service import restore
from network.tasks import HALF_APPLIED, exit_for

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
 description JY-EXT-IN jiyue
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
 description JY-EXT-IN jiyue
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
    # same key (the primary ip address) under a managed interface: replaced; here by the VPN binding itself,
    # which removes the old address (so no `undo`), the planned one sent after it
    assert "undo ip address 10.9.9.1 255.255.255.0" not in sent
    assert sent.index("ip binding vpn-instance EGOV-EXTRANET") < sent.index("ip address 10.80.0.1 255.255.255.0")
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


def test_observers_see_every_target_and_the_not_attempted_ones_and_results_say_what_changed():
    class Seen:  # an observer implements only what it needs
        def __init__(self) -> None:
            self.events: list[tuple] = []

        def run_started(self, label, targets):
            self.events.append(("run", label, list(targets)))

        def target_finished(self, result):
            self.events.append(("done", result.target, result.changed, result.diff))

        def run_finished(self, results):
            self.events.append(("end", [(r.target, r.error_kind) for r in results]))

    def task(name: str):
        if name == "b1":
            raise DeviceError("rejected", "b1 refused a line")
        return Changed(name, name == "a1", "+ a line" if name == "a1" else "")

    seen = Seen()
    batches = [["a1"], ["b1", "b2"], ["c1"]]
    staged = run_staged(batches, task, max_fail_percent=0, label="t", observers=[seen])
    assert seen.events[0] == ("run", "t", ["a1", "b1", "b2", "c1"])
    done = {e[1]: e[2:] for e in seen.events if e[0] == "done"}
    assert done == {"a1": (True, "+ a line"), "b1": (False, ""), "b2": (False, "")}
    assert seen.events[-1] == ("end", [("a1", None), ("b1", "rejected"), ("b2", None), ("c1", RUNNER_NOT_ATTEMPTED)])
    assert staged.results[0].changed and not staged.results[2].changed and staged.results[1].failed
    assert [r.target for r in staged.not_attempted_results()] == ["c1"]


def test_batches_canary_by_number_group_and_percent(demo):
    names = list(demo.devices)
    p = Pusher(demo, {}, PushOptions(canary="2", batch_size="50%"))
    batches = p.batches(names)
    assert batches[0] == names[:2] and sum(map(len, batches)) == len(names)
    assert all(len(b) <= -(-(len(names) - 2) // 2) for b in batches[1:])
    p = Pusher(demo, {}, PushOptions(canary="role_core", batch_size="3"))
    assert set(p.batches(names)[0]) == {n for n, d in demo.devices.items() if d.role == DeviceRole.core}
    with pytest.raises(ValueError, match="canary"):
        Pusher(demo, {}, PushOptions(canary="no-such-device")).batches(names)


def test_golden_device_and_golden_interface_are_refused_before_any_session(demo):
    pusher = Pusher(demo, {"swj-jr1": ["interface Vlanif150", " description x"],
                           "rsj-jr1": ["interface GigabitEthernet 0/2", " description x"]},
                    PushOptions(apply=True, progress=False))
    run = pusher.run(["swj-jr1", "rsj-jr1"])
    by = {o.device: o for o in run.outcomes}
    assert by["swj-jr1"].status == REFUSED and "金税" in by["swj-jr1"].reason
    assert by["rsj-jr1"].status == REFUSED and "GigabitEthernet0/2" in by["rsj-jr1"].reason
    assert not any(o.backup for o in run.outcomes)  # refused before connecting: nothing read, nothing saved


# --- the sample city on the lab: plan, render, diff, push on all five platforms ------------------------------


@pytest.fixture(scope="module")
def city(lab, demo):
    """The sample city's rendered configs; the lab's devices are put back as they booted afterwards."""
    selection = select_devices(demo, None)
    rendered = render(demo, build_plan(demo), selection.names)
    yield {name: r.lines for name, r in rendered.items()}, selection, rendered
    sim = netsim(lab)
    for name in demo.devices:
        sim.reset(name)


def _config(sim, platform: str, name: str) -> str:
    return cli(platform).config_text(sim.running_config(name))


@pytest.mark.lab
def test_city_plan_render_diff_push_end_to_end_then_a_second_push_is_a_no_op(lab, demo, city, tmp_path):
    intended, selection, _ = city
    sim = netsim(lab)
    names = list(intended)
    assert {demo.devices[n].platform.value for n in names} == {p.value for p in Platform}
    assert "swj-jr1" in selection.skipped and "swj-jr1" not in names  # the golden device is left out
    before = {n: sim.running_config(n) for n in demo.devices}

    # dry run: every device read and diffed, nothing changed, nothing backed up
    dry = Pusher(demo, intended, PushOptions(backups=tmp_path / "b", progress=False)).run(names)
    assert {o.status for o in dry.outcomes} == {DRY_RUN}, [(o.device, o.kind, o.reason) for o in dry.outcomes]
    assert all(o.diff and o.lines for o in dry.outcomes)
    assert {n: sim.running_config(n) for n in demo.devices} == before and not (tmp_path / "b").exists()

    store = Store(f"sqlite:///{tmp_path / 'h.sqlite'}")
    pusher = Pusher(demo, intended, PushOptions(apply=True, backups=tmp_path / "b", progress=False))
    recorder = StoreRecorder(store, NETWORK_PUSH, inventory="demo", rows=pusher.store_rows)
    run = pusher.run(names, observers=[recorder])
    problems = [(o.device, o.kind, o.reason, o.rollback) for o in run.outcomes if o.status != APPLIED]
    assert not problems, problems
    for o in run.outcomes:
        platform = o.platform
        assert not missing_lines(platform, _config(sim, platform, o.device), intended[o.device]), o.device
        assert sim.startup_config(o.device).strip() == sim.running_config(o.device).strip()  # saved
        backup = cli(platform).config_text(Path(o.backup).read_text())
        assert same_config(platform, backup, cli(platform).config_text(before[o.device]))
        assert oct(Path(o.backup).stat().st_mode & 0o777) == "0o600"
        commit = cli(platform).commit
        assert o.safety == (f"{commit.arm_command()} → {commit.confirm}" if commit.method != "none"
                            else "apply, verify, restore the backup on failure"), (o.device, o.safety)
    for r in run.staged.results:  # every device changed, and its result says what changed
        assert r.ok and r.changed and r.diff.splitlines() == next(o.diff for o in run.outcomes if o.device == r.target)
    assert sim.running_config("swj-jr1") == before["swj-jr1"]  # the golden device untouched
    pending = [d for d in sim.status() if d.get("pending_rollback")]
    assert not pending, pending  # every trial / delay / revert timer was confirmed

    # results: the store and the reports
    run.run_id = recorder.run_id
    stored = store.run_results(recorder.run_id)
    assert sorted(r.target for r in stored) == sorted(names) and {r.status for r in stored} == {"ok"}
    assert all(r.data["status"] == APPLIED and r.data["backup"] for r in stored)
    paths = write_reports(run, tmp_path / "out", ("json", "html", "xlsx"), "en")
    data = json.loads((tmp_path / "out" / "network-push.json").read_text())
    assert data["counts"]["applied"] == len(names) and all(d["backup"] for d in data["devices"])
    assert data["run_id"] == recorder.run_id and data["inventory"] == str(demo.root)
    html = (tmp_path / "out" / "network-push.html").read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert all(p.exists() for p in paths)

    again = Pusher(demo, intended, PushOptions(apply=True, backups=tmp_path / "b2", progress=False)).run(names)
    assert {o.status for o in again.outcomes} == {UNCHANGED}, [(o.device, o.diff) for o in again.outcomes]
    assert not any(r.changed or r.diff for r in again.staged.results)
    assert not (tmp_path / "b2").exists()


@pytest.mark.lab
def test_golden_device_is_refused_at_push_and_left_untouched(lab, demo, city, tmp_path):
    sim = netsim(lab)
    before = sim.running_config("swj-jr1")
    run = Pusher(demo, {"swj-jr1": ["interface Vlanif150", " description changed"]},
                 PushOptions(apply=True, backups=tmp_path, progress=False)).run(["swj-jr1"])
    assert run.outcomes[0].status == REFUSED and "金税" in run.outcomes[0].reason
    assert sim.running_config("swj-jr1") == before


# --- failures: rejected lines, dropped sessions, the threshold ------------------------------------------------

TEST_DEVICES = {p: f"t-push-{i}" for i, p in enumerate(p.value for p in Platform)}


@pytest.fixture(scope="module")
def test_devices(lab, demo, city):
    """One fresh device per platform (198.18.30.221-225) and an inventory holding them; each change is the
    sample city's rendered config of a device of the same platform."""
    _, _, rendered = city
    password = secrets.token_urlsafe(12)
    os.environ["JIYUE_TEST_PUSH_PASSWORD"] = password
    specs = [DeviceSpec(name=name, platform=p, address=f"198.18.30.{221 + i}", password=password)
             for i, (p, name) in enumerate(TEST_DEVICES.items())]
    sim = start_devices(lab, specs)
    creds = DeviceCredentials(username="netops", password=SecretRef(env="JIYUE_TEST_PUSH_PASSWORD"))
    devices = {s.name: Device(name=s.name, platform=Platform(s.platform), address=s.address, site="test",
                              role=DeviceRole.access, credentials=creds) for s in specs}
    inv = demo.model_copy(update={"devices": devices})
    by_platform: dict[str, list[str]] = {}
    for name, r in rendered.items():  # the extranet features (VPN instance, ACLs, interfaces, routes)
        lines = []
        for section in r.sections:
            kids = [line for line, feature in section.children if feature != "baseline"]
            if section.feature != "baseline" or kids:
                lines += [section.header, *kids]
        by_platform.setdefault(demo.devices[name].platform.value, lines)
    changes = {TEST_DEVICES[p]: lines for p, lines in by_platform.items()}
    yield sim, inv, changes
    sim.stop(list(TEST_DEVICES.values()))


def _unchanged(sim, o, before) -> bool:
    return same_config(o.platform, _config(sim, o.platform, o.device), cli(o.platform).config_text(before[o.device]))


def _fresh(sim, names):
    for name in names:
        sim.reset(name)
        sim.set_time_scale(name, 1 / 60)


def _options(sim, tmp_path, **kw) -> PushOptions:
    return PushOptions(**{"apply": True, "backups": tmp_path / "b", "known_hosts": sim.known_hosts, "progress": False,
                          **kw})


@pytest.mark.lab
def test_a_rejected_line_rolls_every_platform_back_to_its_backup(test_devices, tmp_path):
    sim, inv, changes = test_devices
    names = list(changes)
    _fresh(sim, names)
    before = {n: sim.running_config(n) for n in names}
    for name in names:  # a line in the middle of the change is refused by the device
        sim.set_faults(name, reject=[r"^ ?ip(v6)? address "])
    run = Pusher(inv, changes, _options(sim, tmp_path)).run(names)
    for o in run.outcomes:
        assert o.status == FAILED and o.kind == "rejected" and "address" in o.reason, o
        assert o.rollback.endswith("verified: the device equals its backup"), o.rollback
        assert _unchanged(sim, o, before)
    assert not [d for d in sim.status() if d["name"] in names and d.get("pending_rollback")]
    for name in names:
        sim.clear_faults(name)


@pytest.mark.lab
def test_a_dropped_session_leaves_the_device_as_it_was(test_devices, tmp_path):
    sim, inv, changes = test_devices
    names = list(changes)
    _fresh(sim, names)
    before = {n: sim.running_config(n) for n in names}
    for name in names:
        sim.set_faults(name, drop_after=6)  # the session closes after six configuration lines, once
    stop = threading.Event()

    def heal() -> None:  # a dropped session is a transient fault: the device answers again afterwards
        dropped: set[str] = set()
        while not stop.is_set() and len(dropped) < len(names):
            for name in set(names) - dropped:
                if "dropping the session" in sim.command_log(name):
                    sim.clear_faults(name)
                    dropped.add(name)
            stop.wait(0.01)

    healer = threading.Thread(target=heal, daemon=True)
    healer.start()
    try:
        run = Pusher(inv, changes, _options(sim, tmp_path)).run(names)
    finally:
        stop.set()
        healer.join()
    for o in run.outcomes:
        assert o.status == FAILED and o.kind in ("session_lost", "timeout"), o
        assert "reconnected" in o.rollback and o.rollback.endswith("verified: the device equals its backup"), o
        assert _unchanged(sim, o, before)
    for name in names:
        sim.clear_faults(name)


@pytest.mark.lab
def test_failures_past_the_threshold_stop_the_rollout(test_devices, tmp_path):
    sim, inv, changes = test_devices
    names = list(changes)  # canary: the first; then batches of two
    _fresh(sim, names)
    before = {n: sim.running_config(n) for n in names}
    sim.set_faults(names[1], reject=[r"^ ?ip address "])  # batch 2 = names[1:3]: one of two fails = 50%
    run = Pusher(inv, changes, _options(sim, tmp_path, canary="1", batch_size="2", max_fail_percent=40)).run(names)
    status = {o.device: o.status for o in run.outcomes}
    assert status[names[0]] == APPLIED and status[names[1]] == FAILED and status[names[2]] == APPLIED
    assert [status[n] for n in names[3:]] == [NOT_ATTEMPTED] * len(names[3:])
    assert run.staged.stopped_after == 1 and not run.ok
    for n in names[3:]:  # never touched
        assert sim.running_config(n) == before[n]
    sim.clear_faults(names[1])


@pytest.mark.lab
def test_unreachable_and_refused_logins_are_reported_and_never_stop_the_others(test_devices, tmp_path):
    sim, inv, changes = test_devices
    names = list(changes)[:2]
    _fresh(sim, names)
    os.environ["JIYUE_TEST_PUSH_WRONG"] = "not-the-password"
    wrong = DeviceCredentials(username="netops", password=SecretRef(env="JIYUE_TEST_PUSH_WRONG"))
    extra = {"t-push-gone": Device(name="t-push-gone", platform=Platform.cisco_ios, address="198.18.30.239",
                                   site="test", role=DeviceRole.access, credentials=wrong),
             "t-push-wrong": inv.devices[names[0]].model_copy(update={"name": "t-push-wrong", "credentials": wrong})}
    inv2 = inv.model_copy(update={"devices": {**inv.devices, **extra}})
    intended = {**changes, "t-push-gone": changes[names[0]], "t-push-wrong": changes[names[0]]}
    run = Pusher(inv2, intended, _options(sim, tmp_path, connect_timeout=2)).run([*names, *extra])
    by = {o.device: o for o in run.outcomes}
    assert by["t-push-gone"].kind in ("unreachable", "timeout") and by["t-push-gone"].status == FAILED
    assert by["t-push-wrong"].kind == "auth_failed" and not by["t-push-wrong"].backup
    assert all(by[n].status == APPLIED for n in names)
    text = json.dumps([o.as_dict() for o in run.outcomes])
    assert "not-the-password" not in text and os.environ["JIYUE_TEST_PUSH_PASSWORD"] not in text


@pytest.mark.lab
def test_a_user_landing_in_user_exec_enables_with_the_secret(lab, test_devices, tmp_path):
    sim, inv, changes = test_devices
    password, secret = os.environ["JIYUE_TEST_PUSH_PASSWORD"], secrets.token_urlsafe(12)
    os.environ["JIYUE_TEST_PUSH_SECRET"] = secret
    spec = DeviceSpec(name="t-push-en", platform="ruijie_os", address="198.18.30.229", password=password,
                      secret=secret, privilege=1)
    start_devices(lab, [spec])
    creds = DeviceCredentials(username="netops", password=SecretRef(env="JIYUE_TEST_PUSH_PASSWORD"),
                              secret=SecretRef(env="JIYUE_TEST_PUSH_SECRET"))
    device = Device(name="t-push-en", platform=Platform.ruijie_os, address=spec.address, site="test",
                    role=DeviceRole.access, credentials=creds)
    inv2 = inv.model_copy(update={"devices": {**inv.devices, "t-push-en": device}})
    try:
        change = {"t-push-en": changes[TEST_DEVICES["ruijie_os"]]}
        run = Pusher(inv2, change, _options(sim, tmp_path)).run(["t-push-en"])
        assert run.outcomes[0].status == APPLIED, run.outcomes[0]
        assert secret not in json.dumps(run.outcomes[0].as_dict()) and secret not in sim.command_log("t-push-en")
    finally:
        sim.stop(["t-push-en"])


# --- issue 13: the true end state, a deadline per device, causes in the operator's words ----------------------
# netmiko's advice to its programmer, which an operator must never be shown as the cause of a failure
NETMIKO_ADVICE = ("cmd_verify", "Pattern not detected", "Things you might try", "read_timeout", "Timed-out reading")


def _operator_words(reason: str) -> bool:
    """A cause as the translation layer says it: both languages, no library advice."""
    return " / " in reason and not any(a in reason for a in NETMIKO_ADVICE) and re.search(r"[\u4e00-\u9fff]", reason)


@pytest.mark.lab
def test_a_vrp5_device_stalling_mid_change_is_reported_half_applied_with_its_lines_and_restore(test_devices, tmp_path,
                                                                                                capsys):
    sim, inv, changes = test_devices
    name = TEST_DEVICES["huawei_vrp"]
    _fresh(sim, [name])
    before = sim.running_config(name)
    # six lines go in, then the device's configuration hangs, for the change and the rollback alike
    sim.set_faults(name, stall_after=6, stall_scope="config")
    run = Pusher(inv, {name: changes[name]}, _options(sim, tmp_path, read_timeout=1.5)).run([name])
    o = run.outcomes[0]
    now = sim.running_config(name)
    assert not same_config(o.platform, cli(o.platform).config_text(now), cli(o.platform).config_text(before))
    assert o.status == FAILED and o.kind == "timeout" and _operator_words(o.reason), o.reason
    assert o.end_state == ROLLBACK_FAILED and "ROLLBACK FAILED" in o.rollback
    backup = cli(o.platform).config_text(Path(o.backup).read_text())
    assert o.differs == differing_lines(o.platform, cli(o.platform).config_text(now), backup) and o.differs
    assert o.restore == f"invoke network.restore --inventory {inv.root} --device {name} --backup {o.backup} --apply"
    assert run.end_states()[ROLLBACK_FAILED] == 1 and not run.ok

    # the summary says so, never "rolled back", and the exit code is its own
    with pytest.raises(Exit) as exited:
        exit_for(run)
    assert exited.value.code == HALF_APPLIED != PROBLEMS
    shown = capsys.readouterr().err
    assert "LEFT HALF-APPLIED" in shown and "were rolled back" not in shown and o.restore in " ".join(shown.split())
    assert all(line.strip() in shown for line in o.differs)
    paths = write_reports(run, tmp_path / "out", ("json", "html"), "en")
    data = json.loads(paths[0].read_text())
    assert data["end_states"]["rollback_failed"] == 1 and data["devices"][0]["differs"] == o.differs
    assert "ROLLBACK FAILED" in paths[1].read_text()

    # once the device answers again, the restore command brings it back and proves it
    sim.clear_faults(name)
    dry, lines = restore(inv, name, Path(o.backup), options=_options(sim, tmp_path, apply=False))
    assert dry.status == DRY_RUN and lines and sim.running_config(name) == now
    done, _ = restore(inv, name, Path(o.backup), options=_options(sim, tmp_path))
    assert done.end_state == ROLLED_BACK and "verified" in done.rollback, done
    assert _unchanged(sim, o, {name: before})


@pytest.mark.lab
def test_slow_devices_hit_their_deadline_and_are_rolled_back_while_the_others_finish(test_devices, tmp_path):
    sim, inv, changes = test_devices
    names = [TEST_DEVICES[p] for p in ("cisco_ios", "huawei_vrpv8", "hp_comware", "ruijie_os")]
    slow = {names[0]: 1000, names[1]: 1800}  # 1 s per configuration line; just under the 2 s read timeout
    _fresh(sim, names)
    before = {n: sim.running_config(n) for n in names}
    for n, ms in slow.items():
        sim.set_faults(n, config_latency_ms=ms)
    # Each change has 30-50 lines: without a deadline the slow ones take lines x latency, every line under
    # the read timeout. The deadline (here 4 s; by default half the vendor's timer) cuts them and rolls back.
    run = Pusher(inv, {n: changes[n] for n in names}, _options(sim, tmp_path, read_timeout=2, deadline=4)).run(names)
    by = {o.device: o for o in run.outcomes}
    for n in slow:
        o = by[n]
        assert o.status == FAILED and o.kind == "deadline" and _operator_words(o.reason), (n, o.kind, o.reason)
        assert o.end_state == ROLLED_BACK and o.rollback.endswith("verified: the device equals its backup"), o
        assert o.deadline == 4 and _unchanged(sim, o, before)
    for n in names[2:]:
        assert by[n].status == APPLIED and by[n].end_state == CHANGED, by[n]
    assert not [d for d in sim.status() if d["name"] in names and d.get("pending_rollback")]
    for n in slow:
        sim.clear_faults(n)
    # the default deadline is half the platform's commit timer: the vendor timer is still armed at rollback
    pusher = Pusher(inv, {}, PushOptions())
    assert pusher.deadline("huawei_vrpv8") == 300 and pusher.deadline("cisco_ios") == 300
    assert Pusher(inv, {}, PushOptions(deadline=900)).deadline("hp_comware") == 300


@pytest.mark.lab
def test_an_ios_revert_timer_expiring_mid_change_is_said_as_such_not_as_a_rejected_line(test_devices, tmp_path):
    sim, inv, changes = test_devices
    name = TEST_DEVICES["cisco_ios"]
    sim.reset(name, f"hostname {name}\narchive\n path flash:jy-archive\n")  # IOS needs an archive path for it
    sim.set_time_scale(name, 1 / 600)  # the 10-minute revert timer lasts one second
    before = sim.running_config(name)
    sim.set_faults(name, config_latency_ms=150)  # and the change takes several
    run = Pusher(inv, {name: changes[name]}, _options(sim, tmp_path)).run([name])
    o = run.outcomes[0]
    assert "automatic rollback (revert)" in sim.command_log(name)  # the device did revert mid-change
    assert o.status == FAILED and o.kind == "timer_expired", (o.kind, o.reason)
    assert "configure terminal revert timer 10" in o.reason and "rejected" not in o.reason and _operator_words(o.reason)
    assert any(n.startswith("the device then answered") for n in o.notes), o.notes
    assert o.end_state == ROLLED_BACK and _unchanged(sim, o, {name: before})
    sim.clear_faults(name)


@pytest.mark.lab
def test_a_dead_or_slow_device_is_said_to_not_answer_never_as_netmiko_advice(test_devices, tmp_path):
    sim, inv, changes = test_devices
    dead, slow = TEST_DEVICES["huawei_vrp"], TEST_DEVICES["ruijie_os"]
    _fresh(sim, [dead, slow])
    sim.set_faults(dead, stall_after=0)  # the SSH login works, then nothing answers
    sim.set_faults(slow, latency_ms=1500)  # every answer slower than the read timeout
    run = Pusher(inv, {n: changes[n] for n in (dead, slow)}, _options(sim, tmp_path, read_timeout=1)).run([dead, slow])
    for o in run.outcomes:
        assert o.status == FAILED and o.kind in ("timeout", "deadline"), (o.device, o.kind, o.reason)
        assert _operator_words(o.reason), o.reason
        assert any(k in o.reason for k in ("did not answer", "showed no prompt", "answers too slowly")), o.reason
        assert o.end_state == AS_BEFORE and not o.backup  # nothing was changed, and the summary says so
    for n in (dead, slow):
        sim.clear_faults(n)


# --- fake-switches: a Cisco simulator nobody here wrote ---------------------------------------------------------

FSW_PASSWORD_ENV = "JIYUE_TEST_FSW_PASSWORD"
FSW_CHANGE = ["vlan 130", " name gaj-extranet", "interface FastEthernet0/2", " description gaj office floor 3",
              " switchport access vlan 130", " switchport mode access"]


@pytest.fixture(scope="module")
def fake_switch(lab):
    pytest.importorskip("fake_switches", reason="bin/jiyue setup installs fake-switches (requirements-nodeps.txt)")
    password = secrets.token_urlsafe(12)
    os.environ[FSW_PASSWORD_ENV] = password
    switch = start_fake_switch(lab, "198.18.30.250", username="netops", password=password)
    yield switch
    switch.stop()


def _fsw_inventory(demo, switch, known_hosts: Path):
    device = Device(name="fake-sw1", platform=Platform.cisco_ios, address=switch.address, port=switch.port,
                    site="test", role=DeviceRole.access,
                    interfaces=[Interface(name="FastEthernet0/4", golden_network="金保")],
                    credentials=DeviceCredentials(username="netops", password=SecretRef(env=FSW_PASSWORD_ENV)))
    ssh = demo.defaults.ssh.model_copy(update={"known_hosts": str(known_hosts)})
    return demo.model_copy(update={"devices": {"fake-sw1": device},
                                   "defaults": demo.defaults.model_copy(update={"ssh": ssh})})


@pytest.mark.lab
def test_fake_switches_push_with_the_same_engine(demo, fake_switch, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    inv = _fsw_inventory(demo, fake_switch, known_hosts)
    target = DeviceTarget.of(inv, "fake-sw1")
    # unknown host key: refused; trust on first use records it (the key the package ships); then it is checked
    with pytest.raises(DeviceError) as refused:
        DeviceSession(target).open()
    assert refused.value.kind == "host_key"
    with DeviceSession(target, trust_on_first_use=True) as s:
        before = s.config_text()
    assert known_hosts.read_text().split()[1:] == fake_switch.known_hosts.read_text().split()[1:]
    assert os.environ[FSW_PASSWORD_ENV] not in known_hosts.read_text()

    backups = tmp_path / "backups"
    dry = Pusher(inv, {"fake-sw1": FSW_CHANGE}, PushOptions(backups=backups, progress=False)).run(["fake-sw1"])
    assert dry.outcomes[0].status == DRY_RUN and "vlan 130" in dry.outcomes[0].diff and not backups.exists()
    with DeviceSession(target) as s:
        assert same_config("cisco_ios", s.config_text(), before)  # the dry run changed nothing

    run = Pusher(inv, {"fake-sw1": FSW_CHANGE},
                 PushOptions(apply=True, backups=backups, progress=False)).run(["fake-sw1"])
    o = run.outcomes[0]
    assert o.status == APPLIED, o
    # fake-switches reads `configure terminal revert timer` as plain `configure terminal` and knows no `configure
    # confirm` (it reads that as `configure` too): detected and said; it has no `end` either (left with `exit`)
    assert "no revert timer" in o.safety and o.notes
    assert same_config("cisco_ios", cli("cisco_ios").config_text(Path(o.backup).read_text()), before)
    with DeviceSession(target) as s:
        after = s.config_text()
        assert not s.in_config_mode()
    assert " description gaj office floor 3" in after and "vlan 130" in after

    again = Pusher(inv, {"fake-sw1": FSW_CHANGE}, PushOptions(apply=True, backups=backups, progress=False)).run(
        ["fake-sw1"])
    assert again.outcomes[0].status == UNCHANGED and again.outcomes[0].lines == 0

    # a rejected line: the device is restored from its backup line by line (it has no vendor undo)
    bad = [*FSW_CHANGE, "interface FastEthernet0/3", " description will be undone", " bogus-command here"]
    failed = Pusher(inv, {"fake-sw1": bad}, PushOptions(apply=True, backups=backups, progress=False)).run(["fake-sw1"])
    f = failed.outcomes[0]
    assert f.status == FAILED and f.kind == "rejected" and "bogus-command here" in f.reason
    assert "verified: the device equals its backup" in f.rollback
    with DeviceSession(target) as s:
        assert same_config("cisco_ios", s.config_text(), after)

    # a golden-network interface of this device is refused before anything is sent
    golden = [*FSW_CHANGE, "interface FastEthernet0/4", " description not ours"]
    refused_run = Pusher(inv, {"fake-sw1": golden}, PushOptions(apply=True, backups=backups, progress=False)).run(
        ["fake-sw1"])
    assert refused_run.outcomes[0].status == REFUSED


# --- the command line ---------------------------------------------------------------------------------------


def _jiyue(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "jiyue", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)


@pytest.mark.lab
def test_command_line_diff_push_apply_and_again(lab, demo, city, tmp_path):
    """`network.diff` and `network.push` as an operator runs them: plan first, the diff, --apply, a no-op."""
    for name in ("gaj-jr1", "rsj-jr1"):
        netsim(lab).reset(name)
    plan = tmp_path / "plan.yaml"
    assert _jiyue("network.plan", "--plan", str(plan), "--out", str(tmp_path / "out")).returncode == 0
    common = ("--limit", "gaj-jr1,rsj-jr1", "--plan", str(plan))
    shown = _jiyue("network.diff", *common)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "gaj-jr1 (cisco_ios)" in shown.stdout and "vrf definition EGOV-EXTRANET" in shown.stdout
    out, store = tmp_path / "out", f"sqlite:///{tmp_path / 'history.sqlite'}"
    applied = _jiyue("network.push", *common, "--apply", "--out", str(out), "--store", store, "--format",
                     "json,html,xlsx", "--backups", str(tmp_path / "backups"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert sorted(p.name for p in out.glob("network-push.*")) == [
        "network-push.html", "network-push.json", "network-push.xlsx"]
    assert len(list((tmp_path / "backups").glob("*/*.cfg"))) == 2
    again = _jiyue("network.push", *common, "--apply", "--out", str(out), "--store", store)
    assert again.returncode == 0 and again.stdout.count("unchanged") >= 2
    assert len(Store(store).history(NETWORK_PUSH)) == 4
    # a golden device named explicitly is bad input; a mistyped option value too
    assert _jiyue("network.push", "--limit", "swj-jr1", "--plan", str(plan)).returncode == 2
    assert _jiyue("network.push", *common, "--max-fail-percent", "abc").returncode == 2


def test_vty_ranges_the_device_shows_converge_ios_split_and_vrp_16_20():
    """IOS shows `line vty 0 15` as 0 4 and 5 15; VRP shows 16 20 besides 0 4: every range shown is
    managed, and once pushed nothing is missing and a second diff sends nothing."""
    from lab.netsim.config import Config
    from lab.netsim.grammar import load
    from network.diff import diff, missing_lines

    cases = {
        "cisco_ios": ("hostname r1\nline vty 0 4\n exec-timeout 0 0\n transport input telnet ssh\n",
                      ["line vty 0 15", " exec-timeout 10 0", " transport input ssh"], ["line vty 5 15"]),
        "huawei_vrp": ("sysname r2\nuser-interface vty 0 4\n idle-timeout 0 0\nuser-interface vty 16 20\n",
                       ["user-interface vty 0 4", " idle-timeout 10 0", " protocol inbound ssh"],
                       ["user-interface vty 16 20"]),
    }
    for platform, (running, intended, extra) in cases.items():
        device = Config(load(platform))
        assert device.load(running) == []
        first = diff("r", platform, device.render(), intended)
        assert all(e in first.remediation for e in extra), first.remediation
        path: list[str] = []
        for line in first.remediation:  # typed as a session types them: exits leave the section
            if line in ("quit", "exit"):
                path = path[:-1]
                continue
            outcome = device.apply(path, device.grammar.normalise(line))
            assert outcome.ok, line
            path = outcome.path
        shown = device.render()
        if platform == "cisco_ios":
            assert "line vty 0 4" in shown and "line vty 5 15" in shown and "line vty 0 15" not in shown
        assert missing_lines(platform, shown, intended) == []
        assert diff("r", platform, shown, intended).empty
