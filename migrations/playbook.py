"""One step's playbook run through ansible-runner, and what its events say, as data.

A step playbook (`playbooks/<step>.yml`) hands the engine what the journal records as data: a module's
return values carry a `report` name (`jiyue_sync`'s `first_pass`, `jiyue_manifest`'s `manifest`, …) and a
`set_stats` task's `data` is keyed by its own names (the precheck's `sources`). `summarise` reads those by
name from ansible-runner's event stream (`event_data.res`), and which step an event belongs to from the
file of its task; never from a task's title, so a task renamed in YAML changes nothing the engine reads.
"""

from __future__ import annotations

import difflib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ansible_runner

from jiyue import ansible
from migrations.reaper import guarded

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")


@dataclass
class PlaybookResult:
    """What one playbook run (or the part of a cutover run that was one step) did."""

    ok: bool
    status: str
    reports: dict[str, dict[str, dict]] = field(default_factory=dict)  # report name -> host -> its values
    reported_at: dict[str, datetime] = field(default_factory=dict)  # report name -> its last ok (controller clock)
    first_task_at: datetime | None = None  # the step's own first task started (controller clock)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    changed: bool = False  # a task changed something (in check mode: would have)
    diff: str = ""  # what the tasks that return a diff (--diff) changed, as unified diffs

    def report(self, name: str) -> dict[str, dict]:
        """host -> the values reported under `name` (empty when no task reported it)."""
        return self.reports.get(name, {})


def event_time(event: dict) -> datetime:
    """When ansible-runner saw the event (the controller's clock: every host's times compare)."""
    created = event.get("created")
    if not created:
        return datetime.now(UTC)
    at = datetime.fromisoformat(created)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def event_step(event: dict) -> str:
    """The step an event belongs to: the file its task is in names it (`playbooks/<step>.yml`)."""
    path = (event.get("event_data") or {}).get("task_path") or ""
    return Path(path.rsplit(":", 1)[0]).stem if path else ""


def event_module(event: dict) -> str:
    """The module (action) of the event's task, short name: `jiyue_route`, `shell`, …"""
    data = event.get("event_data") or {}
    return str(data.get("resolved_action") or data.get("task_action") or "").rsplit(".", 1)[-1]


def failed_event(event: dict) -> bool:
    """A task failed on a host (not an ignored error, not a tolerated unreachable host)."""
    data = event.get("event_data") or {}
    if event.get("event") == "runner_on_failed":
        return not data.get("ignore_errors")
    if event.get("event") == "runner_on_unreachable":
        return not (data.get("res") or {}).get("skip_reason")
    return False


def failure_message(res: dict) -> str:
    """What a failed task said, shortest useful form: a command's own error output rather than Ansible's."""
    msg = res.get("msg") or res.get("stderr") or ""
    if msg == "non-zero return code":
        out = (res.get("stderr") or "").strip() or "\n".join((res.get("stdout") or "").strip().splitlines()[-8:])
        msg = f"exit {res.get('rc')}: {out}"
    if not msg and res.get("results"):
        msg = "; ".join(str(r.get("msg") or r.get("stderr") or "") for r in res["results"] if r.get("failed"))
    return str(msg).strip()[:500]


def reported(res: dict) -> dict[str, dict]:
    """The named values a task's result hands the engine: a module's `report`, or a `set_stats` task's data."""
    stats = res.get("ansible_stats")
    if isinstance(stats, dict) and isinstance(stats.get("data"), dict):
        return {str(k): v for k, v in stats["data"].items() if isinstance(v, dict)}
    name = res.get("report")
    return {str(name): res} if name else {}


def diff_text(host: str, res: dict) -> str:
    """A task's `--diff` output (one or several before/after pairs) as unified diffs naming the host."""
    pairs = res.get("diff") or []
    out = []
    for d in pairs if isinstance(pairs, list) else [pairs]:
        if not isinstance(d, dict):
            continue
        if d.get("prepared"):
            out.append(f"{host}: {d['prepared']}")
            continue
        before, after = d.get("before"), d.get("after")
        if not isinstance(before, str) or not isinstance(after, str) or before == after:
            continue
        out += difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                    f"{host}:{d.get('before_header', 'before')}",
                                    f"{host}:{d.get('after_header', 'after')}")
    return "".join(out)


def summarise(events: Sequence[dict], ok: bool, status: str, seconds: float, step: str | None = None
              ) -> PlaybookResult:
    """What a playbook run's events say: each report per host, failures, the changes and diffs, and when the
    first task of `step`'s own playbook started (with `step` None: the first task of any)."""
    result = PlaybookResult(ok, status, seconds=seconds)
    for ev in events:
        data = ev.get("event_data") or {}
        kind = ev.get("event")
        if kind == "playbook_on_task_start" and result.first_task_at is None \
                and (step is None or event_step(ev) == step):
            result.first_task_at = event_time(ev)
        if kind not in RESULT_EVENTS:
            continue
        host, res = str(data.get("host", "")), data.get("res") or {}
        if kind == "runner_on_ok":
            for name, values in reported(res).items():
                result.reports.setdefault(name, {})[host] = values
                result.reported_at[name] = event_time(ev)
            result.changed = result.changed or bool(res.get("changed"))
            result.diff += diff_text(host, res)
        if failed_event(ev):
            what = data.get("task") if kind == "runner_on_failed" else "unreachable"
            result.failures.append(f"{host}: {what}: {failure_message(res)}")
    return result


def runner_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every step's ansible-runner: this checkout's Ansible, host keys checked."""
    env = ansible.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["ANSIBLE_HOST_KEY_CHECKING"] = "True"  # ansible-runner turns it off by default: not here
    # Ansible's default minus -C: compressing module payloads on a LAN costs CPU inside the downtime.
    env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=auto -o ControlPersist=60s"
    return env | (extra or {})


def run_playbook(name: str, *, private_dir: Path, inventory_file: Path, extravars: dict[str, Any],
                 env: dict[str, str], check: bool, tags: Sequence[str] | None = None,
                 on_event: Callable[[dict], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> PlaybookResult:
    """Run playbooks/<name>.yml (check mode: `--check --diff`); `on_event(event)` sees each event as it happens,
    `cancel()` True stops the run. With `tags` (a cutover), the first failure ends the run."""
    events: list[dict] = []

    def handler(event: dict) -> bool:
        events.append(event)
        if on_event is not None:
            on_event(event)
        return True

    private_dir.mkdir(parents=True, exist_ok=True)
    if tags:
        env = {**env, "ANSIBLE_ANY_ERRORS_FATAL": "True"}
    began = time.monotonic()
    # Guarded: nothing this run starts outlives it, nor an engine killed meanwhile (migrations.reaper).
    with guarded(private_dir, playbook=name, run_key=str(extravars.get("jiyue_run_key", ""))) as token:
        runner = ansible_runner.run(
            private_data_dir=str(private_dir), playbook=str(PLAYBOOKS / f"{name}.yml"), inventory=str(inventory_file),
            extravars=extravars, cmdline="--check --diff" if check else None, envvars=env | token,
            tags=",".join(tags) if tags else None, quiet=True, event_handler=handler,
            cancel_callback=cancel or (lambda: False), rotate_artifacts=50, ident=f"{name}-{uuid.uuid4().hex[:8]}",
            # Never env/ files: ansible-runner would reuse an earlier run's (its cmdline, extravars, agent socket).
            suppress_env_files=True)
    seconds = time.monotonic() - began
    ok = runner.status == "successful" and runner.rc == 0
    result = summarise(events, ok, runner.status, seconds, step=None if tags else name)
    if not ok and not result.failures:
        tail = (runner.stdout.read() if runner.stdout else "").strip().splitlines()[-5:]
        result.failures.append(f"{name}.yml {runner.status} (rc {runner.rc}): " + " | ".join(tail))
    return result

