"""Running the Ansible that this venv installed, with the settings of this checkout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# SSH control sockets of this checkout's runs: a socket is a file, so two checkouts on one machine (two
# operators, or labs in separate network namespaces) must not share a directory, or one's connection
# could carry the other's commands. Short, for the socket path limit.
CONTROL_PATH_DIR = f"/tmp/jiyue-cp-{hashlib.sha256(str(REPO).encode()).hexdigest()[:10]}"


def env() -> dict[str, str]:
    """ansible-core refuses a non-UTF-8 locale; the checkout's ansible.cfg holds the rest."""
    return {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": CONTROL_PATH_DIR}


def tool(name: str) -> str:
    """`ansible`, `ansible-inventory`, `ansible-playbook` from the interpreter's own bin directory."""
    return str(Path(sys.executable).parent / name)


def run(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(name), *args], env=env(), capture_output=True, text=True, timeout=timeout)
