"""The data verification's manifest module (playbooks/library/jiyue_manifest.py), run as Ansible runs it: its
hash cache must never let a changed file pass as unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
MODULE = PLAYBOOKS / "library" / "jiyue_manifest.py"
# Run the module as Ansible would, with the playbooks' module_utils in the ansible.module_utils namespace.
HARNESS = """
import runpy, sys
import ansible.module_utils
ansible.module_utils.__path__.append(sys.argv[1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
SETTLE = 2.1  # the module's RACY_NS (2 s) and a little: files older than that may be cached


def manifest(tmp_path: Path, top: Path, cache: Path, check_mode: bool = False, settle: bool = False) -> dict:
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"dirs": [str(top)], "cache": str(cache), "settle": settle,
                                                         "_ansible_check_mode": check_mode}}))
    proc = subprocess.run([sys.executable, "-c", HARNESS, str(PLAYBOOKS / "module_utils"), str(MODULE), str(args)],
                          capture_output=True, text=True)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and not result.get("failed"), result
    return result


def digest_of(top: Path) -> str:
    """The manifest digest computed independently: sorted path, size, SHA-256 lines."""
    rows = sorted((str(p), p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in top.rglob("*") if p.is_file())
    return hashlib.sha256("".join(f"{p}\t{s}\t{d}\n" for p, s, d in rows).encode()).hexdigest()


def test_cache_reuses_only_files_whose_identity_is_unchanged(tmp_path):
    top, cache = tmp_path / "data", tmp_path / "state" / "cache.json"
    (top / "sub").mkdir(parents=True)
    for name in ("a.bin", "b.bin", "sub/c.bin"):
        (top / name).write_bytes(os.urandom(4096))
    time.sleep(SETTLE)

    first = manifest(tmp_path, top, cache)
    assert (first["hashed"], first["reused"], first["files"]) == (3, 0, 3)
    assert first["digest"] == digest_of(top)
    assert cache.stat().st_mode & 0o077 == 0  # root only

    again = manifest(tmp_path, top, cache)
    assert (again["hashed"], again["reused"], again["digest"]) == (0, 3, first["digest"])

    # Changed behind everyone's back: same size, same modification time to the nanosecond (what rsync's quick
    # check compares). The ctime moved, so the file is hashed again and the change shows.
    a = top / "a.bin"
    st = a.stat()
    a.write_bytes(os.urandom(4096))
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert a.stat().st_mtime_ns == st.st_mtime_ns and a.stat().st_size == st.st_size
    changed = manifest(tmp_path, top, cache)
    assert (changed["hashed"], changed["reused"]) == (1, 2)
    assert changed["digest"] != first["digest"] and changed["digest"] == digest_of(top)

    # Changed just now (within the racy window): not cached, so hashed again next time too.
    assert manifest(tmp_path, top, cache)["hashed"] == 1


def test_check_mode_writes_no_cache_and_a_damaged_cache_is_ignored(tmp_path):
    top, cache = tmp_path / "data", tmp_path / "state" / "cache.json"
    top.mkdir()
    (top / "a.bin").write_bytes(b"x" * 100)
    time.sleep(SETTLE)
    rehearsal = manifest(tmp_path, top, cache, check_mode=True)
    assert rehearsal["digest"] == digest_of(top) and not cache.exists()

    cache.parent.mkdir()
    cache.write_text("{not json")
    damaged = manifest(tmp_path, top, cache)
    assert (damaged["hashed"], damaged["digest"]) == (1, digest_of(top))
    assert manifest(tmp_path, top, cache)["reused"] == 1
    cache.write_text(json.dumps({str(top / "a.bin"): 5}))
    assert manifest(tmp_path, top, cache)["hashed"] == 1


def test_settle_hashes_fresh_files_again_once_they_can_be_cached(tmp_path):
    """The pre-sync's run: files just written (by rsync) are racy; with settle they end up cached all the same."""
    top, cache = tmp_path / "data", tmp_path / "state" / "cache.json"
    top.mkdir()
    for name in ("a.bin", "b.bin"):
        (top / name).write_bytes(os.urandom(1000))
    ahead = manifest(tmp_path, top, cache, settle=True)
    assert ahead["digest"] == digest_of(top)
    cutover = manifest(tmp_path, top, cache)
    assert (cutover["hashed"], cutover["reused"], cutover["digest"]) == (0, 2, ahead["digest"])
