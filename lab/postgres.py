"""A throwaway PostgreSQL cluster of jiyue's own, without systemd or the machine's cluster: initdb into a
directory, pg_ctl on a unix socket in it (and a loopback port), trust authentication (lab and tests only).

The store tests run against it (tests/conftest.py `postgres`), and the lab's Zabbix keeps its database in
one (lab/zabbix.py). PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user Debian's
package creates, and root runs the binaries as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.procs import LabError

OWNER = "postgres"


def bin_dir() -> Path:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise LabError("PostgreSQL's server is missing (apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_owner(*args: str, **kwargs) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *args], capture_output=True, text=True, **kwargs)


@dataclass
class Cluster:
    """A running cluster: its directory (data and socket), port, and the URL of a database in it."""

    directory: Path
    port: int

    @property
    def socket_dir(self) -> Path:
        return self.directory

    def url(self, database: str = "postgres", user: str = OWNER) -> str:
        """A SQLAlchemy URL (psycopg 3) over the unix socket."""
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    def psql(self, *args: str, database: str = "postgres", user: str = OWNER, input: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
        proc = _as_owner(str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                         "-p", str(self.port), "-U", user, "-d", database, *args, input=input)
        if check and proc.returncode != 0:
            raise LabError(f"psql {' '.join(args)[:80]}: {proc.stderr.strip()[-500:]}")
        return proc

    def create_database(self, name: str, owner: str = OWNER) -> None:
        if owner != OWNER:
            self.psql("-c", f'CREATE ROLE "{owner}" LOGIN')
        self.psql("-c", f'CREATE DATABASE "{name}" OWNER "{owner}"')

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (immediate by default: a throwaway cluster needs no checkpoint)."""
        _as_owner(str(bin_dir() / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")


def start(directory: Path, port: int) -> Cluster:
    """initdb (if `directory` holds no cluster yet) and start it on `port`, loopback and a socket in `directory`.
    Durability is off (fsync): a throwaway cluster for the lab and tests, never for real data."""
    data = directory / "data"
    directory.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwnam(OWNER) if os.geteuid() == 0 else None
    if user:
        shutil.chown(directory, user.pw_uid, user.pw_gid)
        for parent in directory.parents:  # the owner must reach its directory
            if parent == Path("/"):
                break
            if not os.stat(parent).st_mode & 0o001:
                os.chmod(parent, os.stat(parent).st_mode | 0o001)
    if not (data / "PG_VERSION").exists():
        proc = _as_owner(str(bin_dir() / "initdb"), "-D", str(data), "-A", "trust", "-U", OWNER, "-E", "UTF8",
                         "--locale=C.UTF-8", "--no-sync")
        if proc.returncode != 0:
            raise LabError(f"initdb {data}: {proc.stderr.strip()[-500:]}")
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
    proc = _as_owner(str(bin_dir() / "pg_ctl"), "-D", str(data), "-l", str(directory / "postgres.log"), "-o",
                     options, "-w", "-t", "60", "start")
    if proc.returncode != 0:
        log = (directory / "postgres.log")
        raise LabError(f"pg_ctl start {data}: {proc.stderr.strip()[-300:]} "
                       f"{log.read_text()[-500:] if log.exists() else ''}")
    return Cluster(directory, port)
