"""Utilisation history from the city's own Prometheus: node_exporter's CPU, memory and network, read over the
HTTP API (`/api/v1/query_range`) and stored as readings marked `prometheus` (`invoke audit.history`).

Prometheus does the aggregation: each query asks for one value per host per step (a day by default) with
`rate`/`avg_over_time` over that step, and one query covers every host (grouped `by (instance)`), so
90 days of 1,000 hosts are four queries of 90 points per series, not millions of raw samples or one
request per host. A day without a value is a gap: nothing is interpolated, and a host whose history is
shorter than the idle criterion needs stays "insufficient data" (audit/zombies.py).

Series find their inventory host by the `instance` label (monitoring.prometheus.match): its host part is
the host's address (`address`, Prometheus' default from the scrape target) or the host's name (`instance`).
A series labelled `jiyue_seeded` (the lab's backfill, lab/prometheus.py) marks its host's day as seeded.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from audit.monitoring import DAY, Coverage, MonitoringError, aligned, coverage, reading
from inventory.model import Inventory, MatchBy, PrometheusSource

SOURCE = "prometheus"
__all__ = ["DAY", "SOURCE", "Coverage", "Prometheus", "PrometheusError", "coverage", "fetch"]

# One value per host per step, each over the step that ends at it. `{w}` is the step as a PromQL duration.
QUERIES: dict[str, str] = {
    # % of all the host's CPUs busy: 1 - idle share of every CPU-second
    "cpu_pct": '100 * (1 - sum by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{w}])) '
               '/ sum by (instance) (rate(node_cpu_seconds_total[{w}])))',
    "cpus": 'count by (instance) (last_over_time(node_cpu_seconds_total{{mode="idle"}}[{w}]))',
    "memory_used_gb": '(max by (instance) (avg_over_time(node_memory_MemTotal_bytes[{w}])) '
                      '- max by (instance) (avg_over_time(node_memory_MemAvailable_bytes[{w}]))) / 1073741824',
    # received + sent on every interface but loopback, in MB a day
    "net_mb_per_day": '(sum by (instance) (rate(node_network_receive_bytes_total{{device!="lo"}}[{w}])) '
                      '+ sum by (instance) (rate(node_network_transmit_bytes_total{{device!="lo"}}[{w}]))) '
                      '* 86400 / 1e6',
    "seeded": 'max by (instance) (max_over_time(jiyue_seeded[{w}]))',
}


class PrometheusError(MonitoringError):
    """The server could not be reached or refused a query; the message says which URL and why."""


def duration(seconds: int) -> str:
    """A PromQL duration: 1d, 6h, 300s."""
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Prometheus:
    """A Prometheus server's HTTP API, with the stdlib: one GET per query, JSON back."""

    def __init__(self, source: PrometheusSource) -> None:
        self.url = source.url.rstrip("/")
        self.timeout = source.timeout

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(f"{self.url}: HTTP {exc.code} for {path}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"{self.url}: cannot query {path}: {exc}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{self.url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query_range(self, query: str, start: datetime, end: datetime, step: int) -> list[dict[str, Any]]:
        """Every series' [time, value] points; `resultType` is always a matrix for query_range."""
        return self.get("/api/v1/query_range", query=query, start=f"{start.timestamp():.0f}",
                        end=f"{end.timestamp():.0f}", step=str(step))["result"]


def instance_key(instance: str, match: MatchBy) -> str:
    """The `instance` label's host part (`10.1.2.3:9100` -> `10.1.2.3`, `[fd00::1]:9100` -> `fd00::1`)."""
    host = instance
    if instance.startswith("["):
        host = instance[1:].split("]", 1)[0]
    elif instance.count(":") == 1:
        host = instance.split(":", 1)[0]
    if match == MatchBy.address:
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            return host
    return host


def host_keys(inv: Inventory, hosts: list[str], match: MatchBy) -> dict[str, str]:
    """instance key -> inventory host, for the hosts asked for."""
    if match == MatchBy.address:
        return {str(inv.hosts[h].address): h for h in hosts}
    return {h: h for h in hosts}


def fetch(inv: Inventory, source: PrometheusSource, hosts: list[str], since: datetime, until: datetime,
          step: int = DAY) -> list[dict[str, Any]]:
    """The readings of `hosts` between `since` and `until`, one per host per step with any data: rows for
    `Store.record_readings`. Series of hosts not asked for (or not in the inventory) are left out."""
    api = Prometheus(source)
    keys = host_keys(inv, hosts, source.match)
    w = duration(step)
    start, end = aligned(since, until, step)
    rows: dict[tuple[str, float], dict[str, Any]] = {}
    for name, template in QUERIES.items():
        for series in api.query_range(template.format(w=w), start, end, step):
            host = keys.get(instance_key(series["metric"].get("instance", ""), source.match))
            if host is None:
                continue
            for t, value in series["values"]:
                v = float(value)
                if v != v:  # NaN: a counter without two points in the step
                    continue
                row = rows.get((host, t))
                if row is None:
                    if name == "seeded":
                        continue  # a seeded mark alone is not a reading
                    row = rows[(host, t)] = reading(host, datetime.fromtimestamp(t, UTC), step)
                if name == "seeded":
                    row["seeded"] = v > 0
                elif name == "cpus":
                    row["cpus"] = int(v)
                else:
                    row[name] = round(max(v, 0.0), 4)
    return sorted(rows.values(), key=lambda r: (r["host"], r["at"]))
