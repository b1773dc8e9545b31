"""Benchmark: pushing a ~40-line change to 50 and 100 simulated devices: jiyue's engine against plain
sequential netmiko `send_config_set` and Nornir + nornir_netmiko at the same worker count, in one run.

Run as root inside the sandbox from the checkout: `/work/sandbox .venv/bin/python bench/push.py
[--sizes 50,100] [--workers 100] [--latency-ms 0]`.

It starts its own simulator (lab/netsim) with the largest size of devices on loopback addresses
(127.77.0.0/16, port 10022), the five platforms in turn. Each device's change is the first ~40 lines
(whole sections) of the sample city's rendered config for a device of its platform; every tool sends
the same lines (jiyue's remediation from the device's initial config), and every device is reset to its
initial config before each tool runs. What each does per device:

- jiyue (`network.push.Pusher`, --apply): connect with a verified host key, read the running config
  (backup), diff, apply with the vendor's commit safety and error patterns, read again and verify
  every line, confirm, save;
- sequential netmiko: connect, `send_config_set` (+ `commit` on VRP8), `save_config`, one device after
  the other;
- Nornir: the same three netmiko calls through nornir_netmiko's tasks on Nornir's threaded runner.

After each tool every device's running config is checked for the change (a tool that did not apply it
is reported). Nothing is asserted: this measures; the README records what it printed, with the
time per step of jiyue's engine (where the time goes).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import inventory
from inventory.model import Device, DeviceCredentials, DeviceRole, Inventory, Platform, SecretRef, Subnet, SubnetKind
from jiyue.platforms import cli
from lab.netsim.api import Netsim
from lab.netsim.device import DeviceSpec
from network.diff import diff, missing_lines
from network.plan import build_plan
from network.push import Pusher, PushOptions
from network.render import render

PASSWORD_ENV = "JIYUE_BENCH_NET_PASSWORD"
PASSWORD = "bench-Passw0rd"
PORT = 10022
NET = ipaddress.ip_network("127.77.0.0/16")
PLATFORMS = [p.value for p in Platform]
CHANGE_LINES = 40


def sample_changes() -> dict[str, list[str]]:
    """Per platform, whole sections of a sample-city device's rendered extranet config (VPN instance,
    boundary ACLs, VLAN interfaces, default routes), about 40 lines."""
    demo = inventory.load(inventory.DEFAULT_INVENTORY)
    plan = build_plan(demo)
    names = [n for n, d in demo.devices.items() if d.golden_network is None]
    rendered = render(demo, plan, names)
    out: dict[str, list[str]] = {}
    for name in names:
        lines: list[str] = []
        for section in rendered[name].sections:  # the extranet features; the baseline is another change
            if len(lines) >= CHANGE_LINES:
                break
            if section.feature != "baseline":
                lines += [section.header, *(line for line, _ in section.children)]
        platform = demo.devices[name].platform.value
        if len(lines) > len(out.get(platform, [])):  # the platform's largest such change
            out[platform] = lines
    return out


def bench_inventory(root: Path, n: int, known_hosts: Path) -> Inventory:
    subnet = Subnet(name="bench", kind=SubnetKind.management, prefix=NET, gateway=NET[1])
    devices = {}
    for i in range(n):
        name = f"sw{i:03d}"
        devices[name] = Device(name=name, platform=Platform(PLATFORMS[i % len(PLATFORMS)]), address=NET[256 + i],
                               port=PORT, site="bench", role=DeviceRole.access)
    creds = DeviceCredentials(username="netops", password=SecretRef(env=PASSWORD_ENV))
    defaults = inventory.model.Defaults(device_credentials=creds, ssh={"known_hosts": str(known_hosts)})
    return Inventory(root=root, defaults=defaults, devices=devices, subnets={"bench": subnet})


def timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - began, value


def netmiko_params(inv: Inventory, name: str) -> dict:
    d = inv.devices[name]
    return dict(device_type=d.platform.netmiko_device_type, host=str(d.address), port=d.port, username="netops",
                password=PASSWORD, secret="")


def plain_netmiko(inv: Inventory, commands: dict[str, list[str]]) -> list[str]:
    """One device after the other: connect, send_config_set, commit (VRP8), save. Returns failures."""
    from netmiko import ConnectHandler

    failed = []
    for name, lines in commands.items():
        try:
            with ConnectHandler(**netmiko_params(inv, name)) as conn:
                conn.send_config_set(lines)
                if inv.devices[name].platform is Platform.huawei_vrpv8:
                    conn.commit()
                conn.save_config()
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
    return failed


def nornir_push(inv: Inventory, commands: dict[str, list[str]], workers: int, folder: Path) -> list[str]:
    """Nornir's threaded runner with nornir_netmiko's send_config, commit (VRP8) and save_config tasks."""
    import yaml
    from nornir import InitNornir
    from nornir.core.task import Result, Task
    from nornir_netmiko.tasks import netmiko_commit, netmiko_save_config, netmiko_send_config

    hosts = {name: {"hostname": str(d.address), "port": d.port, "username": "netops", "password": PASSWORD,
                    "platform": d.platform.netmiko_device_type,
                    "connection_options": {"netmiko": {"extras": {"secret": ""}}}}
             for name, d in inv.devices.items() if name in commands}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    nr = InitNornir(runner={"plugin": "threaded", "options": {"num_workers": workers}},
                    inventory={"plugin": "SimpleInventory", "options": {"host_file": str(folder / "hosts.yaml")}},
                    logging={"enabled": False})

    def push(task: Task) -> Result:
        task.run(netmiko_send_config, config_commands=commands[task.host.name])
        if task.host.platform == "huawei_vrpv8":
            task.run(netmiko_commit)
        if task.host.platform.startswith("huawei"):  # VRP asks "Continue? [Y/N]" (netmiko's own default)
            task.run(netmiko_save_config, confirm=True, confirm_response="y")
        else:
            task.run(netmiko_save_config)
        return Result(host=task.host)

    result = nr.run(task=push)
    nr.close_connections()
    return [f"{h}: " + "; ".join(f"{x.name}: {x.exception!r}"[:300] for x in r if x.failed and x.exception
                                 and x.name != "push") for h, r in result.items() if r.failed]


def check_applied(sim: Netsim, inv: Inventory, names: list[str], changes: dict[str, list[str]]) -> list[str]:
    """Devices whose running config lacks a line of the change."""
    bad = []
    for name in names:
        platform = inv.devices[name].platform.value
        missing = missing_lines(platform, cli(platform).config_text(sim.running_config(name)), changes[platform])
        if missing:
            bad.append(f"{name}: {len(missing)} lines missing, e.g. {missing[0]}")
    return bad


def reset(sim: Netsim, names: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(sim.reset, names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100")
    parser.add_argument("--workers", type=int, default=0, help="threads for jiyue and Nornir (default: the size)")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated delay of every device answer")
    parser.add_argument("--skip-sequential", action="store_true", help="leave out plain sequential netmiko")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ[PASSWORD_ENV] = PASSWORD
    changes = sample_changes()
    print("change per platform: " + ", ".join(f"{p} {len(lines)} lines" for p, lines in changes.items()))
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-push-") as tmp:
        root = Path(tmp)
        sim = Netsim(root / "netsim")
        inv = bench_inventory(root, max(sizes), sim.known_hosts)
        specs = [DeviceSpec(name=n, platform=d.platform.value, address=str(d.address), port=d.port,
                            username="netops", password=PASSWORD) for n, d in inv.devices.items()]
        sim.start(specs)
        if args.latency_ms:
            for n in inv.devices:
                sim.set_faults(n, latency_ms=args.latency_ms)
        initial = {n: sim.running_config(n) for n in inv.devices}
        # every tool sends the same lines: the remediation from each device's initial config
        commands = {n: diff(n, d.platform.value, cli(d.platform.value).config_text(initial[n]),
                            changes[d.platform.value]).remediation for n, d in inv.devices.items()}
        print("lines sent per device: " + ", ".join(
            f"{p} {len(commands[next(n for n, d in inv.devices.items() if d.platform.value == p)])}"
            for p in PLATFORMS))
        rows = []
        try:
            for n in sizes:
                names = sorted(inv.devices)[:n]
                workers = args.workers or n
                sub = {k: commands[k] for k in names}
                intended = {k: changes[inv.devices[k].platform.value] for k in names}

                print(f"{n} devices: jiyue …", flush=True)
                reset(sim, names)
                pusher = Pusher(inv, intended, PushOptions(apply=True, workers=workers, backups=root / "backups",
                                                      progress=False))
                t_ours, run = timed(pusher.run, names)
                ours_bad = [f"{o.device}: {o.kind} {o.reason}" for o in run.outcomes if o.status != "applied"]
                ours_bad += check_applied(sim, inv, names, changes)
                steps: dict[str, list[float]] = {}
                for o in run.outcomes:
                    for step, sec in o.seconds.items():
                        steps.setdefault(step, []).append(sec)

                print(f"{n} devices: Nornir …", flush=True)
                reset(sim, names)
                t_nornir, nornir_bad = timed(nornir_push, inv, sub, workers, root / f"nornir{n}")
                nornir_bad += check_applied(sim, inv, names, changes)

                t_seq, seq_bad = (float("nan"), [])
                if not args.skip_sequential:
                    print(f"{n} devices: sequential netmiko (several seconds a device) …", flush=True)
                    reset(sim, names)
                    t_seq, seq_bad = timed(plain_netmiko, inv, sub)
                    seq_bad += check_applied(sim, inv, names, changes)
                rows.append((n, workers, t_ours, t_seq, t_nornir))
                print(f"\n{n} devices, {workers} workers: jiyue {t_ours:.2f} s, sequential netmiko {t_seq:.2f} s, "
                      f"Nornir {t_nornir:.2f} s")
                print("  jiyue median seconds per step and device: " + ", ".join(
                    f"{s} {statistics.median(v):.3f}" for s, v in steps.items()))
                for label, bad in (("jiyue", ours_bad), ("sequential netmiko", seq_bad), ("Nornir", nornir_bad)):
                    if bad:
                        print(f"  {label}: {len(bad)} problems: " + "; ".join(bad[:5]))
        finally:
            sim.shutdown()
    print("\n| devices | workers | jiyue | sequential netmiko | Nornir + nornir_netmiko | sequential / jiyue "
          "| Nornir / jiyue |")
    print("|---|---|---|---|---|---|---|")
    for n, w, ours, seq, nornir in rows:
        print(f"| {n} | {w} | {ours:.2f} s | {seq:.2f} s | {nornir:.2f} s | {seq / ours:.1f}x | {nornir / ours:.2f}x |")


if __name__ == "__main__":
    main()
