"""A pid file for the lab's own long-running processes (services, traffic), so seeding again finds them.

Imported by the scripts in this folder, which run with the machine's Python inside lab hosts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def held(path: str | None) -> Iterator[None]:
    """Write this process's pid to `path` for the duration; remove it after, if it is still ours."""
    if path:
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        if path:
            with contextlib.suppress(OSError):
                with open(path) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.unlink(path)
