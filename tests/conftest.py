"""Shared fixtures. The lab fixture starts the sample city's hosts once per test session.

Without root or sshd the lab tests skip on a developer's machine, but fail under CI (CI=true):
a lab test that did not run proves nothing.
"""

from __future__ import annotations

import os

import pytest

import inventory
from tests.lab.hosts import Lab, LabError
from tests.lab.seed import seed

IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def demo():
    """The bundled sample city, validated."""
    return inventory.load(inventory.DEFAULT_INVENTORY)


def require_lab(lab: Lab) -> None:
    try:
        lab.preflight()
    except LabError as exc:
        if IN_CI:
            pytest.fail(f"the lab is required under CI and cannot start: {exc}")
        pytest.skip(f"no lab here: {exc}")


@pytest.fixture(scope="session")
def lab(demo):
    """The sample city's hosts, up. Left running if it was running before the tests."""
    lab = Lab()
    require_lab(lab)
    was_running = lab.known_hosts.exists()
    lab.up(demo)
    yield lab
    if not was_running:
        lab.down()


@pytest.fixture(scope="session")
def seeded(lab, demo):
    """The lab with tests/lab/scenario.yaml written into its hosts, services and live traffic running."""
    return seed(lab, demo)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test is a failure: the suite must really have run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} tests were skipped; under CI every test must run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def baseline_seeded(seeded, lab, demo):
    """The lab with tests/lab/baseline.yaml's graded-protection state on every host (after the audit seed,
    whose package history decides 8.1.4.4 e)."""
    from tests.lab.baseline_seed import seed_baseline

    return seed_baseline(lab, demo)
