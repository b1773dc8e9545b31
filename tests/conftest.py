"""Shared fixtures. The lab fixture starts the sample city's hosts once per test session.

The suite's lab is its own: as root, the test session first moves into a network and mount namespace
of its own (`lab.isolate`), so it never adopts, changes or stops a lab started by `invoke lab.up` or the
demo, and they never see it.

Without root or sshd the lab tests skip on a developer's machine, but fail under CI (CI=true):
a lab test that did not run proves nothing.
"""

from __future__ import annotations

import os

import pytest

import inventory
from lab.bastion import BastionLab
from lab.hosts import DEFAULT_STATE, Lab, LabError
from lab.isolate import IsolationError, cleanup, isolate
from lab.seed import seed

IN_CI = bool(os.environ.get("CI"))
_ISOLATION: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Before any test (and any thread): the session's own namespaces, when it may make them."""
    if os.geteuid() != 0 or _ISOLATION:
        return
    try:
        _ISOLATION["backing"] = isolate(DEFAULT_STATE)
    except (IsolationError, OSError) as exc:
        _ISOLATION["error"] = f"cannot give the tests a lab of their own: {exc}"


def pytest_unconfigure(config: pytest.Config) -> None:
    backing = _ISOLATION.get("backing")
    if backing is not None:
        cleanup(backing)


@pytest.fixture(scope="session")
def demo():
    """The bundled sample city, validated."""
    return inventory.load(inventory.DEFAULT_INVENTORY)


def require_lab(lab: Lab) -> None:
    try:
        if "error" in _ISOLATION:
            raise LabError(_ISOLATION["error"])
        lab.preflight()
    except LabError as exc:
        if IN_CI:
            pytest.fail(f"the lab is required under CI and cannot start: {exc}")
        pytest.skip(f"no lab here: {exc}")


@pytest.fixture(scope="session")
def lab(demo):
    """The sample city's hosts, up in the session's own namespaces, and down at the end."""
    lab = Lab()
    require_lab(lab)
    lab.up(demo)
    yield lab
    lab.down()


@pytest.fixture(scope="session")
def seeded(lab, demo):
    """The lab with lab/scenario.yaml written into its hosts, services and live traffic running."""
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
    """The lab with lab/baseline.yaml's graded-protection state on every host (after the audit seed,
    whose package history decides 8.1.4.4 e)."""
    from lab.baseline_seed import seed_baseline

    return seed_baseline(lab, demo)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A throwaway PostgreSQL cluster for the session (lab/postgres.py: initdb + pg_ctl in a temp dir, a unix
    socket), for the store tests that run on SQLite and PostgreSQL alike. Skipped without the server."""
    from lab import postgres as pg
    from lab.prometheus import free_port

    try:
        pg.bin_dir()
        import psycopg  # noqa: F401
    except (LabError, ImportError) as exc:
        pytest.skip(f"PostgreSQL: {exc} (apt-get install postgresql; pip install -r requirements.txt)")
    cluster = pg.start(tmp_path_factory.mktemp("postgres"), free_port())
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store database of each dialect: a SQLite file, or a new database in the session's cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite"
    cluster = request.getfixturevalue("postgres")
    name = f"store_{abs(hash(request.node.nodeid)) % 10**12}"
    cluster.create_database(name)
    return cluster.url(name)


@pytest.fixture(scope="module")
def bastion(tmp_path_factory):
    """A bastion lab (lab/bastion.py) for the module that asks: its hosts and devices behind a jump host."""
    lab = BastionLab(tmp_path_factory.mktemp("bastion") / "state")
    require_lab(lab.hosts)
    lab.up()
    yield lab
    lab.down()


@pytest.fixture(scope="module")
def behind(bastion, tmp_path_factory):
    """The inventory whose defaults name the bastion."""
    return inventory.load(bastion.write_inventory(tmp_path_factory.mktemp("inv")))
