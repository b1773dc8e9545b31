"""Benchmark: fact collection by jiyue against `ansible -m setup` (and pyinfra facts), same hosts, one run.

Run as root from the checkout: `.venv/bin/python bench/collect.py [--sizes 100,500,1000] [--bastion]
[--forks 50] [--workers N] [--pyinfra]`.

It starts a lab of its own with the largest size of plain hosts, beside the main lab: directly reachable
(bridge `jblab0`, 198.19.100.0/22), or with `--bastion` behind a jump host (堡垒机: lab/bastion.py's
machinery, tag `jq`, hosts on 198.19.160.0/22, the bastion at 198.19.164.2, no route in but through it).
For each size it collects the same hosts:

- by jiyue (`audit.collect`, what `invoke audit.collect` runs), in a child process of its own so that its
  peak memory (RSS, `ru_maxrss`: everything the process held, not only Python's allocations) and CPU time are
  its alone; once with the 1-second CPU/network sample and once without (the closest match to what the peers
  gather). Through the bastion, jiyue's JumpPool carries 32 targets on each connection to it;
- by `ansible -m setup` with `--forks` forks (default 50), through the same bastion with OpenSSH's ProxyJump
  (same key, same known_hosts files, host keys checked) when `--bastion`;
- with `--pyinfra`, by pyinfra's facts (`--parallel` = forks; direct only: its export has no jump host).

The fork count: 50 is this checkout's `ansible.cfg` (what the migration engine runs with) and the common
choice for fleets of hundreds: each fork is a Python process of its own (about 50-60 MB), a thousand
forks would be 50 GB, and on a 2-core control node more forks only queue for the CPU: Ansible's time per
host is its own Python on both sides, not the network. `--forks` shows another choice.

jiyue's workers: `--workers` (default: the hosts, up to 1,000): its threads mostly wait, on the network and
on each host's 1-second sample, so fewer workers than hosts means rounds of that second.

It prints, per size: the wall time of each way, the ratio (peer time over jiyue's; higher is better for
jiyue), jiyue's peak RSS and its CPU seconds per host, failures, and the machine's load average
(os.getloadavg) at the start and end of the size. On a shared machine the load says how far the figures can
be trusted: the lab's hosts run on the same cores as the control node, so their sshd and scripts compete with
jiyue and Ansible for the CPU. Nothing is asserted: this measures; the README records what it printed.
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
from bench.fleet import host_inventory
from inventory import export
from jiyue import ansible
from lab.bastion import BastionLab
from lab.hosts import Lab

PYINFRA_FACTS = ["server.Hostname", "server.Kernel", "server.LinuxDistribution", "server.Os", "server.Arch",
                 "server.Mounts", "server.Crontab", "server.Users", "server.Date", "server.Command",
                 "command=ss -H -tulnp"]
DIRECT = "198.19.100.0/22"
BEHIND = ipaddress.ip_network("198.19.160.0/22")  # behind the bench's bastion
OPS = ipaddress.ip_network("198.19.164.0/24")  # between the control node and the bench's bastion
FORKS = 50
MAX_WORKERS = 1000


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - began, value


def child(inv_dir: str, n: int, sample: int, workers: int) -> None:
    """One jiyue collection in this (child) process; prints its figures as one JSON line."""
    from audit.collect import CollectOptions, collect

    before = resource.getrusage(resource.RUSAGE_SELF)  # after the imports: CPU per host is the collection's
    began = time.perf_counter()
    inv = inventory.load(Path(inv_dir))
    names = sorted(inv.hosts)[:n]
    _, results = collect(inv, names, CollectOptions(workers=workers, sample_seconds=sample), progress=False)
    wall = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    failed = [r for r in results if not r.ok]
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_mb": usage.ru_maxrss / 1024,
                      "failed": len(failed), "errors": sorted({f"{r.error_kind}: {r.error}" for r in failed})[:3]}))


def jiyue(inv_dir: Path, n: int, sample: int, workers: int) -> dict:
    """A jiyue collection in a child process: its figures, the wall time as seen from here (start-up included)."""
    command = [sys.executable, __file__, "--child", str(inv_dir), str(n), str(sample), str(workers)]
    began = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"jiyue's collection failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_wall": wall}


def ssh_config(path: Path, lab: BastionLab) -> Path:
    """OpenSSH's settings for the bench's bastion: Ansible's ssh reaches it with the lab's key, and checks its key
    against the bastion's own known_hosts (options on ssh's command line apply to the target, not the jump)."""
    path.write_text(f"Host {lab.address}\n  User root\n  IdentityFile {lab.hosts.key}\n  IdentitiesOnly yes\n"
                    f"  UserKnownHostsFile {lab.known_hosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,50,100")
    parser.add_argument("--bastion", action="store_true", help="the hosts behind a jump host (lab/bastion.py)")
    parser.add_argument("--forks", type=int, default=FORKS, help="Ansible's forks (and pyinfra's --parallel)")
    parser.add_argument("--workers", type=int, default=0, help="jiyue's workers (default: the hosts, up to 1,000)")
    parser.add_argument("--pyinfra", action="store_true", help="also time pyinfra's facts (direct only)")
    parser.add_argument("--jiyue-only", action="store_true", help="time jiyue alone (no Ansible): a quick look")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        inv_dir, n, sample, workers = args.child
        child(inv_dir, int(n), int(sample), int(workers))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    path = "through one bastion" if args.bastion else "direct"
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, "
          f"{path}, Ansible forks {args.forks}", flush=True)
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-") as tmp:
        root = Path(tmp)
        bastion = BastionLab(root / "bastion", tag="jq", source=BEHIND, ops=OPS) if args.bastion else None
        lab = bastion.hosts if bastion else Lab(root / "lab", tag="jb")
        jump = (bastion.address, bastion.known_hosts) if bastion else None
        inv_dir = host_inventory(root, lab, max(sizes), str(BEHIND) if bastion else DIRECT, "b", jump=jump)
        inv = inventory.load(inv_dir)
        t_up, _ = timed(bastion.up if bastion else lab.up, inv)
        print(f"lab up: {len(inv.hosts)} hosts in {t_up:.1f} s", flush=True)
        extra = []
        if bastion:  # the export carries the hosts' own key and known_hosts; the jump comes from here
            config = ssh_config(root / "ssh_config", bastion)
            extra = ["-e", f"ansible_ssh_common_args='-F {config} -o ProxyJump=root@{bastion.address} "
                           f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes'"]
        rows = []
        try:
            for n in sizes:
                load0 = os.getloadavg()[0]
                names = sorted(inv.hosts)[:n]
                out = root / f"out{n}"
                export.write(inv, "ansible", names, [], out)
                workers = args.workers or min(n, MAX_WORKERS)
                sampled = jiyue(inv_dir, n, 1, workers)
                plain = jiyue(inv_dir, n, 0, workers)
                t_ansible, ok_ansible = float("nan"), 0
                if not args.jiyue_only:
                    t_ansible, proc = timed(ansible.run, "ansible", "all", "-i", str(out / "inventory/ansible.yml"),
                                            "-m", "setup", "-f", str(args.forks), *extra, timeout=3600)
                    ok_ansible = proc.stdout.count("SUCCESS")
                t_pyinfra = None
                if args.pyinfra and not bastion:
                    export.write(inv, "pyinfra", names, [], out)
                    command = [ansible.tool("pyinfra"), str(out / "inventory/pyinfra_inventory.py"), "fact",
                               *PYINFRA_FACTS, "--parallel", str(args.forks), "-y"]
                    t_pyinfra, _ = timed(subprocess.run, command, capture_output=True, text=True, env=ansible.env())
                load1 = os.getloadavg()[0]
                rows.append((n, sampled, plain, t_ansible, ok_ansible, t_pyinfra, load0, load1))
                print(f"{n} hosts: jiyue {sampled['process_wall']:.2f} s, collecting {sampled['wall']:.2f} s "
                      f"(no sample {plain['process_wall']:.2f} s, collecting {plain['wall']:.2f} s; "
                      f"{sampled['failed']}+{plain['failed']} failed {sampled['errors'] + plain['errors']}), "
                      f"peak RSS {max(sampled['rss_mb'], plain['rss_mb']):.0f} MB, "
                      f"CPU {1000 * sampled['cpu'] / n:.1f} ms/host; ansible setup {t_ansible:.2f} s "
                      f"({ok_ansible} ok)" + (f"; pyinfra {t_pyinfra:.2f} s" if t_pyinfra else "")
                      + f"; load {load0:.1f} -> {load1:.1f}", flush=True)
        finally:
            t_down, _ = timed(bastion.down if bastion else lab.down)
            print(f"lab down in {t_down:.1f} s", flush=True)
    print()
    print(f"Collection {path}, Ansible forks {args.forks}, jiyue workers = hosts (at most {MAX_WORKERS}):")
    print()
    print("| hosts | jiyue (1 s sample) | jiyue (no sample) | ansible -m setup | ansible / jiyue | jiyue peak RSS | "
          "jiyue CPU per host | load at start, end |" + (" pyinfra facts |" if args.pyinfra and not bastion else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|" if args.pyinfra and not bastion else ""))
    for n, s, p, ta, _, tf, l0, l1 in rows:
        ts, tp = s["process_wall"], p["process_wall"]
        print(f"| {n} | {s['wall']:.2f} s ({ts:.2f} s) | {p['wall']:.2f} s ({tp:.2f} s) | {ta:.2f} s | "
              f"{ta / ts:.1f}x ({ta / tp:.1f}x) | "
              f"{max(s['rss_mb'], p['rss_mb']):.0f} MB | {1000 * s['cpu'] / n:.1f} ms | {l0:.1f}, {l1:.1f} |"
              + (f" {tf:.2f} s |" if tf is not None else ""))
    print("\njiyue: the collection's time (the whole process's in brackets: Python's start-up and imports included); "
          "ratios: Ansible's time over jiyue's whole process with the sample (without it in brackets); CPU per host: "
          "the collection's, user + system")
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
