"""Utilisation history from Zabbix: a real Zabbix (zabbix_server, the PHP frontend's JSON-RPC API under
php-fpm and nginx, its own PostgreSQL cluster: lab/zabbix.py), hosts and items created through the API and
120 days of hourly trends backfilled from the scenario's profiles (marked seeded by the `jiyue.seeded` item).

The judged hosts have no jiyue history at all: the idle system (fgw-hgjj, quiet in the scenario) is a zombie
by criterion 3 and the busy one (dxzf-web, live traffic) is not idle, from Zabbix alone; a host with only 10
days (dxzf-wgzl-app1) is "insufficient data". One Zabbix for the module; no lab hosts are needed (Zabbix
holds what it holds, matched by the hosts' interface addresses).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import inventory
from audit import service
from audit.archive import evidence_text, resources_text
from audit.model import INSUFFICIENT, MET, NOT_MET, ZOMBIE
from audit.zabbix import SOURCE, ZabbixError, fetch
from inventory.model import Monitoring, SecretRef, ZabbixSource
from jiyue.store import Store
from lab import zabbix as lab_zabbix

REPO = Path(__file__).resolve().parent.parent
IDLE, BUSY, SHORT = "fgw-hgjj", "dxzf-web", "dxzf-wgzl"
HOSTS = ["fgw-hgjj-app1", "fgw-hgjj-db1", "dxzf-web-app1", "dxzf-wgzl-app1"]
SHORT_HOST = "dxzf-wgzl-app1"

pytestmark = pytest.mark.skipif(shutil.which("zabbix_server") is None or not lab_zabbix.FRONTEND.exists(),
                                reason="apt-get install zabbix-server-pgsql zabbix-frontend-php php-fpm php-pgsql")


@pytest.fixture(scope="module")
def zbx(demo, tmp_path_factory):
    z = lab_zabbix.start(tmp_path_factory.mktemp("zabbix"))
    try:
        lab_zabbix.backfill(z, demo, HOSTS, short={SHORT_HOST: 10})
        yield z
    finally:
        z.stop()


def source(zbx, **change) -> ZabbixSource:
    return ZabbixSource(**{"url": zbx.url, "user": zbx.user, "password": SecretRef(file=str(zbx.password_file)),
                           **change})


@pytest.fixture(scope="module")
def inv(demo, zbx):
    return demo.model_copy(update={"monitoring": Monitoring(zabbix=source(zbx))})


@pytest.fixture(scope="module")
def imported(inv, tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('zbx-store')}/history.sqlite")
    return store, service.import_history(inv, store, SOURCE, hosts=HOSTS)


def test_import_marks_the_source_and_the_seeded_days(imported):
    store, result = imported
    readings = store.readings(HOSTS)
    assert readings and result.readings == len(readings) and result.source == SOURCE
    assert {r.source for r in readings} == {SOURCE} and all(r.seeded for r in readings)
    counts = {h: sum(r.host == h for r in readings) for h in HOSTS}
    assert all(119 <= n <= 121 for h, n in counts.items() if h != SHORT_HOST), counts
    assert 9 <= counts[SHORT_HOST] <= 11
    idle = [r for r in readings if r.host == "fgw-hgjj-app1"][-1]
    assert idle.cpus == 2 and 0 < idle.memory_used_gb < 1 and idle.cpu_pct < 1 and idle.net_mb_per_day < 5
    cov = result.coverage["fgw-hgjj-app1"]
    assert 119 <= cov.days <= 121 and len(cov.gaps) == 1  # before Zabbix's first day


def test_idle_busy_and_short_judged_from_zabbix_alone(inv, imported):
    store, _ = imported
    assert not store.history("audit.collect")  # no jiyue history at all
    result = service.judge(inv, store, systems=[IDLE, BUSY, SHORT])
    verdicts = {v.system: v for v in result.verdicts}
    idle = {v.system: next(c for c in v.criteria if c.key == "idle") for v in result.verdicts}
    assert idle[IDLE].outcome == MET and verdicts[IDLE].verdict == ZOMBIE, idle[IDLE]
    assert idle[BUSY].outcome == NOT_MET, idle[BUSY]
    assert idle[SHORT].outcome == INSUFFICIENT, idle[SHORT]
    assert set(idle[IDLE].numbers["hosts"]["fgw-hgjj-app1"]["sources"]) == {SOURCE}
    text = resources_text(inv.systems[IDLE], result.judge.history.facts(), verdicts[IDLE], "en")
    assert "source zabbix" in text and "not collected" not in text
    assert "(zabbix " in evidence_text(verdicts[IDLE], "en")


def test_match_by_host_name(inv, zbx):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    rows = fetch(inv, source(zbx, match="name"), ["dxzf-web-app1"], now - timedelta(days=5), now)
    assert {r["host"] for r in rows} == {"dxzf-web-app1"} and rows[-1]["net_mb_per_day"] > 100


def test_a_bad_password_is_reported_by_the_cli(zbx, tmp_path):
    """Exit 2, the message names the URL and the user, never a password (neither the wrong one nor the right)."""
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-42\n")
    declared = {"url": zbx.url, "user": zbx.user, "password": {"file": str(wrong)}}
    (city / "monitoring.yaml").write_text(yaml.safe_dump({"monitoring": {"zabbix": declared}}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    bad = subprocess.run([str(REPO / ".venv/bin/invoke"), "audit.history", "--from", "zabbix", "-i", str(city),
                          "-s", f"sqlite:///{tmp_path}/history.sqlite"], cwd=REPO, env=env, capture_output=True,
                         text=True)
    out = bad.stderr + bad.stdout
    assert bad.returncode == 2, out
    assert zbx.url in out and "user jiyue" in out and "not-the-password-42" not in out
    assert zbx.password_file.read_text().strip() not in out


def test_unreachable_zabbix_names_the_url(demo):
    down = ZabbixSource(url="http://127.0.0.1:9/api_jsonrpc.php", user="u", password=SecretRef(env="NO_SUCH_VAR_X"))
    with pytest.raises(ZabbixError) as info:
        fetch(demo, down, ["fgw-hgjj-app1"], *_window())
    assert "127.0.0.1:9" in str(info.value) and "NO_SUCH_VAR_X" in str(info.value)


def _window():
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    return now - timedelta(days=1), now


def test_zabbix_declaration_is_validated(tmp_path):
    city = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, city)
    (city / "monitoring.yaml").write_text("monitoring:\n  zabbix:\n    url: http://zbx/api_jsonrpc.php\n"
                                          "    user: jiyue\n    password: hunter2\n    match: instance\n")
    with pytest.raises(inventory.InventoryError) as info:
        inventory.load(city)
    text = str(info.value)
    assert "monitoring.yaml" in text and "password" in text and "match" in text
    assert "hunter2" not in text
