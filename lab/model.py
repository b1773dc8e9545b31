"""The lab's typed records: what its operations return (hosts and devices up or down, what a seed did).

Kept apart from the modules that make them so the demo, the tasks and the tests can use them without the
machinery behind them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The scenario's profiles (lab/scenario.yaml), in the order summaries list them.
PROFILES = ("active", "detached", "idle", "stale", "small")


@dataclass
class HostStatus:
    """One lab host as `Lab.status` finds it: up only if its namespace exists, its sshd runs and answers SSH."""

    name: str
    address: str
    netns: bool
    sshd_pid: int | None
    ssh_banner: str | None

    @property
    def up(self) -> bool:
        return self.netns and self.sshd_pid is not None and bool(self.ssh_banner)


@dataclass(frozen=True)
class UndeclaredHost:
    """A lab host the sample city's inventory does not declare (未登记主机, lab/scenario.yaml `undeclared`), for
    `audit.discover` to find. With `ssh` it is an ordinary lab host (sshd, the operator's key) whose host key no
    known_hosts records; without it, a stand-in for a Windows server: a namespace answering only on `listen`."""

    name: str
    address: str
    ssh: bool = False
    os: str = "Debian 12"
    listen: tuple[int, ...] = ()  # TCP ports a stand-in service holds (lab/app.py tcp, or http with `connect`)
    connect: tuple[str, ...] = ()  # ADDRESS:PORT it keeps a connection to (who it talks to)


@dataclass
class DeviceStatus:
    """One simulated device as `Lab.device_status` finds it: up only if the simulator runs it and it answers SSH."""

    name: str
    platform: str
    address: str
    port: int
    running: bool
    ssh_banner: str | None

    @property
    def up(self) -> bool:
        return self.running and bool(self.ssh_banner)


@dataclass
class Proc:
    """A process the seeder runs inside a host: a service (through its control script) or the traffic generator."""

    host: str
    label: str  # system/service, or "traffic"
    argv: list[str]
    pidfile: Path  # where its pid file really is on this machine (a service's is in the host's /etc/app)
    address: str = ""
    port: int = 0
    pid: int | None = None
    state: str = ""  # started, kept, failed
    system_id: str = ""  # a service: started by /etc/app/<system_id>/service inside its host
    out: Path | None = None  # where its output goes (on this machine)


@dataclass
class SeedResult:
    """What `lab.seed.seed` did: each system's profile, the services and traffic it runs, the gateway's routes."""

    profiles: dict[str, str] = field(default_factory=dict)  # system id -> profile
    hosts: list[str] = field(default_factory=list)
    services: list[Proc] = field(default_factory=list)
    traffic: Proc | None = None
    traffic_systems: list[str] = field(default_factory=list)
    gateway: str = ""  # what happened to the gateway's nginx: started, reloaded, unchanged, failed: ...
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)  # system id -> backend (address, port)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        by_profile: dict[str, list[str]] = {}
        for system_id, profile in sorted(self.profiles.items()):
            by_profile.setdefault(profile, []).append(system_id)
        parts = [f"{p} {len(ids)}" + ("" if p == "active" else f" ({', '.join(ids)})")
                 for p, ids in sorted(by_profile.items(), key=lambda kv: PROFILES.index(kv[0]))]
        states = {s: sum(1 for p in self.services if p.state == s) for s in ("started", "kept", "failed")}
        lines = [f"seeded {len(self.profiles)} systems on {len(self.hosts)} hosts: {', '.join(parts)}",
                 f"services: {len(self.services)} ({states['started']} started, {states['kept']} already running, "
                 f"{states['failed']} failed)"]
        if self.gateway:
            lines.append(f"gateway: nginx with {len(self.routes)} routes ({self.gateway})")
        if self.traffic:
            lines.append(f"traffic: from {self.traffic.host} through the gateway to {len(self.traffic_systems)} "
                         f"systems ({self.traffic.state})")
        else:
            lines.append("traffic: not started")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"failed: {p.label} on {p.host} (see {p.out or p.pidfile.with_suffix('.out')})"
                  for p in self.services if p.state == "failed"]
        return lines
