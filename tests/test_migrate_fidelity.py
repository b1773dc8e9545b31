"""What a migration copies and what it verifies, on the lab: every entry a server relies on arrives as it was (names
as bytes, types, modes, owners, hardlinks, holes, xattrs and ACLs), the verification finds any entry changed on
the target behind its back (with the run killed in verify_data and resumed), a retry repairs what rsync's quick
check would skip, and the precheck sizes the copy by what it really writes.

Each scenario has its own system and cloud-pool target (none of tests/test_migrate_run.py's); the module puts the
lab back as seeded at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jiyue.store import Store
from lab.seed import seed
from migrations.engine import HOOKS_ENV, Migrator
from migrations.journal import StepFailed
from migrations.model import Disposition, HostTarget, Plan, SystemPlan, Wave, save_plan
from tests.fidelity import GBK, SPARSE_SIZE, SPECIAL, assert_same_tree, differences, make_special

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parent.parent
# system -> (source, target, wave)
SYSTEMS = {"dxjyj-xszz": ("dxjyj-xszz-app1", "zwy-16", 1),  # killed in verify_data, the target changed
           "rsj-ldjc": ("rsj-ldjc-app1", "zwy-15", 2),  # a corrupted copy repaired by the pre-sync
           "qszf-nyfw": ("qszf-nyfw-app1", "zwy-17", 3)}  # many small files onto a small disk
# The data the services write while the tests look (their records, their runtime files): not compared.
LIVE = {"app.db", "app.db-journal", "app.db-wal", "app.db-shm", "pid", "out", "MIGRATED", "DECOMMISSIONED"}

SUBPROCESS = """
import sys
from pathlib import Path
import inventory
from jiyue.store import Store
from migrations.engine import Migrator
from migrations.model import load_plan
inv = inventory.load(Path(sys.argv[1]))
m = Migrator(inv, load_plan(Path(sys.argv[2])), Store(sys.argv[3]), apply=True, workdir=sys.argv[4], progress=False)
m.run_system(sys.argv[5])
"""


def make_plan(inv) -> Plan:
    now = datetime.now(UTC)
    pool = {p.host: p.flavor for p in inv.cloud.pool}
    systems, waves = [], []
    for sid, (source, target, number) in SYSTEMS.items():
        s = inv.systems[sid]
        systems.append(SystemPlan(
            system=sid, name=s.name, department=s.department, disposition=Disposition.cloud_rehost,
            rule="test: cloud rehost", urgency=3, importance=3, wave=number, downtime_budget_s=s.downtime_budget,
            targets=[HostTarget(source=source, target=target, flavor=pool[target], need_vcpus=0.5, need_memory_gb=1,
                                need_disk_gb=1)]))
        waves.append(Wave(number=number, start=now + timedelta(days=number), end=now + timedelta(days=number, hours=8),
                          systems=[sid], hosts=1, data_bytes=0))
    plan = Plan(generated=now, inventory=str(inv.root), systems=systems, waves=waves, work_orders=[])
    assert plan.check(inv) == []
    return plan


@pytest.fixture(scope="module")
def env(seeded, lab, demo, tmp_path_factory):
    work = tmp_path_factory.mktemp("fidelity")
    plan = make_plan(demo)
    store_url = f"sqlite:///{work / 'store.sqlite'}"
    yield {"inv": demo, "lab": lab, "plan": plan, "plan_file": save_plan(plan, work / "plan.yaml"),
           "store_url": store_url, "store": Store(store_url), "work": work}
    for sid, (source, target, _) in SYSTEMS.items():
        lab.exec(target, "if grep -qs '^jiyue-small /srv tmpfs' /proc/self/mounts; then umount /srv; fi")
        lab.exec(target, f"[ -x /etc/app/{sid}/service ] && /etc/app/{sid}/service stop; "
                         f"rm -rf /etc/app/{sid} /srv/{sid} /var/lib/jiyue/manifests/{sid}.json")
        lab.exec(source, f"rm -rf /srv/{sid}/{SPECIAL} /srv/{sid}/many /etc/app/{sid}/MIGRATED")
    seed(lab, demo)


def migrator(env, monkeypatch, hooks: dict | None = None) -> Migrator:
    if hooks:
        monkeypatch.setenv(HOOKS_ENV, json.dumps(hooks))
    else:
        monkeypatch.delenv(HOOKS_ENV, raising=False)
    return Migrator(env["inv"], env["plan"], env["store"], apply=True, workdir=env["work"], progress=False)


def wait_for_step(store: Store, system: str, step: str, proc: subprocess.Popen, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in store.journal_entries(subject=system):
            if e.step == step and e.status == "started":
                return e.run_key
        assert proc.poll() is None, (f"the engine exited ({proc.returncode}) before {step} started: " +
                                     "; ".join(f"{e.step}: {e.detail}" for e in store.journal_entries(subject=system)
                                               if e.status == "failed"))
        time.sleep(0.2)
    raise AssertionError(f"{system}: {step} did not start within {timeout} s")


def data(lab, host: str, system: str) -> Path:
    return lab.path(host, f"/srv/{system}")


def flip_byte(path: Path) -> None:
    """One byte changed; size and modification time kept (what rsync's quick check compares)."""
    st = path.stat()
    content = bytearray(path.read_bytes())
    content[0] ^= 0xFF
    path.write_bytes(bytes(content))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_killed_in_verify_data_every_change_on_the_target_is_found_and_a_retry_repairs_it(env, monkeypatch):
    lab, store = env["lab"], env["store"]
    sid = "dxjyj-xszz"
    source, target, _ = SYSTEMS[sid]
    make_special(data(lab, source, sid))
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS, str(env["inv"].root), str(env["plan_file"]), env["store_url"],
         str(env["work"]), sid], cwd=REPO, env={**os.environ, HOOKS_ENV: json.dumps({"pause": {"verify_data": 120}}),
                                               "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        run_key = wait_for_step(store, sid, "verify_data", proc)
        time.sleep(2)  # into the pause, before the manifests
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    # The copy carried everything (the final sync had finished: the source is frozen, nothing moves).
    assert_same_tree(data(lab, source, sid), data(lab, target, sid), LIVE)
    copied = data(lab, target, sid) / SPECIAL
    assert (copied / "sparse.img").stat().st_blocks * 512 < SPARSE_SIZE // 16  # holes stayed holes
    assert (copied / "linked-a").stat().st_ino == (copied / "shared" / "linked-b").stat().st_ino
    # Changed on the target behind the run's back:
    (copied / "plain.bin").chmod(0o600)
    os.chown(copied / "owned.conf", 4321, 5678)
    (copied / "to-dir").unlink()
    (copied / "empty").rmdir()
    (copied / "queue.fifo").unlink()
    (copied / "extra").mkdir()
    flip_byte(copied / os.fsdecode(GBK))
    outcome = migrator(env, monkeypatch).resume(run_key)[0]
    assert outcome.result == "rolled_back", outcome
    where = f"/srv/{sid}/{SPECIAL}"
    expected = [f"differs: {where}/plain.bin (file): mode 0644 → 0600",
                f"differs: {where}/owned.conf (file): uid 1234 → 4321",
                f"missing on the target: {where}/to-dir (symlink)",
                f"missing on the target: {where}/empty (dir)",
                f"missing on the target: {where}/queue.fifo (fifo)",
                f"extra on the target: {where}/extra (dir)",
                f"differs: {where}/gbk-\\xd6\\xd0\\xce\\xc4.txt (file): sha256"]
    failed = next(e.detail for e in store.journal_entries(run_key=run_key, subject=sid)
                  if e.step == "verify_data" and e.status == "failed")
    listed = failed["differing_files"]
    assert failed["differing_count"] == len(expected), listed
    for line in expected:
        assert any(f.startswith(f"{target}: {line}") for f in listed), (line, listed)
    # The message shown names the differing entries, escaped (as many as fit, and how many more there are).
    assert "7 entries differ" in outcome.message and f"{target}: differs: {where}/" in outcome.message, outcome.message
    # The same command again: the pre-sync re-sends what differed, the verification passes, nothing lost.
    again = migrator(env, monkeypatch).run_system(sid)
    assert again.result == "migrated", again
    assert_same_tree(data(lab, source, sid), data(lab, target, sid), LIVE)


def test_a_presync_over_a_corrupted_copy_repairs_it(env, monkeypatch):
    """A target holding an earlier copy whose bytes, holes and hardlinks were changed with size and time kept: the
    pre-sync (of a retry) sends those files whole again; rsync's quick check alone would skip them."""
    lab = env["lab"]
    sid = "rsj-ldjc"
    source, target, _ = SYSTEMS[sid]
    make_special(data(lab, source, sid))
    m = migrator(env, monkeypatch)
    key, _ = m.run_steps(sid, ["precheck", "presync"])
    copied = data(lab, target, sid) / SPECIAL
    flip_byte(copied / "plain.bin")
    flip_byte(copied / "linked-a")  # one inode, two names: both differ
    img = copied / "sparse.img"
    st = img.stat()
    with open(img, "r+b") as f:  # the same bytes, every block allocated
        f.write(b"\0" * SPARSE_SIZE)
        f.seek(SPARSE_SIZE // 2)
        f.write(b"data in the middle of a hole")
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert len(differences(data(lab, source, sid), data(lab, target, sid), LIVE)) == 4
    m.run_steps(sid, ["presync"], run_key=key)
    assert_same_tree(data(lab, source, sid), data(lab, target, sid), LIVE)
    assert img.stat().st_blocks * 512 < SPARSE_SIZE // 16


def test_the_precheck_sizes_the_copy_by_what_it_writes(env, monkeypatch):
    """600 one-byte files take 600 blocks, not 600 bytes: onto a target with 1 MiB free, the precheck refuses (it
    used to count the bytes, pass, and let rsync fill the disk)."""
    lab = env["lab"]
    sid = "qszf-nyfw"
    source, target, _ = SYSTEMS[sid]
    many = data(lab, source, sid) / "many"
    many.mkdir(exist_ok=True)
    for i in range(600):
        (many / f"{i:03d}").write_bytes(b"x")
    mount = lab.exec(target, "mount -t tmpfs -o size=1m jiyue-small /srv")
    assert mount.returncode == 0, mount.stderr
    with pytest.raises(StepFailed, match="room for the data") as failed:
        migrator(env, monkeypatch).run_steps(sid, ["precheck"])
    need = int(str(failed.value).rsplit("needs ", 1)[1].split()[0])
    assert need >= 600 * 4096, str(failed.value)
    left = lab.exec(target, "ls -A /srv")
    assert (left.returncode, left.stdout) == (0, ""), left  # nothing was copied
