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

import shlex
import subprocess
import sys
import time

import pytest

from audit.archive import archive_records
from audit.zombies import Judge
from jiyue.store import ASSET_FREED, MIGRATE_LOCATION
from lab import service as svc
from migrations.engine import STEPS, Refused
from tests.fidelity import snapshot
from tests.migrate_lab import (
    REPO,
    Clients,
    assert_each_step_done_once,
    engine_subprocess,
    failures,
    journal,
    kill,
    lab_env,
    migrator,
    same_data,
    serving,
    tree,
    wait_for_step,
)

pytestmark = pytest.mark.lab

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


# --- helpers -------------------------------------------------------------------------------------------


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(seeded, lab, demo, tmp_path_factory):
    """The lab seeded, a plan of one wave per scenario, a store and a work directory of this module's own."""
    yield from lab_env(lab, demo, tmp_path_factory.mktemp("migrate"), WAVES, BUDGETS)


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
    # The target's service is stopped and this run's copy removed from it (the source serves again).
    assert not lab.path("zwy-03", "/etc/app/wjw-jkda").exists() and not lab.path("zwy-03", "/srv/wjw-jkda").exists()
    assert not lab.path("wjw-jkda-app1", "/etc/app/wjw-jkda/MIGRATED").exists()


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
    assert not lab.path("zwy-07", "/etc/app/gaj-web").exists()  # stopped, and this run's copy removed
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
    rows = journal(store, outcomes[0].run_key, "jyj-web")
    if ("precheck", "failed") in rows:  # read-only: nothing changed, so nothing is rolled back
        assert outcomes[0].result == "failed" and "room for the data" in outcomes[0].message, outcomes[0]
        assert "nothing was changed" in outcomes[0].message and ("rollback", "started") not in rows, rows
    else:
        assert ("presync", "failed") in rows and outcomes[0].result == "rolled_back", rows
        assert "No space" in outcomes[0].message, outcomes[0].message
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
