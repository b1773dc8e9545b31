"""The three exports, each checked by its own tool against the lab."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from nornir import InitNornir

from inventory import export
from inventory.groups import ClassifiedRefused, all_groups, select
from inventory.model import DeviceCredentials, SecretRef
from jiyue import ansible
from jiyue.ansible import tool


@pytest.fixture(scope="module")
def exported(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    for fmt in export.FORMATS:
        export.write(demo, fmt, demo.contactable_hosts(), sorted(demo.devices), out)
    return out / "inventory"


@pytest.fixture(scope="module")
def exported_env(demo, tmp_path_factory):
    """The devices exported from the sample city with its password referenced by an environment variable
    (the sample city itself references the file the lab writes)."""
    creds = DeviceCredentials(username="netops", password=SecretRef(env="JIYUE_NET_PASSWORD"))
    inv = demo.model_copy(update={"defaults": demo.defaults.model_copy(update={"device_credentials": creds})})
    out = tmp_path_factory.mktemp("exports-env")
    export.write(inv, "nornir", [], sorted(inv.devices), out)
    return out / "inventory"


def test_ansible_inventory_lists_groups_and_hostvars(demo, exported):
    proc = ansible.run("ansible-inventory", "-i", str(exported / "ansible.yml"), "--list")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    hostvars = data["_meta"]["hostvars"]
    assert sorted(hostvars) == demo.contactable_hosts()  # classified hosts are never handed to Ansible
    system = next(s for s in demo.systems.values() if s.hosts)
    host = system.hosts[0]
    assert hostvars[host]["jiyue_system"] == system.id
    assert hostvars[host]["ansible_host"] == str(demo.hosts[host].address)
    assert "StrictHostKeyChecking=yes" in hostvars[host]["ansible_ssh_common_args"]
    for group in (f"dept_{system.department}", f"system_{system.id.replace('-', '_')}",
                  f"zone_{system.zone}", "cloud_pool", "gateway"):
        assert group in data, group
    assert "[WARNING]" not in proc.stderr


def test_ansible_ping_reaches_every_lab_host(lab, demo, exported):
    proc = ansible.run("ansible", "all", "-i", str(exported / "ansible.yml"), "-m", "ping", "-o", "-f", "50")
    answered = set(re.findall(r"^(\S+) \| SUCCESS", proc.stdout, re.M))
    assert answered == set(demo.contactable_hosts()), proc.stdout[-2000:]
    assert proc.returncode == 0


@pytest.mark.parametrize("pattern", [
    "all", "sources", "cloud_pool:gateway", "zone_extranet:&os_redhat", "sources:!level_3",
    "*-db*", "~^(fgw|gaj)-", "os_debian,&role_app", "!cloud_pool",
])
def test_limit_selects_what_ansible_selects(demo, exported, pattern):
    proc = ansible.run("ansible", "all", "-i", str(exported / "ansible.yml"), "--list-hosts", "--limit", pattern)
    ansible_hosts = sorted(line.strip() for line in proc.stdout.splitlines()[1:] if line.strip())
    ours = select(demo.contactable_hosts(), all_groups(demo), pattern, strict=False)
    assert ours == ansible_hosts


def test_pyinfra_gathers_facts_from_every_lab_host(lab, demo, exported):
    proc = subprocess.run([tool("pyinfra"), str(exported / "pyinfra_inventory.py"), "fact", "server.Hostname",
                           "--parallel", "50", "-y"], capture_output=True, text=True, env=ansible.env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # pyinfra prints the facts as JSON among its progress lines on stderr
    facts = json.loads(re.search(r"^\{$.*?^\}$", proc.stderr, re.M | re.S).group(0))
    assert facts == {name: name for name in demo.contactable_hosts()}


def test_pyinfra_groups_match_ours(demo, exported):
    namespace: dict = {}
    exec((exported / "pyinfra_inventory.py").read_text(), namespace)
    assert sorted(n for n, _ in namespace["cloud_pool"]) == all_groups(demo)["cloud_pool"]
    assert namespace["all_hosts"][0][1]["ssh_strict_host_key_checking"] == "yes"


def test_nornir_loads_devices_and_resolves_passwords_at_load_time(demo, exported_env, monkeypatch):
    exported = exported_env
    secret = "s3cret-from-env"
    monkeypatch.setenv("JIYUE_NET_PASSWORD", secret)
    nr = InitNornir(config_file=str(exported / "nornir" / "config.yaml"))
    assert sorted(nr.inventory.hosts) == sorted(demo.devices)
    platforms = {h.platform for h in nr.inventory.hosts.values()}
    assert platforms == {"huawei", "huawei_vrpv8", "hp_comware", "cisco_ios", "ruijie_os"}
    assert all(h.password == secret for h in nr.inventory.hosts.values())
    for path in (exported / "nornir").iterdir():
        assert secret not in path.read_text()
    core = nr.filter(filter_func=lambda h: "role_core" in [g.name for g in h.groups])
    assert core.inventory.hosts


def test_nornir_without_the_secret_says_which_variable(demo, exported_env, monkeypatch):
    monkeypatch.delenv("JIYUE_NET_PASSWORD", raising=False)
    with pytest.raises(LookupError, match="JIYUE_NET_PASSWORD"):
        InitNornir(config_file=str(exported_env / "nornir" / "config.yaml"))


def test_exports_are_stable(demo, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    export.write(demo, "ansible", demo.contactable_hosts(), [], first)
    export.write(demo, "ansible", demo.contactable_hosts(), [], second)
    a = (first / "inventory" / "ansible.yml").read_text()
    assert a == (second / "inventory" / "ansible.yml").read_text()
    assert yaml.safe_load(a)["all"]["vars"]["ansible_python_interpreter"] == "auto_silent"
    assert os.path.isabs(yaml.safe_load(a)["all"]["hosts"][sorted(demo.hosts)[0]]["ansible_ssh_private_key_file"])


def test_classified_hosts_are_exported_only_when_asked_explicitly(demo, tmp_path):
    classified = sorted(h for h in demo.hosts if demo.is_classified(h))
    assert classified == ["gaj-qbyp-app1", "szfb-jmwj-app1"]
    for fmt in ("ansible", "pyinfra"):
        with pytest.raises(ClassifiedRefused, match="szfb-jmwj-app1") as refused:
            export.write(demo, fmt, sorted(demo.hosts), [], tmp_path / "refused")
        assert "gaj-qbyp-app1" in str(refused.value) and "--include-classified" in str(refused.value)
    assert not (tmp_path / "refused").exists()
    [path] = export.write(demo, "ansible", sorted(demo.hosts), [], tmp_path, include_classified=True)
    data = yaml.safe_load(path.read_text())["all"]
    assert sorted(data["children"]["classified"]["hosts"]) == classified
    assert data["hosts"]["szfb-jmwj-app1"]["jiyue_protection_scheme"] == "fenbao"
