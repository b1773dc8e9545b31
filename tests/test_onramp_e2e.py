"""The on-ramp, end to end (issue "Done when"): from an empty directory, a city team gets a valid inventory of the
sample city's departments and sees it in the archive, on the lab, with real Ansible, nmap, Prometheus and hosts:

0. a city.yaml with what only the city knows: its address plan (subnets) and its credentials (defaults.ssh);
1. the ops staff's Ansible inventory of the lab hosts imported (hosts, departments and systems as drafts);
2. the undeclared lab hosts discovered (nmap), collected and their draft records imported;
3. the departments' filled survey workbooks imported (the drafts become records);
4. history read from the lab's Prometheus;
5. the archive written.

The filled workbooks are the sample city's own surveys (what its departments declared), and the Ansible inventory
is jiyue's export of the lab hosts (group names dept_<code>, system_<id>, which the import reads by default)."""

from __future__ import annotations

import shutil

import pytest
import yaml

import inventory
from audit import report as audit_report
from audit import service
from audit.discover import DiscoverOptions, discover
from audit.discover_report import write_reports as write_discovery
from inventory import export, importer, survey
from inventory.ansible_import import ansible_proposals
from inventory.discovered import discovery_proposals
from inventory.importer import Written
from jiyue.store import Store
from lab.prometheus import backfill_and_start
from lab.seed import load_scenario
from lab.uplinks import plumbed_lines

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("nmap") is None,
                                reason="apt-get install nmap prometheus prometheus-node-exporter")
MONITORED = ["fgw-hgjj-app1", "fgw-hgjj-db1"]  # the idle system of the scenario


def _apply(root, proposals, problems) -> importer.Plan:
    plan = importer.plan(root, proposals, problems)
    assert plan.problems == [], plan.problems
    importer.apply(plan)
    return plan


def test_from_an_empty_directory_to_the_archive(seeded, lab, demo, tmp_path):
    city = tmp_path / "city"
    city.mkdir()
    # 0. what only the city knows: its subnets and credentials
    (city / "city.yaml").write_text(yaml.safe_dump({
        "defaults": {"ssh": {"user": "root", "key": str(lab.key), "known_hosts": str(lab.known_hosts)}},
        "subnets": [{"name": s.name, "kind": str(s.kind), "prefix": str(s.prefix), "gateway": str(s.gateway)}
                    for s in demo.subnets.values()]}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # 1. the ops staff's Ansible inventory (classified hosts too: ops know them, jiyue must not touch them)
    [ansible] = export.write(demo, "ansible", sorted(demo.hosts), [], tmp_path / "ops", include_classified=True)
    _apply(city, *ansible_proposals(ansible, Written.read(city)))
    inv = inventory.load(city)
    assert set(inv.drafts["hosts"]) | set(inv.hosts) == set(demo.hosts)
    # a host only a draft system lists is not contacted until its system says it is not classified
    assert all(inv.is_classified(h) for h in demo.hosts if demo.owner(h) is not None)
    # 2. the hosts nobody declared: found, collected (keys trusted after checking), proposed, imported as drafts
    scenario = load_scenario()
    lab.up_undeclared(demo, scenario.undeclared, scenario.lifetime)
    store = Store(f"sqlite:///{tmp_path}/history.sqlite")
    found = discover(inv, ["source", "cloud"], DiscoverOptions(rate=3000, trust_on_first_use=True), store)
    # the lab's leased-line router (lab/uplinks.py) is live too: a city that has not declared its lines yet sees it
    line_routers = {str(line.next_hop) for line in plumbed_lines(demo)}
    assert {f.address for f in found.undeclared} == {u.address for u in scenario.undeclared} | line_routers
    assert {str(demo.hosts[h].address) for h in demo.hosts if demo.is_classified(h)} <= set(found.excluded)
    write_discovery(found, tmp_path / "reports", formats=("json",))
    _apply(city, *discovery_proposals(found.draft_file, Written.read(city)))
    # 3. the departments' filled survey workbooks
    books = [survey.write_survey(demo, code, tmp_path / "filled") for code in demo.departments]
    _apply(city, *survey.survey_proposals(books, Written.read(city)))
    inv = inventory.load(city)
    assert set(inv.departments) == set(demo.departments) and set(inv.systems) == set(demo.systems)
    assert {h for s in inv.systems.values() for h in s.hosts} <= set(inv.hosts)
    assert sorted(h for h in inv.hosts if inv.is_classified(h)) == sorted(
        h for h in demo.hosts if demo.is_classified(h))
    assert "discovered-198-18-10-201" in inv.drafts["systems"]  # still to be surveyed
    # 4. history from the lab's Prometheus, declared in the inventory
    monitoring = backfill_and_start(lab, demo, MONITORED, tmp_path / "prometheus")
    try:
        with (city / "city.yaml").open("a", encoding="utf-8") as f:
            f.write(f"monitoring:\n  prometheus: {{url: '{monitoring.url}', match: address}}\n")
        inv = inventory.load(city)
        imported = service.import_history(inv, store, hosts=MONITORED)
    finally:
        monitoring.stop()
    assert all(cov.days >= 100 for cov in imported.coverage.values())
    # 5. the archive
    judged = service.judge(inv, store)
    paths = audit_report.write_reports(judged, tmp_path / "reports", ("xlsx", "json"), "zh")
    archive = next(p for p in paths if p.name == "archive.json").read_text(encoding="utf-8")
    assert all(s.id in archive and s.name in archive for s in demo.systems.values()
               if not demo.is_classified(s.hosts[0]) and s.hosts)
    idle = next(c for v in judged.verdicts if v.system == "fgw-hgjj" for c in v.criteria if c.key == "idle")
    assert idle.outcome == "met" and "prometheus" in str(idle)  # judged from the city's monitoring
