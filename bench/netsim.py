"""Benchmark: what the device simulator costs, so push benchmarks can tell its share from the engine's.

Run as root from the checkout: `.venv/bin/python bench/netsim.py [--sizes 50,100]`.

It starts a lab of its own (bridge `nslab0`, 198.19.104.0/22, beside the main lab) with the largest size
of simulated devices, the five platforms in turn, and for each size measures: the start of the devices,
the simulator's memory, netmiko sessions opened on all devices at once with `show running-config` /
`display current-configuration`, and a 40-line `send_config_set` on all devices at once. Nothing is
asserted: this measures.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netmiko import ConnectHandler

import inventory
from lab.hosts import Lab
from lab.netsim.lab import netsim

PLATFORMS = ["huawei_vrp", "huawei_vrpv8", "hp_comware", "cisco_ios", "ruijie_os"]
SHOW = {"cisco_ios": "show running-config", "ruijie_os": "show running-config"}
NET = ipaddress.ip_network("198.19.104.0/22")


def make_inventory(root: Path, lab: Lab, n: int) -> Path:
    inv_dir = root / "inventory"
    inv_dir.mkdir()
    lines = ["defaults:", f"  ssh: {{known_hosts: {lab.known_hosts}}}",
             f"  device_credentials: {{username: netops, password: {{file: {lab.state_dir}/devices/password}}}}",
             "subnets:", f"  - {{name: bench, kind: management, prefix: {NET}, gateway: {NET[1]}}}", "devices:"]
    for i in range(n):
        lines.append(f"  - {{name: n{i:03d}, platform: {PLATFORMS[i % 5]}, address: {NET[10 + i]}, site: bench, "
                     "role: access}")
    (inv_dir / "network.yaml").write_text("\n".join(lines) + "\n")
    return inv_dir


def change(platform: str, i: int) -> list[str]:
    """About 40 lines: ten loopbacks with a description and two addresses each."""
    lines = []
    for k in range(10):
        if platform in ("cisco_ios", "ruijie_os"):
            name = f"Loopback {k}" if platform == "ruijie_os" else f"Loopback{k}"
            lines += [f"interface {name}", f"description bench {i}-{k}", f"ip address 10.{k}.{i % 250}.1 255.255.255.0",
                      "exit"]
        else:
            lines += [f"interface LoopBack{k}", f"description bench {i}-{k}",
                      f"ip address 10.{k}.{i % 250}.1 255.255.255.0", "quit"]
    if platform == "huawei_vrpv8":
        lines.append("commit")
    return lines


def session(inv, device, lab: Lab, password: str, push: bool) -> float:
    platform = device.platform.value
    began = time.perf_counter()
    conn = ConnectHandler(device_type=device.platform.netmiko_device_type, host=str(device.address), username="netops",
                          password=password, ssh_strict=True, system_host_keys=False, alt_host_keys=True,
                          alt_key_file=str(lab.known_hosts), conn_timeout=30,
                          **({"global_cmd_verify": True} if platform == "hp_comware" else {}))
    try:
        if push:
            conn.send_config_set(change(platform, int(device.name[1:])), read_timeout=60)
        else:
            conn.send_command(SHOW.get(platform, "display current-configuration"), read_timeout=60)
    finally:
        conn.disconnect()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-netsim-") as tmp:
        lab = Lab(Path(tmp) / "lab", tag="ns")
        inv = inventory.load(make_inventory(Path(tmp), lab, sizes[-1]))
        began = time.perf_counter()
        lab.up(inv)
        started = time.perf_counter() - began
        pid = int((lab.state_dir / "devices" / "server.pid").read_text())
        rss = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS")))
        password = (lab.state_dir / "devices" / "password").read_text().strip()
        print(f"{sizes[-1]} devices started in {started:.1f} s (with the lab's namespace); simulator RSS "
              f"{rss / 1024:.0f} MB idle")
        print("| devices | show run, all at once | slowest session | 40-line push, all at once | slowest session |")
        print("|---|---|---|---|---|")
        try:
            for n in sizes:
                devices = [d for d in inv.devices.values()][:n]
                row = [str(n)]
                for push in (False, True):
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(n) as pool:
                        times = list(pool.map(lambda d, p=push: session(inv, d, lab, password, p), devices))
                    row += [f"{time.perf_counter() - t0:.1f} s", f"{max(times):.1f} s"]
                print("| " + " | ".join(row) + " |", flush=True)
            rss = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS")))
            print(f"simulator RSS after the runs: {rss / 1024:.0f} MB; devices: {len(netsim(lab).status())}")
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
