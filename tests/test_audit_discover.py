"""audit.discover on the lab: a real nmap scan of the sample city's subnets finds exactly the lab's undeclared hosts
(lab/scenario.yaml `undeclared`), their ports and SSH banners, the Windows stand-ins flagged, a declared host that
does not answer, the classified (涉密) hosts never probed; the SSH ones collected (after trust-on-first-use only)
and a draft proposal that `inventory.import` previews and applies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

import inventory
from audit.discover import DiscoverError, DiscoverOptions, discover, parse_nmap_xml, select_subnets
from audit.discover_report import write_reports
from inventory import importer
from inventory.discovered import discovery_proposals
from inventory.importer import Written
from inventory.model import Host
from jiyue.store import AUDIT_DISCOVER, Store
from lab.seed import load_scenario

REPO = Path(__file__).resolve().parent.parent
INVOKE = [sys.executable, "-m", "invoke"]
RATE = 3000  # the lab is one bridge on this machine: no switch to spare
GHOST = Host(name="ghost-app1", address="198.18.10.199", os_family="debian", os="Debian 12", role="app")
SCANNER = "198.18.10.1"  # this machine's address on the source subnet (the subnet's gateway): nmap's source


@pytest.fixture(scope="module")
def undeclared(seeded, lab, demo):
    """The scenario's undeclared hosts, up beside the seeded sample city (whose databases they talk to)."""
    scenario = load_scenario()
    lab.up_undeclared(demo, scenario.undeclared, scenario.lifetime)
    return {u.address: u for u in scenario.undeclared}


@pytest.fixture(scope="module")
def scans(undeclared, lab, demo, tmp_path_factory):
    """Two scans of the city with a ghost host declared (an address nothing answers on): first without
    trust-on-first-use (the undeclared hosts' keys are in no known_hosts), then with it. Before them, the
    classified hosts' and one other host's neighbour tables are emptied: a host nmap probes learns the
    scanner's address from its ARP request, one it never probes does not."""
    city = demo.model_copy(update={"hosts": {**demo.hosts, GHOST.name: GHOST}})
    watched = [h for h in demo.hosts if demo.is_classified(h)] + ["fgw-oa-app1"]
    for name in watched:
        assert lab.exec(name, "ip neigh flush all").returncode == 0
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('discover')}/history.sqlite")
    refused = discover(city, ["source"], DiscoverOptions(rate=RATE), store)
    trusted = discover(city, ["source", "cloud"], DiscoverOptions(rate=RATE, trust_on_first_use=True), store)
    neighbours = {name: lab.exec(name, "ip neigh show").stdout for name in watched}
    return {"city": city, "refused": refused, "trusted": trusted, "neighbours": neighbours, "store": store}


def test_finds_exactly_the_undeclared_hosts_with_ports_and_banners(scans, undeclared):
    result = scans["trusted"]
    found = {f.address: f for f in result.undeclared}
    assert set(found) == set(undeclared)
    for address, u in undeclared.items():
        open_ports = {22} if u.ssh else set()
        open_ports |= {p for p in u.listen if p in result.ports}
        assert set(found[address].ports) == open_ports, address
        assert found[address].ssh_banner.startswith("SSH-2.0-OpenSSH") == u.ssh
        assert found[address].name == "host-" + address.replace(".", "-")  # the lab has no reverse DNS
    declared = {f.address: (f.declared, f.record) for f in result.found if not f.undeclared}
    assert declared[str(scans["city"].hosts["fgw-oa-app1"].address)] == ("host", "fgw-oa-app1")
    assert declared["198.18.10.1"] == ("gateway", "source")


def test_windows_stand_ins_are_flagged_and_not_collected(scans, undeclared):
    windows = {f.address: f for f in scans["trusted"].windows}
    assert set(windows) == {a for a, u in undeclared.items() if not u.ssh}
    assert all(f.collection == "" and f.ports and set(f.ports) <= {3389, 445} for f in windows.values())


def test_a_declared_host_that_does_not_answer_is_reported(scans):
    assert [(s.name, s.address, s.kind) for s in scans["trusted"].silent] == [("ghost-app1", "198.18.10.199", "host")]


def test_classified_hosts_are_never_probed(scans, demo):
    classified = sorted(str(demo.hosts[h].address) for h in demo.hosts if demo.is_classified(h))
    result = scans["trusted"]
    assert sorted(result.excluded) == classified
    assert all(f"--exclude {','.join(sorted(classified))}" in args for args in result.nmap_args)
    assert not {f.address for f in result.found} & set(classified)
    for name, table in scans["neighbours"].items():  # nmap's ARP request reached fgw-oa-app1, never them
        assert (SCANNER in table) == (not demo.is_classified(name)), (name, table)


def test_unknown_host_keys_are_refused_without_trust_on_first_use(scans):
    refused = [f for f in scans["refused"].undeclared if 22 in f.ports]
    assert len(refused) == 2 and all(f.collection == "host_key" for f in refused)
    assert scans["refused"].drafts == [] and "host_key" in scans["refused"].notes


def test_ssh_hosts_collected_and_one_draft_system_proposed(scans, undeclared):
    result = scans["trusted"]
    assert {f.address: f.collection for f in result.undeclared if not f.windows} == {
        a: "ok" for a, u in undeclared.items() if u.ssh}
    [draft] = result.drafts
    assert draft.hosts == ["host-198-18-10-201", "host-198-18-10-202"]  # the app talks to its database
    assert {(s.host, s.port) for s in draft.services} == {("host-198-18-10-201", 5432), ("host-198-18-10-202", 8080)}
    assert draft.depends_on == ["dsj-gxjh"]  # the exchange platform's database, seen on the wire
    assert any("TCP host-198-18-10-202 -> 198.18.10.102:5432 (dsj-gxjh)" in e for e in draft.evidence)
    assert draft.evidence[-1] == "every system it talks to is department dsj's: probably its own"
    hosts = {h["name"]: h for h in result.draft_hosts}
    assert hosts["host-198-18-10-201"]["os_family"] == "redhat" and "CentOS" in hosts["host-198-18-10-201"]["os"]
    stored = scans["store"].run_results(result.run_id)
    assert {r.target for r in stored if r.status == "ok"} == {f.address for f in result.found}
    assert [r.target for r in stored if r.status == "unreachable"] == ["198.18.10.199"]
    assert scans["store"].history(AUDIT_DISCOVER)  # the kind is recorded
    assert {r.target for r in scans["store"].run_results(result.collect_run_id)} == set(hosts)


def test_reports_and_the_draft_proposal_import(scans, tmp_path):
    paths = write_reports(scans["trusted"], tmp_path / "out")
    assert sorted(p.name for p in paths) == ["discovered.yaml", "discovery.html", "discovery.json", "discovery.xlsx"]
    book = load_workbook(tmp_path / "out" / "discovery.xlsx")
    assert book.sheetnames == ["未登记主机", "未应答主机", "草稿系统", "扫描参数"]
    assert [c.value for c in book["未登记主机"][1]][:3] == ["IP 地址", "建议主机名", "开放端口"]
    assert "疑似 Windows 服务器，不在采集范围" in [c.value for c in book["未登记主机"]["G"]]
    data = json.loads((tmp_path / "out" / "discovery.json").read_text(encoding="utf-8"))
    assert {u["address"]: u["finding"] for u in data["undeclared"]}["198.18.20.211"] == "windows"
    html = (tmp_path / "out" / "discovery.html").read_text(encoding="utf-8")
    assert "<script" not in html and "疑似 Windows 服务器" in html
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    args = [*INVOKE, "inventory.import", "--from-discovery", str(tmp_path / "out" / "discovered.yaml"),
            "--inventory", str(city)]
    preview = subprocess.run([*args, "--format", "json"], cwd=REPO, capture_output=True, text=True)
    assert preview.returncode == 0, preview.stderr
    plan = json.loads(preview.stdout)
    assert {(e["section"], e["key"], e["draft"]) for e in plan["added"]} == {
        ("hosts", "host-198-18-10-201", True), ("hosts", "host-198-18-10-202", True),
        ("systems", "discovered-198-18-10-201", True)}
    assert plan["problems"] == [] and not (city / "discovered.yaml").exists()
    proposals, problems = discovery_proposals(tmp_path / "out" / "discovered.yaml", Written.read(city))
    assert importer.apply(importer.plan(city, proposals, problems))  # what --apply does
    written = yaml.safe_load((city / "discovered.yaml").read_text(encoding="utf-8"))
    assert written["systems"][0]["depends_on"] == ["dsj-gxjh"] and written["systems"][0]["draft"] is True
    again = inventory.load(city)  # valid: the drafts are listed as incomplete (inventory.check), not errors
    assert "host-198-18-10-201" not in again.hosts and "host-198-18-10-201" in again.drafts["hosts"]
    assert "name" in again.drafts["systems"]["discovered-198-18-10-201"].missing
    assert again.is_classified("host-198-18-10-201")  # a draft not declared non-classified is never contacted


def test_command_line(undeclared, tmp_path):
    out, store = tmp_path / "out", f"sqlite:///{tmp_path}/h.sqlite"
    proc = subprocess.run([*INVOKE, "audit.discover", "--limit", "subnet_cloud", "--rate", str(RATE), "--no-collect",
                           "--out", str(out), "--store", store, "--format", "json", "--lang", "en"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # an undeclared host was found
    assert "probable Windows server: out of scope for collection" in proc.stdout
    data = json.loads((out / "discovery.json").read_text(encoding="utf-8"))
    assert data["networks"] == ["198.18.20.0/24"] and [u["address"] for u in data["undeclared"]] == ["198.18.20.211"]


def test_a_subnet_behind_a_jump_host_is_not_scanned_from_here(demo):
    behind = demo.model_copy(update={"defaults": demo.defaults.model_copy(update={"jump": "bastion"})})
    result = discover(behind, ["service"], DiscoverOptions(collect=False))
    assert result.nmap_args == [] and result.found == [] and result.silent == []
    assert result.notes == ["behind_jump:service:bastion"]


def test_select_subnets_and_xml_parsing(demo):
    assert select_subnets(demo, "subnet_source,cloud") == ["source", "cloud"]
    assert select_subnets(demo, None) == list(demo.subnets)
    with pytest.raises(DiscoverError, match="no such subnet"):
        select_subnets(demo, "subnet_x")
    hosts, args = parse_nmap_xml(
        '<nmaprun args="nmap -oX -"><host><status state="up"/><address addr="10.0.0.5" addrtype="ipv4"/>'
        '<address addr="AA:BB:CC:DD:EE:FF" addrtype="mac"/><ports><port protocol="tcp" portid="445">'
        '<state state="open"/></port><port protocol="tcp" portid="22"><state state="closed"/></port></ports></host>'
        '<host><status state="down"/><address addr="10.0.0.6" addrtype="ipv4"/></host></nmaprun>')
    assert [(h.address, h.ports, h.mac) for h in hosts] == [("10.0.0.5", [445], "AA:BB:CC:DD:EE:FF")]
    assert args == "nmap -oX -"
    with pytest.raises(DiscoverError, match="cannot be read"):
        parse_nmap_xml("<nmaprun")


def test_reports_in_english_without_a_lab(demo, tmp_path):
    """Every label the reports use exists in both languages; host text is neutralised and escaped."""
    from datetime import UTC, datetime

    from audit.model import Discovery, DraftService, DraftSystem, FoundHost, SilentHost

    found = [FoundHost("198.18.10.250", [22, 3306], ssh_banner="=cmd|' /C calc'!A0", name="host-198-18-10-250",
                       collection="ok"),
             FoundHost("198.18.10.251", [445], name="host-198-18-10-251", windows=True),
             FoundHost("198.18.10.252", [80], name="host-198-18-10-252", reverse_name="<b>x</b>.example")]
    result = Discovery(demo, ["198.18.10.0/24"], ["198.18.10.15"], [22, 445], 300, ["nmap -oX -"],
                       datetime.now(UTC), 1.0, found, [SilentHost("ghost", "198.18.10.199", "host")],
                       [DraftSystem("discovered-x", ["host-198-18-10-250"],
                                    [DraftService("host-198-18-10-250", 3306, "mysqld")], ["dsj-gxjh"], [], ["e"])],
                       [{"name": "host-198-18-10-250", "address": "198.18.10.250"}], ["host_key"])
    paths = write_reports(result, tmp_path, lang="en")
    book = load_workbook(tmp_path / "discovery.xlsx")
    assert book["Undeclared hosts"]["D2"].value == "'=cmd|' /C calc'!A0"
    html = (tmp_path / "discovery.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "Probable Windows server" in html and "--trust-on-first-use" in html
    assert len(paths) == 4
