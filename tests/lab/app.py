"""A stand-in application for lab hosts: stdlib only, run with the machine's /usr/bin/python3.

    app.py http --port 8080 --log /var/log/app/x/access.log [--depends 198.18.10.12:5432 ...]
    app.py tcp --port 5432

`http` answers /health (200 "ok"), / and /api/... (small JSON, about 2 ms of CPU each) and appends
one combined-format line per request to --log (real client address, local time in --utc-offset).
For each --depends HOST:PORT it keeps one long-lived, silent TCP connection open (reconnecting a
few seconds after it drops), so the dependency shows as an ESTABLISHED connection on both hosts.
`tcp` accepts TCP connections and holds them (a stand-in database).

Every process exits by itself after --lifetime seconds (default 7200): every loop here is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pidfile import held

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RECONNECT_S = 3.0
CPU_WORK_S = 0.002

stop = threading.Event()


def clf_time(when: datetime) -> str:
    """Common Log Format time, locale-independent: 21/Nov/2026:10:02:03 +0800."""
    offset = when.strftime("%z")
    return f"{when.day:02d}/{MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S} {offset}"


def parse_offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    hours, minutes = int(text.lstrip("+-")[:2]), int(text.lstrip("+-")[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def busy(seconds: float) -> int:
    """Burn about `seconds` of CPU, as a real request handler would."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return n


def make_handler(name: str, log_path: str, tz: timezone) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "Apache"
        sys_version = ""
        protocol_version = "HTTP/1.0"
        timeout = 600  # a silent connection (a dependant's pooled link) is dropped after this

        def log_message(self, format: str, *args: object) -> None:
            pass  # our own access log is written in send_and_log

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self.send_and_log(200, b"ok", "text/plain")
            elif path == "/" or path == "/api" or path.startswith("/api/"):
                busy(CPU_WORK_S)
                body = json.dumps({"system": name, "path": path, "items": [1, 2, 3],
                                   "time": datetime.now(tz).isoformat(timespec="seconds")}).encode()
                self.send_and_log(200, body, "application/json")
            else:
                self.send_and_log(404, b"not found", "text/plain")

        def send_and_log(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response_only(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            referer = self.headers.get("Referer", "-")
            agent = self.headers.get("User-Agent", "-")
            line = (f'{self.client_address[0]} - - [{clf_time(datetime.now(tz))}] "{self.requestline}" '
                    f'{status} {len(body)} "{referer}" "{agent}"\n')
            with lock:
                os.makedirs(os.path.dirname(log_path), exist_ok=True)
                with open(log_path, "a", encoding="utf-8") as f:  # reopened each time: rotation-safe
                    f.write(line)

    return Handler


def hold_dependency(address: str) -> None:
    """Keep one silent TCP connection to HOST:PORT open until `stop`, reconnecting when it drops."""
    host, _, port = address.rpartition(":")
    while not stop.is_set():
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=RECONNECT_S) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.settimeout(1.0)
                while not stop.is_set():
                    try:
                        if not sock.recv(4096):
                            break  # closed by the other side
                    except TimeoutError:
                        continue
        except OSError:
            pass
        stop.wait(RECONNECT_S)


def hold_connection(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(1.0)
        while not stop.is_set():
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


def serve_tcp(port: int) -> None:
    with socket.create_server(("0.0.0.0", port), backlog=64, reuse_port=False) as server:
        server.settimeout(1.0)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=hold_connection, args=(conn,), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["http", "tcp"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", help="access log (http)")
    parser.add_argument("--name", default="app", help="the system's id, shown in JSON answers")
    parser.add_argument("--depends", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--lifetime", type=float, default=7200.0, help="exit after this many seconds")
    parser.add_argument("--utc-offset", default="+0800", help="local time zone of the log lines")
    parser.add_argument("--pidfile")
    args = parser.parse_args(argv)
    if args.mode == "http" and not args.log:
        parser.error("http needs --log")

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [threading.Thread(target=hold_dependency, args=(d,), daemon=True) for d in args.depends]
    with held(args.pidfile):
        if args.mode == "http":
            ThreadingHTTPServer.daemon_threads = True
            server = ThreadingHTTPServer(("0.0.0.0", args.port),
                                         make_handler(args.name, args.log, parse_offset(args.utc_offset)))
            threads.append(threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                            daemon=True))
        else:
            threads.append(threading.Thread(target=serve_tcp, args=(args.port,), daemon=True))
        for t in threads:
            t.start()
        stop.wait(args.lifetime)
        stop.set()
        if args.mode == "http":
            server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
