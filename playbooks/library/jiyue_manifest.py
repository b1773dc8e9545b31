#!/usr/bin/python3
"""Ansible module: a SHA-256 manifest (path, size, sha256) of every file under some directories.

Read-only, so it runs the same in check mode. Symlinks are listed with their target instead of a
hash. The `digest` (SHA-256 of the sorted manifest) makes two sides comparable at a glance, overall
and per directory (`per_dir`); the full manifest comes back too, so a mismatch can name the files.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: jiyue_manifest
short_description: SHA-256 manifest of every file under the given directories
options:
  dirs: {type: list, elements: str, required: true}
  exclude: {type: list, elements: str, default: [], description: file names left out (e.g. a marker)}
"""

CHUNK = 1 << 20


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def summary(rows: list) -> dict:
    """Count, bytes and SHA-256 of the sorted manifest rows (paths included, so a rename shows)."""
    digest = hashlib.sha256("".join(f"{p}\t{s}\t{d}\n" for p, s, d in rows).encode()).hexdigest()
    return {"files": len(rows), "bytes": sum(s for _, s, _ in rows), "digest": digest}


def main() -> None:
    module = AnsibleModule(argument_spec={"dirs": {"type": "list", "elements": "str", "required": True},
                                          "exclude": {"type": "list", "elements": "str", "default": []}},
                           supports_check_mode=True)
    files, links, missing = [], [], []
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
                if os.path.islink(path):
                    links.append([path, 0, "link:" + os.readlink(path)])
                elif os.path.isfile(path):
                    files.append(path)
    with ThreadPoolExecutor(4) as pool:  # hashlib releases the GIL: several cores hash at once
        digests = list(pool.map(sha256, files))
    manifest = sorted([[p, os.path.getsize(p), d] for p, d in zip(files, digests, strict=True)] + links)
    per_dir = {}
    for top in module.params["dirs"]:
        prefix = top.rstrip("/") + "/"
        mine = [row for row in manifest if row[0].startswith(prefix)] if top not in missing else []
        per_dir[top] = summary(mine) if top not in missing else {"missing": True}
    module.exit_json(changed=False, missing=missing, manifest=manifest, per_dir=per_dir, **summary(manifest))


if __name__ == "__main__":
    main()
