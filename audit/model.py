"""The audit's records, declared once: the facts each probe returns, the verdicts, the archive's lists.

Facts travel as plain dicts (they are stored as JSON in the history store and read back years
later), so their shapes are TypedDicts: the schema each probe documents here is the schema every
reader (zombies, archive, reports, the migration planner's `AuditView`) types against, and a key
spelled wrong is a type error, not a silent `None`.

One collection of one host is a `HostFacts`: the probes' sections, with `HostOS` and `Sockets`
merged at the top level (`facts["os"]`, `facts["listening"]`). Seeded history (lab/history.py)
stores only `sample` and `cpu`, so every reader treats every key as possibly missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

if TYPE_CHECKING:
    from audit.zombies import Judge
    from inventory.model import Inventory
    from jiyue.runner import Result

# --- facts, one shape per probe (audit/probes.py) -------------------------------------------------


class ClockFacts(TypedDict):
    """`Clock`: the host's time (epoch seconds) and its UTC offset, `+0800`."""

    epoch: int
    utc_offset: str


class OsRelease(TypedDict):
    """From /etc/os-release; `distribution` is the name the lifecycle table knows (Kylin, UOS, …)."""

    id: str
    id_like: list[str]
    version_id: str
    name: str
    pretty_name: str
    distribution: str


class CpuFacts(TypedDict):
    model: str
    count: int


class MemoryFacts(TypedDict):
    total_kb: int
    available_kb: int


class Disk(TypedDict):
    device: str
    mount: str
    size_kb: int
    used_kb: int


class HostOSFacts(TypedDict):
    """`HostOS`: the operating system and what it reports about the machine."""

    os: OsRelease
    kernel: str
    uptime_s: float
    cpu: CpuFacts
    memory: MemoryFacts
    disks: list[Disk]
    load: list[float]  # 1, 5 and 15 minutes
    hostname: str


class NetCounters(TypedDict):
    """Unicast IP bytes since boot at the sample's end: deltas between runs measure long-term traffic."""

    rx: int
    tx: int


class SampleFacts(TypedDict):
    """`Sample`: CPU and network over the sampling interval (the host's own processes, not ours)."""

    interval_s: float
    cpu_seconds: float
    cpu_pct_of_one_core: float
    host_cpu_pct: float  # the whole machine, /proc/stat
    net_bytes: int
    net_bytes_per_s: float
    net_counters: NetCounters
    processes: int
    rss_kb: int


class Listening(TypedDict):
    proto: str  # tcp | udp
    address: str
    port: int
    process: str  # "" when no process of the host's namespace holds the socket
    pid: int | None


class Connection(TypedDict):
    """An established TCP connection (loopback left out): one edge of the measured dependency map."""

    local: str
    local_port: int
    peer: str
    peer_port: int
    process: str


class SocketFacts(TypedDict):
    """`Sockets`: listening ports with their processes, established TCP connections."""

    listening: list[Listening]
    connections: list[Connection]


class LoginFacts(TypedDict):
    """`Logins`: each user's last interactive login (UTC ISO time), logins per day and where they came from."""

    users_last: dict[str, str]
    logins_per_day: dict[str, int]
    sources: list[str]  # wtmp, lastlog, wtmpdb
    distinct_users: NotRequired[dict[str, int]]  # "30", "90", "365" days back from the host's clock


class WebFacts(TypedDict):
    """`WebAccess`: from the system's declared access logs, aggregated on the host."""

    requests_per_day: dict[str, list[int]]  # ISO day -> [requests, distinct clients]
    clients_last_day: dict[str, str]  # client address -> the last ISO day it was seen
    last_request: str | None
    logs: list[str]  # declared
    found: list[str]  # present on the host


class PackageFacts(TypedDict):
    """`Packages`: the newest package transaction of any manager (dpkg, apt, dnf, yum, rpm)."""

    last_transaction: str | None
    source: str | None
    detail: str | None


class ServiceFacts(TypedDict):
    manager: str  # systemd | sysv | unknown
    enabled: list[str]
    running: list[str]


class CronEntry(TypedDict):
    file: str
    entry: str


class DataPathFacts(TypedDict):
    """`DataPaths`: one declared data path (the facts are {path: DataPathFacts})."""

    exists: bool
    files: int
    bytes: int
    last_modified: str | None


class HostFacts(TypedDict, total=False):
    """One host's collection as stored (`audit.collect` records): every probe's facts, and its timing."""

    clock: ClockFacts
    os: OsRelease
    kernel: str
    uptime_s: float
    cpu: CpuFacts
    memory: MemoryFacts
    disks: list[Disk]
    load: list[float]
    hostname: str
    listening: list[Listening]
    connections: list[Connection]
    logins: LoginFacts
    web: WebFacts
    packages: PackageFacts
    services: ServiceFacts
    cron: list[CronEntry]
    data: dict[str, DataPathFacts]
    sample: SampleFacts
    collect_seconds: float


class Location(TypedDict, total=False):
    """Where a system runs now, as the migration engine recorded it (`MIGRATE_LOCATION` in the store)."""

    system: str
    hosts: dict[str, str]  # source host -> target host
    what: str  # migrated | rolled_back
    run_key: str
    at: str


# --- verdicts (audit/zombies.py) ------------------------------------------------------------------

CRITERIA = ("detached", "replaceable", "idle", "maintenance", "small")
MET, NEAR, NOT_MET, INSUFFICIENT = "met", "near", "not_met", "insufficient"
ZOMBIE, SUSPECT, ACTIVE, NO_DATA = "zombie", "suspect", "active", "insufficient_data"
# Maintenance stopped, still in use: redeploy or upgrade it (重新部署/升级改造), never take it offline.
REPLATFORM = "replatform"
VERDICT_ORDER = (ZOMBIE, REPLATFORM, SUSPECT, ACTIVE, NO_DATA)
FINDINGS = (ZOMBIE, REPLATFORM)  # what a policy verdict rule may conclude


@dataclass
class Evidence:
    """One observation behind a criterion: on which host, what signal, its value, when and from where."""

    host: str
    signal: str
    value: str
    at: str | None = None
    source: str | None = None


@dataclass
class Criterion:
    """One of the five criteria for one system: its outcome, the numbers and the evidence behind it."""

    key: str  # one of CRITERIA
    outcome: str  # MET | NEAR | NOT_MET | INSUFFICIENT
    summary: str  # "中文 / English"
    numbers: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def number(self) -> int:
        return CRITERIA.index(self.key) + 1


@dataclass
class Verdict:
    """A system's verdict over its own window (one that covers its declared cycle), with every criterion
    that led to it, the policy rule that decided it, and how its measured use compares with its declared one."""

    system: str
    verdict: str  # ZOMBIE | REPLATFORM | SUSPECT | ACTIVE | NO_DATA
    criteria: list[Criterion]
    window_start: str | None
    window_end: str | None
    runs: int
    hosts_measured: list[str]
    hosts_missing: list[str]
    rule: str = ""  # "中文 / English": the policy rule (or the fallback) that gave the verdict
    window_days: int = 0  # the days judged: max(the policy's window, the declared cycle)
    cycle_days: int = 0  # the declared frequency's cycle the history must cover
    covered_days: int | None = None  # how far back the evidence reaches; None: no evidence at all
    declared_frequency: str | None = None  # system.frequency
    measured_frequency: str | None = None  # the level the measured active days match; None: not measured
    active_days: int | None = None  # days of the window with a request or a login

    @property
    def missing_days(self) -> int:
        """Days of history still needed to cover one declared cycle (0 when covered)."""
        return max(self.cycle_days - (self.covered_days or 0), 0)

    @property
    def met(self) -> list[int]:
        return [c.number for c in self.criteria if c.outcome == MET]


# --- the archive's lists (audit/archive.py) -------------------------------------------------------

TRANSFER, SCRAP = "transfer", "scrap"


@dataclass
class IntegrationEntry:
    """One system on the integration list; `target` is the system it should merge into (None: keep
    it as the merged system, or no target found in its department)."""

    kind: str  # overlap | single_office
    department: str
    group: list[str]  # the systems considered together
    system: str
    target: str | None
    action: str  # keep | merge | merge_none | decommission
    reasons: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (label key, arguments)


@dataclass
class AssetEntry:
    """One thing the consolidation frees, on the asset list (资产清单): a host, a piece of room equipment
    (a retired network device, a UPS) or a vacated machine room, with its disposal route and why.

    `department` is the accountable party: the owning department (谁建设、谁负责), whoever built it;
    `vendor` is the contractor that built it (承建单位). `stage` says whether it is freed already or
    once what frees it is done (the decommission after the grace period, the move to the site cluster).
    """

    kind: str  # host | equipment | room
    name: str
    address: str  # IP address, or where the room or equipment is
    department: str
    cause: str  # zombie | migrated_source | website | retired | vacated_room | room_equipment
    stage: str  # freed | pending
    disposal: str  # TRANSFER | SCRAP
    reasons: list[tuple[str, dict[str, str]]]  # (label key, arguments): the route's ground first
    system: str = ""
    system_name: str = ""
    vendor: str = ""
    os: str = ""
    cpus: int | None = None
    memory_gb: float | None = None
    disk_gb: float | None = None
    count: int = 1
    year: int | None = None  # equipment: year acquired
    room: str = ""  # the machine room it stands in
    listening: list[str] = field(default_factory=list)
    cron: list[str] = field(default_factory=list)
    last_collected: datetime | None = None
    eol: str | None = None


@dataclass
class RoomEntry:
    """One machine room on the 机房腾退 sheet: what is in it and what the rule finds about it."""

    room: str
    department: str
    address: str
    area_m2: float
    status: str
    reason: str | None
    remains: list[str]
    approval: str  # "body date document", empty when none recorded
    findings: list[str]  # file:line: field: message, empty when the room complies


# --- what the audit service returns (audit/service.py) ---------------------------------------------


@dataclass
class AuditResult:
    """One audit: the verdicts over the stored history and, when it collected, this run's outcome per host.

    `audit.report.write_reports` writes it; `judge` holds the window, the policy and the history read
    from the store (each host's facts, the measured dependents, each system's current location).
    """

    inventory: Inventory
    judge: Judge
    verdicts: list[Verdict]
    collection: list[Result] = field(default_factory=list)  # empty when the audit only judged
    run_id: int | None = None  # the stored collection run
    freed: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> its ASSET_FREED record (jiyue.store)
    asset_rules: dict[str, Any] | None = None  # disposal and machine-room rules; None: audit/assets.yaml

    @property
    def not_collected(self) -> list[Result]:
        return [r for r in self.collection if not r.ok]


# --- undeclared hosts (audit.discover) --------------------------------------------------------------

# What a live address is to the inventory: undeclared, or the record that declares it.
UNDECLARED = "undeclared"


@dataclass
class FoundHost:
    """One address that answered the scan: its open ports (of those scanned), what the inventory calls it, and
    for an undeclared one its SSH banner, reverse name, the name proposed for it and how collecting it went."""

    address: str
    ports: list[int]
    declared: str = UNDECLARED  # "host", "device", "jump_host", "gateway", "draft_host", "server", "leased_line",
    # "boundary_device", or undeclared
    record: str = ""  # the declaring record's name (empty when undeclared)
    mac: str = ""
    reverse_name: str = ""
    ssh_banner: str = ""
    name: str = ""  # the name proposed for an undeclared host (its reverse name's first label, or its address)
    windows: bool = False  # answers only on Windows' ports (RDP 3389, SMB 445): out of scope for collection
    collection: str = ""  # ok, host_key, auth_failed, unreachable, timeout, error; "" when not tried
    collection_error: str = ""

    @property
    def undeclared(self) -> bool:
        return self.declared == UNDECLARED

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "ports": self.ports, "declared": self.declared, "record": self.record,
                "mac": self.mac, "reverse_name": self.reverse_name, "ssh_banner": self.ssh_banner, "name": self.name,
                "windows": self.windows, "collection": self.collection, "collection_error": self.collection_error}


@dataclass
class SilentHost:
    """An inventory host or device in the scanned subnets that did not answer."""

    name: str
    address: str
    kind: str  # host | device
    system: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "kind": self.kind, "system": self.system}


@dataclass
class DraftService:
    host: str
    port: int
    process: str

    @property
    def name(self) -> str:
        """A service name the inventory accepts (an identifier): the process's name and the port."""
        base = re.sub(r"[^a-z0-9]+", "-", self.process.lower()).strip("-")[:40] or "tcp"
        return f"{base}-{self.port}"


@dataclass
class DraftSystem:
    """A draft system record proposed for undeclared hosts that were collected: hosts that talk to each other
    or listen alike, with what they listen on and the inventory systems they use (and that use them)."""

    id: str
    hosts: list[str]
    services: list[DraftService]
    depends_on: list[str]  # inventory systems these hosts connect to
    dependents: list[str]  # inventory systems that connect to them
    evidence: list[str]  # the connections and listeners behind the grouping

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hosts": self.hosts,
                "services": [{"name": s.name, "host": s.host, "port": s.port, "process": s.process}
                             for s in self.services],
                "depends_on": self.depends_on, "dependents": self.dependents, "evidence": self.evidence}


@dataclass
class Discovery:
    """One `audit.discover`: what was scanned and how, every address that answered, the inventory's hosts that did
    not, the undeclared hosts collected and the draft records proposed for them (written for `inventory.import`)."""

    inventory: Inventory
    networks: list[str]
    excluded: list[str]  # addresses of classified (涉密) hosts nmap was told to skip (--exclude)
    ports: list[int]
    rate: int
    nmap_args: list[str]  # each nmap command line, as nmap itself recorded it
    started: datetime
    seconds: float
    found: list[FoundHost]
    silent: list[SilentHost]
    drafts: list[DraftSystem] = field(default_factory=list)
    draft_hosts: list[dict[str, Any]] = field(default_factory=list)  # the draft host records proposed
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None  # the stored discovery run
    collect_run_id: int | None = None  # the stored collection of the undeclared hosts
    draft_file: Any = None  # pathlib.Path of the proposal written for inventory.import, once written

    @property
    def undeclared(self) -> list[FoundHost]:
        return [f for f in self.found if f.undeclared]

    @property
    def windows(self) -> list[FoundHost]:
        return [f for f in self.undeclared if f.windows]
