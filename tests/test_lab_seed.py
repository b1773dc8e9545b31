"""The seeded lab: each host presents its declared OS and the history lab/scenario.yaml gives its
system, its services answer and hold their dependencies' connections, and the gateway sends live traffic.

Everything is read over real SSH, as the fact collectors do.
"""

from __future__ import annotations

import shlex
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit.collect import CollectOptions, collect_host
from lab import remote
from lab.baseline_seed import seed_baseline
from lab.seed import APP, MONTHS, TRAFFIC, load_scenario, running_processes, seed

CST = timezone(timedelta(hours=8))


@pytest.fixture
def live(seeded, lab, demo):
    """The seeded lab with every service and the traffic running: seeds again if a test (or a stopped
    host) ended some of them since the session's seeding; seeding leaves running processes alone."""
    procs = {**running_processes(APP), **running_processes(TRAFFIC)}
    wanted = [*seeded.services, *([seeded.traffic] if seeded.traffic else [])]
    if all(len(procs.get(str(p.pidfile), [])) == 1 for p in wanted):
        return seeded
    return seed(lab, demo)


def os_release(inv, host: str) -> dict[str, str]:
    text = remote.ssh(inv, host, "cat /etc/os-release")
    return dict(line.split("=", 1) for line in shlex.split(text, posix=True) if "=" in line)


def systems(seeded, profile: str) -> list[str]:
    return sorted(s for s, p in seeded.profiles.items() if p == profile)


def web_service(inv, system_id: str):
    return next(v for v in inv.systems[system_id].services if v.health_url)


def logins(inv, host: str) -> list[datetime]:
    """Login times (USER_PROCESS records) in the host's /var/log/wtmp."""
    out = remote.ssh(inv, host, "utmpdump /var/log/wtmp")
    times = []
    for line in out.splitlines():
        if line.startswith("[7]"):
            stamp = line.rsplit("[", 1)[1].rstrip("]").replace(",", ".")
            times.append(datetime.fromisoformat(stamp))
    return times


def established(inv, host: str) -> list[tuple[str, str]]:
    """(local, peer) of the host's established TCP connections."""
    out = remote.ssh(inv, host, "ss -tnH state established")
    return [(f[-2], f[-1]) for f in (line.split() for line in out.splitlines()) if len(f) >= 4]


def line_count(inv, host: str, path: str) -> int:
    return int(remote.ssh(inv, host, f"wc -l < {shlex.quote(path)}").strip() or 0)


def test_hosts_present_their_declared_os(lab, demo):
    kylin = next(h for h in demo.hosts.values() if h.os.startswith("Kylin V10"))
    fields = os_release(demo, kylin.name)
    assert fields["ID"] == "kylin" and fields["VERSION_ID"] == "V10"
    assert fields["ID_LIKE"] == "rhel fedora"
    centos6 = next(h for h in demo.hosts.values() if h.os == "CentOS 6.10")
    fields = os_release(demo, centos6.name)
    assert (fields["ID"], fields["VERSION_ID"]) == ("centos", "6.10")
    uos = next(h for h in demo.hosts.values() if h.os.startswith("UOS"))
    assert os_release(demo, uos.name)["ID_LIKE"] == "debian"


def test_active_system_answers_from_another_host(live, demo):
    system_id = next(s for s in systems(live, "active") if any(v.health_url for v in demo.systems[s].services))
    service = web_service(demo, system_id)
    other = next(h for h in sorted(demo.hosts) if h not in demo.systems[system_id].hosts)
    code = (f"import urllib.request as u; print(u.urlopen({service.health_url!r}, timeout=5).read().decode()); "
            f"print(u.urlopen({service.health_url.replace('/health', '/api/list')!r}, timeout=5).status)")
    out = remote.ssh(demo, other, f"python3 -c {shlex.quote(code)}")
    assert out.split() == ["ok", "200"]


def test_dependencies_show_as_established_connections(live, demo):
    system = next(s for s in demo.systems.values()
                  if s.depends_on and any(v.health_url for v in s.services) and
                  any(not v.health_url for v in s.services))
    web = web_service(demo, system.id)
    dep = demo.systems[system.depends_on[0]].services[0]
    own_db = next(v for v in system.services if not v.health_url)
    wanted = {f"{demo.hosts[dep.host].address}:{dep.port}", f"{demo.hosts[own_db.host].address}:{own_db.port}"}
    deadline = time.monotonic() + 20
    while True:  # a restarted dependency is reconnected to within a few seconds
        peers = {peer for _, peer in established(demo, web.host)}
        if wanted <= peers or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert wanted <= peers, f"{system.id} on {web.host}: established {sorted(peers)}"
    # ... and the other end sees the same connection
    assert any(peer.startswith(f"{demo.hosts[web.host].address}:") and local.endswith(f":{dep.port}")
               for local, peer in established(demo, dep.host))


def test_logins_of_detached_are_old_and_of_active_recent(seeded, demo):
    now = datetime.now(UTC)
    [detached] = systems(seeded, "detached")
    for host in demo.systems[detached].hosts:
        times = logins(demo, host)
        assert times and now - max(times) >= timedelta(days=300), host
    active = demo.systems[systems(seeded, "active")[0]]
    times = logins(demo, active.hosts[0])
    users = remote.ssh(demo, active.hosts[0], "utmpdump /var/log/wtmp | awk -F'] ' '$1==\"[7\" {print $4}' | sort -u")
    assert now - max(times) <= timedelta(days=3)
    assert 4 <= len(users.split()) <= 8


def test_detached_system_has_no_recent_requests_or_data_changes(seeded, demo):
    [detached] = systems(seeded, "detached")
    system = demo.systems[detached]
    host = web_service(demo, detached).host
    last = remote.ssh(demo, host, f"tail -n 1 {system.log_paths[0]}")
    when = datetime.strptime(last.split("[", 1)[1].split("]", 1)[0], "%d/%b/%Y:%H:%M:%S %z")
    assert datetime.now(UTC) - when >= timedelta(days=300)
    newest = remote.ssh(demo, host, f"find {system.data_paths[0]} -type f -printf '%T@\\n' | sort -n | tail -1")
    assert time.time() - float(newest) >= 300 * 86400


def test_stale_systems_last_package_update_is_from_their_year(seeded, demo):
    scenario = load_scenario()
    stale = systems(seeded, "stale")
    assert stale
    for system_id in stale:
        last_date = scenario.plan(system_id)[1]["updates"]["last_date"]
        for host in demo.systems[system_id].hosts:
            out = remote.ssh(demo, host, "for f in /var/log/dpkg.log /var/log/dnf.rpm.log /var/log/yum.log; do "
                                         "test -f $f && echo \"$f $(stat -c %Y $f)\" && tail -n 1 $f; done")
            lines = out.splitlines()
            assert len(lines) == 2, f"{host}: one package log expected, got {out!r}"
            path, mtime = lines[0].split()
            if path.endswith("yum.log"):  # yum.log has no year: it is in the file's time (rotated yearly)
                assert datetime.fromtimestamp(int(mtime), CST).year == last_date.year
                assert lines[1].startswith(f"{MONTHS[last_date.month - 1]} {last_date.day:02d} ")
            else:
                assert lines[1].startswith(f"{last_date:%Y-%m-%d}"), f"{host}: {lines[1]}"


def test_live_traffic_reaches_active_systems_only(live, demo):
    assert live.traffic is not None and live.traffic_systems
    gateway = str(demo.hosts[demo.cloud.gateway].address)
    system_id = live.traffic_systems[0]
    host, log = web_service(demo, system_id).host, demo.systems[system_id].log_paths[0]
    before = line_count(demo, host, log)
    deadline = time.monotonic() + 30
    while line_count(demo, host, log) <= before and time.monotonic() < deadline:
        time.sleep(1)
    assert line_count(demo, host, log) > before
    assert gateway in remote.ssh(demo, host, f"tail -n +{before + 1} {log}")
    for quiet in systems(live, "idle") + systems(live, "small") + systems(live, "detached"):
        service = web_service(demo, quiet)
        count = remote.ssh(demo, service.host, f"grep -c '^{gateway} ' {demo.systems[quiet].log_paths[0]}")
        assert count.strip() == "0", f"{quiet} gets live traffic"


def test_seeding_twice_leaves_one_process_per_service(seeded, lab, demo):
    again = seed(lab, demo)
    assert [p.label for p in again.services if p.state == "failed"] == []
    services = running_processes(APP)
    assert len(again.services) == sum(len(s.services) for s in demo.systems.values())
    for proc in again.services:
        assert len(services.get(str(proc.pidfile), [])) == 1, proc.label
    assert len(running_processes(TRAFFIC).get(str(again.traffic.pidfile), [])) == 1
    web = web_service(demo, systems(again, "active")[0])
    listeners = remote.ssh(demo, web.host, f"ss -tlnH 'sport = :{web.port}'")
    assert len(listeners.splitlines()) == 1


@pytest.mark.parametrize("profile", ["active", "small"])
def test_request_volume_follows_the_profile(seeded, demo, profile):
    system_id = systems(seeded, profile)[0]
    service = web_service(demo, system_id)
    log = demo.systems[system_id].log_paths[0]
    clients = remote.ssh(demo, service.host, f"awk '{{print $1}}' {log} | sort -u | wc -l")
    yesterday = (datetime.now(CST) - timedelta(days=1)).strftime("%d/%b/%Y")
    per_day = remote.ssh(demo, service.host, f"grep -c '\\[{yesterday}:' {log}")
    if profile == "active":
        assert int(clients) >= 20 and 150 <= int(per_day) <= 400
    else:
        assert int(clients) <= 3 and 1 <= int(per_day) <= 3


def _logins(inv, host: str) -> dict[str, str]:
    """The audit's view of a host's logins: each user's last login, as the collector reads wtmp and lastlog."""
    return collect_host(inv, host, CollectOptions())["logins"]["users_last"]


@pytest.mark.parametrize("order", ["seed, then seed-baseline", "seed-baseline, then seed"])
def test_the_two_seeds_compose_in_either_order(order, seeded, lab, demo):
    """lab.seed-baseline's administrators do not log in on a detached system's host (its zombie facts stay:
    no login for over a year, the scenario's users only), and elsewhere not after the scenario's newest login."""
    detached = demo.systems[systems(seeded, "detached")[0]].hosts[0]
    active = demo.systems[systems(seeded, "active")[0]].hosts[0]
    hosts = [detached, active]
    seed(lab, demo, hosts=hosts)
    alone = {h: _logins(demo, h) for h in hosts}
    steps = [lambda: seed(lab, demo, hosts=hosts), lambda: seed_baseline(lab, demo, hosts=hosts)]
    for step in steps if order.startswith("seed,") else reversed(steps):
        step()
    both = {h: _logins(demo, h) for h in hosts}
    admins = {"sysadmin", "secadmin", "auditadmin"}
    year_ago = (datetime.now(UTC) - timedelta(days=365)).isoformat()
    assert set(both[detached]) == set(alone[detached]) and not admins & set(both[detached])
    assert max(both[detached].values()) < year_ago
    assert admins <= set(both[active])  # the active host's administrators did log in ...
    scenario_newest = max(v for u, v in both[active].items() if u not in admins)
    assert max(both[active][u] for u in admins) < scenario_newest  # ... but before its users' newest login
