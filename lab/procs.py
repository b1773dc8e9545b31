"""The machine's tools and processes as every lab module uses them: one runner, one liveness test.

Kept apart from `lab.hosts` so the simulator's modules (`lab.netsim`), which `lab.hosts` imports,
can use them without a circular import.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path


class LabError(Exception):
    """Something the lab needs is missing; the message says what to do."""


def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one of the machine's tools (ip, nsenter, …); with `check`, a failure is a LabError naming the command."""
    proc = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{shlex.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
