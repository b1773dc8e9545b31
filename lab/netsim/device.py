"""One simulated device: its configurations, files, timers and faults.

A `Device` owns the committed running configuration (written to `running.cfg` after every change),
the startup configuration (`startup.cfg`, written by save), the files on its flash (`flash/`: archives,
backups), VRP8's commit points, and at most one pending automatic rollback (VRP8 `commit trial`, Comware
`configuration commit delay`, IOS `configure terminal revert timer`). The CLI that changes it is
`session.py`.

Timers: every device timer is multiplied by the device's time scale (`time_scale` in `settings.yaml`,
default from JIYUE_NETSIM_TIME_SCALE or 1.0), so a test can make IOS's one-minute revert timer last one
second with a scale of 1/60.
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jiyue.files import write_atomic
from lab.netsim.config import Config
from lab.netsim.grammar import Grammar, load

DEFAULT_TIME_SCALE = float(os.environ.get("JIYUE_NETSIM_TIME_SCALE", "1.0"))
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))  # the devices keep Beijing time, like the lab's hosts
FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?")
# Secret values in config lines: masked in the command log, as devices mask them in their own logs.
SECRET_VALUE = re.compile(r"\b(password|secret|cipher|irreversible-cipher|simple|hash|community(?: (?:read|write))?"
                          r"|authentication-mode \S+|privacy-mode \S+|auth (?:md5|sha)|priv (?:des|3des|aes(?: \d+)?))"
                          r"((?: \d)?) (?!(?:cipher|simple|irreversible-cipher|hash)\b)\S+")


@dataclass
class DeviceSpec:
    """What a device is: the API's and the control socket's unit. `config` seeds running and startup."""

    name: str
    platform: str
    address: str
    port: int = 22
    username: str = "netops"
    password: str = ""
    secret: str | None = None  # enable secret (Cisco/Ruijie); None: `enable` asks for none
    privilege: int = 15  # 15 lands in privileged EXEC (`#`); lower lands in `>` and needs `enable`
    config: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Faults:
    """Read from `faults.yaml` whenever it changes, so a test can break a device mid-session."""

    reject: list[re.Pattern[str]] = field(default_factory=list)
    drop_after: int | None = None
    latency_ms: int = 0  # every answer waits this long
    config_latency_ms: int = 0  # answers to configuration-mode lines wait this long (exec answers do not)
    # After this many configuration lines in a session the device stops answering, in every session,
    # until the fault is cleared: everything (`all`, new logins get no prompt) or configuration lines only
    # (`config`: a configuration process that hangs while `display` / `show` still answer).
    stall_after: int | None = None
    stall_scope: str = "all"


@dataclass
class PendingRollback:
    kind: str  # "trial" (VRP8) | "delay" (Comware) | "revert" (IOS)
    before: str  # the config text to go back to
    timer: threading.Timer
    deadline: float


class Device:
    def __init__(self, spec: DeviceSpec, state_dir: Path) -> None:
        self.spec = spec
        self.name = spec.name
        self.grammar: Grammar = load(spec.platform)
        self.style = self.grammar.style
        self.two_stage = spec.platform == "huawei_vrpv8"
        self.dir = state_dir / spec.name
        self.flash = self.dir / "flash"
        self.flash.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.booted = time.monotonic()
        self.pending: PendingRollback | None = None
        self.commits: list[dict[str, Any]] = self._read_json(self.dir / "commits.json", [])
        self.sessions: set[Any] = set()  # the open CLI sessions (session.Session), closed by `close`
        self._cache: dict[str, tuple[float, Any]] = {}
        self._log = (self.dir / "commands.log").open("a", encoding="utf-8")
        self._session_ids = itertools.count(1)
        self._stalled = False  # a `stall_after` fault was reached (cleared with the fault)
        startup = self.dir / "startup.cfg"
        if startup.exists():  # a restarted simulator boots from what was saved, as a reload does
            self.running = self._parse(startup.read_text(encoding="utf-8"))
        else:
            self.running = self._parse(spec.config or self.minimal_config())
            self._write(startup, self.running.render())
        self.persist()

    # --- configuration ---------------------------------------------------------------------------

    def minimal_config(self) -> str:
        key = "hostname" if self.style in ("cisco", "ruijie") else "sysname"
        return f"{key} {self.name}\n"

    def _parse(self, text: str) -> Config:
        config = Config(self.grammar)
        refused = config.load(text)
        if refused:
            self.log(0, "boot", f"refused {len(refused)} lines: {refused[:5]}")
        return config

    def hostname(self, config: Config | None = None) -> str:
        for child in (config or self.running).root.children:
            m = re.fullmatch(r"(?:sysname|hostname) (\S+)", child.text)
            if m:
                return m.group(1)
        return self.name

    def persist(self) -> None:
        self._write(self.dir / "running.cfg", self.running.render())

    def replace_running(self, text: str, why: str) -> None:
        with self.lock:
            self.running = self._parse(text)
            self.persist()
            self.log(0, "system", why)

    def save_startup(self) -> None:
        with self.lock:
            self._write(self.dir / "startup.cfg", self.running.render())

    def startup_text(self) -> str:
        return (self.dir / "startup.cfg").read_text(encoding="utf-8")

    # --- files on flash --------------------------------------------------------------------------

    def flash_path(self, name: str) -> Path | None:
        """Where a device file name (`flash:/archive/a_1.cfg`, `flash:archive-1`, `backup.cfg`) lives."""
        bare = re.sub(r"^flash:/?", "", name)
        if not FILE_NAME.fullmatch(bare) or ".." in bare:
            return None
        return self.flash / bare

    def write_file(self, name: str, text: str) -> bool:
        path = self.flash_path(name)
        if path is None:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write(path, text)
        return True

    def read_file(self, name: str) -> str | None:
        if re.fullmatch(r"(flash:/?)?(startup\.cfg|vrpcfg\.zip)|startup-config|nvram:startup-config", name):
            return self.startup_text()
        path = self.flash_path(name)
        return path.read_text(encoding="utf-8") if path and path.is_file() else None

    # --- automatic rollback ----------------------------------------------------------------------

    def time_scale(self) -> float:
        return float(self._settings().get("time_scale", DEFAULT_TIME_SCALE))

    def schedule_rollback(self, kind: str, seconds: float, before: str | None = None) -> None:
        """Go back to `before` (default: the current running config) after `seconds` (scaled) unless
        confirmed first."""
        with self.lock:
            self.cancel_rollback()
            delay = seconds * self.time_scale()
            timer = threading.Timer(delay, self._expire, args=(kind,))
            timer.daemon = True
            self.pending = PendingRollback(kind, before if before is not None else self.running.render(), timer,
                                           time.monotonic() + delay)
            timer.start()

    def _expire(self, kind: str) -> None:
        with self.lock:
            pending = self.pending
            if pending is None or pending.kind != kind or pending.timer is not threading.current_thread():
                return
            self.pending = None
            self.replace_running(pending.before, f"automatic rollback ({kind}): not confirmed in time")
            if self.two_stage:
                self.add_commit("rollback of an unconfirmed trial", pending.before)

    def cancel_rollback(self) -> PendingRollback | None:
        with self.lock:
            pending, self.pending = self.pending, None
            if pending is not None:
                pending.timer.cancel()
            return pending

    def rollback_now(self, kind: str) -> bool:
        with self.lock:
            pending = self.pending
            if pending is None or pending.kind != kind:
                return False
            self.cancel_rollback()
            self.replace_running(pending.before, f"rollback ({kind}) on request")
            return True

    # --- VRP8 commit points ----------------------------------------------------------------------

    def add_commit(self, user: str, before: str) -> int:
        with self.lock:
            commit_id = (self.commits[-1]["id"] + 1) if self.commits else 1000000001
            self.commits.append({"id": commit_id, "user": user, "time": now().strftime("%Y-%m-%d %H:%M:%S+08:00"),
                                 "before": before})
            self.commits = self.commits[-50:]
            self._write(self.dir / "commits.json", json.dumps(self.commits))
            return commit_id

    # --- faults, settings, log -------------------------------------------------------------------

    def _reread(self, filename: str) -> Any:
        path = self.dir / filename
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return {}
        cached = self._cache.get(filename)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            self.log(0, "system", f"ignoring unreadable {filename}: {exc}")
            data = {}
        self._cache[filename] = (mtime, data)
        return data

    def faults(self) -> Faults:
        data = self._reread("faults.yaml")
        return Faults(
            reject=[re.compile(p) for p in data.get("reject") or []],
            drop_after=data.get("drop_after"),
            latency_ms=int(data.get("latency_ms") or 0),
            config_latency_ms=int(data.get("config_latency_ms") or 0),
            stall_after=data.get("stall_after"),
            stall_scope=str(data.get("stall_scope") or "all"),
        )

    def stall(self, session: int, lines: int) -> None:
        if not self._stalled:
            self.log(session, "fault", f"stalling after {lines} config lines: no answers until the fault is cleared")
        self._stalled = True

    def stalled(self, config_mode: bool) -> bool:
        """Whether a line typed now (in configuration mode or not) goes unanswered."""
        faults = self.faults()
        if faults.stall_after is None:
            self._stalled = False
            return False
        if faults.stall_after == 0:
            self._stalled = True
        return self._stalled and (faults.stall_scope != "config" or config_mode)

    def _settings(self) -> dict[str, Any]:
        return self._reread("settings.yaml")

    def log(self, session: int, where: str, text: str) -> None:
        stamp = now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        with self.lock:
            if self._log.closed:  # a session still ending after the device stopped
                return
            masked = SECRET_VALUE.sub(r"\1\2 ******", text)
            self._log.write(f"{stamp} s{session} [{where}] {masked}\n")
            self._log.flush()

    def next_session_id(self) -> int:
        return next(self._session_ids)

    def close(self) -> None:
        self.cancel_rollback()
        for session in list(self.sessions):
            session.kill()
        self._log.close()

    def check_password(self, username: str, password: str) -> bool:
        return hmac.compare_digest(username.encode(), self.spec.username.encode()) and \
            hmac.compare_digest(password.encode(), self.spec.password.encode())

    @staticmethod
    def _read_json(path: Path, default: Any) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return default

    @staticmethod
    def _write(path: Path, text: str) -> None:
        write_atomic(path, text)


def now() -> dt.datetime:
    return dt.datetime.now(LOCAL_TZ)

