"""A stand-in application for lab hosts: stdlib only, run with the machine's /usr/bin/python3.

    app.py http --port 8080 --log /var/log/app/x/access.log [--data /srv/x] [--trusted-proxy 198.18.40.11]
                [--depends 198.18.10.12:5432 ...]
    app.py tcp --port 5432

`http` answers /health (200 "ok", the host name in the header X-Served-By), / and /api/... (small
JSON, about 2 ms of CPU each) and appends one combined-format line per request to --log (the client's
address, local time in --utc-offset). A request from a --trusted-proxy (the gateway's nginx) is logged
with the client it names last in X-Forwarded-For. For each --depends HOST:PORT it keeps one
long-lived, silent TCP connection open (reconnecting a few seconds after it drops), so the dependency
shows as an ESTABLISHED connection on both hosts. `tcp` accepts TCP connections and holds them (a
stand-in database). Both listen on 0.0.0.0 and, on a host with a global IPv6 address, on [::] too (IPv6 only,
so IPv4 clients keep their own addresses in the logs and connection tables): the same command line runs
on any host, whichever addresses the inventory gives it.

Real data (http with --data DIR): the records live in DIR/app.db (SQLite, rollback journal, so the
file alone is complete whenever no request is in flight, and always after a clean stop). The seeded
app.db holds other tables and the app's own, `api_records` (appdb.py); the app creates it if missing.

    POST /api/records  {"client": "c1", "seq": 7, "value": "v"}  -> 201 {"client", "seq", "served_by", ...}
         only after the commit; idempotent on (client, seq): the same again -> 201 (duplicate: true),
         another value for an existing (client, seq) -> 409. A bad body -> 400.
    GET  /api/records?client=c1  -> 200 {"client", "records": [{"seq", "value"}...] in seq order,
         "count", "checksum", "served_by"}

checksum = SHA-256 (hex) of the canonical records: json.dumps(records, sort_keys=True,
separators=(",", ":"), ensure_ascii=False) in UTF-8; checker.py computes it on its own.

Stopping: on SIGTERM (or after --lifetime seconds, default 7200: every loop here is bounded) it stops
accepting, lets the requests in flight finish (up to 30 s), and exits 0; every request opens and
closes its own database connection, so nothing is left open. The --pidfile is written once the
service listens (the control script waits for it) and removed on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from appdb import SCHEMA
from pidfile import held

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RECONNECT_S = 3.0
CPU_WORK_S = 0.002
DRAIN_S = 30.0  # how long a stopping service waits for requests in flight
MAX_BODY = 64 * 1024
stop = threading.Event()
HOSTNAME = socket.gethostname()


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


def checksum(records: list[dict]) -> str:
    """SHA-256 of the canonical JSON of [{"seq", "value"}, ...] (the contract checker.py verifies)."""
    canonical = json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Store:
    """The records in DIR/app.db: one short-lived connection per request (thread-safe, nothing held open)."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "app.db")
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=DELETE")  # no WAL: app.db alone is the whole database
            con.execute(SCHEMA)

    @contextlib.contextmanager
    def connect(self):
        con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")
            yield con
        finally:
            con.close()

    def insert(self, client: str, seq: int, value: str, now: str) -> tuple[int, bool]:
        """(HTTP status, duplicate): 201 once committed (or already there with the same value), 409 otherwise."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                row = con.execute("SELECT value FROM api_records WHERE client = ? AND seq = ?",
                                  (client, seq)).fetchone()
                if row is None:
                    con.execute("INSERT INTO api_records (client, seq, value, created) VALUES (?, ?, ?, ?)",
                                (client, seq, value, now))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        if row is None:
            return 201, False
        return (201, True) if row[0] == value else (409, True)

    def records(self, client: str) -> list[dict]:
        with self.connect() as con:
            rows = con.execute("SELECT seq, value FROM api_records WHERE client = ? ORDER BY seq", (client,))
            return [{"seq": seq, "value": value} for seq, value in rows]


def make_handler(name: str, log_path: str, tz: timezone, store: Store | None,
                 trusted: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()
    inflight = [0]
    inflight_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "Apache"
        sys_version = ""
        protocol_version = "HTTP/1.0"
        timeout = 600  # a silent connection (a dependant's pooled link) is dropped after this
        counted = False

        def log_message(self, format: str, *args: object) -> None:
            pass  # our own access log is written in send_and_log

        # A request counts as in flight from its parsed request line to its answer: a stopping
        # service waits for those, not for idle connections.
        def parse_request(self) -> bool:
            with inflight_lock:
                inflight[0] += 1
            self.counted = True
            return super().parse_request()

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            finally:
                if self.counted:
                    self.counted = False
                    with inflight_lock:
                        inflight[0] -= 1

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/health":
                self.send_and_log(200, b"ok", "text/plain")
            elif path == "/api/records":
                self.get_records(parse_qs(query))
            elif path == "/" or path == "/api" or path.startswith("/api/"):
                busy(CPU_WORK_S)
                body = json.dumps({"system": name, "path": path, "items": [1, 2, 3],
                                   "time": datetime.now(tz).isoformat(timespec="seconds")}).encode()
                self.send_and_log(200, body, "application/json")
            else:
                self.send_and_log(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/api/records":
                self.post_record()
            elif path == "/" or path.startswith("/api/") or path == "/login":
                self.read_body()
                self.send_json(200, {"system": name, "path": path, "saved": True})
            else:
                self.send_and_log(404, b"not found", "text/plain")

        def read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                raise ValueError("body too large")
            return self.rfile.read(length)

        def post_record(self) -> None:
            if store is None:
                self.send_json(503, {"error": "no data directory (--data)"})
                return
            try:
                body = json.loads(self.read_body())
                client, seq, value = body["client"], body["seq"], body["value"]
                if not (isinstance(client, str) and client and isinstance(seq, int) and not isinstance(seq, bool)
                        and isinstance(value, str)):
                    raise ValueError("client (non-empty string), seq (integer), value (string)")
            except (ValueError, KeyError, TypeError) as exc:
                self.send_json(400, {"error": f"bad record: {exc}"})
                return
            try:
                status, duplicate = store.insert(client, seq, value, datetime.now(tz).isoformat())
            except sqlite3.Error as exc:
                self.send_json(503, {"error": f"database: {exc}"})
                return
            self.send_json(status, {"client": client, "seq": seq, "duplicate": duplicate, "served_by": HOSTNAME})

        def get_records(self, query: dict[str, list[str]]) -> None:
            client = (query.get("client") or [""])[0]
            if store is None or not client:
                self.send_json(503 if store is None else 400,
                               {"error": "no data directory (--data)" if store is None else "client= is required"})
                return
            try:
                records = store.records(client)
            except sqlite3.Error as exc:
                self.send_json(503, {"error": f"database: {exc}"})
                return
            self.send_json(200, {"client": client, "records": records, "count": len(records),
                                 "checksum": checksum(records), "served_by": HOSTNAME})

        def send_json(self, status: int, payload: dict) -> None:
            self.send_and_log(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

        def client(self) -> str:
            address = self.client_address[0]
            forwarded = self.headers.get("X-Forwarded-For")
            if address in trusted and forwarded:
                return forwarded.split(",")[-1].strip() or address  # the hop the proxy itself saw
            return address

        def send_and_log(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response_only(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", HOSTNAME)
            self.end_headers()
            self.wfile.write(body)
            referer = self.headers.get("Referer", "-")
            agent = self.headers.get("User-Agent", "-")
            line = (f'{self.client()} - - [{clf_time(datetime.now(tz))}] "{self.requestline}" '
                    f'{status} {len(body)} "{referer}" "{agent}"\n')
            with lock:
                os.makedirs(os.path.dirname(log_path), exist_ok=True)
                with open(log_path, "a", encoding="utf-8") as f:  # reopened each time: rotation-safe
                    f.write(line)

    Handler.inflight = inflight  # type: ignore[attr-defined]
    return Handler


def has_global_ipv6() -> bool:
    """Whether this host has a global IPv6 address (scope 00 in /proc/net/if_inet6): then it also listens on [::]."""
    try:
        with open("/proc/net/if_inet6") as f:
            return any(len(fields) >= 4 and fields[3] == "00" for fields in (line.split() for line in f))
    except OSError:
        return False


def listeners(port: int) -> list[socket.socket]:
    """Listening sockets on `port`: 0.0.0.0, and [::] (IPv6 only) where the host has an IPv6 address."""
    sockets = [socket.create_server(("0.0.0.0", port), backlog=64)]
    if has_global_ipv6():
        sockets.append(socket.create_server(("::", port), family=socket.AF_INET6, backlog=64, dualstack_ipv6=False))
    return sockets


class SocketHTTPServer(ThreadingHTTPServer):
    """An HTTP server on a socket already listening (one per address family)."""

    daemon_threads = True  # idle connections must not keep a stopping service alive

    def __init__(self, sock: socket.socket, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.address_family = sock.family
        self.server_name, self.server_port = self.server_address[:2]  # what server_bind would have set


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


def serve_tcp(server: socket.socket) -> None:
    with server:
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
    parser.add_argument("--data", help="data directory: the records live in DIR/app.db (http)")
    parser.add_argument("--name", default="app", help="the system's id, shown in JSON answers")
    parser.add_argument("--depends", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                        help="log the X-Forwarded-For client of requests from this address (the gateway)")
    parser.add_argument("--lifetime", type=float, default=7200.0, help="exit after this many seconds")
    parser.add_argument("--utc-offset", default="+0800", help="local time zone of the log lines")
    parser.add_argument("--pidfile")
    args = parser.parse_args(argv)
    if args.mode == "http" and not args.log:
        parser.error("http needs --log")

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [threading.Thread(target=hold_dependency, args=(d,), daemon=True) for d in args.depends]
    if args.mode == "http":
        store = Store(args.data) if args.data else None
        handler = make_handler(args.name, args.log, parse_offset(args.utc_offset), store,
                               frozenset(args.trusted_proxy))
        servers = [SocketHTTPServer(sock, handler) for sock in listeners(args.port)]
        threads += [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
                    for server in servers]
    else:
        threads += [threading.Thread(target=serve_tcp, args=(sock,), daemon=True) for sock in listeners(args.port)]
    with held(args.pidfile):  # written once listening: `service start` waits for it
        for t in threads:
            t.start()
        stop.wait(args.lifetime)
        stop.set()
        if args.mode == "http":
            for server in servers:
                server.shutdown()  # no new connections from here on
                server.server_close()
            deadline = time.monotonic() + DRAIN_S
            while handler.inflight[0] > 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.02)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
