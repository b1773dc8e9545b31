"""The ssh-agent of one migration run: how the sources reach their targets without a key on any host.

rsync runs on each source and reaches its target over SSH with the operator's key through agent
forwarding. The engine starts an ssh-agent for the run holding the inventory's key(s) and passes
only its socket to Ansible; the agent dies with the engine (even when the engine is killed), and the
run's shared SSH connections (control sockets inside the agent's own directory) end with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

AGENT_PREFIX = "jiyue-agent-"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The ssh-agent ends when the engine does, even when the engine is killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _remove_dead_agent_dir(folder: Path) -> None:
    """Remove an agent directory whose agent no longer answers (a live agent's socket accepts connections)."""
    sock = folder / "agent.sock"
    with contextlib.suppress(OSError):
        if time.time() - folder.stat().st_mtime < 60:
            return  # an agent still starting
        if sock.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(sock))
                    return  # alive: another run's
                except OSError:
                    sock.unlink()
        folder.rmdir()


class SshAgent:
    """An ssh-agent holding `keys`, from `start()` to `stop()` (starting twice starts one agent)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(set(keys))
        self.folder: str | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def socket(self) -> str | None:
        return os.path.join(self.folder, "agent.sock") if self.folder else None

    def start(self) -> None:
        if self._proc is not None:
            return
        for old in Path(tempfile.gettempdir()).glob(AGENT_PREFIX + "*"):  # left by a killed run (its agent is gone)
            _remove_dead_agent_dir(old)
        self.folder = tempfile.mkdtemp(prefix=AGENT_PREFIX)
        sock = os.path.join(self.folder, "agent.sock")
        self._proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        for _ in range(1000):  # up to 10 s: a loaded machine may take seconds to start it
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        for key in self.keys:
            subprocess.run(["ssh-add", "-q", key], env={**os.environ, "SSH_AUTH_SOCK": sock}, check=True,
                           capture_output=True)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            self._proc = None
        if self.folder:
            for sock in Path(self.folder).rglob("*"):  # the run's shared SSH connections end with it
                if sock.is_socket() and sock.name != "agent.sock":
                    subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "jiyue"], capture_output=True,
                                   timeout=10, check=False)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def env(self) -> dict[str, str]:
        """What Ansible needs to use the agent: its socket, and SSH connections shared only within this run (a
        control socket is a file, and another process's (another lab in another network namespace, another
        operator) must never carry our commands)."""
        if not self.folder:
            return {}
        return {"SSH_AUTH_SOCK": os.path.join(self.folder, "agent.sock"),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(self.folder, "cp")}

    def forward_ssh_args(self) -> str:
        """SSH options of the plays whose hosts use the agent (rsync host to host): agent forwarding, and
        connection sharing only through a control socket in the agent's own directory (so only this run's
        connections, forwarding this run's agent, are ever shared)."""
        if not self.folder:
            return "-o ControlMaster=no -o ControlPath=none -o ForwardAgent=yes"
        return (f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={self.folder}/cm-%C "
                "-o ForwardAgent=yes")
