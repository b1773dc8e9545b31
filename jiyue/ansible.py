"""Running the Ansible that this venv installed, with the settings of this checkout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def control_path_dir() -> str:
    """Where this checkout's runs keep their SSH control sockets.

    A socket is a file, so two checkouts on one machine (two operators) must not share a directory, or one's
    connection could carry the other's commands; nor may two network namespaces (the test suite's own lab
    runs in one): a master connected to a host in one namespace would answer for the same address in the
    other. Short, for the socket path limit.
    """
    netns = os.stat("/proc/self/ns/net").st_ino
    return f"/tmp/jiyue-cp-{hashlib.sha256(f'{REPO}:{netns}'.encode()).hexdigest()[:10]}"


def env() -> dict[str, str]:
    """ansible-core refuses a non-UTF-8 locale; the checkout's ansible.cfg holds the rest."""
    return {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": control_path_dir()}


def tool(name: str) -> str:
    """`ansible`, `ansible-inventory`, `ansible-playbook` from the interpreter's own bin directory."""
    return str(Path(sys.executable).parent / name)


def run(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(name), *args], env=env(), capture_output=True, text=True, timeout=timeout)
