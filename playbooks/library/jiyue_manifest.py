#!/usr/bin/python3
"""Ansible module: a SHA-256 manifest (path, size, sha256) of every file under some directories.

Symlinks are listed with their target instead of a hash. The `digest` (SHA-256 of the sorted manifest)
makes two sides comparable at a glance, overall and per directory (`per_dir`); the full manifest comes
back too, so a mismatch can name the files.

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
import stat
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jiyue_files import write_atomic

DOCUMENTATION = r"""
module: jiyue_manifest
short_description: SHA-256 manifest of every file under the given directories
options:
  dirs: {type: list, elements: str, required: true}
  exclude: {type: list, elements: str, default: [], description: file names left out (e.g. a marker)}
  cache: {type: str, description: a file (root only) keeping hashes for files whose identity has not changed}
  settle: {type: bool, default: false, description: "files changed within the racy window are hashed again once it
           has passed (up to 2 s more), so that they can be cached too: for a run ahead of the one that counts"}
  relative: {type: bool, default: false, description: "each directory's summary (`per_dir`) hashes its files' paths
             relative to it, so the same tree at another place (an archive) has the same digest"}
  report: {type: str, description: the name the migration engine reads this result by (returned as `report`)}
"""

CHUNK = 1 << 20
RACY_NS = 2_000_000_000


def sha256(path: str) -> str | None:
    """The file's SHA-256, or None when it vanished meanwhile (a live system's temporary file)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def hash_all(paths: list[str]) -> dict[str, str | None]:
    with ThreadPoolExecutor(4) as pool:  # hashlib releases the GIL: several cores hash at once
        return dict(zip(paths, pool.map(sha256, paths), strict=True))


def identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def unchanged(path: str, st: os.stat_result) -> bool:
    """The file still has the identity it had before it was hashed (nothing wrote to it meanwhile)."""
    try:
        return identity(os.lstat(path)) == identity(st)
    except FileNotFoundError:
        return False


def summary(rows: list) -> dict:
    """Count, bytes and SHA-256 of the sorted manifest rows (paths included, so a rename shows)."""
    digest = hashlib.sha256("".join(f"{p}\t{s}\t{d}\n" for p, s, d in rows).encode()).hexdigest()
    return {"files": len(rows), "bytes": sum(s for _, s, _ in rows), "digest": digest}


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
    began = time.time_ns()
    cache = load_cache(module.params["cache"])
    files: dict[str, os.stat_result] = {}
    links, missing, vanished = [], [], []
    exclude = set(module.params["exclude"])
    for top in module.params["dirs"]:
        if not os.path.isdir(top):
            missing.append(top)
            continue
        for root, dirnames, names in os.walk(top):
            dirnames.sort()
            for name in sorted(names):
                if name in exclude:
                    continue
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                    if stat.S_ISLNK(st.st_mode):
                        links.append([path, 0, "link:" + os.readlink(path)])
                    elif stat.S_ISREG(st.st_mode):
                        files[path] = st
                except FileNotFoundError:
                    vanished.append(path)
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
    racy = [p for p in stale if digests[p] is not None and files[p].st_ctime_ns >= began - RACY_NS]
    if module.params["settle"] and racy and not module.check_mode:
        # Wait out the racy window of the files changed just before, then hash them again: cacheable now.
        newest = max(files[p].st_ctime_ns for p in racy)
        time.sleep(max(0.0, (newest + RACY_NS - time.time_ns()) / 1e9) + 0.01)
        again = time.time_ns()
        for path in racy:
            try:
                files[path] = os.lstat(path)
            except FileNotFoundError:
                digests[path] = None
                continue
            hashed_at[path] = again
        digests |= hash_all([p for p in racy if digests[p] is not None])
    for path in [p for p, d in digests.items() if d is None]:
        del files[path]
        vanished.append(path)
    manifest = sorted([[p, st.st_size, digests[p]] for p, st in files.items()] + links)
    if module.params["cache"] and not module.check_mode:
        save_cache(module.params["cache"], {p: [*identity(st), digests[p]] for p, st in files.items()
                                            if st.st_ctime_ns < hashed_at[p] - RACY_NS and unchanged(p, st)})
    per_dir = {}
    for top in module.params["dirs"]:
        prefix = top.rstrip("/") + "/"
        mine = [row for row in manifest if row[0].startswith(prefix)] if top not in missing else []
        if module.params["relative"]:
            mine = [[p[len(prefix):], size, digest] for p, size, digest in mine]
        per_dir[top] = summary(mine) if top not in missing else {"missing": True}
    module.exit_json(changed=False, missing=missing, manifest=manifest, per_dir=per_dir, hashed=len(stale),
                     reused=len(digests) - len(stale), vanished=sorted(vanished), report=module.params["report"],
                     **summary(manifest))


if __name__ == "__main__":
    main()
