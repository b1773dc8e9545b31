"""The simulator process: every device of a lab in one process, one listening socket per device.

Run it as `python -m lab.netsim.server --state DIR` (the lab does, inside its `<tag>-netsim`
network namespace, where every device's management address is configured). It is driven through a
Unix socket, `DIR/control.sock`, one JSON request per line (see `api.py`); configs, logs and faults
are plain files under `DIR/<device>/`.

SSH is paramiko's server side: password authentication against the device's credentials, a PTY and
a shell; each connection gets a transport thread and a shell thread, so 100 devices with a session
each cost about 300 idle threads.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paramiko

from lab.keys import ed25519_keypair
from lab.netsim.device import Device, DeviceSpec
from lab.netsim.session import Session

log = logging.getLogger("netsim")


class _SSHServer(paramiko.ServerInterface):
    def __init__(self, device: Device) -> None:
        self.device = device
        self.user: str | None = None
        self.shell = threading.Event()

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        if self.device.check_password(username, password):
            self.user = username
            return paramiko.AUTH_SUCCESSFUL
        self.device.log(0, "auth", f"password refused for {username!r}")
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args: Any) -> bool:
        return True

    def check_channel_window_change_request(self, *args: Any) -> bool:
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        self.shell.set()
        return True


class Listener:
    """A device on the network: its socket, its host key, its connections."""

    def __init__(self, device: Device, key: paramiko.PKey) -> None:
        self.device = device
        self.key = key
        spec = device.spec
        family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((spec.address, spec.port))
        self.sock.listen(128)
        self.transports: set[paramiko.Transport] = set()
        self.stopped = False
        threading.Thread(target=self._accept, name=f"accept-{device.name}", daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name=f"ssh-{self.device.name}", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        transport.local_version = "SSH-2.0-HUAWEI-1.5" if self.device.style == "huawei" else \
            "SSH-2.0-Comware-7.1.070" if self.device.style == "comware" else \
            "SSH-2.0-Cisco-1.25" if self.device.style == "cisco" else "SSH-2.0-RGOS_SSH"
        transport.add_server_key(self.key)
        self.transports.add(transport)
        server = _SSHServer(self.device)
        try:
            transport.start_server(server=server)
            channel = transport.accept(timeout=30)
            if channel is None or not server.shell.wait(10) or server.user is None:
                return
            if shell(self.device, channel, server.user) == "logout":
                # as a device does on quit/exit: close the channel and let the client hang up, rather than
                # resetting a connection the client is still reading from
                channel.close()
                deadline = time.monotonic() + 2
                while transport.is_active() and time.monotonic() < deadline:
                    time.sleep(0.02)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("%s: session ended: %s", self.device.name, exc)
        finally:
            self.transports.discard(transport)
            transport.close()

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for transport in list(self.transports):
            transport.close()


def shell(device: Device, channel: paramiko.Channel, user: str) -> str:
    """Run the CLI on one channel: echo what is typed, answer each line, print the prompt. Return how it
    ended: "logout" (the user quit), "dropped" (a fault cut it) or "closed" (the client went away)."""
    session = Session(device, user)
    session.kill_hook = channel.get_transport().close
    device.log(session.sid, "login", f"{user} from {channel.getpeername()[0] if channel.getpeername() else '?'}")

    def send(text: str) -> None:
        channel.sendall(text.replace("\n", "\r\n").encode("utf-8"))

    def unanswered() -> bool:
        """Wait while a stall fault holds the device; False if the client went away meanwhile."""
        while device.stalled(session.config_mode):
            if channel.closed or not channel.get_transport().is_active():
                return False
            time.sleep(0.05)
        return True

    try:
        if not unanswered():
            return "closed"
        send(session.banner() + session.prompt())
        line = ""
        last = ""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span two reads
        while True:
            data = channel.recv(65536)
            if not data:
                return "closed"
            out: list[str] = []
            for ch in decoder.decode(data):
                if ch == "\n" and last == "\r":
                    last = ch
                    continue
                last = ch
                if ch in "\r\n":
                    if device.stalled(session.config_mode):  # the echo is sent, the answer never comes
                        send("".join(out))
                        out = []
                        if not unanswered():
                            return "closed"
                    in_config = session.config_mode
                    answer = session.feed(line)
                    line = ""
                    if session.dropped:
                        channel.get_transport().close()
                        return "dropped"
                    faults = device.faults()
                    latency = faults.latency_ms + (faults.config_latency_ms if in_config else 0)
                    if latency:
                        send("".join(out))
                        out = []
                        time.sleep(latency / 1000)
                    out.append("\n" + (answer + "\n" if answer else ""))
                    if session.closed:
                        send("".join(out))
                        return "logout"
                    out.append(session.prompt())
                elif ch in "\x7f\x08":
                    if line:
                        line = line[:-1]
                        if session.echo:
                            out.append("\b \b")
                elif ch == "\x03":
                    line = ""
                    out.append("^C\n" + session.prompt())
                elif ch >= " " or ch == "\t":
                    line += ch
                    if session.echo:
                        out.append(ch)
            if out:
                send("".join(out))
    finally:
        session.end()
        device.log(session.sid, "logout", user)


class Simulator:
    """Every device of one state directory, plus the control socket."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.devices: dict[str, Device] = {}
        self.listeners: dict[str, Listener] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def host_key(self, name: str) -> paramiko.PKey:
        path = self.state_dir / name / "ssh_host_ed25519_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            private, public = ed25519_keypair(f"netsim@{name}")
            path.write_bytes(private)
            path.chmod(0o600)
            path.with_suffix(".pub").write_text(public)
        return paramiko.Ed25519Key.from_private_key_file(str(path))

    def start(self, specs: list[dict[str, Any]]) -> dict[str, Any]:
        started, failed = [], {}
        for raw in specs:
            spec = DeviceSpec(**raw)
            with self.lock:
                if spec.name in self.listeners:
                    continue
                try:
                    device = Device(spec, self.state_dir)
                    listener = Listener(device, self.host_key(spec.name))
                except (OSError, ValueError, KeyError) as exc:
                    failed[spec.name] = str(exc)
                    continue
                self.devices[spec.name] = device
                self.listeners[spec.name] = listener
                (self.state_dir / spec.name / "spec.json").write_text(json.dumps(
                    {k: v for k, v in raw.items() if k not in ("password", "secret", "config")}))
                started.append(spec.name)
        return {"started": started, "failed": failed}

    def stop(self, names: list[str] | None) -> dict[str, Any]:
        stopped = []
        with self.lock:
            for name in list(self.listeners) if names is None else names:
                listener = self.listeners.pop(name, None)
                device = self.devices.pop(name, None)
                if listener:
                    listener.stop()
                if device:
                    device.close()
                    stopped.append(name)
        return {"stopped": stopped}

    def reset(self, name: str, config: str | None) -> dict[str, Any]:
        """Back to a freshly installed device: initial (or given) config, no files, no timers, no faults."""
        with self.lock:
            device = self.devices.get(name)
        if device is None:
            return {"error": f"no device {name}"}
        spec = device.spec
        if config is not None:
            spec.config = config
        self.stop([name])
        d = self.state_dir / name
        for sub in ("startup.cfg", "running.cfg", "commits.json", "faults.yaml", "settings.yaml"):
            (d / sub).unlink(missing_ok=True)
        import shutil

        shutil.rmtree(d / "flash", ignore_errors=True)
        return self.start([spec.to_json()])

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"devices": [
                {"name": n, "platform": d.spec.platform, "address": d.spec.address, "port": d.spec.port,
                 "sessions": len(d.sessions), "pending_rollback": d.pending.kind if d.pending else None}
                for n, d in sorted(self.devices.items())]}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "start":
            return self.start(request["devices"])
        if op == "stop":
            return self.stop(request.get("names"))
        if op == "reset":
            return self.reset(request["name"], request.get("config"))
        if op == "status":
            return self.status()
        if op == "shutdown":
            self.stop(None)
            self.done.set()
            return {}
        return {"error": f"unknown op {op!r}"}

    def serve_control(self) -> None:
        path = self.state_dir / "control.sock"
        path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        path.chmod(0o600)
        server.listen(16)

        def one(conn: socket.socket) -> None:
            with conn, conn.makefile("rwb") as f:
                for raw in f:
                    try:
                        reply = self.handle(json.loads(raw))
                    except Exception as exc:  # a bad request must not take the simulator down
                        reply = {"error": f"{type(exc).__name__}: {exc}"}
                    f.write(json.dumps(reply).encode() + b"\n")
                    f.flush()

        def accept() -> None:
            while True:
                conn, _ = server.accept()
                threading.Thread(target=one, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, name="control", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="jiyue's network device simulator (see lab/netsim)")
    parser.add_argument("--state", required=True, type=Path, help="state directory (one subdirectory per device)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # a dropped client is not news
    args.state.mkdir(parents=True, exist_ok=True)
    sim = Simulator(args.state)
    sim.serve_control()
    signal.signal(signal.SIGTERM, lambda *_: sim.done.set())
    (args.state / "server.pid").write_text(str(os.getpid()))
    print(f"netsim: listening for control on {args.state / 'control.sock'}", flush=True)
    sim.done.wait()
    sim.stop(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
