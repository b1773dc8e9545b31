"""The audit's read model: what the store remembers about a fleet, read once for every reader.

The zombie rules, the archive and the migration planner all read the same things from the stored
collections: each host's records (its latest full facts, its utilisation samples), who depends on
whom (declared, and measured on the wire) and where each system runs now (the migration engine's
record). `AuditHistory.load` reads them for one window; `AuditView` is the part the migration
planner takes (each host's measures, the verdicts, the dependents), or nothing without history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from audit.model import HostFacts, Location, Verdict
from inventory.model import Inventory
from jiyue.store import AUDIT_COLLECT, MIGRATE_LOCATION, Reading, Record, Store

JIYUE = "jiyue"  # the source of utilisation jiyue sampled itself (audit.collect); others: audit.history

if TYPE_CHECKING:
    from audit.zombies import Judge


def percentile_of(values: list[float], pct: float) -> float:
    """The `pct` percentile of `values`, linearly interpolated; 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * pct / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class HostHistory:
    """One host's stored records merged: what its logs remembered at each run, and what the store adds."""

    name: str
    records: list[Record]
    readings: list[Reading] = field(default_factory=list)  # from monitoring sources (audit.history), oldest first

    @property
    def measured(self) -> bool:
        """Anything stored: a collection, or a monitoring source's reading."""
        return bool(self.records or self.readings)

    def facts(self) -> list[HostFacts]:
        """Every run's facts, oldest first."""
        return [cast(HostFacts, r.data or {}) for r in self.records]

    @property
    def latest(self) -> HostFacts:
        """The newest full collection (seeded history carries utilisation samples only); {} if none."""
        facts = self.facts()
        full = [f for f in facts if f.get("os")]
        return (full or facts)[-1] if facts else {}

    def users_last(self) -> dict[str, str]:
        """Each login user's last login over every run (logs rotate: an older run may remember more)."""
        return _newest((f.get("logins", {}).get("users_last") or {}) for f in self.facts())

    def clients_last_day(self) -> dict[str, str]:
        """Each web client's last day seen over every run."""
        return _newest((f.get("web", {}).get("clients_last_day") or {}) for f in self.facts())

    def requests_per_day(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.facts():
            for day, (n, _) in (f.get("web", {}).get("requests_per_day") or {}).items():
                out[day] = max(out.get(day, 0), int(n))
        return out

    def login_days(self) -> set[str]:
        """Every ISO day with an interactive login, over every run."""
        return {day for f in self.facts() for day in (f.get("logins", {}).get("logins_per_day") or {})}

    def earliest_evidence(self) -> datetime | None:
        """How far back this host's history reaches: its first stored collection, or the oldest login or
        request its logs still remember, whichever is older. None if never collected."""
        if not self.measured:
            return None
        times = [x[0].at for x in (self.records, self.readings) if x]
        days = set(self.requests_per_day()) | self.login_days()
        days |= {v[:10] for v in self.users_last().values()}
        for day in days:
            try:
                times.append(datetime.fromisoformat(day[:10]).replace(tzinfo=UTC))
            except ValueError:
                continue
        return min(times)

    def last_request(self) -> str | None:
        values = [v for f in self.facts() if (v := f.get("web", {}).get("last_request"))]
        return max(values) if values else None

    def last_package_transaction(self) -> str | None:
        values = [v for f in self.facts() if (v := f.get("packages", {}).get("last_transaction"))]
        return max(values) if values else None

    def logins_collected(self) -> bool:
        return any(f.get("logins") is not None for f in self.facts())

    def access_logs_found(self) -> bool:
        return any(f.get("web", {}).get("found") for f in self.facts())

    def samples(self) -> list[tuple[datetime, float, float]]:
        """(time, CPU % of the host's CPUs, network MB/day) from every source, oldest first."""
        return [(at, cpu, net) for at, cpu, net, _ in self.utilisation()]

    def utilisation(self) -> list[tuple[datetime, float, float, str]]:
        """`samples` with the source of each: jiyue's own and each monitoring source's readings."""
        own = [(*s, JIYUE) for s in self.own_samples()]
        imported = [(r.at, r.cpu_pct, r.net_mb_per_day, r.source) for r in self.readings
                    if r.cpu_pct is not None and r.net_mb_per_day is not None]
        return sorted(own + imported, key=lambda s: s[0])

    def sources(self, since: datetime | None = None) -> dict[str, int]:
        """How many utilisation figures each source gave (since `since`): what the archive names."""
        out: dict[str, int] = {}
        for at, _, _, source in self.utilisation():
            if since is None or at >= since:
                out[source] = out.get(source, 0) + 1
        return out

    def own_samples(self) -> list[tuple[datetime, float, float]]:
        """(time, CPU % of the host's CPUs, network MB/day) from each run's sample and counter deltas."""
        out = []
        previous: HostFacts | None = None
        previous_at: datetime | None = None
        latest_cpu = self.latest.get("cpu")
        for r, data in zip(self.records, self.facts(), strict=True):
            sample = data.get("sample")
            cpu_facts = data.get("cpu") or latest_cpu
            cpus = max(int((cpu_facts.get("count") if cpu_facts else None) or 1), 1)
            if sample:
                cpu = sample.get("cpu_pct_of_one_core", 0.0) / cpus
                out.append((r.at, cpu, sample.get("net_bytes_per_s", 0.0) * 86400 / 1e6))
                prev = previous.get("sample", {}).get("net_counters") if previous else None
                now = sample.get("net_counters")
                if prev and now and previous_at is not None:
                    seconds = (r.at - previous_at).total_seconds()
                    delta = (now["rx"] + now["tx"]) - (prev["rx"] + prev["tx"])
                    if seconds >= 60 and delta >= 0:
                        out.append((r.at, cpu, delta / seconds * 86400 / 1e6))
                previous, previous_at = data, r.at
        return out


def _newest(maps: Iterable[dict[str, str]]) -> dict[str, str]:
    """Merge {key: ISO time or day}, keeping each key's newest value."""
    out: dict[str, str] = {}
    for values in maps:
        for k, v in values.items():
            if isinstance(v, str) and (k not in out or v > out[k]):
                out[k] = v
    return out


def declared_dependents(inv: Inventory) -> dict[str, dict[str, str]]:
    """system -> {dependent system: "declared depends_on"}, from the inventory alone."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for s in inv.systems.values():
        for dep in s.depends_on:
            out[dep][s.id] = "declared depends_on"
    return out


def measured_dependents(inv: Inventory, hosts: dict[str, HostHistory]) -> dict[str, dict[str, str]]:
    """system -> {dependent system: how we know}: "declared depends_on", "TCP a -> b:port", or both."""
    out = declared_dependents(inv)
    by_address = {str(h.address): name for name, h in inv.hosts.items()}
    for name, history in hosts.items():
        latest = history.latest
        listening = {x["port"] for x in latest.get("listening", []) if x.get("proto") == "tcp"}
        owner = inv.owner(name)
        for conn in latest.get("connections", []):
            peer_host = by_address.get(conn.get("peer", ""))
            peer = inv.owner(peer_host) if peer_host else None
            if owner is None or peer is None or peer.id == owner.id:
                continue
            if conn.get("local_port") in listening:  # they connect to us: they depend on us
                server, client, how = owner.id, peer.id, f"TCP {conn['peer']} -> {name}:{conn['local_port']}"
            else:  # we connect to them
                server, client, how = peer.id, owner.id, f"TCP {name} -> {conn['peer']}:{conn['peer_port']}"
            known = out[server].get(client)
            if known is None:
                out[server][client] = how
            elif "TCP" not in known:  # declared and also seen on the wire
                out[server][client] = f"{known}; {how}"
    return out


@dataclass
class AuditHistory:
    """The store's memory of one inventory's fleet since a point in time."""

    hosts: dict[str, HostHistory]  # every inventory host, with no records if never collected
    dependents: dict[str, dict[str, str]]  # provider -> {dependent: how we know}
    locations: dict[str, Location]  # system -> where the migration engine last put it

    @classmethod
    def load(cls, inv: Inventory, store: Store, since: datetime) -> AuditHistory:
        # A classified (涉密) host's records are never read, even if a run with the override stored some:
        # nothing of it reaches a verdict, the archive or a plan.
        records = store.history(AUDIT_COLLECT, inv.contactable_hosts(), since=since, ok_only=True)
        by_host: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_host[r.target].append(r)
        readings: dict[str, list[Reading]] = defaultdict(list)
        for reading in store.readings(inv.contactable_hosts(), since=since):
            readings[reading.host].append(reading)
        hosts = {h: HostHistory(h, by_host.get(h, []), readings.get(h, [])) for h in inv.hosts}
        # The latest record wins; its time is the store's.
        locations = {r.target: cast(Location, {**(r.data or {}), "at": r.at.isoformat()})
                     for r in store.history(MIGRATE_LOCATION, list(inv.systems))}
        return cls(hosts, measured_dependents(inv, hosts), locations)

    def facts(self) -> dict[str, HostFacts]:
        """Each host's latest facts; {} for a host never reached."""
        return {h: history.latest for h, history in self.hosts.items()}

    def collected_at(self) -> dict[str, datetime]:
        """When each host was last collected (hosts never reached are left out)."""
        return {h: history.records[-1].at for h, history in self.hosts.items() if history.records}


# --- what the migration planner takes from the audit ----------------------------------------------


@dataclass(frozen=True)
class HostMeasure:
    """One host as the audit history saw it; None wherever nothing was measured."""

    cpus: int | None = None
    cpu_pct: float | None = None  # the planning percentile of CPU % of the host's CPUs
    samples: int = 0
    memory_used_gb: float | None = None
    disk_used_gb: float | None = None  # used on the host's disks (OS included)
    data_bytes: int | None = None  # under the system's data paths on this host
    collected: datetime | None = None


@dataclass
class AuditView:
    """What the planner takes from the audit (`AuditView.from_judge`) or from nothing (`AuditView()`)."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    hosts: dict[str, HostMeasure] = field(default_factory=dict)
    dependents: dict[str, dict[str, str]] = field(default_factory=dict)  # provider -> {dependent: how}
    facts: dict[str, HostFacts] = field(default_factory=dict)  # latest facts per host (asset lists)
    locations: dict[str, Location] = field(default_factory=dict)  # system -> where the migration engine put it
    runs: int = 0
    seeded_runs: int = 0
    since: datetime | None = None
    until: datetime | None = None

    @property
    def has_history(self) -> bool:
        return self.runs > 0

    def describe(self) -> str:
        if not self.has_history:
            return ("无审计历史：未判定僵尸系统，规格按申报或默认值 / no audit history: no zombie verdicts, sizes "
                    "declared or default")
        seeded = f"，其中 {self.seeded_runs} 次为补录 / , {self.seeded_runs} seeded" if self.seeded_runs else ""
        zh, _, en = seeded.partition(" / ")
        span = f"{self.since:%Y-%m-%d} – {self.until:%Y-%m-%d}" if self.since and self.until else ""
        return f"审计历史 {span}，{self.runs} 次采集{zh} / audit history {span}, {self.runs} runs{en}"

    @classmethod
    def from_judge(cls, judge: Judge, verdicts: Iterable[Verdict] | None = None,
                   percentile: float = 95) -> AuditView:
        inv = judge.inv
        verdicts = list(verdicts) if verdicts is not None else judge.judge_all()
        hosts: dict[str, HostMeasure] = {}
        facts: dict[str, HostFacts] = {}
        runs: set[int] = set()
        seeded: set[int] = set()
        times: list[datetime] = []
        for name, history in sorted(judge.history.hosts.items()):
            records = history.records
            if not history.measured:
                continue
            readings = [r for r in history.readings if r.at >= judge.since]
            runs |= {r.run_id for r in records} | {r.run_id for r in readings}
            seeded |= {r.run_id for r in records if r.seeded} | {r.run_id for r in readings if r.seeded}
            times += [r.at for r in records] + [r.at for r in readings]
            latest = history.latest
            facts[name] = latest
            samples = [s for s in history.samples() if s[0] >= judge.since]
            # Sizes from the host's own facts; a host known only to its monitoring, from the readings.
            cpus = latest.get("cpu", {}).get("count") or next((r.cpus for r in reversed(readings) if r.cpus), None)
            memory = latest.get("memory", {})
            total, available = memory.get("total_kb"), memory.get("available_kb")
            used = [r.memory_used_gb for r in readings if r.memory_used_gb is not None]
            disks = [d for d in latest.get("disks") or [] if isinstance(d, dict)]
            owner = inv.owner(name)
            data = latest.get("data")
            data_bytes = None
            if isinstance(data, dict) and owner is not None:
                data_bytes = sum(int(data[p].get("bytes") or 0) for p in owner.data_paths if p in data)
            hosts[name] = HostMeasure(
                cpus=int(cpus) if cpus else None,
                cpu_pct=percentile_of([s[1] for s in samples], percentile) if samples else None,
                samples=len(samples),
                memory_used_gb=(int(total) - int(available)) / 1024**2 if total and available is not None
                else percentile_of(used, percentile) if used else None,
                disk_used_gb=sum(int(d.get("used_kb") or 0) for d in disks) / 1024**2 if disks else None,
                data_bytes=data_bytes,
                collected=max([x[-1].at for x in (records, readings) if x], default=None),
            )
        # Without a single collection every verdict is "insufficient data": no verdict is the honest value.
        return cls({v.system: v for v in verdicts} if runs else {}, hosts,
                   {k: dict(v) for k, v in judge.history.dependents.items()}, facts, dict(judge.history.locations),
                   len(runs), len(seeded), min(times) if times else None, max(times) if times else None)
