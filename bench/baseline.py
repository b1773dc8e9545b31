"""Benchmark: the level-3 baseline on 50 lab hosts by the fleet path and by the testinfra path, in one run.

Run as root from the checkout: `.venv/bin/python bench/baseline.py [--hosts 50]` (inside /work/sandbox
on a shared machine).

It starts a lab of its own (bridge `bblab0`, 198.19.108.0/22, beside the main lab) with a mix of the
domestic distributions, seeds each host's graded-protection files (lab/baseline.yaml: all
compliant here), then checks the same hosts the same way twice with the same parallelism: the fleet
path (`invoke baseline.check`: one SSH session and one script per host, workers = hosts) and the
testinfra path (the generated pytest-testinfra suite, one `pytest --hosts=ssh://HOST` per host, all of
them at once: one command per probe). It verifies both gave the same verdicts and prints the wall times
and the ratio. Targets: fleet path at least 20x faster, the whole fleet run under 10 s.
"""

from __future__ import annotations

import argparse
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
from lab.hosts import Lab

OSES = ("Kylin V10 SP3", "openEuler 24.03 LTS SP1", "UOS 20 1060a", "Anolis 8.8", "Debian 12")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    n = args.hosts
    catalog = model.load_catalog()
    profile = model.load_profile("level3", catalog)
    with tempfile.TemporaryDirectory(prefix="jiyue-bench-") as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab", tag="bb")
        inv = inventory.load(host_inventory(root, lab, n, "198.19.108.0/22", "bl", OSES))
        lab.up(inv)
        try:
            seed_baseline(lab, inv)
            names = sorted(inv.hosts)
            began = time.perf_counter()
            results = service.check(inv, names, level=3, profile=profile, catalog=catalog,
                                    options=model.CheckOptions(workers=n), progress=False).results
            t_fleet = time.perf_counter() - began
            bad = [r.target for r in results if not r.ok]
            config = suite.ssh_config(root / "ssh_config", lab.key, lab.known_hosts)
            addresses = [str(inv.hosts[h].address) for h in names]
            began = time.perf_counter()
            codes, testinfra = suite.run_parallel(addresses, config, root / "junit", level=3, workers=n)
            t_testinfra = time.perf_counter() - began
            fleet = {(str(inv.hosts[r.target].address), row["item"], row["check"]): row["status"]
                     for r in results if r.ok for row in r.value["rows"]}
            agree = testinfra == fleet
        finally:
            lab.down()
    print(f"{n} hosts at level 3, {len(fleet)} verdicts each way; fleet failures: {len(bad)}; "
          f"testinfra exit codes {sorted(set(codes))}; verdicts agree: {agree}")
    print()
    print("| hosts | fleet path (jiyue) | testinfra path (one pytest per host, all at once) | testinfra / fleet |")
    print("|---|---|---|---|")
    print(f"| {n} | {t_fleet:.2f} s | {t_testinfra:.2f} s | {t_testinfra / t_fleet:.1f}x |")
    print(f"\ntargets: fleet path >= 20x faster ({'met' if t_testinfra / t_fleet >= 20 else 'NOT met'}), "
          f"under 10 s ({'met' if t_fleet < 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
