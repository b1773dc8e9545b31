"""Options and parametrisation of the baseline's testinfra suite (see test_baseline.py)."""

from __future__ import annotations

import pytest

from audit.baseline import model
from audit.baseline.model import REGISTRY


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jiyue baseline")
    group.addoption("--baseline-level", default="3", choices=("2", "3"), help="level to judge the hosts at")
    group.addoption("--baseline-profile", default=None, help="level2, level3 or a profile YAML file")
    group.addoption("--baseline-inventory", default=None,
                    help="inventory directory: the hosts' declared service ports count as declared")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per (requirement, check) of the level, straight from the catalog."""
    if "row" in metafunc.fixturenames:
        catalog = model.load_catalog()
        level = int(metafunc.config.getoption("--baseline-level"))
        rows = [(item.id, c) for item in catalog.items_at(level)  # the hosts' checks: device.* run on devices
                for c in ([x for x in item.checks if REGISTRY[x].kind == "linux"] or ["-"])]
        metafunc.parametrize("row", rows, ids=[f"{i.replace(' ', '')}-{c}" for i, c in rows])
