"""A checker client: proves that no acknowledged write was lost and no wrong answer was served.

    checker.py --url http://198.18.40.11/fgw-oa/ --client NAME [--duration 30] [--rate 10]
               [--max-writes 100000] [--timeout 2] --out FILE.json

Stdlib only: runs with the machine's /usr/bin/python3 inside a lab host (the gateway or any other)
or from the machine itself (the bridge reaches every lab address); tests import it as a module.

It writes records {"client": NAME, "seq": 1, 2, 3 ..., "value": ...} with POST <url>api/records, at
--rate writes a second, and after each write attempt reads all of NAME's records back with GET
<url>api/records?client=NAME. A write is acknowledged when it is answered 201 (app.py answers 201 only
after its commit). A write that fails (connection refused or reset, timeout, 502/503/504 from the
gateway while the system is frozen or switched) is retried with the same seq and value (the app is
idempotent on (client, seq)) until it is acknowledged; only then comes the next seq. Failures are
counted in `errors` by kind and are never wrong answers.

A read answered 200 is a wrong answer if it
  - misses a seq acknowledged before the read was sent (lost_write),
  - lists records out of seq order or a seq twice (out_of_order),
  - carries a checksum that is not SHA-256 of the canonical record list (bad_checksum: see app.py),
  - holds a seq never sent, another value than the one sent, or is not the answer asked for
    (phantom, wrong_value, malformed).
A 409 to a write (the system holds another value for that seq) is a wrong answer too.
Seqs written but not (yet) acknowledged may or may not be in a read: both are right.

Bounded: it stops after --duration seconds or --max-writes acknowledged writes, whichever comes
first (or on SIGTERM), then reads once more (retrying up to --final-wait seconds) for a final verdict.

The report (JSON, to --out and, shortened, to stdout):

    ok               no wrong answer (and the final read, if any answered, had every acknowledged seq)
    acknowledged     the acknowledged seqs, ascending
    writes, reads    counts: attempts, acknowledged / answered, correct
    errors           failures by kind: {"http_502": 12, "connection": 3, "timeout": 1, ...}
    wrong_answers    every wrong answer (first 100 in full): {"t", "kind", "detail", "served_by"}
    served_by        answers per backend host name (from the app's served_by), and `backends`: the
                     sequence of backends in the order they answered (a switch shows as a change)
    final            the final read: status, count, missing acknowledged seqs
    log              every read and write: [seconds since start, "w"|"r", seq or count, status or error
                     kind, served_by]

Exit 0 if ok, 1 if there was a wrong answer, 2 on bad usage.
`verify_db(path, client, acknowledged)` checks the final state directly in a system's app.db.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import itertools
import json
import signal
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MAX_WRONG_KEPT = 100


def canonical_checksum(records: list[dict]) -> str:
    """SHA-256 of the canonical JSON of the record list: the app's checksum, computed independently."""
    text = json.dumps([{"seq": r["seq"], "value": r["value"]} for r in records], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _value(client: str, seq: int) -> str:
    """The value written for a seq: derived from it, so a wrong one is recognised."""
    return f"{client}:{seq}:" + hashlib.sha256(f"{client}/{seq}".encode()).hexdigest()[:16]


class Checker:
    """The checker's loop and its record; `run` is bounded by time, writes and `stop`."""

    def __init__(self, url: str, client: str, rate: float = 10.0, timeout: float = 2.0) -> None:
        self.base = url if url.endswith("/") else url + "/"
        self.client = client
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.timeout = timeout
        self.stop = threading.Event()
        self.started = time.time()
        self.t0 = time.monotonic()
        self.acked: set[int] = set()
        self.sent: dict[int, str] = {}  # seq -> value, for every seq ever sent
        self.next_seq = 1
        self.write_attempts = 0
        self.read_attempts = 0
        self.reads_answered = 0
        self.reads_correct = 0
        self.errors: dict[str, int] = {}
        self.wrong: list[dict] = []
        self.wrong_count = 0
        self.served_by: dict[str, int] = {}
        self.backends: list[str] = []
        self.log: list[list] = []
        self.final: dict = {}

    # --- requests ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None) -> tuple[int | None, bytes, str]:
        """(status or None, body, error kind or "")."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": f"jiyue-checker/{self.client}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read(), ""
        except urllib.error.HTTPError as exc:
            payload = b""
            with contextlib.suppress(OSError):
                payload = exc.read()
            return exc.code, payload, f"http_{exc.code}"
        except TimeoutError:
            return None, b"", "timeout"
        except urllib.error.URLError as exc:
            return None, b"", "timeout" if isinstance(exc.reason, TimeoutError) else "connection"
        except (ConnectionError, http.client.HTTPException, OSError):
            return None, b"", "connection"

    def _now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def _served(self, host: str | None) -> None:
        if not host:
            return
        self.served_by[host] = self.served_by.get(host, 0) + 1
        if not self.backends or self.backends[-1] != host:
            self.backends.append(host)

    def _wrong(self, kind: str, detail: str, served_by: str | None = None) -> None:
        self.wrong_count += 1
        if len(self.wrong) < MAX_WRONG_KEPT:
            self.wrong.append({"t": self._now(), "kind": kind, "detail": detail, "served_by": served_by})

    def write(self, seq: int) -> bool:
        """One attempt at writing `seq`; True once acknowledged."""
        value = self.sent.setdefault(seq, _value(self.client, seq))
        self.write_attempts += 1
        status, body, kind = self._request("POST", "api/records", {"client": self.client, "seq": seq, "value": value})
        host = None
        with contextlib.suppress(ValueError, AttributeError):
            host = json.loads(body).get("served_by")
        if status == 201:
            self.acked.add(seq)
            self._served(host)
        elif status == 409:
            self._wrong("wrong_value", f"write of seq {seq} refused: the system holds another value", host)
        else:
            self._error(kind or f"http_{status}")
        self.log.append([self._now(), "w", seq, status or kind, host])
        return status == 201

    def read(self) -> dict | None:
        """One read; checks it against what was acknowledged before it was sent. The answer, if 200."""
        expected = set(self.acked)
        self.read_attempts += 1
        status, body, kind = self._request("GET", "api/records?" + urllib.parse.urlencode({"client": self.client}))
        if status != 200:
            self._error(kind or f"http_{status}")
            self.log.append([self._now(), "r", None, status or kind, None])
            return None
        self.reads_answered += 1
        before = self.wrong_count
        try:
            answer = json.loads(body)
            records = answer["records"]
            seqs = [r["seq"] for r in records]
            host = answer.get("served_by")
        except (ValueError, KeyError, TypeError) as exc:
            self._wrong("malformed", f"not a record list: {exc}: {body[:200]!r}")
            self.log.append([self._now(), "r", None, 200, None])
            return None
        if answer.get("client") != self.client:
            self._wrong("malformed", f"answer for client {answer.get('client')!r}", host)
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            self._wrong("out_of_order", f"seqs not strictly ascending: {seqs[:50]}", host)
        if answer.get("checksum") != canonical_checksum(records):
            self._wrong("bad_checksum", f"checksum {answer.get('checksum')!r} does not match the records", host)
        missing = sorted(expected - set(seqs))
        if missing:
            self._wrong("lost_write", f"{len(missing)} acknowledged seqs missing: {missing[:50]}", host)
        for record in records:
            seq = record["seq"]
            if seq not in self.sent:
                self._wrong("phantom", f"seq {seq} was never written", host)
            elif record["value"] != self.sent[seq]:
                self._wrong("wrong_value", f"seq {seq}: {record['value']!r} instead of {self.sent[seq]!r}", host)
        if self.wrong_count == before:
            self.reads_correct += 1
        self._served(host)
        self.log.append([self._now(), "r", len(records), 200, host])
        answer["_missing"] = missing
        return answer

    # --- the loop --------------------------------------------------------------------------------

    def run(self, duration: float = 30.0, max_writes: int = 100_000, final_wait: float = 10.0) -> dict:
        """Write and read until `duration`, `max_writes` acknowledged writes or `stop`; then the final read."""
        due = time.monotonic()
        end = self.t0 + duration
        while not self.stop.is_set() and time.monotonic() < end and len(self.acked) < max_writes:
            if self.write(self.next_seq):
                self.next_seq += 1
            self.read()
            due = max(due + self.interval, time.monotonic() - 1.0)  # a slow target never causes a burst
            self.stop.wait(max(0.0, min(due, end) - time.monotonic()))
        deadline = time.monotonic() + final_wait
        while True:
            answer = self.read()
            if answer is not None:
                self.final = {"status": 200, "count": answer.get("count"),
                              "missing": answer["_missing"], "served_by": answer.get("served_by")}
                break
            if time.monotonic() >= deadline:
                self.final = {"status": None, "count": None, "missing": None, "served_by": None}
                break
            time.sleep(0.2)
        return self.report()

    def report(self) -> dict:
        return {
            "url": self.base, "client": self.client, "started": self.started,
            "duration_s": round(time.monotonic() - self.t0, 3),
            "ok": self.wrong_count == 0 and not (self.final.get("missing") or []),
            "acknowledged": sorted(self.acked),
            "writes": {"attempts": self.write_attempts, "acknowledged": len(self.acked),
                       "unacknowledged_seqs": sorted(set(self.sent) - self.acked)},
            "reads": {"attempts": self.read_attempts, "answered": self.reads_answered, "correct": self.reads_correct},
            "errors": dict(sorted(self.errors.items())),
            "wrong_answers": self.wrong, "wrong_answer_count": self.wrong_count,
            "served_by": self.served_by, "backends": self.backends,
            "final": self.final,
            "log": self.log,
        }


def verify_db(db: str, client: str, acknowledged: list[int] | set[int]) -> dict:
    """Check a system's app.db (a path on this machine, e.g. Lab.path(host, "/srv/<id>/app.db")) directly:
    every acknowledged seq of `client` is there with the value the checker wrote.
    {"ok", "count", "missing": [...], "wrong_value": [...]}."""
    uri = "file:" + urllib.parse.quote(str(db)) + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as con:
        rows = dict(con.execute("SELECT seq, value FROM api_records WHERE client = ?", (client,)).fetchall())
    missing = sorted(s for s in acknowledged if s not in rows)
    wrong = sorted(s for s in acknowledged if s in rows and rows[s] != _value(client, s))
    return {"ok": not missing and not wrong, "count": len(rows), "missing": missing, "wrong_value": wrong}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the system's base URL, e.g. http://GATEWAY/<system-id>/")
    parser.add_argument("--client", required=True, help="a name of its own: records are per client")
    parser.add_argument("--duration", type=float, default=30.0, help="stop after this many seconds")
    parser.add_argument("--rate", type=float, default=10.0, help="writes (each followed by a read) per second")
    parser.add_argument("--max-writes", type=int, default=100_000, help="stop after this many acknowledged writes")
    parser.add_argument("--timeout", type=float, default=2.0, help="per request, seconds")
    parser.add_argument("--final-wait", type=float, default=10.0, help="retry the final read this long")
    parser.add_argument("--out", required=True, help="the JSON report")
    args = parser.parse_args(argv)
    checker = Checker(args.url, args.client, rate=args.rate, timeout=args.timeout)
    signal.signal(signal.SIGTERM, lambda *_: checker.stop.set())
    report = checker.run(args.duration, args.max_writes, args.final_wait)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    short = {k: v for k, v in report.items() if k not in ("log", "acknowledged")}
    short["acknowledged"] = len(report["acknowledged"])
    json.dump(short, sys.stdout, indent=1)
    print()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
