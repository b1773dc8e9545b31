"""Running the Ansible that this venv installed, with the settings of this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    """ansible-core refuses a non-UTF-8 locale; the checkout's ansible.cfg holds the rest."""
    return {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


def tool(name: str) -> str:
    """`ansible`, `ansible-inventory`, `ansible-playbook` from the interpreter's own bin directory."""
    return str(Path(sys.executable).parent / name)


def run(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(name), *args], env=env(), capture_output=True, text=True, timeout=timeout)
