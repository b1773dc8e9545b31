"""No ansible-playbook outlives the engine that started it.

ansible-runner starts `ansible-playbook` through pexpect, in a session of its own: killing the engine
(kill -9, a crash, Ctrl-C in the wrong place) does not end it, and it would go on changing hosts
while a resumed run acts on the same system. So every playbook run carries a token in its
environment (`TOKEN_ENV`), which every process it starts inherits (its forks, their ssh clients, a
ControlPersist master that left the session), and a guard file in the system's runner directory
names the token and the engine (pid, start time, machine):

- the engine ends whatever still carries the token when the run returns or is interrupted
  (`guarded`);
- a watchdog process (`Watchdog`, in a session of its own, holding the read end of a pipe only the
  engine writes to) wakes when the engine dies, however it dies, and ends the tokens of its dead
  engine;
- before a run acts on a system it ends any orphan of a dead engine still carrying a token of that
  system (`reap`, called under the system's lock), so nothing runs beside it even when the watchdog
  was killed too.

A process is identified by its token, never by a pid alone (pids are reused). This module runs as the
watchdog with `python -m migrations.reaper RUNNER_DIR ENGINE_PID`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "JIYUE_PLAYBOOK_TOKEN"
GUARDS = "running"  # the guard files' folder inside a system's runner directory
GONE_WAIT_S = 10.0  # how long a killed process may take to disappear before it is reported as surviving


@dataclass(frozen=True)
class Process:
    """A live process of this machine carrying a token."""

    pid: int
    command: str
    name: str = ""  # the executable's name (/proc/PID/comm): an ssh connection master's command line is retitled


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])


def _engine_alive(guard: dict) -> bool:
    if guard.get("hostname") != socket.gethostname():
        return True  # another machine's engine: not ours to judge
    return start_time(int(guard["engine_pid"])) == guard.get("engine_start")


def carrying(token: str) -> list[Process]:
    """Every live process whose environment carries `token` (root reads every process's environment)."""
    needle = f"{TOKEN_ENV}={token}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes() or start_time(int(entry.name)) is None:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="backslashreplace")
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        found.append(Process(int(entry.name), command.strip()[:200], name))
    return found


def end(token: str, *, spare_ssh: bool = False) -> list[Process]:
    """Kill (SIGKILL) every process carrying `token` and wait until they are gone; what was killed.
    `spare_ssh`: leave ssh clients be (the run's shared connections, which end with its agent)."""
    killed = [p for p in carrying(token) if not (spare_ssh and p.name == "ssh")]
    for p in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + GONE_WAIT_S
    while time.monotonic() < deadline and any(start_time(p.pid) is not None for p in killed):
        time.sleep(0.05)
    return killed


def _guards(runner_dir: Path) -> Iterator[tuple[Path, dict]]:
    """The guard files of a system's runner directory, or of every system's under the runner root."""
    for path in sorted([*runner_dir.glob(f"{GUARDS}/*.json"), *runner_dir.glob(f"*/{GUARDS}/*.json")]):
        with contextlib.suppress(OSError, ValueError):
            yield path, json.loads(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def guarded(private_dir: Path, **about: str) -> Iterator[dict[str, str]]:
    """One playbook run's guard: yields the environment to add (the token); on the way out, however it goes,
    whatever still carries the token is ended (on a normal return only stragglers: the ssh connections stay)."""
    token = uuid.uuid4().hex
    folder = private_dir / GUARDS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{token}.json"
    path.write_text(json.dumps({"token": token, "engine_pid": os.getpid(), "engine_start": start_time(os.getpid()),
                                "hostname": socket.gethostname(), **about}), encoding="utf-8")
    returned = False
    try:
        yield {TOKEN_ENV: token}
        returned = True
    finally:
        end(token, spare_ssh=returned)
        path.unlink(missing_ok=True)


def reap(runner_dir: Path, *, engine_pid: int | None = None) -> list[dict]:
    """End the playbook runs under `runner_dir` whose engine is dead (or is `engine_pid`, which the watchdog knows
    dead): what each still had running (`pid`, `command`, and the guard's own fields), for the journal."""
    ended = []
    for path, guard in _guards(runner_dir):
        if engine_pid is not None and guard.get("engine_pid") != engine_pid:
            continue
        if engine_pid is None and _engine_alive(guard):
            continue
        killed = end(str(guard["token"]))
        path.unlink(missing_ok=True)
        if killed:
            about = {k: v for k, v in guard.items() if k not in ("token", "hostname")}
            ended += [{"pid": p.pid, "command": p.command, **about} for p in killed]
    return ended


class Watchdog:
    """A process that ends this engine's playbook runs once the engine is gone (even killed with SIGKILL): it reads
    a pipe only the engine holds, and end of file means the engine has exited."""

    def __init__(self, runner_dir: Path) -> None:
        self.runner_dir = runner_dir
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self._proc is not None:
            return
        self.runner_dir.mkdir(parents=True, exist_ok=True)
        me = os.getpid()
        # Its own session: Ctrl-C at the terminal, or a kill of the engine's process group, leaves it running.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "migrations.reaper", str(self.runner_dir), str(me)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # as the engine's death would: it ends what is left, then exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(GONE_WAIT_S + 5)
        self._proc = None


def _watch(runner_dir: Path, engine_pid: int) -> None:  # pragma: no cover - the watchdog process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    reap(runner_dir, engine_pid=engine_pid)


if __name__ == "__main__":  # pragma: no cover
    _watch(Path(sys.argv[1]), int(sys.argv[2]))
