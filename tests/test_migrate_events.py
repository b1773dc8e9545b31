"""The migration engine's pure parts, without root or a lab: what a playbook's events say, how a cutover is
journaled step by step from its event stream, how a journal decodes into a system's outcome.

The event lists under tests/fixtures/migrate/ were captured from ansible-runner in a real lab migration of
fgw-xmk (two sources onto two targets; `cutover-rehearsal` is zjj-jzsc's rehearsal, check mode with
--diff; `precheck-failed` is jyj-web's precheck onto a full target disk, `cutover-failed` gaj-web's cutover
with its target's health check broken), trimmed to the fields the engine reads.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jiyue.store import JournalEntry
from migrations.engine import CUTOVER
from migrations.journal import CutoverTracker, StepFailed, outcome_of, step_detail, system_state
from migrations.model import HostTarget, MigrationOutcome, SystemPlan
from migrations.playbook import event_time, failed_event, failure_message, summarise

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "migrate"
PLAN = SystemPlan(system="fgw-xmk", name="x", department="fgw", disposition="cloud_rehost", rule="test",
                  urgency=3, importance=3, wave=1, downtime_budget_s=300,
                  targets=[HostTarget(source="fgw-xmk-app1", target="zwy-01", flavor="c2m4", need_vcpus=1,
                                      need_memory_gb=1, need_disk_gb=1),
                           HostTarget(source="fgw-xmk-db1", target="zwy-02", flavor="c2m4", need_vcpus=1,
                                      need_memory_gb=1, need_disk_gb=1)])


def events(name: str) -> list[dict]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def renamed(evs: list[dict]) -> list[dict]:
    """The same run with every task and play titled differently (what a YAML edit does)."""
    out = copy.deepcopy(evs)
    for i, ev in enumerate(out):
        data = ev["event_data"]
        if "task" in data:
            data["task"] = f"a task retitled in review #{i}"
        if "play" in data:
            data["play"] = f"a play retitled #{i}"
    return out


def journal_cutover(evs: list[dict], steps=CUTOVER) -> tuple[list[str], dict[str, dict], list[str]]:
    """Feed a cutover's events to the tracker as the engine does; (steps begun, details, signals)."""
    begun: list[str] = []
    details: dict[str, dict] = {"precheck": step_detail("precheck", summarise(events("precheck"), True, "ok", 1.0,
                                                                              step="precheck"), PLAN, {}, apply=True)}
    signals: list[str] = []

    def end(step, result, ended):
        details[step] = step_detail(step, result, PLAN, details, apply=True, ended=ended)

    tracker = CutoverTracker(steps, begin=begun.append, end=end, on_targets_running=lambda: signals.append("running"))
    tracker.begin(steps[0])
    for ev in evs:
        tracker.event(ev)
    assert tracker.error is None
    tracker.finish(tracker.stats_at)
    return begun, details, signals


def first(evs: list[dict], kind: str, path_part: str) -> dict:
    return next(e for e in evs if e["event"] == kind and path_part in (e["event_data"].get("task_path") or ""))


# --- step results, read as data ------------------------------------------------------------------------------


def test_precheck_reports_the_directories_to_copy_per_source():
    detail = step_detail("precheck", summarise(events("precheck"), True, "successful", 2.0, step="precheck"), PLAN,
                         {}, apply=True)
    assert set(detail["dirs"]) == {"fgw-xmk-app1", "fgw-xmk-db1"}
    assert all(d and all(p.startswith("/") for p in d) for d in detail["dirs"].values())
    assert all(isinstance(n, int) and n > 0 for n in detail["bytes"].values())


def test_presync_passes_are_told_apart_by_their_report_name():
    detail = step_detail("presync", summarise(events("presync"), True, "successful", 2.0, step="presync"), PLAN,
                         {}, apply=True)
    assert detail["first_files"] > 0 and detail["first_bytes_sent"] > 0
    assert detail["delta_s"] > 0 and detail["bytes"] > 0


def test_a_cutover_is_journaled_step_by_step_from_its_events():
    evs = events("cutover")
    begun, details, signals = journal_cutover(evs)
    assert begun == list(CUTOVER)
    assert signals == ["running"]  # the testinfra check starts once, when the route's module starts
    # The downtime starts with the freeze's own first task; clients reach the target when the route is in place.
    assert details["freeze"]["frozen_at"] == event_time(first(evs, "playbook_on_task_start", "freeze.yml")).isoformat()
    assert details["switch"]["served_at"] == event_time(first(evs, "runner_on_ok", "switch.yml:37")).isoformat()
    assert details["final_sync"]["final_s"] >= 0 and details["final_sync"]["bytes"] > 0
    assert details["verify_data"]["files"] > 0
    assert set(details["verify_data"]["manifests"]) == {"fgw-xmk-app1", "fgw-xmk-db1", "zwy-01", "zwy-02"}
    assert 0 < details["verify_function"]["outage_s"] < details["verify_function"]["downtime_s"]


def test_retitled_tasks_change_nothing_the_journal_records():
    """The journal used to find its details by task title: retitling a task in YAML silently emptied them."""
    _, before, signals_before = journal_cutover(events("cutover"))
    _, after, signals_after = journal_cutover(renamed(events("cutover")))
    assert after == before and signals_after == signals_before
    for step in ("precheck", "presync"):
        original = summarise(events(step), True, "successful", 1.0, step=step)
        retitled = summarise(renamed(events(step)), True, "successful", 1.0, step=step)
        assert step_detail(step, retitled, PLAN, {}, apply=True) == step_detail(step, original, PLAN, {}, apply=True)


def test_a_resumed_cutover_starts_at_the_first_step_still_to_do():
    evs = [e for e in events("cutover") if not any(s in (e["event_data"].get("task_path") or "")
                                                   for s in ("freeze.yml", "final_sync.yml"))]
    begun, details, _ = journal_cutover(evs, steps=CUTOVER[2:])
    assert begun == list(CUTOVER[2:])
    assert "downtime_s" not in details["verify_function"]  # no freeze in this run's details: not measured here


def test_overlapping_directories_onto_one_target_fail_the_precheck():
    shared = PLAN.model_copy(update={"targets": [t.model_copy(update={"target": "zwy-01"}) for t in PLAN.targets]})
    result = summarise(events("precheck"), True, "successful", 1.0, step="precheck")
    for host in result.report("sources").values():
        host["dirs"] = ["/srv/fgw-xmk"]
    with pytest.raises(StepFailed, match="both hold /srv/fgw-xmk"):
        step_detail("precheck", result, shared, {}, apply=True)


# --- summaries -------------------------------------------------------------------------------------------------


def test_summary_of_an_applied_cutover_says_it_changed_something():
    result = summarise(events("cutover"), True, "successful", 3.0)
    assert result.ok and result.changed and result.failures == []
    assert result.diff == ""  # an applied run is not run with --diff
    assert result.first_task_at == event_time(first(events("cutover"), "playbook_on_task_start", "cutover.yml"))


def test_summary_of_a_rehearsal_carries_the_diff_of_what_would_change():
    result = summarise(events("cutover-rehearsal"), True, "successful", 3.0)
    assert "-    proxy_pass http://198.18.10.71:8080/;" in result.diff
    assert "+    proxy_pass http://198.18.20.20:8080/;" in result.diff
    assert "zwy-wg:/etc/app/gateway/routes/zjj-jzsc.conf" in result.diff


# --- failed events ---------------------------------------------------------------------------------------------


def failed_fixture() -> list[dict]:
    return events("precheck-failed")


def test_a_failed_task_is_parsed_into_host_and_message():
    evs = failed_fixture()
    failed = [e for e in evs if failed_event(e)]
    assert failed, "the fixture holds a real failure"
    result = summarise(evs, False, "failed", 1.0, step="precheck")
    host = failed[0]["event_data"]["host"]
    assert result.failures and result.failures[0].startswith(f"{host}: ")
    assert failure_message(failed[0]["event_data"]["res"]) in result.failures[0]


def test_ignored_errors_and_tolerated_unreachable_hosts_are_not_failures():
    ev = copy.deepcopy(next(e for e in failed_fixture() if failed_event(e)))
    ev["event_data"]["ignore_errors"] = True
    assert not failed_event(ev)
    unreachable = {"event": "runner_on_unreachable", "event_data": {"host": "h", "res": {"skip_reason": "x"}}}
    assert not failed_event(unreachable)
    unreachable["event_data"]["res"] = {"msg": "Failed to connect to the host via ssh"}
    assert failed_event(unreachable)
    assert summarise([unreachable], False, "failed", 0.0).failures == [
        "h: unreachable: Failed to connect to the host via ssh"]


def test_a_command_failure_names_what_the_command_said():
    assert failure_message({"msg": "non-zero return code", "rc": 3, "stderr": "no space left\n"}) == \
        "exit 3: no space left"
    assert failure_message({"results": [{"failed": True, "msg": "a"}, {"failed": False, "msg": "b"}]}) == "a"


# --- outcome decoding ------------------------------------------------------------------------------------------


def journal(*rows: tuple[str, str]) -> list[JournalEntry]:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return [JournalEntry(i, "migrate-apply-x", "fgw-xmk", step, status, at, {"n": i})
            for i, (step, status) in enumerate(rows)]


@pytest.mark.parametrize(("rows", "outcome"), [
    ([("queued", "done"), ("precheck", "started")], None),
    ([("queued", "done"), ("precheck", "done"), ("freeze", "refused")], "refused"),
    ([(s, "done") for s in ("queued", "precheck", "presync", *CUTOVER, "done")], "migrated"),
    ([("precheck", "done"), ("freeze", "failed"), ("rollback", "started"), ("rollback", "done")], "rolled_back"),
    ([("precheck", "done"), ("freeze", "failed"), ("rollback", "failed")], "failed"),
    ([("done", "done"), ("decommission", "started"), ("decommission", "done")], "decommissioned"),
    ([("done", "done"), ("rollback", "started")], None),  # a rollback under way: not migrated any more
])
def test_outcome_of_a_journal(rows, outcome):
    status, details = system_state(journal(*rows))
    assert outcome_of(status) == outcome
    assert set(details) == {step for step, s in rows if s == "done"}


def test_the_last_row_of_a_step_counts_and_done_rows_keep_their_detail():
    status, details = system_state(journal(("presync", "started"), ("presync", "failed"), ("presync", "started"),
                                           ("presync", "done")))
    assert status == {"presync": "done"} and details == {"presync": {"n": 3}}


def test_a_migration_outcome_reports_like_every_domain():
    ok = MigrationOutcome("fgw-xmk", "k", "migrated", "now on zwy-01", 3.1, 2.6, ["precheck"], changed=True)
    refused = MigrationOutcome("rsj-rczp", "k", "refused", "over budget")
    assert ok.ok and not refused.ok
    assert MigrationOutcome("x", "k", "already_migrated").ok and MigrationOutcome("x", "k", "rehearsed").ok
    result = ok.to_result()
    assert (result.target, result.ok, result.error_kind, result.value["downtime_s"]) == ("fgw-xmk", True, None, 3.1)
    assert getattr(result, "changed", True) is True
    failed = refused.to_result()
    assert (failed.ok, failed.error_kind, failed.error) == (False, "refused", "over budget")


def test_the_failed_precheck_names_the_host_the_check_and_what_it_found():
    result = summarise(failed_fixture(), False, "failed", 1.0, step="precheck")
    assert result.failures == ["zwy-08: The target has room for the data (free >= size x margin): "
                               "zwy-08 has 16384 bytes free, needs 78440"]


def test_a_failed_cutover_names_the_step_that_failed_and_journals_the_ones_before():
    """gaj-web's cutover with its target's health check broken on purpose: the gateway refuses the route."""
    ended: list[str] = []
    tracker = CutoverTracker(CUTOVER, begin=lambda step: None, end=lambda step, result, at: ended.append(step))
    tracker.begin(CUTOVER[0])
    for ev in renamed(events("cutover-failed")):  # by file and module, not by title
        tracker.event(ev)
    assert tracker.failed_step == "switch" and tracker.current == "switch"
    assert ended == ["freeze", "final_sync", "verify_data"]
    failures = tracker.result("switch", False, "failed").failures
    assert len(failures) == 1 and failures[0].startswith("zwy-wg: ")
    assert "does not answer from here (HTTP 404): the route is left as it was" in failures[0]
