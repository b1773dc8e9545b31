"""The migration engine recovers without losing a write, a byte of disk or a process: the lab cases of issue #13.

- A run killed (SIGKILL) once its functional verification has started leaves the target serving clients. A new run
  of the system is refused and points to `migrate.resume`, also after `migrate.unlock` (it used to start over, fail
  its precheck on the target's busy port and route the clients back without their writes); the resumed run
  finishes, and every acknowledged write is on the target.
- The same kill, then `migrate.rollback`: what the target received is copied back and verified before the route
  moves; this run's copy leaves the target (a directory that was there before is left, and reported).
- A killed engine's `ansible-playbook` (in a session of its own) is ended by the engine's watchdog; when the
  watchdog is killed too, the next run on the system ends the orphan before it acts.

The checker (lab/checker.py) and `verify_db` prove that no acknowledged write was lost. Each scenario has its own
system and cloud-pool target; the module puts the lab back as seeded at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from lab import gateway as gw
from migrations.reaper import GUARDS, carrying
from tests.migrate_lab import (
    Clients,
    engine_subprocess,
    journal,
    kill,
    lab_env,
    migrator,
    serving,
    tree,
    wait_for_step,
)

pytestmark = pytest.mark.lab

WAVES = {
    11: {"dxzf-web": [("dxzf-web-app1", "zwy-26")]},  # killed in verify_function, refused, unlocked, resumed
    12: {"wjw-yqdj": [("wjw-yqdj-app1", "zwy-35")]},  # killed in verify_function, rolled back
    13: {"wjw-jtys": [("wjw-jtys-app1", "zwy-37")]},  # killed in the pre-sync: its playbook ended, twice
}
HOLD = 600  # s: a pause longer than any test, so whatever ends it is the engine's doing


@pytest.fixture(scope="module")
def env(seeded, lab, demo, tmp_path_factory):
    yield from lab_env(lab, demo, tmp_path_factory.mktemp("recovery"), WAVES)


def killed_in_verify_function(env, wave: int, system: str, target: str) -> str:
    """Run the wave in an engine of its own and kill it (SIGKILL) once the target serves and verify_function has
    started; the run's key."""
    proc = engine_subprocess(env, wave, {"pause": {"verify_function": HOLD}})
    try:
        run_key = wait_for_step(env["store"], system, "verify_function", proc, timeout=300)
        route = gw.route(env["lab"], env["inv"], system)
        assert route is not None and route[0] == str(env["inv"].hosts[target].address), route
        time.sleep(3)  # the target takes writes
    finally:
        kill(proc)
    assert journal(env["store"], run_key, system)[-1] == ("verify_function", "started")
    return run_key


def test_a_new_run_of_an_unfinished_one_is_refused_and_resume_loses_no_write(env, monkeypatch):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    with Clients(inv, ["dxzf-web"]) as clients:
        run_key = killed_in_verify_function(env, 11, "dxzf-web", "zwy-26")
        again = migrator(env, monkeypatch=monkeypatch).run_system("dxzf-web")
        assert (again.result, again.run_key) == ("unfinished", run_key), again
        assert f"migrate.resume --run-key {run_key} --apply" in again.message, again.message
        assert migrator(env, monkeypatch=monkeypatch).break_lock("dxzf-web")
        after_unlock = migrator(env, monkeypatch=monkeypatch).run_system("dxzf-web")
        assert after_unlock.result == "unfinished" and "migrate.resume" in after_unlock.message, after_unlock
        assert journal(store, run_key, "dxzf-web")[-1] == ("verify_function", "started")  # nothing ran
        serving(lab, inv, "dxzf-web", "zwy-26")  # nothing moved the clients away
        outcomes = migrator(env, monkeypatch=monkeypatch).resume(run_key)
    assert [(o.system, o.result) for o in outcomes] == [("dxzf-web", "migrated")], outcomes
    assert outcomes[0].steps_run == ["verify_function", "done"]
    serving(lab, inv, "dxzf-web", "zwy-26")
    clients.assert_ok("dxzf-web", "zwy-26", lab)


def test_rollback_of_a_served_target_copies_back_verifies_and_cleans_up(env, monkeypatch):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    # A directory the target held before the run: never removed by the cleanup, reported as left behind.
    assert lab.exec("zwy-35", "mkdir -p /srv/wjw-yqdj && echo before > /srv/wjw-yqdj/keep").returncode == 0
    with Clients(inv, ["wjw-yqdj"]) as clients:
        run_key = killed_in_verify_function(env, 12, "wjw-yqdj", "zwy-35")
        outcome = migrator(env, monkeypatch=monkeypatch).rollback("wjw-yqdj")
    assert outcome.result == "rolled_back", outcome
    serving(lab, inv, "wjw-yqdj", "wjw-yqdj-app1")
    report = clients.assert_ok("wjw-yqdj", "wjw-yqdj-app1", lab)  # what the target took is on the source
    assert "zwy-35" in report["backends"] and report["backends"][-1] == "wjw-yqdj-app1", report["backends"]
    done = next(e.detail for e in store.journal_entries(run_key=run_key, subject="wjw-yqdj")
                if (e.step, e.status) == ("rollback", "done"))
    assert done["reverse_sync"] is True, done
    # This run's copy is gone from the target; what was there before stays, named with its size.
    assert not lab.path("zwy-35", "/etc/app/wjw-yqdj").exists()
    assert not lab.path("zwy-35", "/var/lib/jiyue/manifests/wjw-yqdj.json").exists()
    assert [(r["host"], r["path"]) for r in done["removed"]] == [("zwy-35", "/etc/app/wjw-yqdj")], done
    assert [(r["host"], r["path"]) for r in done["left_behind"]] == [("zwy-35", "/srv/wjw-yqdj")], done
    assert done["left_behind"][0]["bytes"] > 0 and "LEFT BEHIND" in outcome.message, outcome.message
    assert "zwy-35:/srv/wjw-yqdj" in outcome.message
    assert tree(lab, "wjw-yqdj-app1", "/srv/wjw-yqdj", skip_db=True) == tree(lab, "zwy-35", "/srv/wjw-yqdj",
                                                                             skip_db=True)
    # Over: a second rollback does nothing (it never copies the emptied target over the source again).
    again = migrator(env, monkeypatch=monkeypatch).rollback("wjw-yqdj")
    assert again.steps_run == [] and "nothing to roll back" in again.message, again


def _guard(work: Path, system: str, proc, known: set[str]) -> str:
    """The token of the engine's playbook run now under way (a guard file not in `known`), once its processes run."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in (work / "runner" / system / GUARDS).glob("*.json"):
            token = json.loads(path.read_text())["token"]
            if token not in known and any("ansible-playbook" in p.command for p in carrying(token)):
                return token
        assert proc.poll() is None, "the engine exited"
        time.sleep(0.2)
    raise AssertionError("no guarded playbook run appeared")


def _until_gone(token: str, seconds: float = 60) -> list:
    deadline = time.monotonic() + seconds
    while (left := carrying(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _watchdog_of(engine_pid: int) -> int:
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"migrations.reaper" in argv and str(engine_pid).encode() in argv:
                return int(entry.name)
    raise AssertionError(f"no watchdog for engine {engine_pid}")


def test_a_killed_engine_leaves_no_playbook_running(env, monkeypatch):
    store, work = env["store"], env["work"]
    hooks = {"pause": {"presync": HOLD}}
    # 1. SIGKILL to the engine alone: its watchdog ends the playbook it was running (a sleep of HOLD s).
    proc = engine_subprocess(env, 13, hooks)
    run_key = wait_for_step(store, "wjw-jtys", "presync", proc)
    first = _guard(work, "wjw-jtys", proc, set())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert _until_gone(first) == []
    # 2. The engine resumed, then killed with its watchdog: the playbook is an orphan...
    proc = engine_subprocess(env, None, hooks, resume=run_key)
    second = _guard(work, "wjw-jtys", proc, {first})
    os.kill(_watchdog_of(proc.pid), signal.SIGKILL)
    kill(proc)
    assert any("ansible-playbook" in p.command for p in carrying(second))
    # ... which the next run on the system ends before it acts.
    outcomes = migrator(env, monkeypatch=monkeypatch).resume(run_key)
    assert carrying(second) == []
    assert [(o.system, o.result) for o in outcomes] == [("wjw-jtys", "migrated")], outcomes
    rows = journal(store, run_key, "wjw-jtys")
    ended = rows.index(("orphan", "ended"))
    assert rows[ended + 1] == ("presync", "started"), rows
    orphan = next(e.detail for e in store.journal_entries(run_key=run_key, subject="wjw-jtys") if e.step == "orphan")
    assert any("ansible-playbook" in p["command"] and p["playbook"] == "presync" for p in orphan["processes"]), orphan
    serving(env["lab"], env["inv"], "wjw-jtys", "zwy-37")


def test_an_interrupted_playbook_leaves_nothing_running(tmp_path):
    """What a playbook run started (here a process of its own session, as ansible-runner's is) ends with it, even
    when the run is interrupted (Ctrl-C in the engine)."""
    import subprocess

    from migrations.reaper import guarded

    with pytest.raises(KeyboardInterrupt), guarded(tmp_path, playbook="presync") as token:
        child = subprocess.Popen(["sleep", str(HOLD)], env={**os.environ, **token}, start_new_session=True)
        raise KeyboardInterrupt
    assert child.wait(30) == -signal.SIGKILL
    assert not list((tmp_path / GUARDS).iterdir())


def test_a_failed_check_ends_its_run_and_an_unfinished_run_is_owed():
    from migrations.journal import due, outcome_of

    assert outcome_of({"queued": "done", "precheck": "failed"}) == "failed"  # nothing changed: over
    assert due({"queued": "done", "precheck": "failed"}) is None
    assert due({"queued": "done", "precheck": "done", "switch": "done", "verify_function": "started"}) == "resume"
    assert due({"switch": "failed", "rollback": "failed"}) == "rollback"
    assert due({"switch": "failed", "rollback": "done"}) is None


def test_what_a_rollback_removed_and_left_behind_is_read_from_its_reports():
    from migrations.journal import cleanup_detail
    from migrations.playbook import PlaybookResult

    lines = ["removed\t12\t/etc/app/x", "left\t5\t/srv/x\tit was there before this run"]
    result = PlaybookResult(True, "successful", reports={"cleanup": {"zwy-1": {"lines": lines, "error": ""}}})
    removed, left = cleanup_detail(result, {"zwy-1": ["/etc/app/x"], "zwy-2": ["/srv/y"]})
    assert removed == [{"host": "zwy-1", "path": "/etc/app/x", "bytes": 12}]
    assert left == [{"host": "zwy-1", "path": "/srv/x", "bytes": 5, "why": "it was there before this run"},
                    {"host": "zwy-2", "path": "/srv/y", "bytes": None, "why": "the target did not answer: not removed"}]
