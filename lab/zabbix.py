"""The lab's Zabbix, run without systemd: a PostgreSQL cluster of its own (lab/postgres.py) with Debian's
Zabbix schema, zabbix_server with a generated config, and the frontend (whose api_jsonrpc.php is the API)
under php-fpm and nginx, all on loopback, all under one directory, so `audit.history --from zabbix`
reads a real server.

Opt-in (`invoke lab.monitoring --zabbix`, and the Zabbix tests). The frontend is a hard-linked copy of
/usr/share/zabbix (its conf/zabbix.conf.php is generated; nothing under /etc is written). Loading Debian's
data.sql (templates, the Admin user) takes ~20 s, so a loaded, stopped cluster is kept once per machine
under /var/tmp (keyed by the package's schema files) and copied for each new Zabbix.

History: hosts are created through the API (host.create with an agent interface on the lab host's
address) with trapper items of the "Linux by Zabbix agent" template's keys (audit/zabbix.py), and the
past is written straight into the `trends`/`trends_uint` tables (Zabbix has no API to import history),
one hourly row per item, from the scenario's profiles as lab/prometheus.py draws them, with a
`jiyue.seeded` item marking those hours seeded. Live data in the lab comes from Prometheus'
node_exporters (lab/prometheus.py): no zabbix_agentd runs in the hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inventory.model import Inventory
from lab import postgres
from lab.history import BUSY, QUIET
from lab.procs import LabError
from lab.prometheus import MEMORY_TOTAL, _wait, free_port, scenario_backfills

FRONTEND = Path("/usr/share/zabbix")
SCHEMA = Path("/usr/share/zabbix-server-pgsql")
SERVER = "zabbix_server"
USER = "jiyue"
# key, value type (0 float -> trends, 3 unsigned -> trends_uint)
ITEMS = [("system.cpu.util", 0), ("system.cpu.num", 3), ("vm.memory.size[total]", 3),
         ("vm.memory.size[available]", 3), ('net.if.in["eth0"]', 3), ('net.if.out["eth0"]', 3),
         ("jiyue.seeded", 3)]


def _php_fpm() -> str:
    found = sorted(p for p in Path("/usr/sbin").glob("php-fpm*"))
    if not found:
        raise LabError("php-fpm is missing (apt-get install php-fpm php-pgsql zabbix-frontend-php)")
    return str(found[-1])


def _template() -> Path:
    """A stopped cluster with Debian's Zabbix schema and data loaded, made once per machine and package."""
    files = [SCHEMA / f for f in ("schema.sql.gz", "images.sql.gz", "data.sql.gz")]
    if not all(f.exists() for f in files):
        raise LabError("Zabbix's schema is missing (apt-get install zabbix-server-pgsql)")
    key = hashlib.sha256("".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime}" for f in files).encode())
    template = Path("/var/tmp") / f"jiyue-zabbix-db-{key.hexdigest()[:12]}"
    with (Path("/var/tmp") / "jiyue-zabbix-db.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions at once: one builds, the other waits and copies
        if (template / "ready").exists():
            return template
        building = template.with_name(template.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        cluster = postgres.start(building, free_port())
        try:
            cluster.create_database("zabbix", "zabbix")
            for f in files:
                sql = subprocess.run(["zcat", str(f)], capture_output=True, text=True, check=True).stdout
                cluster.psql("-1", database="zabbix", user="zabbix", input=sql)
        finally:
            cluster.stop(mode="fast")  # not immediate: the last commit must reach the WAL (synchronous_commit off)
        (building / "ready").write_text("")
        shutil.rmtree(template, ignore_errors=True)
        building.rename(template)
    return template


@dataclass
class LabZabbix:
    """A running lab Zabbix: the API's URL, the API user and its password file, and its processes."""

    url: str
    user: str
    password_file: Path
    directory: Path
    cluster: postgres.Cluster
    pids: list[int] = field(default_factory=list)
    hostids: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, params, token: str | None = None):
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1, **({"auth": token} if token else {})}
        request = urllib.request.Request(self.url, json.dumps(body).encode(),
                                         {"Content-Type": "application/json-rpc"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        if "error" in answer:
            raise LabError(f"zabbix {method}: {answer['error']}")
        return answer["result"]

    def stop(self) -> None:
        stop_processes(self.pids)
        self.cluster.stop()
        (self.directory / "pids").unlink(missing_ok=True)


def stop_processes(pids: list[int]) -> None:
    """SIGTERM each started process's group (each was started in a session of its own: zabbix_server's
    children, php-fpm's and nginx's workers go with it), then SIGKILL what is left after 10 s."""
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _low_port() -> int:
    """A free loopback port zabbix_server accepts (1024-32767: below the kernel's ephemeral range)."""
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LabError("no free loopback port in 20000-32000 for zabbix_server")


def _spawn(args: list[str], log: Path) -> int:
    with log.open("ab") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True).pid


def start(directory: Path, port: int | None = None) -> LabZabbix:
    """PostgreSQL, zabbix_server, php-fpm and nginx under `directory`, the frontend on 127.0.0.1:`port`, and the
    API user `jiyue` with a random password (in `directory`/api-password, mode 600)."""
    if shutil.which(SERVER) is None or not (FRONTEND / "api_jsonrpc.php").exists():
        raise LabError("Zabbix is missing (apt-get install zabbix-server-pgsql zabbix-frontend-php php-fpm php-pgsql)")
    directory.mkdir(parents=True, exist_ok=True)
    template = _template()
    pg_dir = directory / "postgres"
    shutil.rmtree(pg_dir, ignore_errors=True)
    subprocess.run(["cp", "-a", str(template), str(pg_dir)], check=True, capture_output=True)  # owners kept
    (pg_dir / "data" / "postmaster.pid").unlink(missing_ok=True)
    cluster = postgres.start(pg_dir, free_port())
    port = port or free_port()
    zbx = LabZabbix(f"http://127.0.0.1:{port}/api_jsonrpc.php", USER, directory / "api-password", directory, cluster)
    try:
        _start_server(zbx)
        _start_frontend(zbx, port)
        _wait(f"http://127.0.0.1:{port}/favicon.ico", what="zabbix frontend")
        _wait_api(zbx)
        (directory / "pids").write_text(json.dumps(zbx.pids))
        token = zbx.api("user.login", {"username": "Admin", "password": "zabbix"})
        password = secrets.token_urlsafe(18)
        zbx.api("user.create", {"username": USER, "passwd": password, "roleid": "3",
                                "usrgrps": [{"usrgrpid": "7"}]}, token)
        # the well-known default Admin password is replaced: only the API user's random one opens this Zabbix
        admin = zbx.api("user.get", {"filter": {"username": "Admin"}, "output": ["userid"]}, token)[0]["userid"]
        zbx.api("user.update", {"userid": admin, "passwd": secrets.token_urlsafe(18)},
                token)
        zbx.password_file.write_text(password + "\n")
        zbx.password_file.chmod(0o600)
    except BaseException:
        zbx.stop()
        raise
    return zbx


def _wait_api(zbx: LabZabbix, timeout: float = 60) -> None:
    """Until php-fpm answers the API (apiinfo.version needs no login)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            zbx.api("apiinfo.version", [])
            return
        except (OSError, LabError) as exc:
            if time.monotonic() > deadline:
                raise LabError(f"the Zabbix API at {zbx.url} did not answer within {timeout:.0f} s: {exc}") from None
        time.sleep(0.2)


def _start_server(zbx: LabZabbix) -> None:
    d = zbx.directory
    conf = d / "zabbix_server.conf"
    conf.write_text("\n".join([
        f"LogFile={d / 'zabbix_server.log'}", f"PidFile={d / 'zabbix_server.pid'}", f"SocketDir={d}",
        f"DBHost={zbx.cluster.socket_dir}", f"DBPort={zbx.cluster.port}", "DBName=zabbix", "DBUser=zabbix",
        "ListenIP=127.0.0.1", f"ListenPort={_low_port()}", "AllowRoot=1", "HousekeepingFrequency=0",
        "StartPollers=1", "StartPollersUnreachable=1", "StartTrappers=1", "StartPingers=0",
        "StartDiscoverers=0", "StartHTTPPollers=0", "StartPreprocessors=1", "StartLLDProcessors=1",
        "StartAlerters=1", "StartDBSyncers=1", "StartEscalators=1", "StartTimers=1", "CacheSize=16M",
        "Timeout=4", "LogSlowQueries=0", ""]))
    # -f: in the foreground, so its pid is this process's and it ends with a SIGTERM
    zbx.pids.append(_spawn([SERVER, "-f", "-c", str(conf)], d / "zabbix_server.out"))


def _start_frontend(zbx: LabZabbix, port: int) -> None:
    d = zbx.directory
    web = d / "frontend"
    shutil.rmtree(web, ignore_errors=True)
    try:
        subprocess.run(["cp", "-al", str(FRONTEND), str(web)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        shutil.copytree(FRONTEND, web, symlinks=True)
    conf = web / "conf" / "zabbix.conf.php"
    conf.unlink(missing_ok=True)
    # Debian's frontend reads /etc/zabbix/zabbix.conf.php: this copy reads its own (a new file, not the
    # hard link's shared inode, so /usr/share/zabbix stays as the package left it)
    config_class = web / "include" / "classes" / "core" / "CConfigFile.php"
    text = config_class.read_text(encoding="utf-8").replace("'/etc/zabbix/zabbix.conf.php'", repr(str(conf)))
    config_class.unlink()
    config_class.write_text(text, encoding="utf-8")
    conf.write_text(f"""<?php
$DB['TYPE'] = 'POSTGRESQL';
$DB['SERVER'] = '{zbx.cluster.socket_dir}';
$DB['PORT'] = '{zbx.cluster.port}';
$DB['DATABASE'] = 'zabbix';
$DB['USER'] = 'zabbix';
$DB['PASSWORD'] = '';
$DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false;
$DB['KEY_FILE'] = '';
$DB['CERT_FILE'] = '';
$DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false;
$DB['CIPHER_LIST'] = '';
$DB['VAULT_URL'] = '';
$DB['VAULT_DB_PATH'] = '';
$DB['VAULT_TOKEN'] = '';
$DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER_NAME = 'jiyue lab';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
""")
    fpm = d / "php-fpm.conf"
    sock = d / "php-fpm.sock"
    fpm.write_text(f"""[global]
pid = {d / 'php-fpm.pid'}
error_log = {d / 'php-fpm.log'}
daemonize = no
[zabbix]
user = root
group = root
listen = {sock}
listen.mode = 0666
pm = static
pm.max_children = 3
php_admin_value[date.timezone] = UTC
php_admin_value[memory_limit] = 256M
php_admin_value[post_max_size] = 16M
php_admin_value[max_execution_time] = 300
php_admin_value[max_input_time] = 300
""")
    zbx.pids.append(_spawn([_php_fpm(), "-R", "-F", "-y", str(fpm)], d / "php-fpm.out"))
    nginx = d / "nginx.conf"
    (d / "nginx-tmp").mkdir(exist_ok=True)
    nginx.write_text(f"""daemon off;
pid {d / 'nginx.pid'};
error_log {d / 'nginx-error.log'};
worker_processes 1;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d / 'nginx-tmp'};
  fastcgi_temp_path {d / 'nginx-tmp'};
  proxy_temp_path {d / 'nginx-tmp'};
  uwsgi_temp_path {d / 'nginx-tmp'};
  scgi_temp_path {d / 'nginx-tmp'};
  include /etc/nginx/mime.types;
  server {{
    listen 127.0.0.1:{port};
    root {web};
    index index.php;
    location ~ \\.php$ {{
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_pass unix:{sock};
    }}
  }}
}}
""")
    zbx.pids.append(_spawn(["nginx", "-c", str(nginx), "-p", str(d)], d / "nginx.out"))


def add_hosts(zbx: LabZabbix, inv: Inventory, hosts: list[str]) -> dict[str, dict[str, str]]:
    """host.create for each lab host (an agent interface on its address) with the template keys' trapper
    items; {host: {key: itemid}}."""
    token = zbx.api("user.login", {"username": zbx.user, "password": zbx.password_file.read_text().strip()})
    group = zbx.api("hostgroup.create", {"name": "jiyue lab"}, token)["groupids"][0]
    items: dict[str, dict[str, str]] = {}
    for host in hosts:
        hostid = zbx.api("host.create", {
            "host": host, "groups": [{"groupid": group}],
            "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": str(inv.hosts[host].address), "dns": "",
                            "port": "10050"}]}, token)["hostids"][0]
        zbx.hostids[host] = hostid
        created = zbx.api("item.create", [{"hostid": hostid, "name": key, "key_": key, "type": 2,
                                           "value_type": vtype, "history": "90d", "trends": "365d"}
                                          for key, vtype in ITEMS], token)["itemids"]
        items[host] = dict(zip([k for k, _ in ITEMS], created, strict=True))
    zbx.api("user.logout", [], token)
    return items


def backfill(zbx: LabZabbix, inv: Inventory, hosts: list[str], days: int = 120, short: dict[str, int] | None = None,
             end: datetime | None = None, seed: int = 20261203) -> int:
    """Hosts and items through the API, then hourly trend rows for `days` (fewer for `short` hosts) up to
    `end` (default: the last whole hour), written into the trends tables with COPY; return the rows."""
    items = add_hosts(zbx, inv, hosts)
    rng = random.Random(seed)
    stop = int((end or datetime.now(UTC) - timedelta(hours=1)).timestamp()) // 3600 * 3600
    float_rows, uint_rows = [], []
    for host, b in zip(hosts, scenario_backfills(inv, hosts, days, short), strict=True):
        level = BUSY if b.busy else QUIET
        ids = items[host]
        for day in range(b.days):
            cpu_one_core, net, memory = (rng.uniform(*level["cpu"]), rng.uniform(*level["net"]),
                                         rng.uniform(0.5, 0.8) if b.busy else rng.uniform(0.1, 0.2))
            for hour in range(24):
                clock = stop - (b.days - day) * 86400 + hour * 3600
                cpu = cpu_one_core / b.cpus
                float_rows.append(f"{ids['system.cpu.util']}\t{clock}\t60\t{cpu:.4f}\t{cpu:.4f}\t{cpu:.4f}")
                bits = round(net / 2 * 8)
                for key, value in (("system.cpu.num", b.cpus), ("vm.memory.size[total]", MEMORY_TOTAL),
                                   ("vm.memory.size[available]", round(MEMORY_TOTAL * (1 - memory))),
                                   ('net.if.in["eth0"]', bits), ('net.if.out["eth0"]', bits), ("jiyue.seeded", 1)):
                    uint_rows.append(f"{ids[key]}\t{clock}\t60\t{value}\t{value}\t{value}")
    for table, rows in (("trends", float_rows), ("trends_uint", uint_rows)):
        zbx.cluster.psql("-c", f"COPY {table} (itemid, clock, num, value_min, value_avg, value_max) FROM STDIN",
                         database="zabbix", user="zabbix", input="\n".join(rows) + "\n")
    return len(float_rows) + len(uint_rows)


def running(directory: Path) -> list[int]:
    """The pids a `start` left running for `directory` (lab.monitoring --zabbix --stop ends them)."""
    try:
        pids = json.loads((directory / "pids").read_text())
    except (OSError, ValueError):
        return []
    alive = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, 0)  # the group: a leader's children outlive it
            alive.append(pid)
    return alive
