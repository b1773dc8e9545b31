"""The lab: real SSH hosts in network namespaces, each with its own view of the per-host paths."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import paramiko
import pytest

import inventory
from lab import remote
from lab.hosts import DEFAULT_STATE, REPO, Lab
from tests.conftest import require_lab


def ssh(lab: Lab, inv, name: str, command: str) -> str:
    """Run a command over real SSH, with the host key verified against the lab's known_hosts."""
    return remote.ssh(inv, name, command)


def test_every_demo_host_is_up(lab, demo):
    statuses = lab.status(sorted(demo.hosts))
    assert [s.name for s in statuses if not s.up] == []
    assert all(s.ssh_banner.startswith("SSH-2.0-OpenSSH") for s in statuses)


def test_hosts_see_their_own_srv_and_hostname(lab, demo):
    names = sorted(demo.hosts)[:3]
    tokens = {name: uuid.uuid4().hex for name in names}
    for name, token in tokens.items():
        path = lab.path(name, "/srv/lab-marker")
        path.write_text(token)
        lab.path(name, "/etc/app/app.conf").write_text(f"name={name}\n")
    for name, token in tokens.items():
        out = ssh(lab, demo, name, "hostname; cat /srv/lab-marker; echo; cat /etc/app/app.conf")
        assert out.splitlines() == [name, token, f"name={name}"]


def test_hosts_reach_each_other_across_subnets(lab, demo):
    source = next(h for h in demo.hosts.values() if demo.subnet_of(h.address).kind == "source")
    cloud = next(h for h in demo.hosts.values() if demo.subnet_of(h.address).kind == "cloud")
    out = ssh(lab, demo, source.name,
              f"python3 -c \"import socket; s=socket.create_connection(('{cloud.address}', 22), 3); "
              f"print(s.recv(64).decode().strip())\"")
    assert out.startswith("SSH-2.0-")


def test_unknown_host_key_is_rejected(lab, demo, tmp_path):
    name = sorted(demo.hosts)[0]
    target = demo.ssh_for(demo.hosts[name])
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())  # empty known_hosts: must refuse
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(target.address, username=target.user, key_filename=str(target.key),
                       look_for_keys=False, allow_agent=False, timeout=10)


def test_up_twice_is_harmless(lab, demo):
    before = {s.name: s.sshd_pid for s in lab.status(sorted(demo.hosts))}
    assert lab.up(demo) == []
    after = {s.name: s.sshd_pid for s in lab.status(sorted(demo.hosts))}
    assert before == after


def test_stopped_host_is_down_then_restarted(lab, demo):
    name = sorted(demo.hosts)[-1]
    lab.stop_host(name)
    [status] = lab.status([name])
    assert not status.up and status.sshd_pid is None
    assert lab.up(demo) == [name]
    [status] = lab.status([name])
    assert status.up


SMALL = """
subnets:
  - {name: t, kind: source, prefix: 198.19.250.0/24, gateway: 198.19.250.1}
hosts:
  - {name: t1, address: 198.19.250.11, os_family: debian, os: Debian 12, role: app}
  - {name: t2, address: 198.19.250.12, os_family: redhat, os: Kylin V10, role: db}
"""


def test_a_second_lab_comes_up_and_goes_down_without_a_trace(tmp_path):
    lab = Lab(tmp_path / "state", tag="jt")
    require_lab(lab)
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yaml").write_text(SMALL)
    inv = inventory.load(tmp_path / "inv")
    try:
        assert sorted(lab.up(inv)) == ["t1", "t2"]
        assert all(s.up for s in lab.status())
    finally:
        assert lab.down() == 2
    assert not any((tmp_path / "state").iterdir())
    assert Path("/etc/app").is_dir() and Path("/var/lib/jiyue").is_dir()  # mount points stay for other labs
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "jt-" not in netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "jtlab0" not in links and "jtv" not in links


def test_lab_without_root_explains_what_is_missing():
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-c", "from lab.hosts import Lab; Lab().up(None)"],
                          capture_output=True, text=True)
    if proc.returncode != 0 and "Permission denied" in proc.stderr and "LabError" not in proc.stderr:
        pytest.skip("the checkout is not readable by an unprivileged user here")
    assert proc.returncode != 0
    assert "the lab needs root" in proc.stderr


OUTSIDE = """\
subnets:
  - {name: o, kind: source, prefix: 198.19.251.0/24, gateway: 198.19.251.1}
hosts:
  - {name: o1, address: 198.19.251.11, os_family: debian, os: Debian 12, role: app}
"""


def test_the_suite_lab_cannot_see_or_stop_a_lab_outside_it(lab, tmp_path):
    """A lab an operator started (here: in the namespaces the suite was started from) is not the suite's:
    the suite's network, netns names and .lab are its own, and its `down` leaves the outside lab up."""
    outside = ["nsenter", "-t", str(os.getppid()), "-n", "-m", "--"]
    if os.stat(f"/proc/{os.getppid()}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
        pytest.fail("the test session runs in the machine's network namespace, not its own")
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yaml").write_text(OUTSIDE)
    state = tmp_path / "outside"
    code = ("import sys, inventory; from lab.hosts import Lab; "
            "lab = Lab(sys.argv[1], tag='jo'); inv = inventory.load(sys.argv[2]); ")
    run = [*outside, sys.executable, "-c"]
    subprocess.run([*run, code + "lab.up(inv)", str(state), str(tmp_path / "inv")], check=True, cwd=REPO)
    try:
        up = code + "sys.exit(0 if all(s.up for s in lab.status()) else 1)"
        assert subprocess.run([*run, up, str(state), str(tmp_path / "inv")], cwd=REPO).returncode == 0
        assert not any(s.up for s in Lab(state, tag="jo").status())  # not reachable from in here
        Lab(tmp_path / "inside", tag="jo").down()  # a down in here finds nothing of it to stop
        assert subprocess.run([*run, up, str(state), str(tmp_path / "inv")], cwd=REPO).returncode == 0
        theirs = subprocess.run([*outside, "stat", "-c", "%d:%i", str(DEFAULT_STATE)], capture_output=True,
                                text=True).stdout.strip()
        ours = os.stat(DEFAULT_STATE)
        assert theirs != f"{ours.st_dev}:{ours.st_ino}"  # the suite's .lab is not the checkout's
    finally:
        subprocess.run([*run, code + "lab.down()", str(state), str(tmp_path / "inv")], cwd=REPO)


DUAL_STACK = """\
defaults:
  ssh: {{user: root, port: 22, key: {state}/ssh/id_ed25519, known_hosts: {state}/ssh/known_hosts}}
departments:
  - {{code: tst, name: 测试局, level: city}}
subnets:
  - {{name: v4, kind: source, prefix: 198.19.252.0/24, gateway: 198.19.252.1}}
  - {{name: v6, kind: cloud, prefix: "2001:db8:252::/64", gateway: "2001:db8:252::1"}}
systems:
  - id: tst-web
    name: 测试系统
    department: tst
    function: 只用于测试实验环境的 IPv6 主机。
    category: public_service
    scope: {{user_units: [测试科], declared_users: 10}}
    frequency: daily
    approval: {{department: 测试局, date: 2024-01-01}}
    funding: {{source: 财政资金, amount: 1000.00}}
    build_year: 2024
    vendor: 测试公司
    classification: non_classified
    protection: {{level: 2, filing_number: 21010099099-24001}}
    zone: extranet
    hosts: [v6web1]
    services:
      - {{name: web, host: v6web1, port: 8080, health_url: "http://[2001:db8:252::11]:8080/health"}}
    data_paths: [/srv/tst-web]
    log_paths: [/var/log/app/tst-web/access.log]
hosts:
  - {{name: v6web1, address: "2001:db8:252::11", os_family: debian, os: Debian 12, role: app}}
  - {{name: v4app1, address: 198.19.252.11, os_family: redhat, os: Kylin V10 SP3, role: app}}
"""


def test_an_ipv6_host_comes_up_serves_its_app_and_stays_reachable_after_the_baseline_seed(tmp_path):
    """Every address comes from the inventory, IPv6 ones too: sshd listens at once (no duplicate address
    detection to wait for), the seeded app answers over IPv6, and the baseline seed's AllowUsers and
    hosts.allow name the inventory's subnets of both families, so the operator still gets in."""
    from lab.baseline_seed import seed_baseline
    from lab.seed import seed

    lab = Lab(tmp_path / "state", tag="j6")
    require_lab(lab)
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "city.yaml").write_text(DUAL_STACK.format(state=tmp_path / "state"))
    inv = inventory.load(tmp_path / "inv")
    try:
        assert sorted(lab.up(inv)) == ["v4app1", "v6web1"]
        assert all(s.up for s in lab.status())
        assert ssh(lab, inv, "v6web1", "hostname").strip() == "v6web1"
        result = seed(lab, inv)
        assert [p.state for p in result.services] != [] and all(p.state != "failed" for p in result.services)
        web = inv.systems["tst-web"].services[0]
        with urllib.request.urlopen(web.health_url, timeout=5) as response:
            assert response.status == 200 and response.headers["X-Served-By"] == "v6web1"
        seed_baseline(lab, inv, hosts=["v6web1", "v4app1"])
        sshd_config = lab.path("v6web1", "/etc/ssh/sshd_config").read_text()
        assert "root@2001:db8:252::/64" in sshd_config and "root@198.19.252.0/24" in sshd_config
        assert "198.18." not in sshd_config and "198.18." not in lab.path("v6web1", "/etc/hosts.allow").read_text()
        for name in ("v6web1", "v4app1"):
            assert ssh(lab, inv, name, "hostname").strip() == name
    finally:
        assert lab.down() == 2


def test_processes_of_a_lab_outside_are_never_taken_for_the_suites(lab, demo):
    """Every lab shares the machine's process table, and a lab outside the session keeps its pid files in the
    checkout's real `.lab`, the very paths the session's own `.lab` has: seeding must neither adopt nor stop
    such a process (it did: the suite's apps were then never started, and the outside lab's were killed)."""
    from lab.seed import APP, running_processes

    host = sorted(demo.hosts)[0]
    pidfile = lab.path(host, "/etc/app/outside/pid")
    outside = subprocess.Popen(["nsenter", "-t", str(os.getppid()), "-n", "-m", "--", sys.executable, "-c",
                                "import time; time.sleep(60)", str(APP), "--pidfile", str(pidfile)])
    try:
        for _ in range(100):
            if any(str(APP) in a for a in _cmdlines(outside.pid)):
                break
            time.sleep(0.05)
        assert str(pidfile) not in running_processes(APP)
    finally:
        outside.kill()
        outside.wait()


def _cmdlines(pid: int) -> list[str]:
    """The command lines of `pid` and its children (nsenter execs, but may fork first)."""
    out = []
    for p in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split() or [])]:
        try:
            out.append(Path(f"/proc/{p}/cmdline").read_text())
        except OSError:
            continue
    return out


def test_a_host_whose_state_was_lost_is_restarted_not_refused(tmp_path):
    """`lab.up` after the state dir lost a host's pid file (its sshd still runs, holding the address): the
    host is restarted, where it used to fail with "sshd did not start"."""
    lab = Lab(tmp_path / "state", tag="jl")
    require_lab(lab)
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yaml").write_text(SMALL)
    inv = inventory.load(tmp_path / "inv")
    try:
        lab.up(inv)
        (lab.host_dir("t1") / "sshd.pid").unlink()
        assert lab.up(inv) == ["t1"]
        assert all(s.up for s in lab.status())
    finally:
        lab.down()
