"""Benchmark: the level-3 baseline on lab hosts by the fleet path and by the testinfra path, in one run.

Run as root from the checkout: `.venv/bin/python bench/baseline.py [--sizes 50,500,1000] [--bastion]
[--forks 50] [--fleet-only]` (`--hosts N` is `--sizes N`; inside /work/sandbox on a shared machine).

It starts a lab of its own with the largest size, a mix of the domestic distributions, directly reachable
(bridge `bblab0`, 198.19.108.0/22) or with `--bastion` behind a jump host (堡垒机: lab/bastion.py's
machinery, tag `bq`, hosts on 198.19.168.0/22, the bastion at 198.19.172.2), seeds each host's
graded-protection files (lab/baseline.yaml: all compliant here), then checks the same hosts the same way
twice: the fleet path (`invoke baseline.check`: one SSH session and one script per host, workers = hosts up to
1,000, through the bastion on jiyue's JumpPool) in a child process of its own, so that its peak RSS and CPU
time are its alone; and the testinfra path (the generated pytest-testinfra suite, one `pytest --hosts=ssh://HOST`
per host, `--forks` at once, through the same bastion with OpenSSH's ProxyJump: one command per probe).

`--forks` (default 50): up to 100 hosts every host's pytest runs at once (the same parallelism as the fleet
path, as the first figures were taken); beyond, each pytest is a Python process of about 60 MB, a thousand at
once would be 60 GB, and on two cores they only queue for the CPU: 50 at a time, like Ansible's forks in
bench/collect.py.

It verifies both gave the same verdicts and prints, per size, the wall times, the ratio, the fleet path's peak
RSS and CPU seconds per host, and the machine's load average (os.getloadavg) at the start and end.
Targets: fleet path at least 20x faster, 50 hosts under 10 s.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import inventory
from audit.baseline import model, service
from audit.baseline import testinfra as suite
from bench.fleet import host_inventory
from lab.baseline_seed import seed_baseline
from lab.bastion import BastionLab
from lab.hosts import Lab

OSES = ("Kylin V10 SP3", "openEuler 24.03 LTS SP1", "UOS 20 1060a", "Anolis 8.8", "Debian 12")
DIRECT = "198.19.108.0/22"
BEHIND = ipaddress.ip_network("198.19.168.0/22")
OPS = ipaddress.ip_network("198.19.172.0/24")
FORKS = 50
ALL_AT_ONCE = 100  # up to this many hosts, testinfra runs every host's pytest at once
MAX_WORKERS = 1000


def child(inv_dir: str, n: int, out: str) -> None:
    """The fleet path in this (child) process; prints its figures as one JSON line, writes its verdicts to `out`."""
    catalog = model.load_catalog()
    profile = model.load_profile("level3", catalog)
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    inv = inventory.load(Path(inv_dir))
    names = sorted(inv.hosts)[:n]
    results = service.check(inv, names, level=3, profile=profile, catalog=catalog,
                            options=model.CheckOptions(workers=min(n, MAX_WORKERS)), progress=False).results
    wall = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    fleet = [[str(inv.hosts[r.target].address), row["item"], row["check"], row["status"]]
             for r in results if r.ok for row in r.value["rows"]]
    Path(out).write_text(json.dumps(fleet))
    print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
                      "rss_mb": usage.ru_maxrss / 1024, "failed": sum(not r.ok for r in results)}))


def fleet_path(inv_dir: Path, n: int, out: Path) -> tuple[dict, dict]:
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(inv_dir), str(n), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the fleet path failed: {proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_wall": time.perf_counter() - began}
    return figures, {(a, i, c): s for a, i, c, s in json.loads(out.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50")
    parser.add_argument("--hosts", type=int, help="one size (the bench's first option)")
    parser.add_argument("--bastion", action="store_true", help="the hosts behind a jump host (lab/bastion.py)")
    parser.add_argument("--forks", type=int, default=FORKS, help=f"testinfra's pytest runs at once beyond "
                                                                 f"{ALL_AT_ONCE} hosts")
    parser.add_argument("--fleet-only", action="store_true", help="time the fleet path alone (no testinfra)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        inv_dir, n, out = args.child
        child(inv_dir, int(n), out)
        return
    sizes = [args.hosts] if args.hosts else [int(s) for s in args.sizes.split(",")]
    path = "through one bastion" if args.bastion else "direct"
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, "
          f"{path}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-") as tmp:
        root = Path(tmp)
        bastion = BastionLab(root / "bastion", tag="bq", source=BEHIND, ops=OPS) if args.bastion else None
        lab = bastion.hosts if bastion else Lab(root / "lab", tag="bb")
        jump = (bastion.address, bastion.known_hosts) if bastion else None
        inv_dir = host_inventory(root, lab, max(sizes), str(BEHIND) if bastion else DIRECT, "bl", OSES, jump=jump)
        inv = inventory.load(inv_dir)
        began = time.perf_counter()
        lab.up(inv)  # reachable from here first: the seed checks each host's sshd from here
        seed_baseline(lab, inv)
        if bastion:
            bastion.up(inv)  # then the route in goes: the hosts only through the bastion
        print(f"lab up and seeded: {len(inv.hosts)} hosts in {time.perf_counter() - began:.1f} s", flush=True)
        config = suite.ssh_config(root / "ssh_config", lab.key, lab.known_hosts)
        if bastion:  # the bastion first (its own known_hosts, no jump), then every host through it
            config.write_text(f"Host {bastion.address}\n  ProxyJump none\n  UserKnownHostsFile {bastion.known_hosts}\n"
                              + config.read_text().replace("Host *\n", f"Host *\n  ProxyJump root@{bastion.address}\n"))
        try:
            for n in sizes:
                load0 = os.getloadavg()[0]
                names = sorted(inv.hosts)[:n]
                fleet, verdicts = fleet_path(inv_dir, n, root / f"fleet{n}.json")
                t_testinfra, codes, agree = float("nan"), [], None
                if not args.fleet_only:
                    addresses = [str(inv.hosts[h].address) for h in names]
                    workers = n if n <= ALL_AT_ONCE else args.forks
                    began = time.perf_counter()
                    codes, testinfra = suite.run_parallel(addresses, config, root / f"junit{n}", level=3,
                                                          workers=workers)
                    t_testinfra = time.perf_counter() - began
                    agree = testinfra == verdicts
                load1 = os.getloadavg()[0]
                rows.append((n, fleet, t_testinfra, load0, load1))
                print(f"{n} hosts at level 3, {len(verdicts)} verdicts; fleet failures: {fleet['failed']}; fleet "
                      f"{fleet['wall']:.2f} s (process {fleet['process_wall']:.2f} s), "
                      f"peak RSS {fleet['rss_mb']:.0f} MB, "
                      f"CPU {1000 * fleet['cpu'] / n:.1f} ms/host; testinfra {t_testinfra:.2f} s, exit codes "
                      f"{sorted(set(codes))}; verdicts agree: {agree}; load {load0:.1f} -> {load1:.1f}", flush=True)
        finally:
            (bastion or lab).down()
    print()
    print(f"Baseline {path}; testinfra: every host at once up to {ALL_AT_ONCE} hosts, {args.forks} at a time beyond:")
    print()
    print("| hosts | fleet path (jiyue) | testinfra path | testinfra / fleet | fleet peak RSS | fleet CPU per host | "
          "load at start, end |")
    print("|---|---|---|---|---|---|---|")
    for n, fleet, tt, l0, l1 in rows:
        print(f"| {n} | {fleet['wall']:.2f} s ({fleet['process_wall']:.2f} s) | {tt:.2f} s | "
              f"{tt / fleet['process_wall']:.1f}x | {fleet['rss_mb']:.0f} MB | {1000 * fleet['cpu'] / n:.1f} ms | "
              f"{l0:.1f}, {l1:.1f} |")
    first = rows[0]
    ratio = first[2] / first[1]["process_wall"]
    print(f"\nfleet path: the check's time (its whole process in brackets, start-up included); the ratio is over the "
          f"whole process. Targets: fleet path >= 20x faster ({'met' if ratio >= 20 else 'NOT met'} at {first[0]}), "
          f"{first[0]} hosts under 10 s ({'met' if first[1]['wall'] < 10 else 'NOT met'})")
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
