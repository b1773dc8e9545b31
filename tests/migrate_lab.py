"""What the migration engine's lab tests share: a plan of one wave per scenario, the lab put back as seeded,
checker clients writing through the gateway, an engine in a process of its own (to be killed), and the
proofs (the serving side, the journal, file checksums on both sides).

Each test module gives its own waves (`{wave: {system: [(source, target)]}}`, its own systems and cloud-pool
targets) to `make_plan` and `lab_env`; `lab_env` puts the lab back as seeded at the end of the module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jiyue.store import Store
from lab import gateway as gw
from lab import service as svc
from lab.checker import Checker, verify_db
from lab.seed import seed
from migrations.engine import HOOKS_ENV, STEPS, Migrator
from migrations.model import Disposition, HostTarget, Plan, SystemPlan, Wave, save_plan
from tests.fidelity import SPECIAL, assert_same_tree, make_special, snapshot

REPO = Path(__file__).resolve().parent.parent
RUNTIME = {"pid", "out", "MIGRATED", "DECOMMISSIONED"}  # service runtime files and the engine's markers
DB = {"app.db", "app.db-journal", "app.db-wal", "app.db-shm"}  # the records: checked by the checker instead
Waves = dict[int, dict[str, list[tuple[str, str]]]]

# An engine of its own: `python -c ENGINE INVENTORY PLAN STORE WORKDIR wave N` (or `resume KEY`).
ENGINE = """
import sys
from pathlib import Path
import inventory
from jiyue.store import Store
from migrations.engine import Migrator
from migrations.model import load_plan
inv = inventory.load(Path(sys.argv[1]))
m = Migrator(inv, load_plan(Path(sys.argv[2])), Store(sys.argv[3]), apply=True, workdir=sys.argv[4], progress=False)
m.run_wave(int(sys.argv[6])) if sys.argv[5] == "wave" else m.resume(sys.argv[6])
"""


def make_plan(inv, waves: Waves, budgets: dict[str, int] | None = None) -> Plan:
    now = datetime.now(UTC)
    pool = {p.host: p.flavor for p in inv.cloud.pool}
    systems, planned = [], []
    for number, layout in waves.items():
        for sid, pairs in layout.items():
            s = inv.systems[sid]
            systems.append(SystemPlan(
                system=sid, name=s.name, department=s.department, disposition=Disposition.cloud_rehost,
                rule="test: cloud rehost", urgency=3, importance=3, wave=number,
                downtime_budget_s=(budgets or {}).get(sid, s.downtime_budget),
                targets=[HostTarget(source=a, target=b, flavor=pool[b], need_vcpus=0.5, need_memory_gb=1,
                                    need_disk_gb=1) for a, b in pairs]))
        planned.append(Wave(number=number, start=now + timedelta(days=number),
                            end=now + timedelta(days=number, hours=8), systems=list(layout),
                            hosts=sum(len(p) for p in layout.values()), data_bytes=0))
    plan = Plan(generated=now, inventory=inv.identity, systems=systems, waves=planned, work_orders=[])
    problems = plan.check(inv)
    assert problems == [], problems
    return plan


def lab_env(lab, demo, work: Path, waves: Waves, budgets: dict[str, int] | None = None) -> Iterator[dict]:
    """A module's scenarios: the plan of its waves, a store and a work directory of its own; afterwards the lab as
    seeded (targets stopped and emptied, markers gone; seeding again restarts the sources and puts the routes back)."""
    plan = make_plan(demo, waves, budgets)
    plan_file = save_plan(plan, work / "plan.yaml")
    store_url = f"sqlite:///{work / 'store.sqlite'}"
    mounted: list[str] = []
    for layout in waves.values():  # what a server relies on, for every migration to carry
        for sid, pairs in layout.items():
            for source, _ in pairs:
                make_special(lab.path(source, f"/srv/{sid}"))
    yield {"inv": demo, "lab": lab, "plan": plan, "plan_file": plan_file, "store_url": store_url,
           "store": Store(store_url), "work": work, "mounted": mounted}
    for target in mounted:  # only our tmpfs: /srv itself is the host's bind mount
        lab.exec(target, "if grep -qs '^jiyue-full /srv tmpfs' /proc/self/mounts; then umount /srv; fi")
    for layout in waves.values():
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


def engine_subprocess(env, wave: int | None, hooks: dict, resume: str | None = None) -> subprocess.Popen:
    """The engine migrating `wave` (or resuming the run `resume`) in a process and session of its own."""
    what = ["wave", str(wave)] if resume is None else ["resume", resume]
    return subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(env["inv"].root), str(env["plan_file"]), env["store_url"],
         str(env["work"]), *what],
        cwd=REPO, env={**os.environ, HOOKS_ENV: json.dumps(hooks), "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL to the engine's whole process group (not the playbooks: ansible-runner starts each in a session of
    its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


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


def wait_for_step(store: Store, system: str, step: str, proc: subprocess.Popen, timeout: float = 900,
                  run_key: str | None = None) -> str:
    """Wait until the engine `proc` journals `step` of `system` started (in `run_key`, if given): its run key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in store.journal_entries(subject=system, run_key=run_key):
            if e.step == step and e.status == "started":
                return e.run_key
        assert proc.poll() is None, f"the engine exited ({proc.returncode}) before {step} started"
        time.sleep(0.2)
    raise AssertionError(f"{system}: {step} did not start within {timeout} s")
