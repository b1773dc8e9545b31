"""The lab's monitoring: a node_exporter in each lab host's namespace, a Prometheus scraping them, and months of
past history backfilled with promtool, so `audit.history --from prometheus` reads a real server.

Opt-in (`invoke lab.monitoring`, and the Prometheus tests): `lab.up` does not start it. node_exporter runs
inside each host's namespaces, and `invoke lab.monitoring` runs Prometheus inside the gateway host's
(cloud.gateway, at its address, port 9090), with its storage under the lab's state dir: `lab.down`, which
ends every process of a host's namespace and empties the state dir, ends and removes them all. The tests
run their Prometheus on a loopback port instead, and stop it themselves (`Monitoring.stop`).

Backfill: one OpenMetrics file generated from the scenario's profiles (lab/scenario.yaml, levels as
lab/history.py seeds them: busy where the scenario sends live traffic, quiet elsewhere), turned into
TSDB blocks by `promtool tsdb create-blocks-from openmetrics` before Prometheus starts. Its series carry
`job="backfill"` (never the live scrape's series: a counter would jump where they meet) and every host gets
a `jiyue_seeded` gauge, so the import marks those days seeded (audit/prometheus.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import yaml

from inventory.model import Inventory
from lab.history import BUSY, QUIET, SCENARIO, profile_of
from lab.hosts import Lab
from lab.procs import LabError, run

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
NODE_EXPORTER = "prometheus-node-exporter"
EXPORTER_PORT = 9100
DEFAULT_DAYS = 120  # past history backfilled: beyond the 90-day window and Prometheus' own 15-day default
SHORT_DAYS = 10  # a host whose server kept less than the idle criterion needs
MEMORY_TOTAL = 4 * 1024**3  # the backfilled hosts' memory


@dataclass(frozen=True)
class Backfill:
    """One host's past: its `instance` label, busy or quiet, and how many days back (ending `end`)."""

    instance: str
    busy: bool
    days: int
    cpus: int = 2


def scenario_backfills(inv: Inventory, hosts: Iterable[str], days: int = 120, short: dict[str, int] | None = None,
                       scenario_path: Path = SCENARIO) -> list[Backfill]:
    """Each host's backfill from the scenario: busy if its system gets live traffic; `short` gives some hosts
    fewer days (a server that kept less)."""
    scenario = yaml.safe_load(scenario_path.read_text(encoding="utf-8"))
    out = []
    for host in hosts:
        owner = inv.owner(host)
        busy = bool(owner and profile_of(scenario, owner.id).get("live_traffic"))
        out.append(Backfill(f"{inv.hosts[host].address}:{EXPORTER_PORT}", busy, (short or {}).get(host, days)))
    return out


def write_openmetrics(out: IO[str], backfills: list[Backfill], end: datetime, step: int = 3600,
                      seed: int = 20261203) -> int:
    """node_exporter's CPU, memory and network counters for every backfill, one sample each `step` seconds
    up to `end`, each day at a level drawn from its profile; return the samples written. Family by family
    (OpenMetrics keeps one metric family's lines together), host by host, oldest first."""
    rng = random.Random(seed)
    stop = int(end.timestamp()) // step * step
    # Each host's day levels first (CPU % of one core, network bytes/s, memory share used), so every family
    # is written from the same draw.
    levels = []
    for b in backfills:
        level = BUSY if b.busy else QUIET
        levels.append([(rng.uniform(*level["cpu"]), rng.uniform(*level["net"]),
                        rng.uniform(0.5, 0.8) if b.busy else rng.uniform(0.1, 0.2)) for _ in range(b.days + 1)])

    def points(b: Backfill, days: list[tuple[float, float, float]]) -> Iterable[tuple[int, float, float, float]]:
        start = stop - b.days * 86400
        for t in range(start + step, stop + 1, step):
            yield t, *days[(t - start - 1) // 86400]

    n = 0
    families = ("node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes",
                "node_network_receive_bytes_total", "node_network_transmit_bytes_total", "jiyue_seeded")
    for family in families:
        out.write(f"# TYPE {family} gauge\n")
        for b, days in zip(backfills, levels, strict=True):
            base = f'instance="{b.instance}",job="backfill"'
            if family == "node_cpu_seconds_total":
                for c in range(b.cpus):
                    for mode in ("idle", "user"):
                        total, lines = 0.0, []
                        for t, cpu_one_core, _, _ in points(b, days):
                            busy = min(cpu_one_core / 100 / b.cpus, 1.0)  # each CPU's share busy
                            total += (busy if mode == "user" else 1 - busy) * step
                            lines.append(f'{family}{{{base},cpu="{c}",mode="{mode}"}} {total:.2f} {t}\n')
                        out.writelines(lines)
                        n += len(lines)
                continue
            total, lines = 0.0, []
            for t, _, net, memory in points(b, days):
                if family == "node_memory_MemTotal_bytes":
                    lines.append(f"{family}{{{base}}} {MEMORY_TOTAL} {t}\n")
                elif family == "node_memory_MemAvailable_bytes":
                    lines.append(f"{family}{{{base}}} {MEMORY_TOTAL * (1 - memory):.0f} {t}\n")
                elif family == "jiyue_seeded":
                    lines.append(f"{family}{{{base}}} 1 {t}\n")
                else:  # half received, half sent
                    total += net / 2 * step
                    lines.append(f'{family}{{{base},device="eth0"}} {total:.0f} {t}\n')
            out.writelines(lines)
            n += len(lines)
    out.write("# EOF\n")
    return n


def create_blocks(openmetrics: Path, tsdb: Path) -> None:
    """promtool's backfill: the OpenMetrics file becomes TSDB blocks in `tsdb` (Prometheus loads them at start)."""
    tsdb.mkdir(parents=True, exist_ok=True)
    proc = run(PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=720h",
               str(openmetrics), str(tsdb), check=False)
    if proc.returncode != 0:
        raise LabError(f"promtool could not backfill {openmetrics}: {(proc.stderr or proc.stdout).strip()[-500:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


def start_exporters(lab: Lab, inv: Inventory, hosts: Iterable[str]) -> list[str]:
    """A node_exporter (CPU, memory, network collectors) inside each host's namespaces, on its address, unless one
    answers there already; return the scrape targets. It ends with the host (`lab.down`, `stop_host`)."""
    if shutil.which(NODE_EXPORTER) is None:
        raise LabError(f"{NODE_EXPORTER} is missing (apt-get install prometheus-node-exporter)")
    targets = []
    for host in hosts:
        pid = lab.sshd_pid(host)
        if pid is None:
            raise LabError(f"lab host {host} is not running")
        address = inv.hosts[host].address
        listen = f"[{address}]:{EXPORTER_PORT}" if address.version == 6 else f"{address}:{EXPORTER_PORT}"
        if _listening(str(address), EXPORTER_PORT):
            targets.append(listen)
            continue
        log = lab.host_dir(host) / "node_exporter.log"
        with log.open("ab") as f:
            subprocess.Popen(["nsenter", "-t", str(pid), "-n", "-m", "-u", "--", NODE_EXPORTER,
                              f"--web.listen-address={listen}", "--collector.disable-defaults", "--collector.cpu",
                              "--collector.meminfo", "--collector.netdev"],
                             stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        targets.append(listen)
    for target in targets:
        _wait(f"http://{target}/metrics", what=f"node_exporter at {target}")
    return targets


def _wait(url: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.2)


@dataclass
class Monitoring:
    """A running Prometheus of the lab's: its URL, storage and process."""

    url: str
    directory: Path
    pid: int

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, os.WNOHANG)
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)


def start_prometheus(directory: Path, targets: list[str], port: int | None = None, scrape_interval: str = "5s",
                     listen: str = "127.0.0.1", netns_of: int | None = None) -> Monitoring:
    """Prometheus on `listen` (loopback by default; inside the namespaces of process `netns_of` when given),
    keeping 400 days (the backfill reaches 120 back), scraping `targets`."""
    if shutil.which(PROMETHEUS) is None:
        raise LabError(f"{PROMETHEUS} is missing (apt-get install prometheus)")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    host = f"[{listen}]" if ":" in listen else listen
    prefix = ["nsenter", "-t", str(netns_of), "-n", "-m", "-u", "--"] if netns_of else []
    config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": "1m"},
              "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": targets}]}]}
    (directory / "prometheus.yml").write_text(json.dumps(config), encoding="utf-8")
    log = (directory / "prometheus.log").open("ab")
    proc = subprocess.Popen([*prefix, PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}",
                             f"--storage.tsdb.path={directory / 'tsdb'}", "--storage.tsdb.retention.time=400d",
                             f"--web.listen-address={host}:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    (directory / "prometheus.pid").write_text(str(proc.pid))
    monitoring = Monitoring(f"http://{host}:{port}", directory, proc.pid)
    try:
        _wait(f"{monitoring.url}/-/ready", what="prometheus", timeout=120)
    except LabError:
        monitoring.stop()
        raise
    return monitoring


def backfill_and_start(lab: Lab, inv: Inventory, hosts: list[str], directory: Path, days: int = 120,
                       short: dict[str, int] | None = None, live: Iterable[str] | None = None,
                       now: datetime | None = None, in_host: str | None = None, port: int | None = None,
                       scrape_interval: str = "5s") -> Monitoring:
    """The whole lab monitoring: backfill `hosts` (days back from an hour ago), node_exporters in the `live`
    hosts (default: all of `hosts`), then Prometheus scraping them: on loopback, or inside lab host `in_host`'s
    namespaces at its address (it then ends with that host)."""
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    openmetrics = directory / "backfill.om"
    with openmetrics.open("w", encoding="utf-8") as out:
        write_openmetrics(out, scenario_backfills(inv, hosts, days, short), now - timedelta(hours=1))
    create_blocks(openmetrics, directory / "tsdb")
    openmetrics.unlink()
    targets = start_exporters(lab, inv, hosts if live is None else live)
    if in_host is None:
        return start_prometheus(directory, targets, port, scrape_interval)
    pid = lab.sshd_pid(in_host)
    if pid is None:
        raise LabError(f"lab host {in_host} is not running")
    return start_prometheus(directory, targets, port or 9090, scrape_interval, listen=str(inv.hosts[in_host].address),
                            netns_of=pid)


def running(directory: Path) -> int | None:
    """The pid of the Prometheus `start_prometheus` left running for `directory`, if it still runs."""
    try:
        pid = int((directory / "prometheus.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    mine = f"--storage.tsdb.path={directory / 'tsdb'}".encode()
    return pid if mine in cmdline else None
