"""The migration engine on the lab: a wave end to end (its systems at once, one of them refused at its freeze)
with clients writing through the gateway, a rehearsal that changes nothing, runs killed during the pre-sync and
the final sync and resumed, a verification broken on purpose, a full target disk, two runs on one system, rollback
after a finished migration and the decommission sign-off.

Every scenario ends with proof that nothing was lost: the checker (lab/checker.py) saw no wrong answer
and every write it got acknowledged is in the serving side's app.db; the tree comparison the verification itself
uses (tests/fidelity.py) shows both sides equal in names (as bytes), types, modes, owners, contents, link
structure, holes, xattrs and ACLs: each source's data path holds tests/fidelity.py's special entries for it.
Each scenario uses its own systems and cloud-pool targets; the module puts the lab back as seeded at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.archive import archive_records
from audit.zombies import Judge
from jiyue.store import ASSET_FREED, MIGRATE_LOCATION, Store
from lab import gateway as gw
from lab import service as svc
from lab.checker import Checker, verify_db
from lab.seed import seed
from migrations.engine import HOOKS_ENV, STEPS, Migrator, Refused
from migrations.model import Disposition, HostTarget, Plan, SystemPlan, Wave, save_plan
from tests.fidelity import SPECIAL, assert_same_tree, make_special, snapshot

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parent.parent

# wave -> {system: [(source, target)]}; one wave per scenario, its own targets.
WAVES = {
    1: {"fgw-xmk": [("fgw-xmk-app1", "zwy-01"), ("fgw-xmk-db1", "zwy-02")],
        "wjw-jkda": [("wjw-jkda-app1", "zwy-03"), ("wjw-jkda-db1", "zwy-04")],
        "rsj-rczp": [("rsj-rczp-app1", "zwy-09")]},  # over its downtime budget: refused, the others go on
    2: {"zjj-jzsc": [("zjj-jzsc-app1", "zwy-10")]},  # rehearsal
    3: {"fgw-oa": [("fgw-oa-app1", "zwy-05")]},  # killed in the pre-sync; a second run refused
    4: {"szfb-web": [("szfb-web-app1", "zwy-06")]},  # killed in the final sync
    5: {"gaj-web": [("gaj-web-app1", "zwy-07")]},  # verification broken
    6: {"jyj-web": [("jyj-web-app1", "zwy-08")]},  # target disk full
}
MIGRATED_IN_1 = ("fgw-xmk", "wjw-jkda")
BUDGETS = {"rsj-rczp": 1}
RUNTIME = {"pid", "out", "MIGRATED", "DECOMMISSIONED"}  # service runtime files and the engine's markers
DB = {"app.db", "app.db-journal", "app.db-wal", "app.db-shm"}  # the records: checked by the checker instead

SUBPROCESS = """
import sys
from pathlib import Path
import inventory
from jiyue.store import Store
from migrations.engine import Migrator
from migrations.model import load_plan
inv = inventory.load(Path(sys.argv[1]))
m = Migrator(inv, load_plan(Path(sys.argv[2])), Store(sys.argv[3]), apply=True, workdir=sys.argv[4], progress=False)
m.run_wave(int(sys.argv[5]))
"""


# --- helpers -------------------------------------------------------------------------------------------


def make_plan(inv) -> Plan:
    now = datetime.now(UTC)
    pool = {p.host: p.flavor for p in inv.cloud.pool}
    systems, waves = [], []
    for number, layout in WAVES.items():
        for sid, pairs in layout.items():
            s = inv.systems[sid]
            systems.append(SystemPlan(
                system=sid, name=s.name, department=s.department, disposition=Disposition.cloud_rehost,
                rule="test: cloud rehost", urgency=3, importance=3, wave=number,
                downtime_budget_s=BUDGETS.get(sid, s.downtime_budget),
                targets=[HostTarget(source=a, target=b, flavor=pool[b], need_vcpus=0.5, need_memory_gb=1,
                                    need_disk_gb=1) for a, b in pairs]))
        waves.append(Wave(number=number, start=now + timedelta(days=number), end=now + timedelta(days=number, hours=8),
                          systems=list(layout), hosts=sum(len(p) for p in layout.values()), data_bytes=0))
    plan = Plan(generated=now, inventory=str(inv.root), systems=systems, waves=waves, work_orders=[])
    assert plan.check(inv) == []
    return plan


def tree(lab, host: str, top: str, skip_db: bool = False) -> dict[str, dict]:
    """Every entry under an in-host directory (metadata, and each file's SHA-256), read from this machine."""
    return snapshot(lab.path(host, top), RUNTIME | (DB if skip_db else set()))


def same_tree(lab, source: str, target: str, top: str, skip_db: bool = False) -> None:
    """Nothing lost between the two hosts' copies of `top` (the target's app.db may have moved on: skip_db)."""
    assert_same_tree(lab.path(source, top), lab.path(target, top), RUNTIME | (DB if skip_db else set()))


def same_data(lab, system: str, pairs) -> None:
    for source, target in pairs:
        same_tree(lab, source, target, f"/srv/{system}", skip_db=True)
        same_tree(lab, source, target, f"/etc/app/{system}")


class Clients:
    """Checker clients writing and reading through the gateway while a migration runs."""

    def __init__(self, inv, systems: list[str], rate: float = 5.0) -> None:
        self.checkers = {s: Checker(gw.gateway_url(inv, s), f"migrate-test-{s}-{os.getpid()}-{time.time_ns()}",
                                    rate=rate, timeout=2.0) for s in systems}
        self.reports: dict[str, dict] = {}
        self.threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in systems]

    def _run(self, system: str) -> None:
        self.reports[system] = self.checkers[system].run(duration=900, final_wait=30)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        time.sleep(2)  # some acknowledged writes before the migration starts
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(2)  # and some after
        for c in self.checkers.values():
            c.stop.set()
        for t in self.threads:
            t.join(120)

    def assert_ok(self, system: str, db_host: str, lab) -> dict:
        """No wrong answer, every acknowledged write in the final read and in the serving side's app.db."""
        report = self.reports[system]
        assert report["wrong_answer_count"] == 0, report["wrong_answers"]
        assert report["final"]["status"] == 200 and report["final"]["missing"] == [], report["final"]
        assert report["acknowledged"], f"{system}: no write was acknowledged at all"
        on_disk = verify_db(str(lab.path(db_host, f"/srv/{system}/app.db")), self.checkers[system].client,
                            report["acknowledged"])
        assert on_disk["ok"], on_disk
        return report


def serving(lab, inv, system: str, host: str) -> None:
    """The system is served by `host`: route, service status, health through the gateway."""
    route = gw.route(lab, inv, system)
    assert route is not None and route[0] == str(inv.hosts[host].address), route
    assert svc.control(lab, host, system, "status").returncode == 0
    import urllib.request
    with urllib.request.urlopen(gw.gateway_url(inv, system, "/health"), timeout=5) as response:
        assert response.status == 200


def journal(store: Store, run_key: str, system: str) -> list[tuple[str, str]]:
    return [(e.step, e.status) for e in store.journal_entries(run_key=run_key, subject=system)]


def failures(store: Store, run_key: str, system: str) -> str:
    """The journal's failed rows with their errors, for an assertion's message."""
    return "\n".join(f"{e.step}: {e.detail}" for e in store.journal_entries(run_key=run_key, subject=system)
                     if e.status == "failed") or "no failed step"


def assert_each_step_done_once(store: Store, run_key: str, system: str) -> None:
    rows = journal(store, run_key, system)
    for step in STEPS:
        assert rows.count((step, "done")) == 1, (step, rows)


def wait_for_step(store: Store, system: str, step: str, proc: subprocess.Popen, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in store.journal_entries(subject=system):
            if e.step == step and e.status == "started":
                return e.run_key
        assert proc.poll() is None, f"the engine exited ({proc.returncode}) before {step} started"
        time.sleep(0.2)
    raise AssertionError(f"{system}: {step} did not start within {timeout} s")


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(seeded, lab, demo, tmp_path_factory):
    """The lab seeded, a plan of one wave per scenario, a store and a work directory of this module's own."""
    work = tmp_path_factory.mktemp("migrate")
    plan = make_plan(demo)
    plan_file = save_plan(plan, work / "plan.yaml")
    store_url = f"sqlite:///{work / 'store.sqlite'}"
    mounted: list[str] = []
    for layout in WAVES.values():  # what a server relies on, for every migration to carry
        for sid, pairs in layout.items():
            for source, _ in pairs:
                make_special(lab.path(source, f"/srv/{sid}"))
    yield {"inv": demo, "lab": lab, "plan": plan, "plan_file": plan_file, "store_url": store_url,
           "store": Store(store_url), "work": work, "mounted": mounted}
    # Put the lab back as seeded: targets stopped and emptied, markers gone, seeding again restarts the
    # sources' services and puts the routes back.
    for target in mounted:  # only our tmpfs: /srv itself is the host's bind mount
        lab.exec(target, "if grep -qs '^jiyue-full /srv tmpfs' /proc/self/mounts; then umount /srv; fi")
    for layout in WAVES.values():
        for sid, pairs in layout.items():
            for source, target in pairs:
                lab.exec(target, f"[ -x /etc/app/{sid}/service ] && /etc/app/{sid}/service stop; "
                                 f"rm -rf /etc/app/{sid} /srv/{sid}")
                lab.exec(source, f"rm -rf /etc/app/{sid}/MIGRATED /etc/app/{sid}/DECOMMISSIONED /srv/{sid}/{SPECIAL}")
    seed(lab, demo)


def migrator(env, apply: bool = True, hooks: dict | None = None, monkeypatch=None) -> Migrator:
    if monkeypatch is not None:
        if hooks:
            monkeypatch.setenv(HOOKS_ENV, json.dumps(hooks))
        else:
            monkeypatch.delenv(HOOKS_ENV, raising=False)
    return Migrator(env["inv"], env["plan"], env["store"], apply=apply, workdir=env["work"], progress=False)


def engine_subprocess(env, wave: int, hooks: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS, str(env["inv"].root), str(env["plan_file"]), env["store_url"],
         str(env["work"]), str(wave)],
        cwd=REPO, env={**os.environ, HOOKS_ENV: json.dumps(hooks), "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


# --- scenarios -----------------------------------------------------------------------------------------


def test_rehearsal_changes_nothing(env, monkeypatch):
    lab, inv = env["lab"], env["inv"]
    hosts = {"zjj-jzsc-app1", "zwy-10", inv.cloud.gateway}
    watched = ["/srv", "/etc/app"]
    before = {(h, d): tree(lab, h, d) for h in hosts for d in watched}
    outcomes = migrator(env, apply=False, monkeypatch=monkeypatch).run_wave(2)
    assert [(o.system, o.result) for o in outcomes] == [("zjj-jzsc", "rehearsed")], outcomes
    assert outcomes[0].steps_run == list(STEPS)
    after = {(h, d): tree(lab, h, d) for h in hosts for d in watched}
    assert after == before
    serving(lab, inv, "zjj-jzsc", "zjj-jzsc-app1")
    assert not lab.path("zwy-10", "/srv/zjj-jzsc").exists()


def test_wave_end_to_end(env, monkeypatch):
    """The wave's three systems migrate at once (the default --parallel 4): two move, the third is refused at its
    freeze (over budget, see test_over_budget_freeze_is_refused) and that stops neither of the others; the two
    cutovers take turns (the default --cutovers 1)."""
    lab, inv, store = env["lab"], env["inv"], env["store"]
    m = migrator(env, monkeypatch=monkeypatch)
    with Clients(inv, list(WAVES[1])) as clients:
        outcomes = m.run_wave(1)
    assert [(o.system, o.result) for o in outcomes] == [("fgw-xmk", "migrated"), ("wjw-jkda", "migrated"),
                                                        ("rsj-rczp", "refused")], outcomes
    env["wave1"] = outcomes[0].run_key
    # Concurrently: each system's run started before each other's ended (journal order, not timing).
    rows = store.journal_entries(run_key=outcomes[0].run_key)
    span = {s: (next(e.id for e in rows if e.subject == s and e.step == "precheck"),
                max(e.id for e in rows if e.subject == s)) for s in WAVES[1]}
    for a in WAVES[1]:
        for b in WAVES[1]:
            assert span[a][0] < span[b][1], (a, b, span)
    # ... but their cutovers took turns (the default --cutovers 1): one froze only after the other was verified.
    cut = {s: (next(e.id for e in rows if e.subject == s and e.step == "freeze" and e.status == "started"),
               next(e.id for e in rows if e.subject == s and e.step == "verify_function" and e.status == "done"))
           for s in ("fgw-xmk", "wjw-jkda")}
    first, second = sorted(cut.values())
    assert first[1] < second[0], cut
    clients.assert_ok("rsj-rczp", "rsj-rczp-app1", lab)
    outcomes = outcomes[:2]
    for o in outcomes:
        assert o.downtime_s is not None and 0 < o.downtime_s < 300, o
        assert o.outage_s is not None and 0 < o.outage_s <= o.downtime_s, o
        assert_each_step_done_once(store, o.run_key, o.system)
        pairs = WAVES[1][o.system]
        web_target = pairs[0][1]
        serving(lab, inv, o.system, web_target)
        report = clients.assert_ok(o.system, web_target, lab)
        assert report["backends"][-1] == web_target, report["backends"]
        details = {e.step: e.detail for e in store.journal_entries(run_key=o.run_key, subject=o.system)
                   if e.status == "done"}
        for source, target in pairs:
            # The source: intact, disabled, marked; its data exactly what was verified at the cutover.
            assert svc.control(lab, source, o.system, "status").returncode == 3
            marker = lab.path(source, f"/etc/app/{o.system}/MIGRATED").read_text()
            assert target in marker and "migrated_at" in marker
            verified = details["verify_data"]["manifests"]
            for top in (f"/srv/{o.system}", f"/etc/app/{o.system}"):
                assert verified[source][top] == verified[target][top], (source, target, top)
                seen = snapshot(lab.path(source, top), {"MIGRATED"})
                assert verified[source][top]["entries"] == len(seen), (source, top)
        # Every entry equal on both sides (the target's app.db has moved on since: its records are checked
        # above, every acknowledged write is in it).
        same_data(lab, o.system, pairs)
    locations = store.history(MIGRATE_LOCATION, targets=list(MIGRATED_IN_1))
    assert {r.target: r.data["hosts"] for r in locations} == {s: dict(WAVES[1][s]) for s in MIGRATED_IN_1}
    assert not store.locks()
    # the archive records the new location
    judge = Judge(inv, store)
    records = {r["id"]: r for r in archive_records(inv, judge.judge_all(), {}, "en", locations=judge.history.locations)}
    for system in MIGRATED_IN_1:
        pairs = WAVES[1][system]
        assert records[system]["location"].startswith("Migrated to the cloud")
        assert all(f"{source} → {target}" in records[system]["location"] for source, target in pairs)
    assert records["szfb-oa"]["location"] == "Its department's hosts"
    # Running it again never moves a migrated system a second time.
    again = migrator(env, monkeypatch=monkeypatch).run_system("fgw-xmk")
    assert (again.result, again.run_key) == ("already_migrated", outcomes[0].run_key), again


def test_rollback_after_migration_brings_back_what_the_target_received(env, monkeypatch):
    lab, inv = env["lab"], env["inv"]
    with Clients(inv, ["wjw-jkda"]) as clients:
        time.sleep(3)  # writes acknowledged by the target
        outcome = migrator(env, monkeypatch=monkeypatch).rollback("wjw-jkda")
    assert outcome.result == "rolled_back", outcome
    serving(lab, inv, "wjw-jkda", "wjw-jkda-app1")
    report = clients.assert_ok("wjw-jkda", "wjw-jkda-app1", lab)
    assert "zwy-03" in report["backends"] and report["backends"][-1] == "wjw-jkda-app1", report["backends"]
    assert svc.control(lab, "zwy-03", "wjw-jkda", "status").returncode == 3
    assert not lab.path("wjw-jkda-app1", "/etc/app/wjw-jkda/MIGRATED").exists()
    same_data(lab, "wjw-jkda", WAVES[1]["wjw-jkda"])  # what came back is what the target held


def test_decommission_needs_grace_period_and_sign_off(env, monkeypatch):
    lab = env["lab"]
    m = migrator(env, monkeypatch=monkeypatch)
    with pytest.raises(Refused, match="grace period"):
        m.decommission("fgw-xmk", "王主任")
    with pytest.raises(Refused, match="sign-off"):
        m.decommission("fgw-xmk", " ", force=True)
    with pytest.raises(Refused, match="not migrated"):
        m.decommission("wjw-jkda", "王主任", force=True)  # rolled back above
    outcome = m.decommission("fgw-xmk", "王主任", force=True)
    assert outcome.result == "decommissioned", outcome
    for source, _ in WAVES[1]["fgw-xmk"]:
        assert not lab.path(source, "/srv/fgw-xmk").exists()
        assert "王主任" in lab.path(source, "/etc/app/fgw-xmk/DECOMMISSIONED").read_text()
    # the sources are freed hardware now: the audit's asset list reads them from the store
    freed = {r.target: r.data for r in env["store"].history(ASSET_FREED)}
    assert set(freed) == {source for source, _ in WAVES[1]["fgw-xmk"]}
    assert all(d["cause"] == "migrated_source" and d["signed_off_by"] == "王主任" for d in freed.values())
    serving(lab, env["inv"], "fgw-xmk", "zwy-01")  # the target serves on


def test_killed_in_presync_resumes_and_a_second_run_is_refused(env, monkeypatch):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    with Clients(inv, ["fgw-oa"]) as clients:
        proc = engine_subprocess(env, 3, {"pause": {"presync": 120}})
        try:
            run_key = wait_for_step(store, "fgw-oa", "presync", proc)
            time.sleep(4)  # past the first pass, into the pause between the passes
            second = migrator(env, monkeypatch=monkeypatch).run_system("fgw-oa")
            assert second.result == "locked", second
            assert journal(store, second.run_key, "fgw-oa")[-1] == ("lock", "refused")
        finally:
            kill(proc)
        assert journal(store, run_key, "fgw-oa")[-1] == ("presync", "started")
        outcomes = migrator(env, monkeypatch=monkeypatch).resume(run_key)
    assert [(o.system, o.result) for o in outcomes] == [("fgw-oa", "migrated")], outcomes
    assert outcomes[0].steps_run == list(STEPS[1:])  # the precheck had finished: not repeated
    assert_each_step_done_once(store, run_key, "fgw-oa")
    assert journal(store, run_key, "fgw-oa").count(("presync", "started")) == 2
    serving(lab, inv, "fgw-oa", "zwy-05")
    clients.assert_ok("fgw-oa", "zwy-05", lab)
    same_data(lab, "fgw-oa", WAVES[3]["fgw-oa"])


def test_killed_in_final_sync_resumes(env, monkeypatch):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    with Clients(inv, ["szfb-web"]) as clients:
        proc = engine_subprocess(env, 4, {"pause": {"final_sync": 120}})
        try:
            run_key = wait_for_step(store, "szfb-web", "final_sync", proc)
            time.sleep(2)
        finally:
            kill(proc)
        assert journal(store, run_key, "szfb-web")[-1] == ("final_sync", "started")
        assert svc.control(lab, "szfb-web-app1", "szfb-web", "status").returncode == 3  # frozen
        outcomes = migrator(env, monkeypatch=monkeypatch).resume()
    assert [(o.system, o.result) for o in outcomes] == [("szfb-web", "migrated")], outcomes
    assert outcomes[0].steps_run == ["final_sync", "verify_data", "switch", "verify_function", "done"]
    assert_each_step_done_once(store, run_key, "szfb-web")
    serving(lab, inv, "szfb-web", "zwy-06")
    clients.assert_ok("szfb-web", "zwy-06", lab)
    same_data(lab, "szfb-web", WAVES[4]["szfb-web"])


def test_broken_verification_rolls_back_to_the_source(env, monkeypatch):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    before = tree(lab, "gaj-web-app1", "/srv/gaj-web", skip_db=True)
    m = migrator(env, hooks={"target_health_path": "/no-such-health-check"}, monkeypatch=monkeypatch)
    with Clients(inv, ["gaj-web"]) as clients:
        outcomes = m.run_wave(5)
    assert [(o.system, o.result) for o in outcomes] == [("gaj-web", "rolled_back")], outcomes
    rows = journal(store, outcomes[0].run_key, "gaj-web")
    assert ("switch", "failed") in rows and ("rollback", "done") in rows and ("switch", "rolled_back") in rows, \
        failures(store, outcomes[0].run_key, "gaj-web")
    serving(lab, inv, "gaj-web", "gaj-web-app1")
    assert svc.control(lab, "zwy-07", "gaj-web", "status").returncode == 3
    clients.assert_ok("gaj-web", "gaj-web-app1", lab)
    assert tree(lab, "gaj-web-app1", "/srv/gaj-web", skip_db=True) == before
    assert not store.locks()


def test_full_target_disk_stops_cleanly(env, monkeypatch):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    mount = lab.exec("zwy-08", "mount -t tmpfs -o size=16k jiyue-full /srv")
    assert mount.returncode == 0, mount.stderr
    env["mounted"].append("zwy-08")
    before = tree(lab, "jyj-web-app1", "/srv/jyj-web", skip_db=True)
    with Clients(inv, ["jyj-web"]) as clients:
        outcomes = migrator(env, monkeypatch=monkeypatch).run_wave(6)
    assert [(o.system, o.result) for o in outcomes] == [("jyj-web", "rolled_back")], outcomes
    assert "room for the data" in outcomes[0].message or "No space" in outcomes[0].message, outcomes[0].message
    rows = journal(store, outcomes[0].run_key, "jyj-web")
    assert ("precheck", "failed") in rows or ("presync", "failed") in rows, rows
    serving(lab, inv, "jyj-web", "jyj-web-app1")
    clients.assert_ok("jyj-web", "jyj-web-app1", lab)
    assert tree(lab, "jyj-web-app1", "/srv/jyj-web", skip_db=True) == before


def test_over_budget_freeze_is_refused(env):
    """rsj-rczp was refused in wave 1 (test_wave_end_to_end): cleanly, before any freeze."""
    lab, inv, store = env["lab"], env["inv"], env["store"]
    rows = journal(store, env["wave1"], "rsj-rczp")
    assert rows[-1] == ("freeze", "refused") and ("rollback", "started") not in rows, rows
    detail = store.journal_entries(run_key=env["wave1"], subject="rsj-rczp")[-1].detail
    assert detail["budget_s"] == 1 and detail["estimate_s"] > 1
    serving(lab, inv, "rsj-rczp", "rsj-rczp-app1")
    assert not store.locks()


def test_tasks_status_and_bad_input(env):
    base = [sys.executable, "-m", "jiyue"]
    common = ["--inventory", str(env["inv"].root), "--plan", str(env["plan_file"]), "--store", env["store_url"],
              "--workdir", str(env["work"])]
    status = subprocess.run([*base, "migrate.status", *common], cwd=REPO, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    for system in ("fgw-oa", "szfb-web", "gaj-web", "rsj-rczp"):
        assert system in status.stdout
    bad = subprocess.run([*base, "migrate.run", "--wave", "99", *common], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "no wave 99" in bad.stderr, bad.stderr
    none_at_once = subprocess.run([*base, "migrate.run", "--wave", "1", "--parallel", "0", *common], cwd=REPO,
                                  capture_output=True, text=True)
    assert none_at_once.returncode == 2 and "--parallel" in none_at_once.stderr, none_at_once.stderr
    no_turns = subprocess.run([*base, "migrate.run", "--wave", "1", "--cutovers", "none", *common], cwd=REPO,
                              capture_output=True, text=True)
    assert no_turns.returncode == 2 and "--cutovers must be a number" in no_turns.stderr, no_turns.stderr
    early = subprocess.run([*base, "migrate.decommission", "--system", "fgw-oa", "--signed-off-by", "x", *common],
                           cwd=REPO, capture_output=True, text=True)
    assert early.returncode == 1 and "grace period" in early.stderr, shlex.join(early.args)
