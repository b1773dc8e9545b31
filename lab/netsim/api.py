"""The simulator's API for tests, benches and the lab: start devices, read their configs, break them.

The simulator runs as its own process (`server.py`), inside a network namespace when the lab gives
one; this client talks to it over `STATE/control.sock` and reads the per-device files directly:

    STATE/<device>/running.cfg     the running configuration, rewritten after every change
    STATE/<device>/startup.cfg     what `save` / `write` stored
    STATE/<device>/flash/          files on the device: archives, backups (`flash:/archive/archive_1.cfg`)
    STATE/<device>/commits.json    VRP8 commit points (what `rollback configuration last N` restores)
    STATE/<device>/commands.log    every line each session sent, with its view, errors and faults
    STATE/<device>/faults.yaml     faults, re-read on every line (see `set_faults`)
    STATE/<device>/settings.yaml   `time_scale`: device timers are multiplied by it
    STATE/known_hosts              every device's host key, for the engine to verify
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from jiyue.files import write_atomic
from lab.netsim.device import DeviceSpec

REPO = Path(__file__).resolve().parents[2]


class NetsimError(Exception):
    """The simulator could not do what was asked; the message says what and where to look."""


class Netsim:
    def __init__(self, state_dir: Path, netns: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.netns = netns
        self.control = self.state_dir / "control.sock"
        self.known_hosts = self.state_dir / "known_hosts"

    # --- the process -----------------------------------------------------------------------------

    def _request(self, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.control))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data or b"{}")
        if "error" in reply:
            raise NetsimError(f"simulator: {reply['error']}")
        return reply

    def alive(self) -> bool:
        try:
            self._request({"op": "ping"}, timeout=2)
            return True
        except (OSError, ValueError):
            return False

    def ensure_running(self) -> None:
        """Start the simulator process (inside the namespace, if any) unless it already answers."""
        if self.alive():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "lab.netsim.server", "--state", str(self.state_dir)]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with (self.state_dir / "server.log").open("ab") as out:
            subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.alive():
                return
            time.sleep(0.05)
        raise NetsimError(f"the device simulator did not start: see {self.state_dir / 'server.log'}")

    def shutdown(self) -> None:
        """Stop every device and the process."""
        if self.alive():
            self._request({"op": "shutdown"})

    # --- devices ---------------------------------------------------------------------------------

    def start(self, specs: Iterable[DeviceSpec]) -> list[str]:
        """Start the devices not yet running (a device already running is left as it is); return the
        names started. A device with a saved startup.cfg boots from it, otherwise from `spec.config`."""
        self.ensure_running()
        reply = self._request({"op": "start", "devices": [s.to_json() for s in specs]})
        if reply["failed"]:
            raise NetsimError("devices did not start: " + "; ".join(f"{n}: {e}" for n, e in reply["failed"].items()))
        self.write_known_hosts()
        return reply["started"]

    def stop(self, names: Iterable[str] | None = None) -> list[str]:
        """Take devices off the network (their sessions close); all of them without names."""
        if not self.alive():
            return []
        return self._request({"op": "stop", "names": None if names is None else list(names)})["stopped"]

    def reset(self, name: str, config: str | None = None) -> None:
        """Make a device as new: its initial config (or `config`) running and saved, no flash files, no
        commit points, no faults, no pending rollback. Its sessions are closed."""
        reply = self._request({"op": "reset", "name": name, "config": config})
        if reply.get("failed"):
            raise NetsimError(f"{name} did not restart: {reply['failed']}")

    def status(self) -> list[dict[str, Any]]:
        """Each running device: name, platform, address, port, open sessions, pending rollback kind."""
        return self._request({"op": "status"})["devices"] if self.alive() else []

    # --- reading ---------------------------------------------------------------------------------

    def device_dir(self, name: str) -> Path:
        return self.state_dir / name

    def running_config(self, name: str) -> str:
        return self._read(name, "running.cfg")

    def startup_config(self, name: str) -> str:
        return self._read(name, "startup.cfg")

    def command_log(self, name: str) -> str:
        return self._read(name, "commands.log")

    def flash_file(self, name: str, filename: str) -> str:
        """A file on the device's flash, by its device name (`flash:/archive/archive_1.cfg`, `flash:archive-1`)."""
        bare = filename.removeprefix("flash:").lstrip("/")
        return self._read(name, f"flash/{bare}")

    def _read(self, name: str, sub: str) -> str:
        path = self.device_dir(name) / sub
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NetsimError(f"cannot read {sub} of device {name}: {exc.strerror} ({path})") from None

    # --- faults and settings ---------------------------------------------------------------------

    def set_faults(self, name: str, *, reject: Iterable[str] = (), drop_after: int | None = None,
                   latency_ms: int = 0, config_latency_ms: int = 0, stall_after: int | None = None,
                   stall_scope: str = "all") -> None:
        """Break a device from its next line on: config lines matching a `reject` regex fail with the vendor's
        error; the session closes after `drop_after` config lines; every answer waits `latency_ms`, answers to
        configuration lines `config_latency_ms` more; after `stall_after` config lines in a session (0: from
        the start) the device answers nothing more, in any session, until the faults are cleared (with
        `stall_scope="config"` only configuration lines go unanswered: logins, `display` and `show` still work)."""
        faults: dict[str, Any] = {}
        if reject:
            faults["reject"] = list(reject)
        if drop_after is not None:
            faults["drop_after"] = drop_after
        if latency_ms:
            faults["latency_ms"] = latency_ms
        if config_latency_ms:
            faults["config_latency_ms"] = config_latency_ms
        if stall_after is not None:
            faults["stall_after"] = stall_after
            faults["stall_scope"] = stall_scope
        self._write_yaml(name, "faults.yaml", faults)

    def clear_faults(self, name: str) -> None:
        self._write_yaml(name, "faults.yaml", {})

    def set_time_scale(self, name: str, scale: float) -> None:
        """Multiply the device's timers (commit trial, commit delay, revert timer) by `scale`: 1/60 makes a
        minute last a second."""
        self._write_yaml(name, "settings.yaml", {"time_scale": scale})

    def _write_yaml(self, name: str, filename: str, data: dict[str, Any]) -> None:
        d = self.device_dir(name)
        if not d.is_dir():
            raise NetsimError(f"no simulated device {name} under {self.state_dir}")
        write_atomic(d / filename, yaml.safe_dump(data, sort_keys=False))

    # --- host keys -------------------------------------------------------------------------------

    def known_hosts_lines(self) -> list[str]:
        lines = []
        for spec_file in sorted(self.state_dir.glob("*/spec.json")):
            spec = json.loads(spec_file.read_text())
            pub = spec_file.with_name("ssh_host_ed25519_key.pub")
            if not pub.exists():
                continue
            keytype, key = pub.read_text().split()[:2]
            addr = spec["address"] if spec["port"] == 22 else f"[{spec['address']}]:{spec['port']}"
            alias = spec["name"] if spec["port"] == 22 else f"[{spec['name']}]:{spec['port']}"
            lines.append(f"{alias},{addr} {keytype} {key}")
        return lines

    def write_known_hosts(self) -> Path:
        self.known_hosts.write_text("\n".join(self.known_hosts_lines()) + "\n")
        return self.known_hosts
