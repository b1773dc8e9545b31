"""Shared by jiyue's data modules (jiyue_manifest, jiyue_compare, jiyue_sync) and the tests: a directory tree as
entries, and two trees compared entry by entry.

A file name is bytes (GBK names are common on Chinese servers), so every name is walked as bytes and carried as
`escape(name)`: valid UTF-8 stays readable (CJK included), a backslash is doubled, and any other byte (one that is
not UTF-8, or a control character such as a newline) becomes `\\xNN`. The form is JSON-safe, shown as it is in
messages, and reversible (`unescape`), so a list of names can go back to rsync byte for byte.

An entry says what a server relies on: its type, permission bits, numeric owner, size, link target, device
number, extended attributes (POSIX ACLs are the xattrs `system.posix_acl_access` / `_default`), which other
names share its inode (`link`: the first of them), whether it has holes (`sparse`), and for a regular file the
SHA-256 of its contents (added by the caller, which may take it from a cache). Plain standard library: it runs on
any host with Python.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import stat
from collections.abc import Iterator

TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
         stat.S_IFSOCK: "socket", stat.S_IFCHR: "char", stat.S_IFBLK: "block"}
# Compared for equality, in this order (the order a difference is described in).
FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "target", "rdev", "xattrs", "link")
TOP = "."  # the relative name of the top directory itself
# A file has holes when at least this much of its size is not allocated (one page / common block size).
HOLE = 4096
_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2})")


class TreeError(Exception):
    """An entry could not be read: the message names it (escaped)."""


def escape(name: bytes | str) -> str:
    """`name` as readable, JSON-safe, reversible text (see the module's docstring)."""
    text = os.fsdecode(name) if isinstance(name, bytes) else name
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape(text: str) -> bytes:
    """The bytes `escape` was given."""
    out, at = bytearray(), 0
    for m in _ESCAPED.finditer(text):
        out += text[at:m.start()].encode("utf-8")
        out += b"\\" if m.group(1) == "\\" else bytes([int(m.group(1)[1:], 16)])
        at = m.end()
    out += text[at:].encode("utf-8")
    return bytes(out)


def xattrs(path: bytes) -> dict[str, str]:
    """Every extended attribute of the entry itself (a symlink's own), name (escaped) -> value (base64)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    out = {}
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:  # removed meanwhile
                continue
            raise
        out[escape(name)] = base64.b64encode(value).decode("ascii")
    return out


def sparse(st: os.stat_result) -> bool:
    """The file has holes: less of it is allocated than its size, by at least a block."""
    return st.st_blocks * 512 + HOLE <= st.st_size


def entry(path: bytes, st: os.stat_result) -> dict:
    """What `path` is, without its contents' hash (see the module's docstring)."""
    kind = TYPES.get(stat.S_IFMT(st.st_mode), "other")
    e: dict = {"path": escape(path), "type": kind, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
               "gid": st.st_gid, "size": st.st_size if kind == "file" else 0}
    if kind == "symlink":
        target = os.readlink(path)
        e["target"], e["size"] = escape(target), len(target)
    elif kind in ("char", "block"):
        e["rdev"] = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
    attrs = xattrs(path)
    if attrs:
        e["xattrs"] = attrs
    if kind == "file" and sparse(st):
        e["sparse"] = True
    return e


def walk(top: bytes, exclude: set[bytes]) -> Iterator[tuple[bytes, os.stat_result | None]]:
    """Every entry under `top` (itself first), sorted by name within a directory, never following a symlink; a
    name in `exclude` is left out (with what is below it). An entry that vanished meanwhile (a live system's
    temporary file) comes with None. Raises TreeError naming the entry that could not be read."""
    stack = [top]
    first = True
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            if first:
                raise TreeError(f"{escape(current)}: no such directory") from None
            yield current, None
            continue
        except OSError as exc:
            raise TreeError(f"{escape(current)}: {exc.strerror}") from None
        first = False
        yield current, st
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            names = sorted(os.listdir(current))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise TreeError(f"{escape(current)}: {exc.strerror}") from None
        stack += [os.path.join(current, n) for n in reversed(names) if n not in exclude]


def scan(top: bytes | str, exclude: set[bytes] | None = None) -> tuple[list[dict], dict[str, os.stat_result],
                                                                       list[str]]:
    """The entries under `top` (without hashes), the stat of each regular file by escaped path (for the caller
    to hash), and the entries that vanished during the scan. Hardlinks are marked (`link`) among these entries."""
    top_b = os.fsencode(top)
    entries, files, vanished = [], {}, []
    inodes: dict[tuple[int, int], list[dict]] = {}
    for path, st in walk(top_b, exclude or set()):
        if st is None:
            vanished.append(escape(path))
            continue
        try:
            e = entry(path, st)
        except FileNotFoundError:
            vanished.append(escape(path))
            continue
        except OSError as exc:
            raise TreeError(f"{escape(path)}: {exc.strerror}") from None
        entries.append(e)
        if e["type"] == "file":
            files[e["path"]] = st
            if st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(e)
    mark_links(inodes.values())
    return entries, files, vanished


def mark_links(groups) -> None:
    """Each name of an inode that has several names here gets `link`: the first of those names."""
    for group in groups:
        if len(group) > 1:
            first = min(e["path"] for e in group)
            for e in group:
                e["link"] = first


def relative(e: dict, prefix: str) -> dict:
    """The entry with its path (and its `link`) relative to the escaped directory `prefix` (TOP for itself)."""
    out = dict(e)
    for key in ("path", "link"):
        value = e.get(key)
        if value is None:
            continue
        if value == prefix:
            out[key] = TOP
        elif value.startswith(prefix + "/"):
            out[key] = value[len(prefix) + 1:]
    return out


def under(entries: list[dict], top: str) -> dict[str, dict]:
    """The entries of the tree at `top` (escaped), by path relative to it."""
    prefix = escape(top).rstrip("/") or "/"
    inside = prefix + "/" if prefix != "/" else "/"
    return {r["path"]: r for r in (relative(e, prefix) for e in entries
                                   if e["path"] == prefix or e["path"].startswith(inside))}


def row(e: dict) -> str:
    """An entry as one line of text: what the manifest's digest hashes (every compared field)."""
    return "\t".join([e["path"], *(str(e.get(k, "")) if k != "xattrs" else
                                   ",".join(f"{n}={v}" for n, v in sorted(e.get(k, {}).items())) for k in FIELDS)])


def _xattrs(source: dict, target: dict) -> str:
    """Which xattrs differ: `xattrs user.a removed, system.posix_acl_access changed, user.b added`."""
    parts = [f"{n} removed" if n not in target else f"{n} added" if n not in source else f"{n} changed"
             for n in sorted(set(source) | set(target)) if source.get(n) != target.get(n)]
    return "xattrs " + ", ".join(parts)


def _show(field: str, value) -> str:
    if value is None:
        return "none"
    if field == "mode":
        return f"{value:04o}"
    if field == "sha256":
        return str(value)[:12]
    return str(value)


def compare(source: dict[str, dict], target: dict[str, dict]) -> list[dict]:
    """How the target tree differs from the source tree (both by relative path, see `under`), sorted by path:
    each difference {path, kind: missing | extra | differs, type, fields: {field: [source's, target's]}}.
    A source file with holes that is fully allocated on the target differs in `sparse` (a copy that turned holes
    into zeros fills the disk); the reverse (zeros turned into holes) reads the same and is no difference."""
    out = []
    for path in sorted(set(source) | set(target)):
        s, t = source.get(path), target.get(path)
        if t is None:
            out.append({"path": path, "kind": "missing", "type": s["type"], "fields": {}})
        elif s is None:
            out.append({"path": path, "kind": "extra", "type": t["type"], "fields": {}})
        else:
            fields = {k: [s.get(k), t.get(k)] for k in FIELDS if s.get(k) != t.get(k)}
            if s.get("sparse") and not t.get("sparse") and s["type"] == t["type"] == "file":
                fields["sparse"] = [True, False]
            if fields:
                out.append({"path": path, "kind": "differs", "type": s["type"], "fields": fields})
    return out


def describe(d: dict, where: str = "") -> str:
    """One difference in the operator's words, its name escaped: `missing on the target: <dir>/x (symlink)`."""
    name = d["path"] if d["path"] == TOP or not where else f"{where.rstrip('/')}/{d['path']}"
    if d["path"] == TOP and where:
        name = where
    if d["kind"] == "missing":
        return f"missing on the target: {name} ({d['type']})"
    if d["kind"] == "extra":
        return f"extra on the target: {name} ({d['type']})"
    changes = "; ".join(_xattrs(a or {}, b or {}) if k == "xattrs" else f"{k} {_show(k, a)} → {_show(k, b)}"
                        for k, (a, b) in d["fields"].items())
    return f"differs: {name} ({d['type']}): {changes}"


def recopy(d: dict, source: dict[str, dict]) -> list[str]:
    """The source's names (relative) a plain rsync would not put right for this difference: a file whose contents,
    holes or hardlinks differ while its size and time may still match (rsync's quick check skips it), with every
    other name of its inode (a hardlink is copied whole or broken)."""
    s = source.get(d["path"])
    if d["kind"] != "differs" or s is None or s["type"] != "file" or d["fields"].get("type"):
        return []
    if not {"sha256", "size", "sparse", "link"} & set(d["fields"]):
        return []
    if s.get("link") is None:
        return [d["path"]]
    return sorted(p for p, e in source.items() if e.get("link") == s["link"])
