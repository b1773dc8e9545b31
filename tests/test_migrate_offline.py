"""Taking a zombie of the sample city offline on the lab (fgw-hgjj: criterion 3, two hosts, a web service and a
database): a rehearsal that changes nothing; the sign-off; offline for real (route gone, services stopped, each
host's data archived on the archive host with its SHA-256 manifest and verified, the hosts held with their data
untouched); the grace period refusing the decommission; a rollback within it that brings the system back; then,
taken offline again, a damaged archive that stops the decommission before anything is deleted, and the
decommission that frees the hosts (recorded as freed assets) once the archive verifies.

Every check of the archive is made here independently of the engine: this test hashes both sides itself and
runs `sha256sum -c` on the archive host. The module puts the lab back as seeded at the end.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jiyue.store import ASSET_FREED, Store
from lab import gateway as gw
from lab import service as svc
from lab.seed import seed
from migrations.engine import OFFLINE_STEPS, MigrationError, Migrator, Refused
from migrations.model import Disposition, Plan, SystemPlan, save_plan

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parent.parent

ZOMBIE = "fgw-hgjj"
HOSTS = ("fgw-hgjj-app1", "fgw-hgjj-db1")
WEB = "fgw-hgjj-app1"
DATA = "/srv/fgw-hgjj"
ARCHIVE_HOST = "zwy-gd"  # migrations/planning.yaml: decommission.archive
ARCHIVE = f"/srv/archive/{ZOMBIE}"
RUNTIME = {"pid", "out", "OFFLINE", "DECOMMISSIONED"}  # service runtime files and the engine's markers


def make_plan(inv) -> Plan:
    s = inv.systems[ZOMBIE]
    plan = Plan(generated=datetime.now(UTC), inventory=str(inv.root), waves=[], work_orders=[], systems=[
        SystemPlan(system=ZOMBIE, name=s.name, department=s.department, disposition=Disposition.decommission,
                   rule="test: zombie (criterion 3)", urgency=3, importance=3)])
    assert plan.check(inv) == []
    return plan


def tree(lab, host: str, top: str) -> dict[str, tuple[int, str]]:
    """path -> (size, sha256) of every file under an in-host directory, read from this machine."""
    base = lab.path(host, top)
    return {str(p.relative_to(base)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(base.rglob("*")) if p.is_file() and p.name not in RUNTIME}


def gateway_status(inv) -> int:
    try:
        with urllib.request.urlopen(gw.gateway_url(inv, ZOMBIE, "/health"), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def serving(lab, inv) -> None:
    """The zombie serves from its own hosts: route, services, health through the gateway."""
    assert gw.route(lab, inv, ZOMBIE) == (str(inv.hosts[WEB].address), 8080)
    for host in HOSTS:
        assert svc.control(lab, host, ZOMBIE, "status").returncode == 0, host
    assert gateway_status(inv) == 200


def journal(store: Store, run_key: str) -> list[tuple[str, str]]:
    return [(e.step, e.status) for e in store.journal_entries(run_key=run_key, subject=ZOMBIE)]


@pytest.fixture(scope="module")
def env(seeded, lab, demo, tmp_path_factory):
    work = tmp_path_factory.mktemp("offline")
    plan = make_plan(demo)
    store_url = f"sqlite:///{work / 'store.sqlite'}"
    yield {"inv": demo, "lab": lab, "plan": plan, "plan_file": save_plan(plan, work / "plan.yaml"),
           "store_url": store_url, "store": Store(store_url), "work": work}
    lab.exec(ARCHIVE_HOST, f"rm -rf {ARCHIVE}")
    for host in HOSTS:
        lab.exec(host, f"rm -f /etc/app/{ZOMBIE}/OFFLINE /etc/app/{ZOMBIE}/DECOMMISSIONED")
    seed(lab, demo)  # services, routes and data back as the scenario has them


def migrator(env, apply: bool = True) -> Migrator:
    return Migrator(env["inv"], env["plan"], env["store"], apply=apply, workdir=env["work"], progress=False)


def test_rehearsal_changes_nothing(env):
    lab, inv = env["lab"], env["inv"]
    watched = [(h, d) for h in HOSTS for d in (DATA, f"/etc/app/{ZOMBIE}")] + [(inv.cloud.gateway, "/etc/app/gateway")]
    before = {w: tree(lab, *w) for w in watched}
    outcome = migrator(env, apply=False).take_offline(ZOMBIE, "王主任")
    assert outcome.result == "rehearsed", outcome
    assert outcome.steps_run == list(OFFLINE_STEPS)
    assert {w: tree(lab, *w) for w in watched} == before
    assert not lab.path(ARCHIVE_HOST, ARCHIVE).exists()
    serving(lab, inv)


def test_sign_off_is_required(env):
    with pytest.raises(Refused, match="sign-off"):
        migrator(env).take_offline(ZOMBIE, " ")
    with pytest.raises(MigrationError, match="not in the plan"):
        migrator(env).take_offline("fgw-xmk", "王主任")  # only a zombie of the plan goes offline
    base = [sys.executable, "-m", "jiyue", "migrate.offline", "--system", ZOMBIE, "--inventory",
            str(env["inv"].root), "--plan", str(env["plan_file"]), "--store", env["store_url"],
            "--workdir", str(env["work"])]
    unsigned = subprocess.run(base, cwd=REPO, capture_output=True, text=True)
    assert unsigned.returncode == 2 and "--signed-off-by" in unsigned.stderr, unsigned.stderr


def assert_archived(lab) -> None:
    """Each host's data is on the archive host, file for file, with a manifest sha256sum itself verifies."""
    for host in HOSTS:
        assert tree(lab, ARCHIVE_HOST, f"{ARCHIVE}/{host}{DATA}") == tree(lab, host, DATA), host
        sums = lab.path(ARCHIVE_HOST, f"{ARCHIVE}/{host}/SHA256SUMS").read_text().splitlines()
        assert len(sums) == len(tree(lab, host, DATA)) > 0, host
        check = lab.exec(ARCHIVE_HOST, f"cd {ARCHIVE}/{host} && sha256sum --strict -c SHA256SUMS")
        assert check.returncode == 0, check.stdout + check.stderr


def test_offline_then_rolled_back_within_the_grace_period(env):
    lab, inv, store = env["lab"], env["inv"], env["store"]
    data_before = {h: tree(lab, h, DATA) for h in HOSTS}
    assert all(data_before.values())
    outcome = migrator(env).take_offline(ZOMBIE, "王主任")
    assert outcome.result == "offline", outcome
    rows = journal(store, outcome.run_key)
    for step in OFFLINE_STEPS:
        assert rows.count((step, "done")) == 1, (step, rows)
    # 1. no route; 2. services stopped; 3. archived and verified; 4. hosts held, data untouched.
    assert gw.route(lab, inv, ZOMBIE) is None
    assert gateway_status(inv) == 404
    for host in HOSTS:
        assert svc.control(lab, host, ZOMBIE, "status").returncode == 3, host
        marker = lab.path(host, f"/etc/app/{ZOMBIE}/OFFLINE").read_text()
        assert "王主任" in marker and "grace_until" in marker and ARCHIVE_HOST in marker
    assert {h: tree(lab, h, DATA) for h in HOSTS} == data_before
    assert_archived(lab)
    assert "王主任" in lab.path(ARCHIVE_HOST, f"{ARCHIVE}/ARCHIVE").read_text()
    assert migrator(env).status()[0]["outcome"] == "offline"
    # Asked again: nothing to do. Freed only after the grace period.
    again = migrator(env).take_offline(ZOMBIE, "王主任")
    assert (again.result, again.run_key) == ("already_offline", outcome.run_key), again
    with pytest.raises(Refused, match="grace period"):
        migrator(env).decommission(ZOMBIE, "王主任")
    # Rolled back within the grace period: it serves again from its hosts, their data as it was.
    back = migrator(env).rollback(ZOMBIE)
    assert back.result == "rolled_back", back
    serving(lab, inv)
    assert {h: tree(lab, h, DATA) for h in HOSTS} == data_before
    for host in HOSTS:
        assert not lab.path(host, f"/etc/app/{ZOMBIE}/OFFLINE").exists()
    assert not store.locks()
    with pytest.raises(Refused, match="not offline"):
        migrator(env).decommission(ZOMBIE, "王主任", force=True)


def test_decommission_after_the_grace_period_frees_the_hosts_once_the_archive_verifies(env):
    lab, store = env["lab"], env["store"]
    outcome = migrator(env).take_offline(ZOMBIE, "李科长")
    assert outcome.result == "offline", outcome
    assert_archived(lab)
    # A damaged archive: nothing is deleted.
    first = sorted(tree(lab, HOSTS[1], DATA))[0]
    damaged = lab.path(ARCHIVE_HOST, f"{ARCHIVE}/{HOSTS[1]}{DATA}/{first}")
    original = damaged.read_bytes()
    damaged.write_bytes(original + b"x")
    failed = migrator(env).decommission(ZOMBIE, "李科长", force=True)  # force: the grace period is 30 days
    assert failed.result == "failed", failed
    assert all(tree(lab, h, DATA) for h in HOSTS)
    assert not store.history(ASSET_FREED)
    damaged.write_bytes(original)
    freed = migrator(env).decommission(ZOMBIE, "李科长", force=True)
    assert freed.result == "decommissioned", freed
    for host in HOSTS:
        assert not lab.path(host, DATA).exists()
        assert "李科长" in lab.path(host, f"/etc/app/{ZOMBIE}/DECOMMISSIONED").read_text()
        assert tree(lab, ARCHIVE_HOST, f"{ARCHIVE}/{host}{DATA}")
    records = {r.target: r.data for r in store.history(ASSET_FREED)}
    assert set(records) == set(HOSTS)
    assert all(r["system"] == ZOMBIE and r["cause"] == "zombie" and r["signed_off_by"] == "李科长"
               and r["archive"] == f"{ARCHIVE_HOST}:{ARCHIVE}/{r['host']}" for r in records.values()), records
    with pytest.raises(Refused, match="decommissioned"):
        migrator(env).rollback(ZOMBIE)
