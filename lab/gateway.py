"""The lab's gateway: a real nginx reverse proxy inside the `cloud.gateway` host (zwy-wg).

Clients (traffic.py, checker.py, people) reach a system only through the gateway:

    http://<gateway address>/<system-id>/<path>  ->  http://<backend address>:<port>/<path>

The contract, all in the gateway host's private /etc/app/gateway/ (what the migration engine's
switch playbook does over SSH, and what `set_route` below does through `Lab.exec`):

    nginx.conf          the whole config (`nginx -c`): daemon on, pid /etc/app/gateway/nginx.pid,
                        error_log /var/log/gateway/error.log, access_log /var/log/gateway/access.log
                        (with the upstream that answered), temp paths under /etc/app/gateway/tmp/;
                        one server on <gateway address>:80 that includes routes/*.conf
    routes/<id>.conf    one file per system with an http service, exactly:
                            location /<id>/ {
                                proxy_pass http://ADDRESS:PORT/;
                            }
                        headers (Host, X-Real-IP, X-Forwarded-For) and timeouts are set once in
                        nginx.conf; a route must not set headers of its own (nginx would then drop
                        every inherited one). A stopped backend answers 502 through the gateway.
    reload              POSIX sh: `nginx -t` on nginx.conf, then `nginx -s reload` (graceful: requests
                        in flight finish on the old workers) and wait until the old workers no longer
                        take new connections; starts nginx if it is not running. Exit 0 applied,
                        1 the config is invalid (nothing changed; `nginx -t` says why on stderr),
                        2 nginx did not start or reload in time.

Switching a system to another backend = rewrite routes/<id>.conf (write a new file, then rename it
over the old one) + run reload. Once reload has returned 0, every new request goes to the new
backend. lab.seed writes nginx.conf, reload and every route from the inventory (a system's route
goes to the host of its service with a health_url) and starts or reloads nginx: seeding again
puts the routes back where the inventory says. The machine's own nginx service is never used:
only the binary (Debian's `nginx` package) runs, inside the gateway host; `lab.down` ends it. The
apps trust X-Forwarded-For from the gateway's address (app.py --trusted-proxy), so their access
logs still name the real client.
"""

from __future__ import annotations

import re
import shlex

from inventory.model import Inventory, Service, System
from lab.hosts import Lab, LabError

NGINX = "/usr/sbin/nginx"
GATEWAY_DIR = "/etc/app/gateway"
CONF = f"{GATEWAY_DIR}/nginx.conf"
ROUTES = f"{GATEWAY_DIR}/routes"
RELOAD = f"{GATEWAY_DIR}/reload"
PID = f"{GATEWAY_DIR}/nginx.pid"
LOG_DIR = "/var/log/gateway"
ROUTE_RE = re.compile(r"^\s*proxy_pass\s+http://(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)/;", re.M)

NGINX_CONF = """\
# The lab gateway's reverse proxy (jiyue lab, written by lab.seed; see lab/gateway.py).
# Runs only inside the gateway host; apply changes with {reload}.
user root;
worker_processes 2;
daemon on;
pid {pid};
error_log {log_dir}/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    log_format upstream '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                        '"$http_referer" "$http_user_agent" upstream=$upstream_addr rt=$request_time';
    access_log {log_dir}/access.log upstream;
    default_type text/plain;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 1m;

    proxy_http_version 1.0;
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout 2s;
    proxy_send_timeout 30s;
    proxy_read_timeout 30s;
    proxy_next_upstream off;

    server {{
        listen {listen};
        server_name _;
        location = /__gateway/health {{
            return 200 "ok\\n";
        }}
        include {routes}/*.conf;
    }}
}}
"""

RELOAD_SCRIPT = r"""#!/bin/sh
# Apply the gateway's nginx config gracefully (jiyue lab, written by lab.seed; see lab/gateway.py).
# Exit: 0 applied (nginx running with it), 1 invalid config (nothing changed), 2 nginx failed.
set -u
NGINX={nginx}
conf={conf}
pidfile={pid}
errlog={log_dir}/error.log
mkdir -p {log_dir} {tmp} {routes}
"$NGINX" -t -q -e "$errlog" -c "$conf" || exit 1

workers() {{  # the master's workers that still take new connections
    ps -o pid=,args= --ppid "$1" 2>/dev/null | awk '/worker process/ && !/shutting down/ {{print $1}}'
}}

running() {{  # the pid file names an nginx master in this host's network namespace
    case $1 in ''|*[!0-9]*) return 1 ;; esac
    [ "$(readlink "/proc/$1/ns/net")" = "$(readlink /proc/self/ns/net)" ] || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q '^nginx: master process'
}}

master=$(cat "$pidfile" 2>/dev/null)
if ! running "$master"; then
    rm -f "$pidfile"
    "$NGINX" -e "$errlog" -c "$conf" || exit 2
    echo "nginx started"
    exit 0
fi
old=$(workers "$master")
"$NGINX" -s reload -e "$errlog" -c "$conf" || exit 2
i=0
while [ $i -lt 200 ]; do  # 10 s for the new workers to take over
    now=$(workers "$master")
    stale=
    for p in $now; do
        for o in $old; do
            [ "$p" = "$o" ] && stale=yes
        done
    done
    if [ -n "$now" ] && [ -z "$stale" ]; then
        echo "nginx reloaded"
        exit 0
    fi
    sleep 0.05
    i=$((i + 1))
done
echo "nginx did not reload within 10 s: see $errlog" >&2
exit 2
"""


def _paths() -> dict[str, str]:
    return {"nginx": NGINX, "conf": CONF, "pid": PID, "log_dir": LOG_DIR, "tmp": f"{GATEWAY_DIR}/tmp",
            "routes": ROUTES, "reload": RELOAD}


def gateway_host(inv: Inventory) -> str:
    if not inv.cloud or not inv.cloud.gateway:
        raise LabError("the inventory names no cloud.gateway host")
    return inv.cloud.gateway


def gateway_address(inv: Inventory) -> str:
    return str(inv.hosts[gateway_host(inv)].address)


def nginx_conf(inv: Inventory) -> str:
    address = inv.hosts[gateway_host(inv)].address
    listen = f"[{address}]:80" if address.version == 6 else f"{address}:80"
    return NGINX_CONF.format(listen=listen, **_paths())


def reload_script() -> str:
    return RELOAD_SCRIPT.format(**_paths())


def route_conf(system_id: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"location /{system_id}/ {{\n    proxy_pass http://{host}:{int(port)}/;\n}}\n"


def web_service(system: System) -> Service | None:
    """The system's service with a health_url (the one the gateway routes to), or None."""
    return next((v for v in system.services if v.health_url), None)


def routed_systems(inv: Inventory) -> list[System]:
    """The systems the gateway has a route for: those with an http service, by id."""
    return [s for s in sorted(inv.systems.values(), key=lambda s: s.id) if web_service(s)]


def inventory_route(inv: Inventory, system: System | str) -> tuple[str, int]:
    """Where the inventory says the system's route goes: its web service's host address and port."""
    system = inv.systems[system] if isinstance(system, str) else system
    service = web_service(system)
    if service is None:
        raise LabError(f"{system.id} has no http service (no health_url): the gateway has no route for it")
    return str(inv.hosts[service.host].address), service.port


def gateway_url(inv: Inventory, system: System | str, path: str = "/") -> str:
    """http://<gateway address>/<system-id>/<path>: how clients reach the system."""
    system_id = system if isinstance(system, str) else system.id
    address = inv.hosts[gateway_host(inv)].address
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}/{system_id}/{path.lstrip('/')}"


def route(lab: Lab, inv: Inventory, system: System | str) -> tuple[str, int] | None:
    """The (address, port) the gateway's route file for the system points at; None if it has none."""
    system_id = system if isinstance(system, str) else system.id
    path = lab.path(gateway_host(inv), f"{ROUTES}/{system_id}.conf")
    try:
        match = ROUTE_RE.search(path.read_text())
    except FileNotFoundError:
        return None
    if match is None:
        raise LabError(f"{path}: no proxy_pass line")
    return match.group(1).strip("[]"), int(match.group(2))


def set_route(lab: Lab, inv: Inventory, system: System | str, address: str, port: int) -> None:
    """Point the system's route at ADDRESS:PORT and reload the gateway, inside the gateway host.

    What a switch playbook does over SSH: write routes/<id>.conf.new, rename it over the route file,
    run reload. If reload fails, the previous route file is put back (and reloaded) and LabError is raised.
    """
    system_id = system if isinstance(system, str) else system.id
    target = f"{ROUTES}/{system_id}.conf"
    new, old, q = target + ".new", target + ".old", shlex.quote
    script = (f"set -u; mkdir -p {q(ROUTES)}; rm -f {q(old)}; cp -p {q(target)} {q(old)} 2>/dev/null; "
              f"printf '%s' {q(route_conf(system_id, address, port))} > {q(new)} && mv -f {q(new)} {q(target)} && "
              f"{q(RELOAD)} && {{ rm -f {q(old)}; exit 0; }}; "
              f"rc=$?; if [ -f {q(old)} ]; then mv -f {q(old)} {q(target)}; else rm -f {q(target)}; fi; "
              f"{q(RELOAD)} >/dev/null 2>&1; exit $rc")
    result = lab.exec(gateway_host(inv), script)
    if result.returncode != 0:
        raise LabError(f"set_route {system_id} -> {address}:{port} failed ({result.returncode}): "
                       f"{result.stderr.strip() or result.stdout.strip()}")


def reload(lab: Lab, inv: Inventory) -> str:
    """Run the gateway's reload script inside the gateway host; its output ("nginx started"/"reloaded")."""
    result = lab.exec(gateway_host(inv), shlex.quote(RELOAD))
    if result.returncode != 0:
        raise LabError(f"gateway reload failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def nginx_pid(lab: Lab, inv: Inventory) -> int | None:
    """The gateway's nginx master pid, if it runs."""
    result = lab.exec(gateway_host(inv), f'pid=$(cat {shlex.quote(PID)} 2>/dev/null) && '
                      '[ "$(readlink /proc/$pid/ns/net)" = "$(readlink /proc/self/ns/net)" ] && '
                      'tr "\\0" " " </proc/$pid/cmdline | grep -q "^nginx: master" && echo "$pid"')
    return int(result.stdout) if result.returncode == 0 and result.stdout.strip().isdigit() else None
