"""Utilisation history from Prometheus: a real Prometheus, real node_exporters in lab hosts' namespaces, and 120
days of past history backfilled with promtool from the scenario's profiles (marked seeded by its
`jiyue_seeded` series, lab/prometheus.py).

The judged hosts have no jiyue history at all: the idle system (fgw-hgjj, quiet in the scenario) is a zombie by
criterion 3 and the busy one (dxzf-web, live traffic) is not idle, from Prometheus alone; a host whose server
kept only 10 days (dxzf-wgzl-app1) is "insufficient data", never a guess. One Prometheus for the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

import inventory
from audit import service
from audit.archive import evidence_text, resources_text
from audit.model import INSUFFICIENT, MET, NOT_MET, ZOMBIE
from audit.prometheus import SOURCE, coverage, fetch
from inventory.model import Monitoring, PrometheusSource
from jiyue.store import AUDIT_COLLECT, Store
from lab.prometheus import backfill_and_start

REPO = Path(__file__).resolve().parent.parent
IDLE, BUSY, SHORT = "fgw-hgjj", "dxzf-web", "dxzf-wgzl"
HOSTS = ["fgw-hgjj-app1", "fgw-hgjj-db1", "dxzf-web-app1", "dxzf-wgzl-app1"]
SHORT_HOST = "dxzf-wgzl-app1"

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason="apt-get install prometheus prometheus-node-exporter")


@pytest.fixture(scope="module")
def prom(lab, demo, tmp_path_factory):
    """Backfilled history (120 days; 10 for SHORT_HOST), node_exporter live in each of HOSTS, one Prometheus."""
    monitoring = backfill_and_start(lab, demo, HOSTS, tmp_path_factory.mktemp("prometheus"),
                                    short={SHORT_HOST: 10}, scrape_interval="1s")
    yield monitoring
    monitoring.stop()


@pytest.fixture(scope="module")
def inv(demo, prom):
    return demo.model_copy(update={"monitoring": Monitoring(prometheus=PrometheusSource(url=prom.url))})


@pytest.fixture(scope="module")
def imported(inv, tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('prom-store')}/history.sqlite")
    result = service.import_history(inv, store, hosts=HOSTS)
    return store, result


def test_import_marks_the_source_and_the_seeded_days(imported):
    store, result = imported
    readings = store.readings(HOSTS)
    assert readings and result.readings == len(readings)
    assert {r.source for r in readings} == {SOURCE}
    assert all(r.seeded for r in readings)  # the backfill, not measured: the store says so
    by_host = {h: [r for r in readings if r.host == h] for h in HOSTS}
    # the window covers the longest declared cycle (a yearly system: 366 days); the backfill reaches 120 back,
    # one reading a day per host
    assert result.until - result.since == timedelta(days=366)
    counts = {h: len(v) for h, v in by_host.items()}
    assert all(119 <= n <= 121 for h, n in counts.items() if h != SHORT_HOST), counts
    assert 9 <= len(by_host[SHORT_HOST]) <= 11
    idle = by_host["fgw-hgjj-app1"][-1]
    assert idle.cpus == 2 and idle.memory_used_gb and idle.cpu_pct is not None and idle.cpu_pct < 1


def test_importing_again_replaces_the_window(inv, imported):
    store, first = imported
    before = len(store.readings(HOSTS))
    again = service.import_history(inv, store, hosts=HOSTS)
    assert again.run_id != first.run_id and len(store.readings(HOSTS)) == before


def test_coverage_days_and_gaps(imported):
    _, result = imported
    full, short = result.coverage["fgw-hgjj-app1"], result.coverage[SHORT_HOST]
    assert 119 <= full.days <= 121 and 9 <= short.days <= 11
    # everything before the server's first day is missing
    [(gap_from, gap_to)] = full.gaps
    assert gap_from == result.since and (result.until - gap_to).days in (120, 121, 122)
    [(gap_from, gap_to)] = short.gaps
    assert gap_from == result.since and (result.until - gap_to).days in (10, 11, 12)
    # a hole in the middle is a gap too
    day = timedelta(days=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + i * day for i in range(1, 31) if not 10 <= i < 15]
    hole = coverage("h", times, start, start + 30 * day)
    assert hole.days == 25 and hole.gaps == [(start + 9 * day, start + 14 * day)]
    assert "25 days" in hole.describe()


def test_idle_busy_and_short_judged_from_prometheus_alone(inv, imported):
    store, _ = imported
    assert not store.history("audit.collect")  # no jiyue history at all
    result = service.judge(inv, store, systems=[IDLE, BUSY, SHORT])
    verdicts = {v.system: v for v in result.verdicts}
    idle = {v.system: next(c for c in v.criteria if c.key == "idle") for v in result.verdicts}
    assert idle[IDLE].outcome == MET, idle[IDLE]
    assert verdicts[IDLE].verdict == ZOMBIE
    assert idle[BUSY].outcome == NOT_MET, idle[BUSY]
    assert idle[SHORT].outcome == INSUFFICIENT, idle[SHORT]
    assert "need 5 over 14" in " ".join(e.value for e in idle[SHORT].evidence)
    # the figures say where they came from, in the criterion and in the archive
    hosts = idle[IDLE].numbers["hosts"]
    assert set(hosts["fgw-hgjj-app1"]["sources"]) == {SOURCE} and hosts["fgw-hgjj-app1"]["sources"][SOURCE] >= 89
    system = inv.systems[IDLE]
    text = resources_text(system, result.judge.history.facts(), verdicts[IDLE], "en")
    assert "fgw-hgjj-app1:" in text and "source prometheus" in text and "not collected" not in text
    assert "数据来源 prometheus" in resources_text(system, result.judge.history.facts(), verdicts[IDLE], "zh")
    assert "(prometheus " in evidence_text(verdicts[IDLE], "en")


def test_right_sizing_reads_prometheus(inv, imported):
    from audit.history import AuditView

    store, _ = imported
    result = service.judge(inv, store, systems=[IDLE, BUSY])
    view = AuditView.from_judge(result.judge, result.verdicts)
    busy = view.hosts["dxzf-web-app1"]
    assert busy.cpus == 2 and busy.samples >= 89 and busy.cpu_pct and busy.memory_used_gb
    assert view.seeded_runs == view.runs >= 1


def test_live_node_exporter_data_is_read(inv, prom):
    """The last minutes come from the node_exporters in the hosts' namespaces (not seeded)."""
    source = inv.monitoring.prometheus
    deadline = time.monotonic() + 90
    while True:
        now = datetime.now(UTC)
        rows = fetch(inv, source, HOSTS, now - timedelta(minutes=5), now, step=5)
        live = [r for r in rows if not r["seeded"] and r["cpu_pct"] is not None and r["net_mb_per_day"] is not None]
        if {r["host"] for r in live} == set(HOSTS) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {r["host"] for r in live} == set(HOSTS)
    assert all(r["cpus"] == os.cpu_count() for r in live)  # the machine's CPUs, as /proc/stat shows them


def test_cli_imports_and_shows_coverage(demo, prom, tmp_path):
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    (city / "monitoring.yaml").write_text(yaml.safe_dump({"monitoring": {"prometheus": {"url": prom.url}}}))
    store = f"sqlite:///{tmp_path}/history.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.run([str(REPO / ".venv/bin/invoke"), "audit.history", "--from", "prometheus", "-i", str(city),
                           "-s", store, "-l", ",".join(HOSTS)], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "readings" in proc.stdout and SHORT_HOST in proc.stdout
    assert "1 with under 14 days" in proc.stdout
    bad = subprocess.run([str(REPO / ".venv/bin/invoke"), "audit.history", "--from", "zabbix", "-i", str(city),
                          "-s", store], cwd=REPO, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "monitoring.zabbix" in bad.stderr + bad.stdout


def test_monitoring_declaration_is_validated(tmp_path):
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    (city / "monitoring.yaml").write_text("monitoring:\n  prometheus:\n    url: http://prom:9090\n    match: name\n")
    with pytest.raises(inventory.InventoryError) as info:
        inventory.load(city)
    text = str(info.value)
    assert "monitoring.yaml:4" in text and "match" in text
    (city / "monitoring.yaml").write_text("monitoring:\n  prometheus:\n    url: http://prom:9090\n"
                                          "    match: instance\n")
    assert inventory.load(city).monitoring.prometheus.match == "instance"


def test_lab_monitoring_task_runs_prometheus_in_the_gateway(lab, demo, prom):
    """`invoke lab.monitoring`: node_exporters, a backfill, Prometheus inside the gateway host's namespaces at
    its address; `--stop` ends it (lab.down would too, with the namespace)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300"}
    invoke = str(REPO / ".venv/bin/invoke")
    proc = subprocess.run([invoke, "lab.monitoring", "-l", "fgw-hgjj-app1,dxzf-web-app1", "--days", "20"], cwd=REPO,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    gateway = demo.hosts[demo.cloud.gateway].address
    url = f"http://{gateway}:9090"
    try:
        assert url in proc.stdout
        inv = demo.model_copy(update={"monitoring": Monitoring(prometheus=PrometheusSource(url=url))})
        now = datetime.now(UTC)
        rows = fetch(inv, inv.monitoring.prometheus, ["fgw-hgjj-app1", "dxzf-web-app1"], now - timedelta(days=30), now)
        assert {r["host"] for r in rows} == {"fgw-hgjj-app1", "dxzf-web-app1"}
        assert 19 <= sum(r["host"] == "fgw-hgjj-app1" for r in rows) <= 21
        pids = subprocess.run(["ip", "netns", "pids", lab.netns(demo.cloud.gateway)], capture_output=True,
                              text=True).stdout.split()
        cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if Path(f"/proc/{p}").exists()]
        assert any(b"prometheus\0" in c for c in cmdlines)
    finally:
        stop = subprocess.run([invoke, "lab.monitoring", "--stop"], cwd=REPO, env=env, capture_output=True, text=True)
    assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stderr + stop.stdout


def test_idle_uses_both_sources_and_names_each(demo, tmp_path):
    """jiyue's own samples and a monitoring source's readings together: the criterion counts both, and says
    how many figures came from which."""
    from jiyue.runner import Result
    from lab.history import seed_history

    store = Store(f"sqlite:///{tmp_path}/history.sqlite")
    now = datetime.now(UTC)
    assert seed_history(store, demo, days=20, now=now) == 20  # jiyue's runs, one a day (marked seeded)
    host, hosts = "fgw-hgjj-app1", demo.systems[IDLE].hosts
    rows = [{"host": h, "at": now - timedelta(days=d), "seconds": 86400, "cpu_pct": 0.2, "cpus": 2,
             "memory_used_gb": 0.5, "net_mb_per_day": 0.5, "seeded": False} for h in hosts for d in range(60, 20, -1)]
    store.record_readings(SOURCE, rows, hosts=hosts, since=now - timedelta(days=90), until=now)
    store.record(AUDIT_COLLECT, [Result("x", True, {})])  # an unrelated run does not disturb either
    result = service.judge(demo, store, systems=[IDLE], now=now)
    idle = next(c for c in result.verdicts[0].criteria if c.key == "idle")
    sources = idle.numbers["hosts"][host]["sources"]
    assert sources == {"jiyue": 20, SOURCE: 40}
    assert idle.numbers["hosts"][host]["days"] >= 58  # the readings reach further back than jiyue's runs
    assert idle.outcome == MET
    assert f"(jiyue 20, {SOURCE} 40)" in evidence_text(result.verdicts[0], "en")
