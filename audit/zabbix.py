"""Utilisation history from the city's own Zabbix: the "Linux by Zabbix agent" template's CPU, memory and
network items, read over the JSON-RPC API (the frontend's api_jsonrpc.php) and stored as readings marked
`zabbix` (`invoke audit.history --from zabbix`).

The items, by key (the template's own):

- `system.cpu.util` (% of all CPUs busy) and `system.cpu.num` (CPUs);
- `vm.memory.size[total]` and `vm.memory.size[available]` (bytes; used = total - available);
- `net.if.in[…]` and `net.if.out[…]` (bits/s, one pair per discovered interface; loopback left out).

The figures come from `trend.get`, Zabbix's hourly aggregates (count and average per item and hour), not
from `history.get`: trends are kept 365 days by default and raw history 90 (items' "history"/"trends"
settings), and one hourly row replaces up to 60 raw values. The hours are averaged into one reading per
host per step (a day by default); a step with no trend row is a gap, never interpolated (audit/monitoring.py
computes the coverage, the same as for Prometheus). The current hour is not in the trends yet.

Hosts find their inventory host by the address of one of their interfaces (monitoring.zabbix.match
`address`) or by their technical host name (`name`). An item `jiyue.seeded` (the lab's backfill,
lab/zabbix.py) marks its host's hours as seeded. The password is read when logging in (user.login) and is
never in a message: errors name the URL and what Zabbix said. API 5.4 or later (`username` at login; the
session token goes in the request's `auth`, as every version up to 7.0 accepts).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.monitoring import DAY, MonitoringError, aligned, reading
from inventory.model import Inventory, ZabbixMatch, ZabbixSource

SOURCE = "zabbix"
HOUR = 3600
CPU, CPUS, MEM_TOTAL, MEM_AVAILABLE, SEEDED = ("system.cpu.util", "system.cpu.num", "vm.memory.size[total]",
                                               "vm.memory.size[available]", "jiyue.seeded")
NET_IN, NET_OUT = "net.if.in[", "net.if.out["
# One trend.get asks for at most CHUNK items over SLICE seconds (50 items x 92 days x 24 hours: ~110,000 rows,
# a few MB of JSON), so a year of a large fleet never comes back as one answer the frontend must build in memory.
CHUNK = 50
SLICE = 92 * DAY


class ZabbixError(MonitoringError):
    """The API could not be reached, refused the login or a call; the message names the URL, never the password."""


class ZabbixLoginError(ZabbixError):
    """user.login refused the declared user or password, or the password cannot be read."""

    bad_input = True


class Zabbix:
    """A Zabbix JSON-RPC API, with the stdlib: one POST per call, a session token from user.login."""

    def __init__(self, source: ZabbixSource, root: Path) -> None:
        self.url = source.url
        self.timeout = source.timeout
        self.token: str | None = None
        self._source, self._root, self._id = source, root, 0

    def call(self, method: str, params: Any) -> Any:
        self._id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": self._id}
        if self.token is not None:
            body["auth"] = self.token
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json-rpc"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            raise ZabbixError(f"{self.url}: HTTP {exc.code} for {method}: {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ZabbixError(f"{self.url}: cannot call {method}: {exc}") from None
        if not isinstance(answer, dict):
            raise ZabbixError(f"{self.url}: {method}: not a JSON-RPC answer")
        if "error" in answer:
            error = answer["error"] or {}
            raise ZabbixError(f"{self.url}: {method}: {error.get('message', '')} {error.get('data', '')}".strip())
        return answer.get("result")

    def login(self) -> None:
        """user.login with the declared user and the password read now (never kept in a message)."""
        try:
            password = self._source.password.resolve(self._root)
        except (LookupError, OSError) as exc:
            raise ZabbixLoginError(f"{self.url}: cannot read the password of user {self._source.user}: {exc}") from None
        try:
            self.token = self.call("user.login", {"username": self._source.user, "password": password})
        except ZabbixError as exc:
            raise ZabbixLoginError(f"{exc} (user {self._source.user}: check monitoring.zabbix user and "
                                   "password)") from None

    def logout(self) -> None:
        if self.token is not None:
            with contextlib.suppress(ZabbixError):
                self.call("user.logout", [])
            self.token = None


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def match_hosts(api: Zabbix, inv: Inventory, hosts: list[str], match: ZabbixMatch) -> dict[str, str]:
    """Zabbix hostid -> inventory host, for the hosts asked for (the first Zabbix host that matches wins)."""
    wanted = {str(inv.hosts[h].address): h for h in hosts} if match == ZabbixMatch.address else {h: h for h in hosts}
    found: dict[str, str] = {}
    taken: set[str] = set()
    for zhost in api.call("host.get", {"output": ["hostid", "host"], "selectInterfaces": ["ip"]}):
        keys = ([_address(i.get("ip", "")) for i in zhost.get("interfaces", [])] if match == ZabbixMatch.address
                else [zhost["host"]])
        for key in keys:
            host = wanted.get(key)
            if host is not None and host not in taken:
                found[zhost["hostid"]] = host
                taken.add(host)
                break
    return found


def item_role(key: str) -> str | None:
    """Which figure an item feeds, by its key; None for items jiyue does not read (and loopback)."""
    if key in (CPU, CPUS, MEM_TOTAL, MEM_AVAILABLE, SEEDED):
        return key
    for prefix in (NET_IN, NET_OUT):
        if key.startswith(prefix):
            interface = key[len(prefix):-1].split(",")[0].strip('"')
            return None if interface == "lo" else "net"
    return None


def fetch(inv: Inventory, source: ZabbixSource, hosts: list[str], since: datetime, until: datetime,
          step: int = DAY) -> list[dict[str, Any]]:
    """The readings of `hosts` between `since` and `until`, one per host per step with any trend data: rows
    for `Store.record_readings`. Zabbix hosts not matching an asked-for inventory host are left out."""
    if step % HOUR:
        raise ZabbixError(f"{source.url}: Zabbix trends are hourly: --step must be whole hours (got {step} s)")
    api = Zabbix(source, inv.root)
    api.login()
    try:
        hostids = match_hosts(api, inv, hosts, source.match)
        if not hostids:
            return []
        items = api.call("item.get", {
            "output": ["itemid", "hostid", "key_"], "hostids": list(hostids),
            "search": {"key_": [CPU, CPUS, "vm.memory.size[", NET_IN, NET_OUT, SEEDED]},
            "searchByAny": True, "startSearch": True})
        roles = {i["itemid"]: (hostids[i["hostid"]], role) for i in items if (role := item_role(i["key_"]))}
        start, end = aligned(since, until, step)
        # (host, step end) -> role -> itemid -> [sum of value*num, num]
        sums: dict[tuple[str, int], dict[str, dict[str, list[float]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(lambda: [0.0, 0.0])))
        ids = sorted(roles)
        first, last = int(start.timestamp()) - step, int(end.timestamp()) - 1
        for i in range(0, len(ids), CHUNK):
            for t_from in range(first, last + 1, SLICE):
                trends = api.call("trend.get", {"output": ["itemid", "clock", "num", "value_avg"],
                                                "itemids": ids[i:i + CHUNK], "time_from": t_from,
                                                "time_till": min(t_from + SLICE - 1, last)})
                for t in trends:
                    host, role = roles[t["itemid"]]
                    at = (int(t["clock"]) // step + 1) * step
                    num = max(float(t.get("num") or 1), 1.0)
                    cell = sums[(host, at)][role][t["itemid"]]
                    cell[0] += float(t["value_avg"]) * num
                    cell[1] += num
    finally:
        api.logout()
    rows = []
    for (host, at), by_role in sums.items():
        mean = {role: {item: s / n for item, (s, n) in cells.items() if n} for role, cells in by_role.items()}
        if not set(mean) - {SEEDED}:
            continue  # a seeded mark alone is not a reading
        row = reading(host, datetime.fromtimestamp(at, UTC), step)
        if mean.get(CPU):
            row["cpu_pct"] = round(max(sum(mean[CPU].values()) / len(mean[CPU]), 0.0), 4)
        if mean.get(CPUS):
            row["cpus"] = round(max(mean[CPUS].values()))
        if mean.get(MEM_TOTAL) and mean.get(MEM_AVAILABLE):
            used = max(mean[MEM_TOTAL].values()) - max(mean[MEM_AVAILABLE].values())
            row["memory_used_gb"] = round(max(used, 0.0) / 1024**3, 4)
        if mean.get("net"):  # bits/s over every interface, in and out, as MB a day
            row["net_mb_per_day"] = round(max(sum(mean["net"].values()), 0.0) / 8 * DAY / 1e6, 4)
        row["seeded"] = bool(mean.get(SEEDED)) and max(mean[SEEDED].values()) > 0
        rows.append(row)
    return sorted(rows, key=lambda r: (r["host"], r["at"]))
