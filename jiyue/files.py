"""Writing a file so that readers see the old content or the new, never half of it.

The one atomic writer of jiyue: reports, device backups and the lab's files all go through it. (The
Ansible modules under playbooks/ run on remote hosts, where jiyue is not installed: they have their
own, `playbooks/module_utils/jiyue_files.py`.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; it replaces `path` only when the block succeeds.

    With `mode`, the temporary file is created with that mode before anything is written to it, so a
    secret (a device backup) is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if mode is not None:
            tmp.unlink(missing_ok=True)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode))
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None, mtime: float | None = None) -> Path:
    """Replace `path` with `data` (text is written as UTF-8) atomically; optionally its mode and mtime."""
    with atomic_path(path, mode) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        if mode is not None:
            tmp.chmod(mode)  # the umask may have narrowed it
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
    return path
