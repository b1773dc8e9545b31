"""The baseline's testinfra path: the suite (test_baseline.py), how to run it, how to read its verdicts."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SUITE = Path(__file__).resolve().parent
REPO = SUITE.parents[2]


def ssh_config(path: Path, key: Path, known_hosts: Path, user: str = "root") -> Path:
    """An OpenSSH client config for testinfra's ssh backend: the key, host keys verified."""
    path.write_text(f"Host *\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
                    f"  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
                    "  ConnectTimeout 15\n")
    return path


def command(addresses: list[str], config: Path, junit: Path, level: int = 3,
            profile: str | None = None, inventory: str | None = None) -> list[str]:
    """`pytest … --hosts=ssh://ADDR,…` for the suite (testinfra runs the hosts one after another)."""
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
           f"--hosts={','.join(f'ssh://{a}' for a in addresses)}", f"--ssh-config={config}",
           f"--baseline-level={level}", f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    if profile:
        cmd.append(f"--baseline-profile={profile}")
    if inventory:
        cmd.append(f"--baseline-inventory={inventory}")
    return cmd


def run_parallel(addresses: list[str], config: Path, junit_dir: Path, level: int = 3, workers: int = 8,
                 inventory: str | None = None) -> tuple[list[int], dict[tuple[str, str, str], str]]:
    """One `pytest --hosts=ssh://ADDR` per host, `workers` at a time: testinfra across a fleet with the same
    parallelism as the fleet path. Returns the exit codes and the merged verdicts."""
    junit_dir.mkdir(parents=True, exist_ok=True)

    def one(address: str) -> int:
        junit = junit_dir / f"{address}.xml"
        return subprocess.run(command([address], config, junit, level, inventory=inventory),
                              capture_output=True, text=True).returncode

    with ThreadPoolExecutor(max(1, workers)) as pool:
        codes = list(pool.map(one, addresses))
    merged: dict[tuple[str, str, str], str] = {}
    for address in addresses:
        junit = junit_dir / f"{address}.xml"
        if junit.exists():
            merged.update(verdicts(junit))
    return codes, merged


def verdicts(junit: Path) -> dict[tuple[str, str, str], str]:
    """(address, requirement, check) -> pass / fail / needs_evidence / not_applicable, from the JUnit XML."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")  # test_baseline[8.1.4.1a-accounts.unique-ssh://ADDR]
        rest, _, address = name[name.index("[") + 1:-1].rpartition("-ssh://")
        item, _, check = rest.partition("-")
        item = f"{item[:-1]} {item[-1]}"
        if case.find("failure") is not None or case.find("error") is not None:
            status = "fail"
        elif (skipped := case.find("skipped")) is not None:
            status = "not_applicable" if "not_applicable" in skipped.get("message", "") else "needs_evidence"
        else:
            status = "pass"
        out[(address, item, check)] = status
    return out
