"""Live traffic for the lab: run inside the gateway host, it calls systems' URLs round-robin.

    traffic.py --url http://198.18.40.11/fgw-oa/health --url http://198.18.40.11/fgw-oa/api/list ...
               [--rate 8] [--duration 3600] [--max-requests 30000]

lab.seed gives it the systems' URLs through the gateway's nginx (lab/gateway.py), as clients
reach them: the apps see nginx connect and log the client it forwards (here the gateway's own address).

Stdlib only (the machine's /usr/bin/python3). Bounded twice: it stops after --duration seconds or
--max-requests requests, whichever comes first. Failed requests are counted, never retried.
"""

from __future__ import annotations

import argparse
import signal
import time
import urllib.error
import urllib.request

from pidfile import held

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
    "Apache-HttpClient/4.5.13 (Java/1.8.0_381)",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--rate", type=float, default=8.0, help="requests per second, in total")
    parser.add_argument("--duration", type=float, default=3600.0, help="stop after this many seconds")
    parser.add_argument("--max-requests", type=int, default=30000, help="stop after this many requests")
    parser.add_argument("--timeout", type=float, default=1.0, help="per request")
    parser.add_argument("--pidfile")
    args = parser.parse_args(argv)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    interval = 1.0 / args.rate
    start = time.monotonic()
    due = start
    ok = failed = 0
    with held(args.pidfile):
        for i in range(args.max_requests):
            now = time.monotonic()
            if stopping or now - start >= args.duration:
                break
            if due > now:
                time.sleep(due - now)
            due = max(due + interval, time.monotonic() - 1.0)  # a slow target never causes a burst
            request = urllib.request.Request(args.url[i % len(args.url)],
                                             headers={"User-Agent": USER_AGENTS[i % len(USER_AGENTS)]})
            try:
                with urllib.request.urlopen(request, timeout=args.timeout) as response:
                    response.read()
                ok += 1
            except (OSError, urllib.error.URLError):
                failed += 1
    print(f"traffic: {ok} ok, {failed} failed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
