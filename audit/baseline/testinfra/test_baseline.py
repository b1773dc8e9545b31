"""The baseline as a pytest-testinfra suite: the same probes and checks as `invoke baseline.check`.

    pytest audit/baseline/testinfra --hosts=ssh://root@198.18.10.11,ssh://root@198.18.10.12 \\
        --ssh-config=FILE --baseline-level 3 [--baseline-profile FILE] [--baseline-inventory DIR]

One test per host and (requirement, check) of the level: a failed check fails its test (the message
carries the evidence), "needs evidence" and "not applicable" skip it with their reason. Evidence is
gathered once per host, one command per probe (testinfra's way), and judged by the
engine's `evaluate()`: the verdicts are the fleet path's.
"""

from __future__ import annotations

import pytest

from audit.baseline import engine, model
from audit.baseline.evidence import Evidence
from audit.baseline.model import FAIL, NEEDS_EVIDENCE, NOT_APPLICABLE, Row

_CACHE: dict[str, dict[tuple[str, str], Row]] = {}


def _judge(host, config: pytest.Config) -> dict[tuple[str, str], Row]:
    name = host.backend.get_hostname()
    if name not in _CACHE:
        catalog = model.load_catalog()
        profile = model.load_profile(config.getoption("--baseline-profile"), catalog)
        params = profile.params(catalog)
        family, inv = None, None
        inventory_dir = config.getoption("--baseline-inventory")
        if inventory_dir:
            import inventory

            inv = inventory.load(inventory_dir)
            match = next((h for h in inv.hosts.values() if name in (h.name, str(h.address))), None)
            if match:
                params = engine.host_params(inv, match.name, params)
                family = match.os_family.value

        def run(text: str) -> str:
            return host.run("LC_ALL=C sh -c %s", text).stdout

        facts = engine.collect_facts_by_commands(run, inv)
        level = int(config.getoption("--baseline-level"))
        rows = engine.evaluate(Evidence(facts, family), level, params, catalog)
        _CACHE[name] = {(r.item, r.check): r for r in rows}
    return _CACHE[name]


def test_baseline(host, row, request):
    verdict = _judge(host, request.config)[row]
    detail = "\n".join([verdict.summary, *verdict.evidence])
    if verdict.status == FAIL:
        pytest.fail(f"{verdict.clause} {verdict.check}: {detail}", pytrace=False)
    if verdict.status in (NEEDS_EVIDENCE, NOT_APPLICABLE):
        pytest.skip(f"{verdict.status}: {verdict.summary}")
