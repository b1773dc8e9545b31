"""The data verification's manifest module (playbooks/library/jiyue_manifest.py), run as Ansible runs it, and the
tree comparison it shares with jiyue_compare and the tests (playbooks/module_utils/jiyue_tree.py): every entry's
metadata as real tools (`find`, `stat`, `getfattr`, `getfacl`, `sha256sum`) see it, names as bytes, and its hash
cache never letting a changed file pass as unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from migrations.engine import RSYNC_OPTIONS
from tests.fidelity import (
    GBK,
    MUTATIONS,
    SPECIAL,
    assert_same_tree,
    differences,
    flip_byte,
    make_special,
    mutate_hardlink,
    mutate_mode,
    snapshot,
    tree,
)

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


def run_module(tmp_path: Path, args: dict, as_user: str | None = None, module: Path = MODULE) -> dict:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    path.chmod(0o644)
    prefix = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"] if as_user else []
    proc = subprocess.run([*prefix, sys.executable, "-c", HARNESS, str(PLAYBOOKS / "module_utils"), str(module),
                           str(path)], capture_output=True, text=True)
    return json.loads(proc.stdout)


def manifest(tmp_path: Path, top: Path, cache: Path | None = None, check_mode: bool = False,
             settle: bool = False) -> dict:
    args = {"dirs": [str(top)], "settle": settle, "_ansible_check_mode": check_mode}
    if cache is not None:
        args["cache"] = str(cache)
    result = run_module(tmp_path, args)
    assert not result.get("failed"), result
    return result


def digest_of(top: Path) -> dict[str, str]:
    """Every regular file's SHA-256 as sha256sum computes it, by escaped path."""
    names = subprocess.run(["find", str(top), "-type", "f", "-print0"], capture_output=True, check=True).stdout
    out = {}
    for name in filter(None, names.split(b"\0")):
        digest = subprocess.run(["sha256sum", "-z", "--", name], capture_output=True, check=True).stdout.split()[0]
        out[tree.escape(name)] = digest.decode()
    return out


def hashes(result: dict) -> dict[str, str]:
    return {e["path"]: e["sha256"] for e in result["manifest"] if e["type"] == "file"}


def test_cache_reuses_only_files_whose_identity_is_unchanged(tmp_path):
    top, cache = tmp_path / "data", tmp_path / "state" / "cache.json"
    (top / "sub").mkdir(parents=True)
    for name in ("a.bin", "b.bin", "sub/c.bin"):
        (top / name).write_bytes(os.urandom(4096))
    time.sleep(SETTLE)

    first = manifest(tmp_path, top, cache)
    assert (first["hashed"], first["reused"], first["files"]) == (3, 0, 3)
    assert hashes(first) == digest_of(top)
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
    assert changed["digest"] != first["digest"] and hashes(changed) == digest_of(top)

    # Changed just now (within the racy window): not cached, so hashed again next time too.
    assert manifest(tmp_path, top, cache)["hashed"] == 1


def test_check_mode_writes_no_cache_and_a_damaged_cache_is_ignored(tmp_path):
    top, cache = tmp_path / "data", tmp_path / "state" / "cache.json"
    top.mkdir()
    (top / "a.bin").write_bytes(b"x" * 100)
    time.sleep(SETTLE)
    rehearsal = manifest(tmp_path, top, cache, check_mode=True)
    assert hashes(rehearsal) == digest_of(top) and not cache.exists()

    cache.parent.mkdir()
    cache.write_text("{not json")
    damaged = manifest(tmp_path, top, cache)
    assert (damaged["hashed"], hashes(damaged)) == (1, digest_of(top))
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
    assert hashes(ahead) == digest_of(top)
    cutover = manifest(tmp_path, top, cache)
    assert (cutover["hashed"], cutover["reused"], cutover["digest"]) == (0, 2, ahead["digest"])


# --- every entry, as real tools see it -------------------------------------------------------------------

FIND_FIELDS = ("path", "type", "mode", "uid", "gid", "size", "target", "inode", "nlink", "blocks")
FIND_TYPES = {"f": "file", "d": "dir", "l": "symlink", "p": "fifo", "s": "socket", "c": "char", "b": "block"}


def find(top: Path) -> dict[str, dict]:
    """find(1)'s view of every entry: type, permission bits, numeric owner, size, link target, inode, links."""
    out = subprocess.run(["find", str(top), "-printf", "%p\\0%y\\0%m\\0%U\\0%G\\0%s\\0%l\\0%i\\0%n\\0%b\\0"],
                         capture_output=True, check=True).stdout.split(b"\0")[:-1]
    rows = {}
    for i in range(0, len(out), len(FIND_FIELDS)):
        row = dict(zip(FIND_FIELDS, out[i:i + len(FIND_FIELDS)], strict=True))
        rows[tree.escape(row["path"])] = row
    return rows


def getfattr(path: Path) -> dict[str, str]:
    """getfattr(1)'s view of an entry's xattrs (every namespace, ACLs included), values in base64."""
    out = subprocess.run(["getfattr", "-h", "-d", "-m", "-", "-e", "base64", "--absolute-names", str(path)],
                         capture_output=True, text=True, check=True).stdout
    pairs = (line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {name: value.strip('"').removeprefix("0s") for name, value in pairs}


def test_every_entry_is_described_as_find_getfattr_and_sha256sum_see_it(tmp_path):
    special = make_special(tmp_path / "data")
    result = manifest(tmp_path, tmp_path / "data")
    entries = {e["path"]: e for e in result["manifest"]}
    seen = find(tmp_path / "data")
    assert set(entries) == set(seen)  # every entry, none added (the top directory included)
    for name, e in entries.items():
        f = seen[name]
        assert e["type"] == FIND_TYPES[f["type"].decode()], name
        assert (f"{e['mode']:o}", e["uid"], e["gid"]) == (f["mode"].decode(), int(f["uid"]), int(f["gid"])), name
        if e["type"] in ("file", "symlink"):
            assert e["size"] == int(f["size"]), name
        if e["type"] == "symlink":
            assert tree.unescape(e["target"]) == f["target"], name
        assert e.get("xattrs", {}) == getfattr(Path(os.fsdecode(tree.unescape(name)))), name
        assert e.get("sparse", False) == (int(f["blocks"]) * 512 + tree.HOLE <= int(f["size"]) and f["type"] == b"f")
    assert {n: e["sha256"] for n, e in entries.items() if e["type"] == "file"} == digest_of(tmp_path / "data")
    # hardlinks: the names find sees sharing an inode are exactly those the manifest links
    inodes: dict[bytes, list[str]] = {}
    for name, f in seen.items():
        if f["type"] == b"f" and int(f["nlink"]) > 1:
            inodes.setdefault(f["inode"], []).append(name)
    linked = {n: e["link"] for n, e in entries.items() if "link" in e}
    assert linked == {n: min(names) for names in inodes.values() if len(names) > 1 for n in names} != {}
    # the ACLs are the ones getfacl shows, carried as their xattrs
    owned = entries[tree.escape(str(special / "owned.conf"))]
    assert "system.posix_acl_access" in owned["xattrs"]
    acl = subprocess.run(["getfacl", "-n", "-c", str(special / "owned.conf")], capture_output=True, text=True,
                         check=True).stdout
    assert "user:1234:rw-" in acl and "group:5678:r--" in acl
    assert "system.posix_acl_default" in entries[tree.escape(str(special / "shared"))]["xattrs"]
    assert entries[tree.escape(str(special / "sparse.img"))]["sparse"] is True


def test_names_are_bytes_end_to_end_and_a_failure_names_the_file(tmp_path):
    top = tmp_path / "data"
    top.mkdir()
    names = [GBK, b"line\nbreak", b"back\\slash", "中文.txt".encode(), b"-rf", b"\xff\xfe"]
    for name in names:
        (top / os.fsdecode(name)).write_bytes(name)
    result = manifest(tmp_path, top)
    listed = {e["path"].rsplit("/", 1)[-1] for e in result["manifest"] if e["type"] == "file"}
    assert listed == {"gbk-\\xd6\\xd0\\xce\\xc4.txt", "line\\x0abreak", "back\\\\slash", "中文.txt", "-rf",
                      "\\xff\\xfe"}
    for name in names:  # reversible: the escaped name is the file's name byte for byte
        assert tree.unescape(tree.escape(os.fsencode(top) + b"/" + name)) == os.fsencode(top) + b"/" + name


def test_a_file_that_cannot_be_read_fails_the_manifest_naming_it():
    """Run as an unprivileged user (setpriv), for whom a root-only file cannot be read."""
    with tempfile.TemporaryDirectory(prefix="jiyue-manifest-") as base:
        work = Path(base)
        work.chmod(0o755)
        top = work / "data"
        top.mkdir()
        (top / "readable.txt").write_text("ok")
        secret = top / os.fsdecode(GBK)
        secret.write_bytes(b"root only")
        secret.chmod(0o600)
        failed = run_module(work, {"dirs": [str(top)]}, as_user="65534")
    assert failed.get("failed"), failed
    assert "gbk-\\xd6\\xd0\\xce\\xc4.txt" in failed["msg"] and "Permission denied" in failed["msg"], failed["msg"]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__.removeprefix("mutate_") for m in MUTATIONS])
def test_the_comparison_names_each_kind_of_difference(tmp_path, mutate):
    """The six changes resume once called verified (and more): each one named, in the words the verification's
    message uses, and nothing else reported."""
    source = make_special(tmp_path / "source")
    subprocess.run(["rsync", *RSYNC_OPTIONS, f"{tmp_path / 'source'}/", f"{tmp_path / 'target'}/"], check=True)
    assert differences(tmp_path / "source", tmp_path / "target") == []
    expected = mutate(tmp_path / "target" / SPECIAL).format(source)
    found = differences(tmp_path / "source", tmp_path / "target")
    assert len(found) == (2 if mutate is mutate_hardlink else 1), found  # a broken pair: both names
    assert found[-1 if mutate is mutate_hardlink else 0].startswith(expected), found


def test_recopy_lists_what_a_plain_rsync_would_skip_and_the_other_names_of_its_inode(tmp_path):
    make_special(tmp_path / "source")
    subprocess.run(["rsync", *RSYNC_OPTIONS, f"{tmp_path / 'source'}/", f"{tmp_path / 'target'}/"], check=True)
    target = tmp_path / "target" / SPECIAL
    flip_byte(target / "linked-a")
    mutate_mode(target)  # fixed by a plain rsync: not re-sent
    src, dst = snapshot(tmp_path / "source"), snapshot(tmp_path / "target")
    again = sorted({n for d in tree.compare(src, dst) for n in tree.recopy(d, src)})
    assert again == [f"{SPECIAL}/linked-a", f"{SPECIAL}/shared/linked-b"]
    # rsync's quick check alone leaves the flipped byte behind; sending the listed files whole again repairs it
    subprocess.run(["rsync", *RSYNC_OPTIONS, f"{tmp_path / 'source'}/", f"{tmp_path / 'target'}/"], check=True)
    assert [d.rsplit(": ", 1)[0] for d in differences(tmp_path / "source", tmp_path / "target")] == [
        f"differs: {tmp_path / 'source'}/{SPECIAL}/linked-a (file)",
        f"differs: {tmp_path / 'source'}/{SPECIAL}/shared/linked-b (file)"]
    listed = tmp_path / "files"
    listed.write_bytes(b"".join(n.encode() + b"\0" for n in again))
    options = [o for o in RSYNC_OPTIONS if not o.startswith("--delete")]
    subprocess.run(["rsync", *options, "--ignore-times", f"--files-from={listed}", "--from0",
                    f"{tmp_path / 'source'}/", f"{tmp_path / 'target'}/"], check=True)
    assert_same_tree(tmp_path / "source", tmp_path / "target")
