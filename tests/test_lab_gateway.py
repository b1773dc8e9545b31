"""The lab's gateway, service control and checker: what a migration on the lab stands on.

Clients reach systems only through nginx on the gateway host; a system's service stops and starts
with /etc/app/<id>/service inside its host; a copy of /etc/app/<id>/ and the data path runs on a
cloud host; switching the route moves the traffic there; and the checker proves no acknowledged
write was lost and no wrong answer was served (and catches it when a switch does lose writes).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from lab import gateway as gw
from lab import remote
from lab import service as svc
from lab.checker import Checker, verify_db
from lab.hosts import LabError
from lab.seed import APP, HERE, PYTHON, TRAFFIC, running_processes, seed

CHECKER = HERE / "checker.py"


@pytest.fixture
def live(seeded, lab, demo):
    """The seeded lab with every service, the traffic and nginx running (seeding again if a test ended some)."""
    procs = {**running_processes(APP), **running_processes(TRAFFIC)}
    wanted = [*seeded.services, *([seeded.traffic] if seeded.traffic else [])]
    if all(len(procs.get(str(p.pidfile), [])) == 1 for p in wanted) and gw.nginx_pid(lab, demo):
        return seeded
    return seed(lab, demo)


def candidates(seeded, demo) -> list[str]:
    """Active systems with live traffic whose one web service keeps its data in a /srv data path."""
    return [s for s in seeded.traffic_systems
            if seeded.profiles[s] == "active" and len(demo.systems[s].services) == 1
            and gw.web_service(demo.systems[s]) and demo.systems[s].data_paths
            and demo.systems[s].data_paths[0].startswith("/srv/")]


def get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post_record(url: str, client: str, seq: int, value: str) -> int:
    request = urllib.request.Request(url + "api/records", method="POST",
                                     data=json.dumps({"client": client, "seq": seq, "value": value}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def processes(lab, host: str, system_id: str) -> list[int]:
    return [pid for pid, _ in running_processes(APP).get(str(lab.path(host, svc.pidfile(system_id))), [])]


def copy_system(lab, demo, system_id: str, source: str, target: str, live: bool = False) -> None:
    """What a migration's sync does: /etc/app/<id>/ (not its runtime pid and out) and the data paths.

    `live`: a pre-sync while the service runs, where rsync's exit 24 (a file vanished: app.db-journal
    between two commits) is expected. The sync after the freeze must be clean, with --delete (a
    journal left over from the pre-sync would be taken for a hot journal and rolled back into app.db)
    and --checksum (the quick check, size and mtime in whole seconds, skips an app.db written again
    within the second of the pre-sync without growing: acknowledged writes lost).
    """
    paths = [(svc.app_dir(system_id), ["--exclude", "/pid", "--exclude", "/out"])]
    paths += [(p, []) for p in demo.systems[system_id].data_paths]
    for path, excludes in paths:
        dst = lab.path(target, path)
        dst.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["rsync", "-a", "--checksum", "--delete", *excludes, f"{lab.path(source, path)}/",
                               f"{dst}/"], capture_output=True, text=True)
        assert proc.returncode == 0 or (live and proc.returncode == 24), proc.stderr


def remove_copy(lab, demo, system_id: str, target: str) -> None:
    svc.control(lab, target, system_id, "stop")
    system = demo.systems[system_id]
    dirs = [svc.app_dir(system_id), *system.data_paths, *sorted({p.rsplit("/", 1)[0] for p in system.log_paths})]
    lab.exec(target, "rm -rf " + " ".join(shlex.quote(d) for d in dirs))


def start_checker(lab, demo, system_id: str, client: str, duration: float, rate: float) -> threading.Thread:
    """checker.py inside the gateway host, in the background; its report lands in the gateway's /root."""
    command = shlex.join([PYTHON, str(CHECKER), "--url", gw.gateway_url(demo, system_id), "--client", client,
                          "--duration", str(duration), "--rate", str(rate), "--out", f"/root/{client}.json"])
    thread = threading.Thread(target=lab.exec, args=(gw.gateway_host(demo), command), daemon=True)
    thread.start()
    return thread


def checker_report(lab, demo, thread: threading.Thread, client: str) -> dict:
    thread.join(timeout=120)
    path = lab.path(gw.gateway_host(demo), f"/root/{client}.json")
    report = json.loads(path.read_text())
    path.unlink()
    return report


def test_a_system_answers_through_the_gateway(live, lab, demo):
    system_id = candidates(live, demo)[0]
    web = gw.web_service(demo.systems[system_id])
    assert gw.route(lab, demo, system_id) == gw.inventory_route(demo, system_id) == (
        str(demo.hosts[web.host].address), web.port)
    status, headers, body = get(gw.gateway_url(demo, system_id, "/health"))
    assert (status, body, headers["X-Served-By"]) == (200, b"ok", web.host)
    assert headers["Server"].startswith("nginx")
    status, _, body = get(gw.gateway_url(demo, system_id, "/api/list"))
    assert status == 200 and json.loads(body)["system"] == system_id
    # from another lab host over SSH: the app logs that host (X-Forwarded-For), not the gateway
    client = next(h for h in sorted(demo.hosts)
                  if h not in demo.systems[system_id].hosts and h != gw.gateway_host(demo))
    marker = f"/api/detail/{uuid.uuid4().int % 10**9}"
    url = gw.gateway_url(demo, system_id, marker)
    code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=5).status)"
    assert remote.ssh(demo, client, f"python3 -c {shlex.quote(code)}").strip() == "200"
    line = remote.ssh(demo, web.host, f"grep -F {shlex.quote(marker)} {demo.systems[system_id].log_paths[0]}")
    assert line.split()[0] == str(demo.hosts[client].address)
    # nothing routes where the inventory has no system
    assert get(gw.gateway_url(demo, "no-such-system", "/health"))[0] == 404


def test_control_script_stops_and_starts_the_service(live, lab, demo):
    system_id = candidates(live, demo)[1]
    host = gw.web_service(demo.systems[system_id]).host
    url = gw.gateway_url(demo, system_id)
    client = f"control-{uuid.uuid4().hex[:8]}"
    assert post_record(url, client, 1, "before the stop") == 201
    assert svc.control(lab, host, system_id, "status").returncode == 0
    try:
        stopped = svc.control(lab, host, system_id, "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert processes(lab, host, system_id) == []  # stop returns once the process has exited
        assert svc.control(lab, host, system_id, "status").returncode == 3
        assert svc.control(lab, host, system_id, "stop").returncode == 0  # stopping again is harmless
        data = lab.path(host, f"{demo.systems[system_id].data_paths[0]}/app.db")
        assert not data.with_name("app.db-journal").exists() and not data.with_name("app.db-wal").exists()
        assert verify_db(str(data), client, [1])["count"] == 1
        assert get(url + "health")[0] == 502  # through the gateway: the system is down, not wrong
    finally:
        started = svc.control(lab, host, system_id, "start")
    assert started.returncode == 0, started.stderr
    assert svc.control(lab, host, system_id, "start").returncode == 0  # already running: no second process
    assert len(processes(lab, host, system_id)) == 1
    assert svc.control(lab, host, system_id, "status").returncode == 0
    assert svc.control(lab, host, system_id, "bogus").returncode == 2
    status, _, body = get(f"{url}api/records?client={client}")
    assert status == 200 and [r["value"] for r in json.loads(body)["records"]] == ["before the stop"]


def test_route_switches_to_a_copy_on_a_cloud_host_without_a_wrong_answer(live, lab, demo):
    system_id = candidates(live, demo)[2]
    web = gw.web_service(demo.systems[system_id])
    source, target = web.host, demo.cloud.pool[-1].host
    client = f"switch-{uuid.uuid4().hex[:8]}"
    checker = start_checker(lab, demo, system_id, client, duration=8, rate=20)
    try:
        time.sleep(2)
        copy_system(lab, demo, system_id, source, target, live=True)  # pre-sync, the source still runs
        assert svc.control(lab, source, system_id, "stop").returncode == 0  # freeze
        copy_system(lab, demo, system_id, source, target)  # final sync of quiescent files
        started = svc.control(lab, target, system_id, "start")
        assert started.returncode == 0, started.stderr
        gw.set_route(lab, demo, system_id, str(demo.hosts[target].address), web.port)
        assert gw.route(lab, demo, system_id) == (str(demo.hosts[target].address), web.port)
        report = checker_report(lab, demo, checker, client)
        summary = {k: v for k, v in report.items() if k != "log"}
        assert report["wrong_answers"] == [] and report["ok"], summary
        assert report["backends"] == [source, target], summary  # served_by changed once, at the switch
        assert set(report["errors"]) <= {"http_502"}, summary  # only while frozen
        assert report["final"]["served_by"] == target and report["final"]["missing"] == []
        acknowledged = report["acknowledged"]
        assert len(acknowledged) >= 40 and report["served_by"][source] > 0 and report["served_by"][target] > 0
        result = verify_db(str(lab.path(target, f"{demo.systems[system_id].data_paths[0]}/app.db")), client,
                           acknowledged)
        assert result["ok"], result
        # the copy logs the real client too: checker.py ran in the gateway host
        log = lab.path(target, demo.systems[system_id].log_paths[0]).read_text()
        assert f"{demo.hosts[gw.gateway_host(demo)].address} - - " in log
    finally:
        checker.join(timeout=60)
        svc.control(lab, source, system_id, "start")
        gw.set_route(lab, demo, system_id, *gw.inventory_route(demo, system_id))
        remove_copy(lab, demo, system_id, target)
    assert get(gw.gateway_url(demo, system_id, "/health"))[1]["X-Served-By"] == source


def test_the_checker_catches_writes_lost_by_a_switch_without_freeze(live, lab, demo):
    """A negative control: the source goes on taking writes after the (consistent) copy, then the route
    switches to the copy. The writes acknowledged after the copy are not on the target: the checker must say so."""
    system_id = candidates(live, demo)[3]
    web = gw.web_service(demo.systems[system_id])
    source, target = web.host, demo.cloud.pool[-2].host
    checker = Checker(gw.gateway_url(demo, system_id), f"lost-{uuid.uuid4().hex[:8]}", rate=20)
    thread = threading.Thread(target=checker.run, kwargs={"duration": 30, "final_wait": 5}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(checker.acked) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.control(lab, source, system_id, "stop").returncode == 0
        copy_system(lab, demo, system_id, source, target)
        copied = len(checker.acked)
        assert svc.control(lab, source, system_id, "start").returncode == 0  # the mistake: unfrozen again
        assert svc.control(lab, target, system_id, "start").returncode == 0
        while len(checker.acked) < copied + 5 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        gw.set_route(lab, demo, system_id, str(demo.hosts[target].address), web.port)
        while target not in checker.backends and time.monotonic() < deadline + 20:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        checker.stop.set()
        thread.join(timeout=30)
        svc.control(lab, source, system_id, "start")
        gw.set_route(lab, demo, system_id, *gw.inventory_route(demo, system_id))
        remove_copy(lab, demo, system_id, target)
    report = checker.report()
    on_source = {seq for _, kind, seq, status, host in report["log"]
                 if kind == "w" and status == 201 and host == source}
    db = lab.path(source, f"{demo.systems[system_id].data_paths[0]}/app.db")
    assert verify_db(str(db), checker.client, on_source)["ok"]  # the source has them: the switch lost them
    summary = {k: v for k, v in report.items() if k != "log"}
    assert not report["ok"], summary
    assert report["backends"][:2] == [source, target], summary
    # the lost writes show on the target (while nginx reloads, old workers may still send a request to the
    # source, which is live here, unlike in a real switch: both can answer for a moment)
    lost = [w for w in report["wrong_answers"] if w["kind"] == "lost_write"]
    assert any(w["served_by"] == target for w in lost), summary
    assert {w["kind"] for w in report["wrong_answers"]} == {"lost_write"}, summary


def test_nginx_reload_is_graceful_under_the_checker(live, lab, demo):
    system_id = candidates(live, demo)[4]
    master = gw.nginx_pid(lab, demo)
    workers = lab.exec(gw.gateway_host(demo), f"ps -o pid= --ppid {master}").stdout.split()
    client = f"reload-{uuid.uuid4().hex[:8]}"
    checker = start_checker(lab, demo, system_id, client, duration=6, rate=40)
    time.sleep(1)
    for i in range(8):
        if i % 2:
            gw.set_route(lab, demo, system_id, *gw.inventory_route(demo, system_id))  # rewrite + reload
        else:
            assert gw.reload(lab, demo) == "nginx reloaded"
        time.sleep(0.4)
    report = checker_report(lab, demo, checker, client)
    summary = {k: v for k, v in report.items() if k != "log"}
    assert report["ok"] and report["wrong_answers"] == [], summary
    assert report["errors"] == {}, summary  # not one failed request across eight reloads
    # Traffic flowed through the reloads: at least one write and one read per reload. How many more depends on
    # the machine's load (72 writes at a load average of 50), so more is not asserted.
    assert report["writes"]["acknowledged"] >= 8 and report["reads"]["correct"] >= 8
    assert gw.nginx_pid(lab, demo) == master
    now = lab.exec(gw.gateway_host(demo), f"ps -o pid=,args= --ppid {master}").stdout
    assert not set(workers) & {line.split()[0] for line in now.splitlines() if "shutting down" not in line}


def test_an_invalid_route_is_refused_and_the_old_one_kept(live, lab, demo):
    system_id = candidates(live, demo)[0]
    before = gw.route(lab, demo, system_id)
    with pytest.raises(LabError, match="set_route"):
        gw.set_route(lab, demo, system_id, "not a host", 80)
    assert gw.route(lab, demo, system_id) == before
    assert get(gw.gateway_url(demo, system_id, "/health"))[0] == 200
