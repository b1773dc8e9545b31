"""`invoke lab.*`: bring the inventory's hosts to life as real SSH hosts on this machine."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from invoke import task
from rich.table import Table

from jiyue.cli import HELP, PROBLEMS, console, fail, limit_devices, limit_hosts, load_inventory
from jiyue.store import Store
from lab import baseline_seed
from lab.bastion import BASTION_ADDRESS, BastionLab
from lab.history import seed_history
from lab.hosts import Lab, LabError
from lab.netsim import NetsimError
from lab.prometheus import DEFAULT_DAYS, SHORT_DAYS
from lab.seed import DEFAULT_SCENARIO, ScenarioError, load_scenario
from lab.seed import seed as seed_lab

BASTION_HELP = ("the bastion lab instead (lab/bastion.py): source hosts behind a jump host namespace, no route to "
                "them from here; its inventory is written to .lab-bastion/inventory")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"], "bastion": BASTION_HELP,
            "no_forwarding": "with --bastion: the bastion's sshd refuses TCP forwarding (AllowTcpForwarding no)"})
def up(c, inventory=None, limit=None, bastion=False, no_forwarding=False):
    """Start a network namespace with its own sshd for every inventory host, and a simulated device (SSH, the
    vendor's CLI) for every inventory device (again: harmless). With --bastion: the bastion lab."""
    if bastion:
        _bastion_up(not no_forwarding)
        return
    inv = load_inventory(inventory)
    names = limit_hosts(inv, limit, include_classified=True)
    devices = limit_devices(inv, limit)
    inv = inv.model_copy(update={"hosts": {n: inv.hosts[n] for n in names},
                                 "devices": {n: inv.devices[n] for n in devices}})
    began = time.monotonic()
    lab = Lab()
    try:
        started = lab.up(inv)
        scenario = load_scenario()
        undeclared = lab.up_undeclared(inv, scenario.undeclared, scenario.lifetime) if limit is None else []
    except (LabError, NetsimError, LookupError, ScenarioError) as exc:
        raise fail(str(exc)) from None
    console.print(f"lab: {len(names)} hosts up ({len(started)} started, {len(names) - len(started)} already "
                  f"running), {len(devices)} devices up ({len(lab.started_devices)} started) in "
                  f"{time.monotonic() - began:.1f} s. See: invoke lab.status")
    if undeclared:
        console.print(f"lab: {len(undeclared)} hosts the inventory does not declare (未登记主机: "
                      f"{', '.join(undeclared)}), for invoke audit.discover")


def _bastion_up(forwarding: bool) -> None:
    began = time.monotonic()
    lab = BastionLab()
    try:
        inv = lab.up(forwarding=forwarding)
    except LabError as exc:
        raise fail(str(exc)) from None
    console.print(f"bastion lab: {len(inv.hosts)} hosts and {len(inv.devices)} devices behind jump host bastion "
                  f"({BASTION_ADDRESS}, TCP "
                  f"forwarding {'on' if forwarding else 'off'}) in {time.monotonic() - began:.1f} s. Inventory: "
                  f"{inv.root}; try: invoke audit.collect --inventory {inv.root}", highlight=False)


@task(help={"bastion": "remove the bastion lab (lab.up --bastion) instead"})
def down(c, bastion=False):
    """Stop every lab host and remove everything lab.up made (namespaces, bridge, state), and the lab's Zabbix."""
    if not bastion and (Lab().state_dir / "zabbix").exists():
        _stop_zabbix(Lab().state_dir / "zabbix")
    try:
        removed = BastionLab().down() if bastion else Lab().down()
    except LabError as exc:
        raise fail(str(exc)) from None
    console.print(f"lab: removed {removed} hosts")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"]})
def status(c, inventory=None, limit=None):
    """Show each lab host (namespace, sshd, SSH) and simulated device (exit 1 if any is down)."""
    inv = load_inventory(inventory)
    lab = Lab()
    statuses = lab.status(limit_hosts(inv, limit, include_classified=True))
    table = Table(title="lab hosts", title_justify="left")
    for column in ("host", "address", "netns", "sshd pid", "ssh"):
        table.add_column(column)
    for s in statuses:
        table.add_row(s.name, s.address, "yes" if s.netns else "[red]no[/]", str(s.sshd_pid or "[red]-[/]"),
                      "[green]up[/]" if s.up else "[red]down[/]")
    console.print(table)
    down_hosts = [s.name for s in statuses if not s.up]
    device_names = limit_devices(inv, limit)
    devices = []
    if device_names:
        devices = lab.device_status(device_names)
        table = Table(title="lab devices (simulated)", title_justify="left")
        for column in ("device", "platform", "address", "simulator", "ssh"):
            table.add_column(column)
        for d in devices:
            table.add_row(d.name, d.platform, f"{d.address}:{d.port}", "yes" if d.running else "[red]no[/]",
                          "[green]up[/]" if d.up else "[red]down[/]")
        console.print(table)
        down_hosts += [d.name for d in devices if not d.up]
    if down_hosts:
        console.print(f"{len(down_hosts)} of {len(statuses) + len(devices)} hosts and devices are down. "
                      "Start them with: invoke lab.up")
        raise fail(f"lab hosts down: {', '.join(down_hosts[:10])}{' …' if len(down_hosts) > 10 else ''}",
                   code=PROBLEMS)
    console.print(f"all {len(statuses)} hosts up" + (f", all {len(devices)} devices up" if devices else ""))


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"],
            "scenario": f"what each system's hosts have been doing (default: {DEFAULT_SCENARIO.name} beside the lab)",
            "store": "also write 30 days of earlier collection runs, marked seeded, into this store "
                     "(an SQLAlchemy URL; 'default' for the default store)"})
def seed(c, inventory=None, limit=None, scenario=None, store=None):
    """Give the lab hosts a history (logs, logins, package updates, data) and start services and traffic."""
    inv = load_inventory(inventory)
    if store:
        target = Store(None if store == "default" else store)
        days = seed_history(target, inv, scenario_path=Path(scenario or DEFAULT_SCENARIO))
        console.print(f"history: {days} earlier runs written to {target.url}, marked seeded"
                      if days else f"history: {target.url} already holds seeded runs; left as it is")
    names = limit_hosts(inv, limit, include_classified=True)
    began = time.monotonic()
    try:
        result = seed_lab(Lab(), inv, scenario or DEFAULT_SCENARIO, hosts=names)
    except (LabError, ScenarioError) as exc:
        raise fail(str(exc)) from None
    for line in result.summary():
        console.print(line, highlight=False)
    console.print(f"lab: seeded in {time.monotonic() - began:.1f} s; every service and the traffic stop by themselves "
                  "after the scenario's lifetime (seed again to restart them; lab.down stops everything)")
    if any(p.state == "failed" for p in result.services):
        raise fail("some services did not start", code=PROBLEMS)


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"],
            "baseline": "each host's graded-protection state (default: lab/baseline.yaml)",
            "scenario": "the audit scenario lab.seed writes, which the administrators' logins follow "
                        f"(default: {DEFAULT_SCENARIO.name} beside the lab)"})
def seed_baseline(c, inventory=None, limit=None, baseline=None, scenario=None):
    """Write each lab host's PAM, login, sshd, audit, log and account files from the baseline data (等保 state)."""
    inv = load_inventory(inventory)
    names = limit_hosts(inv, limit, include_classified=True)
    began = time.monotonic()
    try:
        faults = baseline_seed.seed_baseline(Lab(), inv, Path(baseline) if baseline else baseline_seed.DEFAULT_BASELINE,
                                             hosts=names, scenario=Path(scenario or DEFAULT_SCENARIO))
    except (LabError, ScenarioError, ValueError) as exc:
        raise fail(str(exc)) from None
    for host, names_ in sorted(faults.items()):
        if names_:
            console.print(f"{host}: {', '.join(names_)}")
    console.print(f"lab: {len(faults)} hosts given their baseline state in {time.monotonic() - began:.1f} s "
                  f"({sum(bool(v) for v in faults.values())} with seeded faults)")


def _stop_zabbix(directory: Path) -> list[int]:
    """End the processes lab.monitoring --zabbix started for `directory` (its pids file names them) and its
    PostgreSQL; return the pids that were running."""
    from lab import postgres
    from lab import zabbix as lab_zabbix

    pids = lab_zabbix.running(directory)
    lab_zabbix.stop_processes(pids)
    if (directory / "postgres" / "data" / "postmaster.pid").exists():
        postgres.Cluster(directory / "postgres", 0).stop()
    return pids


def _zabbix_monitoring(inv, lab: Lab, limit, days: int, short: str, stop: bool, port: int) -> None:
    """lab.monitoring --zabbix: stop the one running (its pids file says which), then start and backfill."""
    from lab import zabbix as lab_zabbix

    directory = lab.state_dir / "zabbix"
    pids = _stop_zabbix(directory)
    if stop:
        console.print(f"monitoring: Zabbix {'stopped' if pids else 'was not running'}")
        return
    names = [h for h in limit_hosts(inv, limit) if inv.cloud is None or h != inv.cloud.gateway]
    shutil.rmtree(directory, ignore_errors=True)
    try:
        zbx = lab_zabbix.start(directory, port)
        rows = lab_zabbix.backfill(zbx, inv, names, days, short={h: SHORT_DAYS for h in short.split(",") if h})
    except LabError as exc:
        raise fail(str(exc)) from None
    console.print(f"monitoring: Zabbix at {zbx.url}, {len(names)} hosts, {days} days backfilled ({rows} hourly trend "
                  f"rows, marked seeded); live data in the lab comes from Prometheus (lab.monitoring). Declare it: "
                  f"monitoring: {{zabbix: {{url: {zbx.url}, user: {zbx.user}, password: {{file: "
                  f"{zbx.password_file}}}}}}}; then: invoke audit.history --from zabbix. "
                  "Stop it: invoke lab.monitoring --zabbix --stop")


@task(help={"inventory": HELP["inventory"], "limit": HELP["limit"],
            "days": f"days of past history backfilled (default {DEFAULT_DAYS})",
            "short": f"comma-separated hosts whose backfill keeps only {SHORT_DAYS} days (a server that kept less)",
            "stop": "stop the lab's Prometheus (lab.down stops it too), or with --zabbix its Zabbix",
            "zabbix": "a Zabbix instead (zabbix_server, its API under php-fpm + nginx, its own PostgreSQL) on "
                      "127.0.0.1:--port, history backfilled into its trends tables",
            "port": "the Zabbix frontend's loopback port (default 10080)"})
def monitoring(c, inventory=None, limit=None, days=DEFAULT_DAYS, short="", stop=False, zabbix=False, port=10080):
    """Monitoring for the lab hosts (opt-in): a node_exporter in each host's namespace, past history backfilled
    from the scenario with promtool, and a Prometheus in the gateway host scraping them (for audit.history);
    with --zabbix, a Zabbix on loopback holding the same profiles' history."""
    from lab.prometheus import backfill_and_start, running

    inv = load_inventory(inventory)
    lab = Lab()
    if zabbix:
        _zabbix_monitoring(inv, lab, limit, int(days), short, stop, int(port))
        return
    directory = lab.state_dir / "prometheus"
    pid = running(directory)
    if stop or pid:
        if pid:
            os.kill(pid, signal.SIGTERM)  # the one this task started: its pid file and its storage path say so
        console.print(f"monitoring: Prometheus {'stopped' if pid else 'was not running'}")
        if stop:
            return
        time.sleep(1)
    if inv.cloud is None:
        raise fail("the inventory declares no cloud.gateway, the host Prometheus runs in")
    names = [h for h in limit_hosts(inv, limit) if h != inv.cloud.gateway]
    shutil.rmtree(directory, ignore_errors=True)  # a fresh backfill: the same history relative to now
    try:
        mon = backfill_and_start(lab, inv, names, directory, int(days),
                                 short={h: SHORT_DAYS for h in short.split(",") if h}, in_host=inv.cloud.gateway)
    except LabError as exc:
        raise fail(str(exc)) from None
    console.print(f"monitoring: {len(names)} node_exporters, {days} days backfilled (marked seeded), Prometheus at "
                  f"{mon.url} (in {inv.cloud.gateway}; lab.down stops it). Declare it in the inventory: "
                  f"monitoring: {{prometheus: {{url: {mon.url}}}}}; then: invoke audit.history --from prometheus")
