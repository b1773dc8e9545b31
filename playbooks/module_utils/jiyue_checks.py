"""Shared by jiyue's modules (jiyue_probe, jiyue_route): is a health URL answering, is a TCP port open.

Each check retries until it passes or its time is up. Plain standard library: it runs on any host
with Python.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is not a healthy answer
        return None


OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def url_ok(url: str, timeout: float) -> str | None:
    try:
        with OPENER.open(url, timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(exc)


def port_ok(address: str, port: int, timeout: float) -> str | None:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc)


def retry(check, timeout: float, delay: float) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        problem = check(max(0.5, min(5.0, deadline - time.monotonic())))
        if problem is None or time.monotonic() + delay >= deadline:
            return problem
        time.sleep(delay)
