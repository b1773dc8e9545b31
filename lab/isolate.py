"""A lab apart: this process (and everything it starts) gets a network and mount namespace of its own.

The test suite calls `isolate()` before it starts a lab, so that its lab can neither adopt nor disturb
a lab an operator started with `invoke lab.up` or the demo, and they cannot see it either:

- a new network namespace with only its own loopback: the test lab's bridge, hosts and simulated
  devices live there, at the inventory's addresses, beside a main lab at the same addresses;
- a private mount namespace in which `/run/netns` is a tmpfs (the lab's namespace names are its own)
  and the checkout's `.lab/` is a fresh directory bound over the real one (its keys, known_hosts,
  device password and per-host files are its own).

Everything it mounts is visible only inside; it all goes when the last process inside ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(Exception):
    """The namespaces could not be made; the message says why."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        errno = ctypes.get_errno()
        raise IsolationError(f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None),
           f"mount {source} on {target}")


def isolate(state_dir: Path) -> Path:
    """Move this process into namespaces of its own, with a fresh `state_dir` bound over the real one.

    Call it before any thread starts (unshare refuses to split the mount namespace of a threaded process).
    Returns the directory that backs `state_dir` inside, for `cleanup`.
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here propagates back to the machine
    Path("/run/netns").mkdir(parents=True, exist_ok=True)
    _mount("tmpfs", "/run/netns", "tmpfs", 0)
    state_dir.mkdir(mode=0o700, exist_ok=True)
    backing = Path(tempfile.mkdtemp(prefix="jiyue-lab-", dir="/var/tmp"))
    _mount(str(backing), str(state_dir), None, MS_BIND)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return backing


def cleanup(backing: Path) -> None:
    """Remove what `isolate` made on the machine's disk (the namespaces go with the process)."""
    with contextlib.suppress(OSError):
        shutil.rmtree(backing)
