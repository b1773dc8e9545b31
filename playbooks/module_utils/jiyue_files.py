"""Shared by jiyue's modules (jiyue_route, jiyue_manifest): replace a file atomically.

A reader (nginx reloading, the next manifest run) sees the old content or the new, never half of it,
and a crash leaves no partial file behind. Plain standard library: it runs on any host with Python.
"""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, content: str, mode: int) -> None:
    """Write `content` to a temporary file beside `path`, fsync it, give it `mode`, rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".jiyue-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
