"""Whether a process on this machine still runs: one test for the migration locks and the lab."""

from __future__ import annotations

from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone, since it will never again
    hold a lock or serve a lab host."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
