"""Collection against the lab: real sshd, real host keys, real failures."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from audit.collect import CollectOptions, collect, collect_host
from jiyue import ssh
from jiyue.store import AUDIT_COLLECT, Store
from lab.hosts import PER_HOST_PATHS


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path}/history.sqlite")


def test_every_lab_host_is_collected_and_stored(lab, demo, store):
    hosts = demo.contactable_hosts()  # every host but the two classified ones (tests/test_audit_classified.py)
    assert len(hosts) == len(demo.hosts) - 2
    run_id, results = collect(demo, hosts, CollectOptions(), store=store, progress=False)
    assert [r.target for r in results if not r.ok] == []
    for r in results:
        facts = r.value
        assert facts["hostname"] == r.target
        assert any(p["port"] == 22 and p["process"] == "sshd" for p in facts["listening"])
        assert facts["os"]["id"] and facts["cpu"]["count"] >= 1 and facts["memory"]["total_kb"] > 0
        assert facts["sample"]["interval_s"] >= 1.0
    stored = store.run_results(run_id)
    assert {s.target for s in stored} == set(hosts) and all(s.status == "ok" for s in stored)
    assert {s.target for s in store.history(AUDIT_COLLECT)} == set(hosts)


def _tree(lab, host: str) -> str:
    """Every file the host itself sees in its private paths (not the lab's own sshd log)."""
    digest = hashlib.sha256()
    for mount in PER_HOST_PATHS:
        root = lab.path(host, mount)
        for p in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            stat = p.lstat()
            digest.update(f"{p}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def test_collection_writes_nothing_on_the_host(lab, demo):
    host = demo.cloud.pool[0].host  # a cloud host runs no services that write on their own
    before = _tree(lab, host)
    collect_host(demo, host, CollectOptions())
    assert _tree(lab, host) == before


def test_a_host_stopped_mid_run_is_reported_while_the_rest_complete(lab, demo, store):
    hosts = sorted(demo.hosts)[:9]
    victim = hosts[-1]
    done: dict = {}
    options = CollectOptions(workers=3, timeout=10)
    worker = threading.Thread(target=lambda: done.update(
        zip(("run", "results"), collect(demo, hosts, options, store=store, progress=False), strict=True)))
    try:
        worker.start()
        time.sleep(0.5)  # the first round is under way; the victim's turn comes in the third
        lab.stop_host(victim)
        worker.join(120)
    finally:
        lab.up(demo)
    results = {r.target: r for r in done["results"]}
    assert not results[victim].ok and results[victim].error_kind in ("unreachable", "timeout")
    assert all(results[h].ok for h in hosts[:-1])
    statuses = {s.target: s.status for s in store.run_results(done["run"])}
    assert statuses[victim] in ("unreachable", "timeout") and statuses[hosts[0]] == "ok"


def _target(demo, name, **changes) -> ssh.Target:
    target = ssh.Target.of(demo, name)
    return ssh.Target(**{**target.__dict__, **changes})


def test_unknown_host_key_is_refused_unless_trust_on_first_use(lab, demo, tmp_path):
    name = sorted(demo.hosts)[0]
    empty = tmp_path / "known_hosts"
    with pytest.raises(ssh.SSHError) as info:
        ssh.run(_target(demo, name, known_hosts=empty), "true")
    assert info.value.kind == "host_key" and "trust-on-first-use" in str(info.value)
    out = ssh.run(_target(demo, name, known_hosts=empty), "hostname", trust_on_first_use=True)
    assert out.stdout.decode().strip() == name
    assert str(demo.hosts[name].address) in empty.read_text()
    assert ssh.run(_target(demo, name, known_hosts=empty), "hostname").exit_status == 0  # now known


def test_changed_host_key_is_always_refused(lab, demo, tmp_path):
    a, b = sorted(demo.hosts)[:2]
    pub_b = (lab.host_dir(b) / "sshd/ssh_host_ed25519_key.pub").read_text().split()[:2]
    forged = tmp_path / "known_hosts"
    forged.write_text(f"{demo.hosts[a].address} {pub_b[0]} {pub_b[1]}\n")  # a's address, b's key
    for tofu in (False, True):
        with pytest.raises(ssh.SSHError) as info:
            ssh.run(_target(demo, a, known_hosts=forged), "true", trust_on_first_use=tofu)
        assert info.value.kind == "host_key" and "CHANGED" in str(info.value)


def test_wrong_key_is_an_auth_failure(lab, demo, tmp_path):
    from lab.keys import ed25519_keypair

    private, _ = ed25519_keypair("stranger")
    key = tmp_path / "id_stranger"
    key.write_bytes(private)
    key.chmod(0o600)
    name = sorted(demo.hosts)[0]
    with pytest.raises(ssh.SSHError) as info:
        ssh.run(_target(demo, name, key=key), "true")
    assert info.value.kind == "auth_failed"
