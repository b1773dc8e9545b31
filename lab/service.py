"""Service control inside a lab host: what a system needs to run lives under /etc/app/<system-id>/.

lab.seed writes, on each host that runs one of a system's services (in the host's private /etc/app):

    /etc/app/<system-id>/service      POSIX sh: `service start | stop | status | restart`
    /etc/app/<system-id>/service.env  the service's command line: APP_PYTHON, APP_SCRIPT, APP_ARGS
                                      (APP_ARGS is shell-quoted; the script adds --pidfile)
    /etc/app/<system-id>/pid          runtime: the running app's pid (written by the app once it listens)
    /etc/app/<system-id>/out          runtime: the app's stdout/stderr

plus the system's data paths (/srv/<system-id>: app.db, uploads/, export/) and its log directory.
The command line names nothing of the host it was written on: the app listens on 0.0.0.0 (and [::]), its
script is the repository's app.py (the machine's filesystem outside the private paths is shared by
every lab host), its data and logs are in-host paths. So copying /etc/app/<system-id>/ and the data
paths to another host (a cloud pool host) and running `/etc/app/<system-id>/service start` there
starts the same service on that host. `pid` and `out` need not be copied: a pid file names a process
only if that process runs app.py in this host's own network namespace, so a copied one is ignored.

Exit codes (LSB-like):

    start    0 running (started, or already running: never a second process); 1 it did not come up
             within 10 s (the last lines of `out` on stderr)
    stop     0 not running any more: SIGTERM, then wait (up to 30 s) until the process has exited,
             then SIGKILL; the app finishes requests in flight and closes its database, so the data
             paths are quiescent once `stop` returns; 0 also if it was not running; 1 it would not die
    status   0 running, 3 not running (prints the pid)
    restart  stop, then start
    other    2 (usage)

Each host is one system's service at most (the inventory has no system with two services on one host).
"""

from __future__ import annotations

import shlex
import subprocess

from lab.hosts import Lab

ETC_APP = "/etc/app"


def app_dir(system_id: str) -> str:
    return f"{ETC_APP}/{system_id}"


def pidfile(system_id: str) -> str:
    """The in-host pid file the app is started with (`--pidfile`)."""
    return f"{app_dir(system_id)}/pid"


SERVICE_SCRIPT = r"""#!/bin/sh
# {label}: service control on this host (jiyue lab, written by lab.seed; see lab/service.py).
#   service start | stop | status | restart
# Exit: 0 done (status: running), 1 failed, 3 (status) not running, 2 usage.
# The command line is in service.env beside this script; runtime files `pid` and `out` too.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
. "$dir/service.env"
pidfile=$dir/pid
out=$dir/out
pid=

alive() {{  # a process that has not exited (a zombie has)
    [ -r "/proc/$1/stat" ] || return 1
    [ "$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}}

running() {{  # the pid file names a live app.py in this host's network namespace
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    alive "$pid" || return 1
    [ "$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/self/ns/net)" ] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$APP_SCRIPT"
}}

start() {{
    if running; then
        echo "{label}: already running (pid $pid)"
        return 0
    fi
    rm -f "$pidfile"
    eval "set -- $APP_ARGS"
    cd /
    setsid "$APP_PYTHON" "$APP_SCRIPT" "$@" --pidfile "$pidfile" </dev/null >>"$out" 2>&1 &
    child=$!
    i=0
    while [ $i -lt 200 ]; do  # the app writes its pid file once it listens
        if running; then
            echo "{label}: started (pid $pid)"
            return 0
        fi
        if ! alive "$child" && [ ! -s "$pidfile" ]; then
            break
        fi
        sleep 0.05
        i=$((i + 1))
    done
    echo "{label}: did not start; the end of $out:" >&2
    tail -n 5 "$out" >&2
    return 1
}}

stop() {{
    if ! running; then
        rm -f "$pidfile"
        echo "{label}: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    i=0
    while alive "$pid"; do
        if [ $i -eq 600 ]; then  # 30 s
            kill -KILL "$pid" 2>/dev/null
        elif [ $i -ge 700 ]; then
            echo "{label}: pid $pid would not exit" >&2
            return 1
        fi
        sleep 0.05
        i=$((i + 1))
    done
    rm -f "$pidfile"
    echo "{label}: stopped"
    return 0
}}

case ${{1:-}} in
    start) start ;;
    stop) stop ;;
    restart) stop && start ;;
    status)
        if running; then
            echo "{label}: running (pid $pid)"
            exit 0
        fi
        echo "{label}: not running"
        exit 3 ;;
    *) echo "usage: $0 start | stop | status | restart" >&2; exit 2 ;;
esac
"""


def service_script(label: str) -> str:
    return SERVICE_SCRIPT.format(label=label)


def service_env(label: str, python: str, script: str, args: list[str]) -> str:
    return (f"# {label}: the service's command line (jiyue lab, written by lab.seed). `service` adds --pidfile.\n"
            f"APP_PYTHON={shlex.quote(python)}\nAPP_SCRIPT={shlex.quote(script)}\n"
            f"APP_ARGS={shlex.quote(shlex.join(args))}\n")


def control(lab: Lab, host: str, system_id: str, action: str) -> subprocess.CompletedProcess[str]:
    """Run `/etc/app/<system-id>/service ACTION` inside the host (as an SSH session would)."""
    return lab.exec(host, f"{shlex.quote(app_dir(system_id) + '/service')} {shlex.quote(action)}")
