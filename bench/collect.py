"""Benchmark: fact collection by jiyue against `ansible -m setup` and pyinfra facts, in one run.

Run as root from the checkout: `.venv/bin/python bench/collect.py [--sizes 20,50,100]`.

It starts a lab of its own (bridge `jblab0`, 198.19.100.0/22, beside the main lab) with the
largest size of plain hosts, then for each size collects the same hosts three ways with the same
parallelism (Ansible forks = pyinfra --parallel = jiyue workers = the host count) and prints the
wall times and the ratios. jiyue is timed with its 1-second CPU/network sample (what `audit.collect`
does) and without it (the closest match to what the peers gather). Nothing is asserted: this
measures; the README records what it printed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import inventory
from audit.collect import CollectOptions, collect
from bench.fleet import host_inventory
from inventory import export
from jiyue import ansible
from lab.hosts import Lab

PYINFRA_FACTS = ["server.Hostname", "server.Kernel", "server.LinuxDistribution", "server.Os", "server.Arch",
                 "server.Mounts", "server.Crontab", "server.Users", "server.Date", "server.Command",
                 "command=ss -H -tulnp"]


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - began, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,50,100")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-") as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab", tag="jb")
        inv = inventory.load(host_inventory(root, lab, max(sizes), "198.19.100.0/22", "b"))
        lab.up(inv)
        rows = []
        try:
            for n in sizes:
                names = sorted(inv.hosts)[:n]
                out = root / f"out{n}"
                export.write(inv, "ansible", names, [], out)
                export.write(inv, "pyinfra", names, [], out)
                t_sample, (_, res) = timed(collect, inv, names, CollectOptions(workers=n), progress=False)
                t_plain, (_, res0) = timed(collect, inv, names, CollectOptions(workers=n, sample_seconds=0),
                                           progress=False)
                bad = sum(not r.ok for r in [*res, *res0])
                t_ansible, proc = timed(ansible.run, "ansible", "all", "-i", str(out / "inventory/ansible.yml"),
                                        "-m", "setup", "-f", str(n))
                ok_ansible = proc.stdout.count("SUCCESS")
                command = [ansible.tool("pyinfra"), str(out / "inventory/pyinfra_inventory.py"), "fact", *PYINFRA_FACTS,
                           "--parallel", str(n), "-y"]
                t_pyinfra, proc = timed(subprocess.run, command, capture_output=True, text=True, env=ansible.env())
                rows.append((n, t_sample, t_plain, t_ansible, t_pyinfra, bad, ok_ansible, proc.returncode))
                print(f"{n} hosts: jiyue {t_sample:.2f}s (no sample {t_plain:.2f}s), ansible setup {t_ansible:.2f}s "
                      f"({ok_ansible} ok), pyinfra facts {t_pyinfra:.2f}s (rc {proc.returncode}); jiyue failures {bad}",
                      flush=True)
        finally:
            lab.down()
    print()
    print("| hosts | jiyue (1 s sample) | jiyue (no sample) | ansible -m setup | pyinfra facts | "
          "ansible / jiyue | pyinfra / jiyue |")
    print("|---|---|---|---|---|---|---|")
    for n, ts, tp, ta, tf, *_ in rows:
        print(f"| {n} | {ts:.2f} s | {tp:.2f} s | {ta:.2f} s | {tf:.2f} s | {ta / ts:.1f}x ({ta / tp:.1f}x) | "
              f"{tf / ts:.1f}x ({tf / tp:.1f}x) |")
    print("\nratios: peer time / jiyue time with the sample (without it in brackets); higher is better for jiyue")


if __name__ == "__main__":
    main()
