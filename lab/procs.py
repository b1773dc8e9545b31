"""The machine's tools as every lab module uses them: one runner (liveness is `jiyue.processes.pid_alive`).

Kept apart from `lab.hosts` so the simulator's modules (`lab.netsim`), which `lab.hosts` imports,
can use them without a circular import.
"""

from __future__ import annotations

import shlex
import subprocess


class LabError(Exception):
    """Something the lab needs is missing; the message says what to do."""


def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one of the machine's tools (ip, nsenter, …); with `check`, a failure is a LabError naming the command."""
    proc = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{shlex.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc

