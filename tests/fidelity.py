"""The tests' proof that a copied tree lost nothing: the product's own comparison (playbooks/module_utils/
jiyue_tree.py, which the migration's verification runs through jiyue_manifest and jiyue_compare) applied to
two directories read from this machine, and the entries a server relies on, made with real tools, for a
migration to carry.

The comparison itself is checked against `find`, `stat`, `getfattr` and `getfacl` in tests/test_migrate_manifest.py,
so a blind spot in it cannot hide here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "jiyue_tree", Path(__file__).resolve().parent.parent / "playbooks" / "module_utils" / "jiyue_tree.py")
assert _SPEC is not None and _SPEC.loader is not None
tree = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tree)

GBK = b"gbk-\xd6\xd0\xce\xc4.txt"  # "gbk-中文.txt" in GBK: not UTF-8
SPECIAL = "fidelity"  # the directory `make_special` fills
SPARSE_SIZE = 16 << 20
ODD_OWNER = (1234, 5678)


def snapshot(top: Path, exclude: set[str] = frozenset()) -> dict[str, dict]:
    """Every entry under `top` with its metadata and each regular file's SHA-256, by path relative to `top`."""
    entries, _, _ = tree.scan(str(top), {os.fsencode(n) for n in exclude})
    for e in entries:
        if e["type"] == "file":
            with open(tree.unescape(e["path"]), "rb") as f:
                e["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
    return tree.under(entries, str(top))


def differences(source: Path, target: Path, exclude: set[str] = frozenset()) -> list[str]:
    """How `target` differs from `source` (names, types, modes, owners, sizes, contents, link targets, xattrs and
    ACLs, hardlinks, holes), in the words the verification uses; [] when equal."""
    return [tree.describe(d, str(source)) for d in tree.compare(snapshot(source, exclude), snapshot(target, exclude))]


def assert_same_tree(source: Path, target: Path, exclude: set[str] = frozenset()) -> None:
    diff = differences(source, target, exclude)
    assert diff == [], "\n".join(diff)


def make_special(base: Path) -> Path:
    """Under `base`/fidelity: a GBK-named file, a plain file with an xattr, a hardlinked pair, a sparse file,
    xattrs, POSIX ACLs (setfacl) on a file and a default ACL on a directory, a FIFO, symlinks to a directory and to
    a file, an empty directory, a setgid directory and a file of another owner with its own mode. Returns the
    directory."""
    d = base / SPECIAL
    (d / "shared").mkdir(parents=True, exist_ok=True)
    (d / "empty").mkdir(exist_ok=True)
    (d / "setgid").mkdir(exist_ok=True)
    os.chmod(d / "setgid", 0o2775)
    (d / os.fsdecode(GBK)).write_bytes("非 UTF-8 的文件名".encode("gbk"))
    pair = d / "linked-a"
    pair.write_bytes(b"one inode, two names\n" * 100)
    if not (d / "shared" / "linked-b").exists():
        os.link(pair, d / "shared" / "linked-b")
    with open(d / "sparse.img", "wb") as f:
        f.truncate(SPARSE_SIZE)
        f.seek(SPARSE_SIZE // 2)
        f.write(b"data in the middle of a hole")
    owned = d / "owned.conf"
    owned.write_text("owner 1234:5678, mode 0640\n")
    os.chown(owned, *ODD_OWNER)
    os.chmod(owned, 0o640)
    os.setxattr(pair, "user.jiyue.checksum", b"\x00\x01binary value")
    plain = d / "plain.bin"
    plain.write_bytes(bytes(range(256)) * 16)
    os.chmod(plain, 0o644)
    os.setxattr(plain, "user.jiyue.origin", b"source")
    os.setxattr(d / "shared", "user.jiyue.note", "目录的属性".encode())
    subprocess.run(["setfacl", "-m", "u:1234:rw,g:5678:r", str(owned)], check=True)
    subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx", str(d / "shared")], check=True)
    if not (d / "queue.fifo").exists():
        os.mkfifo(d / "queue.fifo", 0o620)
    for name, target in (("to-dir", "shared"), ("to-file", "linked-a")):
        if not (d / name).is_symlink():
            os.symlink(target, d / name)
    return d


# --- changes made to a copy behind the run's back: each returns the difference it causes ({}: the directory) ---


def mutate_mode(d: Path) -> str:
    (d / "plain.bin").chmod(0o600)
    return "differs: {}/plain.bin (file): mode 0644 → 0600"


def mutate_owner(d: Path) -> str:
    os.chown(d / "owned.conf", 4321, 5678)
    return "differs: {}/owned.conf (file): uid 1234 → 4321"


def mutate_dir_symlink(d: Path) -> str:
    (d / "to-dir").unlink()
    return "missing on the target: {}/to-dir (symlink)"


def mutate_empty_dir(d: Path) -> str:
    (d / "empty").rmdir()
    return "missing on the target: {}/empty (dir)"


def mutate_fifo(d: Path) -> str:
    (d / "queue.fifo").unlink()
    return "missing on the target: {}/queue.fifo (fifo)"


def mutate_extra_dir(d: Path) -> str:
    (d / "extra").mkdir()
    return "extra on the target: {}/extra (dir)"


def mutate_byte(d: Path) -> str:
    flip_byte(d / os.fsdecode(GBK))
    return "differs: {}/gbk-\\xd6\\xd0\\xce\\xc4.txt (file): sha256"


def mutate_xattr(d: Path) -> str:
    os.removexattr(d / "plain.bin", "user.jiyue.origin")
    return "differs: {}/plain.bin (file): xattrs"


def mutate_acl(d: Path) -> str:
    subprocess.run(["setfacl", "-x", "g:5678", str(d / "owned.conf")], check=True)
    return "differs: {}/owned.conf (file): xattrs"


def mutate_hardlink(d: Path) -> str:
    b = d / "shared" / "linked-b"
    subprocess.run(["cp", "--preserve=all", str(b), str(b) + ".tmp"], check=True)  # the same, but its own inode
    os.replace(str(b) + ".tmp", b)
    return "differs: {}/shared/linked-b (file): link fidelity/linked-a → none"


def mutate_holes(d: Path) -> str:
    img = d / "sparse.img"
    data = img.read_bytes()
    st = img.stat()
    with open(img, "r+b") as f:  # the same bytes, every block allocated
        f.write(data)
        os.fsync(f.fileno())
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    return "differs: {}/sparse.img (file): sparse True → False"


def flip_byte(path: Path) -> None:
    """One byte changed; size and modification time kept (what rsync's quick check compares)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


MUTATIONS = [mutate_mode, mutate_owner, mutate_dir_symlink, mutate_empty_dir, mutate_fifo, mutate_extra_dir,
             mutate_byte, mutate_xattr, mutate_acl, mutate_hardlink, mutate_holes]
