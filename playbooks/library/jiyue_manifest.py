#!/usr/bin/python3
"""Ansible module: a manifest of every entry under some directories: what jiyue's data verification compares.

Each entry (see module_utils/jiyue_tree.py) carries its type, permission bits, numeric owner, size, link target,
device number, extended attributes (POSIX ACLs included), hardlinks (`link`), holes (`sparse`) and, for a
regular file, the SHA-256 of its contents. Names are bytes on disk and escaped here (`gbk-\\xd6\\xd0.txt`), so
any name can be listed, and a name that cannot be read fails the module with the name in its message. The
`digest` (SHA-256 of the sorted entries, every compared field) makes two sides comparable at a glance, overall
and per directory (`per_dir`); the full manifest comes back too, so that a mismatch names the entries
(library/jiyue_compare.py).

With `cache`, a file's hash is kept beside its identity (device, inode, size, mtime and ctime in
nanoseconds) and reused while that identity is unchanged: the pre-sync hashes both sides while the
system is live, so the verification inside the downtime hashes only what changed since. ctime cannot be
set from user space and moves on every write or rename, so an unchanged identity means unchanged bytes.
As in git's index ("racy git"), a file changed within `RACY_NS` before its hash was taken is never
cached: a write in the same timestamp tick as the hash could otherwise hide behind an equal ctime.
With `settle`, such files are hashed again once the window has passed, so they can be cached as well.
In check mode the manifest is taken the same way and the cache is read but never written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jiyue_files import write_atomic
from ansible.module_utils.jiyue_tree import TreeError, escape, relative, row, scan, unescape

DOCUMENTATION = r"""
module: jiyue_manifest
short_description: manifest of every entry (metadata, and SHA-256 of files) under the given directories
options:
  dirs: {type: list, elements: str, required: true}
  exclude: {type: list, elements: str, default: [], description: file names left out (e.g. a marker)}
  cache: {type: str, description: a file (root only) keeping hashes for files whose identity has not changed}
  settle: {type: bool, default: false, description: "files changed within the racy window are hashed again once it
           has passed (up to 2 s more), so that they can be cached too: for a run ahead of the one that counts"}
  relative: {type: bool, default: false, description: "each directory's summary (`per_dir`) hashes its entries' paths
             relative to it, so the same tree at another place (an archive) has the same digest"}
  report: {type: str, description: the name the migration engine reads this result by (returned as `report`)}
"""

CHUNK = 1 << 20
RACY_NS = 2_000_000_000


def sha256(name: str) -> str | None:
    """The SHA-256 of the file (escaped name), or None when it vanished meanwhile (a live system's temporary
    file). Raises TreeError naming the file when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(unescape(name), "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TreeError(f"{name}: {exc.strerror}") from None
    return h.hexdigest()


def hash_all(paths: list[str]) -> dict[str, str | None]:
    with ThreadPoolExecutor(4) as pool:  # hashlib releases the GIL: several cores hash at once
        return dict(zip(paths, pool.map(sha256, paths), strict=True))


def identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def unchanged(name: str, st: os.stat_result) -> bool:
    """The file still has the identity it had before it was hashed (nothing wrote to it meanwhile)."""
    try:
        return identity(os.lstat(unescape(name))) == identity(st)
    except FileNotFoundError:
        return False


def summary(entries: list[dict]) -> dict:
    """Regular files, their bytes, entries of any type, and the SHA-256 of the sorted entries (every compared
    field, paths included, so a rename, a mode or an owner changed shows)."""
    files = [e for e in entries if e["type"] == "file"]
    digest = hashlib.sha256("".join(row(e) + "\n" for e in entries).encode()).hexdigest()
    return {"files": len(files), "bytes": sum(e["size"] for e in files), "entries": len(entries), "digest": digest}


def load_cache(path: str | None) -> dict[str, list]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # no cache, or a damaged one: hash everything


def save_cache(path: str, entries: dict[str, list]) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomic(path, json.dumps(entries), 0o600)


def main() -> None:
    module = AnsibleModule(argument_spec={"dirs": {"type": "list", "elements": "str", "required": True},
                                          "exclude": {"type": "list", "elements": "str", "default": []},
                                          "cache": {"type": "str"},
                                          "settle": {"type": "bool", "default": False},
                                          "relative": {"type": "bool", "default": False},
                                          "report": {"type": "str"}},
                           supports_check_mode=True)
    try:
        result = manifest(module)
    except TreeError as exc:
        module.fail_json(msg=f"cannot read {exc}; nothing was changed", report=module.params["report"])
    module.exit_json(changed=False, report=module.params["report"], **result)


def manifest(module: AnsibleModule) -> dict:
    p = module.params
    began = time.time_ns()
    cache = load_cache(p["cache"])
    entries: list[dict] = []
    files: dict[str, os.stat_result] = {}
    missing, vanished = [], []
    exclude = {os.fsencode(name) for name in p["exclude"]}
    for top in p["dirs"]:
        if not os.path.isdir(top):
            missing.append(top)
            continue
        found, regular, gone = scan(top.rstrip("/") or "/", exclude)
        entries += found
        files |= regular
        vanished += gone
    digests: dict[str, str | None] = {}
    stale = []
    for path, st in files.items():
        hit = cache.get(path)
        if isinstance(hit, list) and hit[:-1] == identity(st):
            digests[path] = hit[-1]
        else:
            stale.append(path)
    digests |= hash_all(stale)
    hashed_at = dict.fromkeys(files, began)
    racy = [n for n in stale if digests[n] is not None and files[n].st_ctime_ns >= began - RACY_NS]
    if p["settle"] and racy and not module.check_mode:
        # Wait out the racy window of the files changed just before, then hash them again: cacheable now.
        newest = max(files[n].st_ctime_ns for n in racy)
        time.sleep(max(0.0, (newest + RACY_NS - time.time_ns()) / 1e9) + 0.01)
        again = time.time_ns()
        for name in racy:
            try:
                files[name] = os.lstat(unescape(name))
            except FileNotFoundError:
                digests[name] = None
                continue
            hashed_at[name] = again
        digests |= hash_all([n for n in racy if digests[n] is not None])
    gone = {n for n, d in digests.items() if d is None}
    vanished += sorted(gone)
    for name in gone:
        del files[name]
    for e in entries:
        if e["type"] == "file" and e["path"] in files:
            e["sha256"] = digests[e["path"]]
            e["size"] = files[e["path"]].st_size  # as hashed (settle may have seen it again)
    entries = sorted((e for e in entries if e["path"] not in gone), key=lambda e: e["path"])
    if p["cache"] and not module.check_mode:
        save_cache(p["cache"], {n: [*identity(st), digests[n]] for n, st in files.items()
                                if st.st_ctime_ns < hashed_at[n] - RACY_NS and unchanged(n, st)})
    per_dir = {}
    for top in p["dirs"]:
        if top in missing:
            per_dir[top] = {"missing": True}
            continue
        prefix = escape(top.rstrip("/") or "/")
        mine = [e for e in entries if e["path"] == prefix or e["path"].startswith(prefix.rstrip("/") + "/")]
        if p["relative"]:
            mine = sorted((relative(e, prefix) for e in mine), key=lambda e: e["path"])
        per_dir[top] = summary(mine)
    return {"missing": missing, "manifest": entries, "per_dir": per_dir, "hashed": len(stale),
            "reused": len(digests) - len(stale), "vanished": sorted(vanished), **summary(entries)}


if __name__ == "__main__":
    main()
