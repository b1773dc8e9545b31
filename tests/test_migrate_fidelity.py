"""What a migration copies and what it verifies, on the lab: every entry a server relies on arrives as it was (names
as bytes, types, modes, owners, hardlinks, holes, xattrs and ACLs), the verification finds any entry changed on
the target behind its back (with the run killed in verify_data and resumed), a retry repairs what rsync's quick
check would skip, and the precheck sizes the copy by what it really writes.

Each scenario has its own system and cloud-pool target (none of tests/test_migrate_run.py's); the module puts the
lab back as seeded at the end.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from migrations.journal import StepFailed
from tests.fidelity import (
    SPARSE_SIZE,
    SPECIAL,
    assert_same_tree,
    differences,
    flip_byte,
    mutate_byte,
    mutate_dir_symlink,
    mutate_empty_dir,
    mutate_extra_dir,
    mutate_fifo,
    mutate_mode,
    mutate_owner,
)
from tests.migrate_lab import engine_subprocess, kill, lab_env, migrator, wait_for_step

pytestmark = pytest.mark.lab
# wave -> {system: [(source, target)]}: one system a wave, each with its own target.
WAVES = {1: {"dxjyj-xszz": [("dxjyj-xszz-app1", "zwy-16")]},  # killed in verify_data, the target changed
         2: {"rsj-ldjc": [("rsj-ldjc-app1", "zwy-15")]},  # a corrupted copy repaired by the pre-sync
         3: {"qszf-nyfw": [("qszf-nyfw-app1", "zwy-17")]}}  # many small files onto a small disk
SYSTEMS = {sid: pairs[0] for layout in WAVES.values() for sid, pairs in layout.items()}  # system -> (source, target)
# The data the services write while the tests look (their records, their runtime files): not compared.
LIVE = {"app.db", "app.db-journal", "app.db-wal", "app.db-shm", "pid", "out", "MIGRATED", "DECOMMISSIONED"}


@pytest.fixture(scope="module")
def env(seeded, lab, demo, tmp_path_factory):
    """The migrate_lab scenario (each source holding tests/fidelity.py's special entries), and afterwards this
    module's own leftovers gone: the small disk, the many files, the hash caches."""
    scenario = lab_env(lab, demo, tmp_path_factory.mktemp("fidelity"), WAVES)
    yield next(scenario)
    for sid, (source, target) in SYSTEMS.items():
        lab.exec(target, "if grep -qs '^jiyue-small /srv tmpfs' /proc/self/mounts; then umount /srv; fi")
        lab.exec(target, f"rm -f /var/lib/jiyue/manifests/{sid}.json")
        lab.exec(source, f"rm -rf /srv/{sid}/many")
    next(scenario, None)


def data(lab, host: str, system: str) -> Path:
    return lab.path(host, f"/srv/{system}")


def test_killed_in_verify_data_every_change_on_the_target_is_found_and_a_retry_repairs_it(env, monkeypatch):
    lab, store = env["lab"], env["store"]
    sid = "dxjyj-xszz"
    source, target = SYSTEMS[sid]
    proc = engine_subprocess(env, 1, {"pause": {"verify_data": 120}})
    try:
        run_key = wait_for_step(env["store"], sid, "verify_data", proc)
        time.sleep(2)  # into the pause, before the manifests
    finally:
        kill(proc)
    # The copy carried everything (the final sync had finished: the source is frozen, nothing moves).
    assert_same_tree(data(lab, source, sid), data(lab, target, sid), LIVE)
    copied = data(lab, target, sid) / SPECIAL
    assert (copied / "sparse.img").stat().st_blocks * 512 < SPARSE_SIZE // 16  # holes stayed holes
    assert (copied / "linked-a").stat().st_ino == (copied / "shared" / "linked-b").stat().st_ino
    # Changed on the target behind the run's back:
    where = f"/srv/{sid}/{SPECIAL}"
    expected = [change(copied).format(where) for change in (mutate_mode, mutate_owner, mutate_dir_symlink,
                                                              mutate_empty_dir, mutate_fifo, mutate_extra_dir,
                                                              mutate_byte)]
    outcome = migrator(env, monkeypatch=monkeypatch).resume(run_key)[0]
    assert outcome.result == "rolled_back", outcome
    failed = next(e.detail for e in store.journal_entries(run_key=run_key, subject=sid)
                  if e.step == "verify_data" and e.status == "failed")
    listed = failed["differing_files"]
    assert failed["differing_count"] == len(expected), listed
    for line in expected:
        assert any(f.startswith(f"{target}: {line}") for f in listed), (line, listed)
    # The message shown names the differing entries, escaped (as many as fit, and how many more there are).
    assert "7 entries differ" in outcome.message and f"{target}: differs: {where}/" in outcome.message, outcome.message
    # The same command again: the pre-sync re-sends what differed, the verification passes, nothing lost.
    again = migrator(env, monkeypatch=monkeypatch).run_system(sid)
    assert again.result == "migrated", again
    assert_same_tree(data(lab, source, sid), data(lab, target, sid), LIVE)


def test_a_presync_over_a_corrupted_copy_repairs_it(env, monkeypatch):
    """A target holding an earlier copy whose bytes, holes and hardlinks were changed with size and time kept: the
    pre-sync (of a retry) sends those files whole again; rsync's quick check alone would skip them."""
    lab = env["lab"]
    sid = "rsj-ldjc"
    source, target = SYSTEMS[sid]
    m = migrator(env, monkeypatch=monkeypatch)
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
    source, target = SYSTEMS[sid]
    # Only small files here: the special entries' sparse file is 16 MiB of bytes, which a count of bytes would
    # refuse as well, so with it this test could not tell the two ways of sizing apart.
    shutil.rmtree(data(lab, source, sid) / SPECIAL)
    many = data(lab, source, sid) / "many"
    many.mkdir(exist_ok=True)
    for i in range(600):
        (many / f"{i:03d}").write_bytes(b"x")
    mount = lab.exec(target, "mount -t tmpfs -o size=1m jiyue-small /srv")
    assert mount.returncode == 0, mount.stderr
    with pytest.raises(StepFailed, match="room for the data") as failed:
        migrator(env, monkeypatch=monkeypatch).run_steps(sid, ["precheck"])
    need = int(str(failed.value).rsplit("needs ", 1)[1].split()[0])
    assert need >= 600 * 4096, str(failed.value)
    left = lab.exec(target, "ls -A /srv")
    assert (left.returncode, left.stdout) == (0, ""), left  # nothing was copied
