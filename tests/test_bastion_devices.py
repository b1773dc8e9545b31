"""Device sessions and the exports through a real bastion (堡垒机).

The bastion lab (lab/bastion.py) puts two source hosts and two simulated devices (lab/netsim) behind a bastion
namespace with IP forwarding off; the test session's namespace has no route to them, so every answer came
through the bastion's sshd: jiyue's device sessions (netmiko over a `direct-tcpip` channel of the run's jump
pool), and Ansible, pyinfra and Nornir from the exports' ssh_config. One lab for the module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import inventory
from audit.baseline import service as baseline
from audit.baseline.model import CheckOptions
from inventory import export
from jiyue import ansible
from jiyue.device import DeviceError, open_session
from jiyue.sshconfig import JUMP_PREFIX as JUMP
from lab.bastion import BASTION_ADDRESS, BASTION_INSIDE, DEVICES, HOSTS
from lab.netsim.lab import netsim
from network import service as network
from network.push import APPLIED, FAILED, ROLLED_BACK, PushOptions

REPO = Path(__file__).resolve().parents[1]
# One new interface per platform: what the pushes send (and the restore takes away again).
CHANGE = {"huawei_vrp": ["interface Vlanif300", " description jiyue-through-bastion"],
          "cisco_ios": ["interface Vlan300", " description jiyue-through-bastion"]}


@pytest.fixture(scope="module")
def intended(tmp_path_factory):
    """Hand-written intended configs (`--intended`): one new interface on each device."""
    out = tmp_path_factory.mktemp("intended")
    for name, (_, platform) in DEVICES.items():
        (out / f"{name}.cfg").write_text("\n".join(CHANGE[platform]) + "\n")
    return out


def _jiyue(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


# --- jiyue's own device sessions ------------------------------------------------------------------------------


def test_a_device_session_goes_through_the_bastion(bastion, behind):
    name = sorted(DEVICES)[0]
    with open_session(behind, name, connect_timeout=5, read_timeout=10) as session:
        assert f"sysname {name}" in session.running_config()
    with pytest.raises(DeviceError) as info, open_session(behind, name, jump="none", connect_timeout=3):
        pass
    assert info.value.kind == "unreachable"  # no leftover route: only the bastion reaches it


def test_device_and_bastion_host_keys_are_checked_separately(bastion, behind, tmp_path):
    name = sorted(DEVICES)[0]
    empty = tmp_path / "device_known_hosts"
    empty.write_text("")
    # the bastion's key is known (its own known_hosts), the device's is not: refused at the device
    with pytest.raises(DeviceError) as info, open_session(behind, name, known_hosts=empty, connect_timeout=5):
        pass
    assert info.value.kind == "host_key" and "jump host" not in str(info.value)
    # a forged bastion key: refused at the bastion, before the device is tried
    root = bastion.write_inventory(tmp_path / "inv")
    city = yaml.safe_load((root / "city.yaml").read_text())
    forged = tmp_path / "bastion_known_hosts"
    keytype, key = (bastion.hosts.host_dir(sorted(HOSTS)[0]) / "sshd/ssh_host_ed25519_key.pub").read_text().split()[:2]
    forged.write_text(f"{BASTION_ADDRESS} {keytype} {key}\n")
    city["jump_hosts"][0]["ssh"]["known_hosts"] = str(forged)
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    with pytest.raises(DeviceError) as info, open_session(inventory.load(root), name, connect_timeout=5):
        pass
    assert info.value.kind == "host_key" and "jump host bastion" in str(info.value) and "CHANGED" in str(info.value)


def test_diff_push_backup_and_restore_through_the_bastion(bastion, behind, intended, tmp_path):
    sim = netsim(bastion.hosts)
    names = sorted(DEVICES)
    options = PushOptions(backups=tmp_path / "backups", progress=False, connect_timeout=5, read_timeout=10)
    shown = network.diff(behind, ",".join(names), options=options, intended_dir=intended)
    assert all(o.lines for o in shown.outcomes), [(o.device, o.kind, o.reason) for o in shown.outcomes]
    run = network.push(behind, ",".join(names), options=dataclasses.replace(options, apply=True),
                       intended_dir=intended, store=None, params={})
    assert [o.status for o in run.outcomes] == [APPLIED] * len(names), [(o.device, o.reason) for o in run.outcomes]
    for o in run.outcomes:
        assert "jiyue-through-bastion" in sim.running_config(o.device)
        assert Path(o.backup).is_file() and "jiyue-through-bastion" not in Path(o.backup).read_text()
    name = names[0]
    outcome, lines = network.restore(behind, name, options=dataclasses.replace(options, apply=True))
    assert lines and outcome.end_state == ROLLED_BACK, outcome
    assert "jiyue-through-bastion" not in sim.running_config(name)


def test_push_with_the_jump_removed_reports_the_devices_unreachable(bastion, behind, intended, tmp_path):
    """`--jump none`: the same devices, now unreachable, each reported so, and the run ends normally (exit 1)."""
    base = ("--inventory", str(behind.root), "--intended", str(intended), "--store",
            f"sqlite:///{tmp_path / 'h.sqlite'}", "--out", str(tmp_path / "out"))
    direct = _jiyue("network.push", *base, "--jump", "none", "--lang", "en")
    assert direct.returncode == 1, direct.stdout + direct.stderr
    assert "Traceback" not in direct.stderr
    report = json.loads((tmp_path / "out" / "network-push.json").read_text())
    assert report["jump"] == "none"  # the report says how the run was told to connect
    devices = {d["device"]: d for d in report["devices"]}
    assert sorted(devices) == sorted(DEVICES)
    assert all(d["status"] == FAILED and d["kind"] == "unreachable" for d in devices.values()), devices


def test_device_baseline_through_the_bastion_and_not_without_it(bastion, behind):
    devices = sorted(DEVICES)
    run = baseline.check(behind, [], devices, level=3, options=CheckOptions(timeout=15), progress=False)
    assert len(run.checked()) == len(devices) and not run.not_checked(), [(r.target, r.error) for r in run.results]
    run = baseline.check(behind, [], devices, level=3, options=CheckOptions(timeout=5, jump="none"), progress=False)
    assert [r.error_kind for r in run.not_checked()] == ["unreachable"] * len(devices)


def test_device_jump_settings_resolve_like_hosts(bastion, tmp_path):
    root = bastion.write_inventory(tmp_path / "inv", jump=False)
    city = yaml.safe_load((root / "city.yaml").read_text())
    first, second = sorted(DEVICES)
    city["subnets"][1]["jump"] = "bastion"  # the management subnet's
    city["devices"][1]["jump"] = "none"  # the device's own wins
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    inv = inventory.load(root)
    assert [j.name for j in inv.jump_chain(inv.devices[first])] == ["bastion"]
    assert inv.jump_chain(inv.devices[second]) == []
    assert [j.name for j in inv.jump_chain(inv.devices[second], "bastion")] == ["bastion"]
    city["devices"][0]["jump"] = "nosuch"
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    with pytest.raises(inventory.InventoryError) as info:
        inventory.load(root)
    assert [p.path for p in info.value.problems] == [f"devices[{first}].jump"]


# --- the exports, proven with the tools themselves ------------------------------------------------------------


def _export(inv, out: Path, jump: str | None = None) -> Path:
    for fmt in export.FORMATS:
        export.write(inv, fmt, sorted(inv.hosts), sorted(inv.devices), out, jump=jump)
    return out / "inventory"


def _chained(bastion, tmp_path: Path):
    """The lab's inventory with a chain of two: `inner` (the bastion's inside address, reached only through
    `bastion`); two transports and two host key checks on the way to each target."""
    root = bastion.write_inventory(tmp_path / "inv-chain")
    city = yaml.safe_load((root / "city.yaml").read_text())
    city["jump_hosts"].append({"name": "inner", "address": BASTION_INSIDE, "jump": "bastion",
                               "ssh": {"known_hosts": str(bastion.known_hosts)}})
    city["defaults"]["jump"] = "inner"
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    return inventory.load(root)


def _ping(exported: Path, lines: bool = False) -> dict[str, str]:
    """`ansible all -m ping` on a fresh connection to each host (no control master of an earlier run, which went
    through the bastion, may answer for it): each host's status, or with `lines` its whole line of output."""
    env = {**ansible.env(), "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPath=none"}
    proc = subprocess.run([ansible.tool("ansible"), "all", "-i", str(exported / "ansible.yml"), "-m", "ping", "-o"],
                          capture_output=True, text=True, env=env, timeout=120)
    answers = dict(re.findall(r"^(\S+) \| ((?:SUCCESS|UNREACHABLE!|FAILED!).*)", proc.stdout, re.M))
    return answers if lines else {name: line.split(":")[0].split()[0] for name, line in answers.items()}


def _pyinfra_hostnames(exported: Path) -> dict[str, str]:
    proc = subprocess.run([ansible.tool("pyinfra"), str(exported / "pyinfra_inventory.py"), "fact", "server.Hostname",
                           "-y"], capture_output=True, text=True, env=ansible.env(), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(re.search(r"^\{$.*?^\}$", proc.stderr, re.M | re.S).group(0))


def _nornir_configs(exported: Path) -> dict[str, str]:
    from nornir import InitNornir
    from nornir_netmiko.tasks import netmiko_send_command

    from jiyue.platforms import cli

    def show_running(task):
        return netmiko_send_command(task, command_string=cli(task.host.data["jiyue_platform"]).show_running)

    nr = InitNornir(config_file=str(exported / "nornir" / "config.yaml"))
    try:
        result = nr.run(task=show_running)
    finally:
        nr.close_connections()
    assert not result.failed, {h: str(r.exception) for h, r in result.items() if r.failed}
    return {name: r[0].result for name, r in result.items()}


def test_ansible_pyinfra_and_nornir_reach_them_through_the_bastion(bastion, behind, tmp_path):
    exported = _export(behind, tmp_path)
    config_path = (exported / "ssh_config").resolve()
    config = config_path.read_text()
    assert f"Host {JUMP}bastion\n  HostName {BASTION_ADDRESS}\n" in config and "StrictHostKeyChecking yes" in config
    assert f"UserKnownHostsFile {bastion.known_hosts}" in config  # the bastion's own known_hosts
    assert f"ProxyCommand ssh -F {config_path} -W [%h]:%p {JUMP}bastion" in config
    hostvars = yaml.safe_load((exported / "ansible.yml").read_text())["all"]["hosts"]
    assert all(f"-F {config_path}" in hv["ansible_ssh_common_args"] for hv in hostvars.values())
    assert _ping(exported) == dict.fromkeys(HOSTS, "SUCCESS")
    assert _pyinfra_hostnames(exported) == {name: name for name in HOSTS}
    configs = _nornir_configs(exported)
    assert sorted(configs) == sorted(DEVICES) and all(f"sysname {n}" in c or f"hostname {n}" in c
                                                      for n, c in configs.items())


def test_the_exports_without_the_jump_do_not_reach_them(bastion, behind, tmp_path):
    exported = _export(behind, tmp_path, jump="none")
    assert not (exported / "ssh_config").exists() and not (exported / "nornir" / "ssh_config").exists()
    assert _ping(exported) == dict.fromkeys(HOSTS, "UNREACHABLE!")


def test_the_exports_refuse_a_bastion_whose_key_is_not_known(bastion, tmp_path):
    """StrictHostKeyChecking on the jump host too: with its known_hosts empty, Ansible does not pass it."""
    root = bastion.write_inventory(tmp_path / "inv")
    city = yaml.safe_load((root / "city.yaml").read_text())
    (tmp_path / "empty_known_hosts").write_text("")
    city["jump_hosts"][0]["ssh"]["known_hosts"] = str(tmp_path / "empty_known_hosts")
    (root / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    exported = _export(inventory.load(root), tmp_path / "out")
    answers = _ping(exported, lines=True)
    assert sorted(answers) == sorted(HOSTS)
    assert all(a.startswith("UNREACHABLE!") and f"host key is known for {BASTION_ADDRESS}" in a
               and "strict checking" in a for a in answers.values()), answers


def test_a_chain_of_two_in_the_exports(bastion, tmp_path):
    inv = _chained(bastion, tmp_path)
    exported = _export(inv, tmp_path / "out")
    for config in (exported / "ssh_config", exported / "nornir" / "ssh_config"):  # one convention for all three
        text = config.read_text()
        inner = text[text.index(f"Host {JUMP}inner\n"):].split("\n\n")[0]
        assert f"HostName {BASTION_INSIDE}" in inner and f"ProxyJump {JUMP}bastion" in inner  # the chain
        assert f"ProxyCommand ssh -F {config.resolve()} -W [%h]:%p {JUMP}inner" in text
    assert _ping(exported) == dict.fromkeys(HOSTS, "SUCCESS")
    assert _pyinfra_hostnames(exported) == {name: name for name in HOSTS}
    assert sorted(_nornir_configs(exported)) == sorted(DEVICES)


def test_device_sessions_through_a_chain_of_two(bastion, tmp_path):
    inv = _chained(bastion, tmp_path)
    run = baseline.check(inv, [], sorted(DEVICES), level=3, options=CheckOptions(timeout=15), progress=False)
    assert len(run.checked()) == len(DEVICES), [(r.target, r.error) for r in run.results]
