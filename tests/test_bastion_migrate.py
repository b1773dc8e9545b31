"""A migration wave, its rollback and baseline remediation through a real bastion (堡垒机).

The lab (lab/bastion_migrate.py) puts a system's web and database hosts and the gateway behind a bastion whose
forwarding is off; the control node reaches them only through the bastion's sshd. The web host moves to a target
behind the bastion too (its copy goes direct, host to host), the database host to a target on the cloud side, which
the department's hosts cannot reach (its copy goes through the bastion, `ssh -J`). One lab for the module.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

import inventory
from audit.baseline import service as baseline
from audit.baseline import testinfra as suite
from audit.baseline.model import CheckOptions
from jiyue import sshconfig
from jiyue.store import Store
from lab import gateway as gw
from lab import service as svc
from lab.baseline_seed import DEFAULT_BASELINE, seed_baseline
from lab.bastion_migrate import DB, FAR, GATEWAY, HOSTS, NEAR, PAIRS, SYSTEM, WEB, MigrationBastionLab
from lab.seed import seed
from migrations.copypath import copy_path
from migrations.engine import Migrator
from tests.conftest import require_lab
from tests.fidelity import make_special
from tests.migrate_lab import journal, make_plan, same_data

pytestmark = pytest.mark.lab
JUMP = sshconfig.JUMP_PREFIX + "bastion"  # the bastion's block in the generated ssh config


@pytest.fixture(scope="module")
def mlab(tmp_path_factory):
    lab = MigrationBastionLab(tmp_path_factory.mktemp("bastion-migrate") / "state")
    require_lab(lab.hosts)
    inv = lab.up()
    with lab.seeding():
        seed(lab.hosts, inv)
    for source, _ in PAIRS:  # what a server relies on (hardlinks, holes, xattrs, ACLs), across both paths
        make_special(lab.hosts.path(source, f"/srv/{SYSTEM}"))
    yield lab, inv
    lab.down()


@pytest.fixture(scope="module")
def env(mlab, tmp_path_factory):
    lab, inv = mlab
    work = tmp_path_factory.mktemp("work")
    return {"lab": lab, "inv": inv, "plan": make_plan(inv, {1: {SYSTEM: PAIRS}}),
            "store": Store(f"sqlite:///{work / 'store.sqlite'}"), "work": work}


def _migrator(env, jump=None, apply=True) -> Migrator:
    return Migrator(env["inv"], env["plan"], env["store"], apply=apply, workdir=env["work"], progress=False,
                    jump=jump)


def _route(env) -> str:
    route = gw.route(env["lab"].hosts, env["inv"], SYSTEM)
    assert route is not None
    return route[0]


# --- the rule ------------------------------------------------------------------------------------


def test_the_copy_path_comes_from_the_inventory(mlab):
    _, inv = mlab
    assert copy_path(inv, WEB, NEAR).kind == "direct"  # both behind the bastion: one zone
    far, back = copy_path(inv, DB, FAR), copy_path(inv, FAR, DB)
    assert far.kind == back.kind == "via bastion"
    assert "outside that zone" in far.why and "is behind bastion" in back.why
    assert [h["address"] for h in far.hops()] == ["198.19.241.2"] and "ssh-ed25519" in far.hops()[0]["known_hosts"]
    for jump in ("none", "bastion"):  # a run's override puts every host in one zone
        assert copy_path(inv, DB, FAR, jump).kind == "direct"


def test_the_engines_inventory_goes_through_the_bastion(env):
    m = _migrator(env, apply=False)
    text = m.inventory_file.read_text()
    config_path = m.inventory_file.parent / sshconfig.SSH_CONFIG
    assert f"-F {config_path}" in text and "StrictHostKeyChecking=yes" in text
    assert "StrictHostKeyChecking=no" not in text and "host_key_checking" not in text.lower()
    config = config_path.read_text()
    assert f"UserKnownHostsFile {env['lab'].known_hosts}" in config  # the bastion's own known_hosts
    assert f"-W [%h]:%p {JUMP}" in config and "StrictHostKeyChecking yes" in config
    # (the wave's precheck below pings every host with this inventory)


# --- the wave ------------------------------------------------------------------------------------


def test_jump_none_the_precheck_reports_the_hosts_unreachable(env):
    """No leftover route: without the bastion the hosts behind it do not answer, and nothing changes."""
    lab = env["lab"].hosts
    before = [p.name for p in lab.path(NEAR, "/srv").iterdir()]
    [outcome] = _migrator(env, jump="none").run_wave(1)
    assert outcome.result == "failed" and outcome.message.startswith("precheck:"), outcome.message
    assert "unreachable" in outcome.message and "nothing was changed" in outcome.message
    assert any(h in outcome.message for h in (WEB, DB, GATEWAY, NEAR))
    assert [p.name for p in lab.path(NEAR, "/srv").iterdir()] == before
    assert _route(env) == HOSTS[WEB][0]


def test_a_wave_through_the_bastion_then_rollback(env):
    lab, inv, store = env["lab"].hosts, env["inv"], env["store"]
    m = _migrator(env)
    [outcome] = m.run_wave(1)
    assert outcome.result == "migrated", outcome.message
    rows = store.journal_entries(run_key=outcome.run_key, subject=SYSTEM)
    [paths] = [e.detail for e in rows if e.step == "copy_path"]
    said = {(c["from"], c["to"]): c["path"] for c in paths["copies"]}
    assert said == {(WEB, NEAR): "direct", (NEAR, WEB): "direct", (DB, FAR): "via bastion", (FAR, DB): "via bastion"}
    same_data(lab, SYSTEM, PAIRS)  # both copies complete: names, modes, owners, links, holes, xattrs, ACLs
    assert _route(env) == HOSTS[NEAR][0]
    assert svc.control(lab, NEAR, SYSTEM, "status").returncode == 0
    assert ("verify_function", "done") in journal(store, outcome.run_key, SYSTEM)  # testinfra through the bastion

    back = m.rollback(SYSTEM)
    assert back.result == "rolled_back", back.message
    assert "copied back and verified" in back.message  # the reverse copies too, one of them through the bastion
    assert _route(env) == HOSTS[WEB][0]
    assert svc.control(lab, WEB, SYSTEM, "status").returncode == 0
    assert not lab.path(FAR, f"/srv/{SYSTEM}").exists() and not lab.path(NEAR, f"/srv/{SYSTEM}").exists()
    assert inv.hosts[FAR]  # the far target stays reachable directly: it is on the control node's side


# --- the baseline --------------------------------------------------------------------------------


def test_baseline_testinfra_through_the_bastion(mlab, tmp_path):
    """`pytest --hosts=ssh://… --ssh-config` with the generated config agrees with the fleet path behind the bastion."""
    _, inv = mlab
    host = GATEWAY
    address = str(inv.hosts[host].address)
    config = sshconfig.write(inv, [inv.hosts[host]], tmp_path / "ssh_config")
    assert f"-W [%h]:%p {JUMP}" in config.read_text()
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(suite.command([address], config, junit, level=3, inventory=str(inv.root)),
                          capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    testinfra = suite.verdicts(junit)
    run = baseline.check(inv, [host], level=3, options=CheckOptions(timeout=20), progress=False)
    fleet = {(address, row["item"], row["check"]): row["status"] for r in run.checked() for row in r.value["rows"]}
    assert len(fleet) > 40 and testinfra == fleet


def test_remediation_through_the_bastion(mlab, tmp_path):
    """baseline.remediate (playbooks/baseline_remediate.yml) on a host behind the bastion: its seeded faults fixed."""
    lab, inv = mlab
    host = NEAR
    data = yaml.safe_load(DEFAULT_BASELINE.read_text(encoding="utf-8"))
    data["hosts"] = {host: ["aging_default", "no_tmout", "no_histtime"]}
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    with lab.seeding():
        seed_baseline(lab.hosts, inv, tmp_path / "baseline.yaml", hosts=[host])
    rem = baseline.remediate(inv, [host], level=3, store=Store(f"sqlite:///{tmp_path / 'b.sqlite'}"), apply=True,
                             workdir=tmp_path, progress=False)
    assert rem.ok, rem.failures
    assert rem.hosts[host].changed
    assert set(rem.fixes[host]) == {"password.aging", "session.tmout", "history.timestamps"}
    assert rem.still_failing == {}, rem.still_failing
    text = (tmp_path / "inventory" / "ansible.yml").read_text()
    assert f"-F {(tmp_path / 'inventory' / sshconfig.SSH_CONFIG).resolve()}" in text
    assert inventory.load(inv.root).hosts[host]
    assert sshconfig.through_jump_hosts(inv, [host, FAR]) == [host]
