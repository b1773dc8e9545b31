"""jiyue/store.py on both dialects the README offers (`--store sqlite:///…`, `--store postgresql+psycopg://…`):
the SQL that could differ between SQLite and PostgreSQL — JSON with Chinese text, time zones, the 500-host
chunked replace of readings, LIKE with escaped prefixes, a primary-key conflict inside a transaction, dates —
run against a real SQLite file and a real PostgreSQL cluster (tests/conftest.py `postgres`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from jiyue.runner import Result
from jiyue.store import AUDIT_COLLECT, Store

T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def test_runs_results_and_as_of(store_url):
    store = Store(store_url)
    first = store.record(AUDIT_COLLECT, [Result("h1", True, {"名称": "发改委", "n": 1}, started=T0),
                                         Result("h2", False, None, "unreachable", "timeout", started=T0)],
                         started=T0, params={"说明": "首次"})
    store.record(AUDIT_COLLECT, [Result("h1", True, {"n": 2}, started=T0 + timedelta(days=1))],
                 started=T0 + timedelta(days=1))
    records = store.history(AUDIT_COLLECT)
    assert [(r.target, r.status) for r in records] == [("h1", "ok"), ("h2", "unreachable"), ("h1", "ok")]
    assert records[0].data == {"名称": "发改委", "n": 1} and records[0].at == T0 and records[0].at.tzinfo
    assert [r.data["n"] for r in store.history(AUDIT_COLLECT, ["h1"], ok_only=True)] == [1, 2]
    past = store.as_of(T0 + timedelta(hours=1))
    assert [r.run_id for r in past.history(AUDIT_COLLECT)] == [first, first]
    assert [k for k, _ in past.run_times()] == [AUDIT_COLLECT]


def test_readings_replace_their_window_in_chunks(store_url):
    store = Store(store_url)
    hosts = [f"h{i:04d}" for i in range(1203)]  # over two chunks of 500 hosts
    rows = [{"host": h, "at": T0 + timedelta(days=d), "seconds": 86400, "cpu_pct": 1.5, "cpus": 2,
             "memory_used_gb": 0.5, "net_mb_per_day": None, "seeded": d == 0} for h in hosts for d in range(3)]
    window = {"hosts": hosts, "since": T0 - timedelta(days=1), "until": T0 + timedelta(days=5)}
    store.record_readings("zabbix", rows, **window)
    again = store.record_readings("zabbix", rows[:30], **window)  # the same window again: replaced, not added
    store.record_readings("prometheus", rows[:3], **window)  # another source's readings stay
    readings = store.readings(["h0000", "h1202"])
    assert [(r.source, r.host, r.at) for r in readings] == [
        ("zabbix", "h0000", T0), ("prometheus", "h0000", T0), ("zabbix", "h0000", T0 + timedelta(days=1)),
        ("prometheus", "h0000", T0 + timedelta(days=1)), ("zabbix", "h0000", T0 + timedelta(days=2)),
        ("prometheus", "h0000", T0 + timedelta(days=2))]
    assert {r.run_id for r in readings if r.source == "zabbix"} == {again}
    assert readings[0].seeded and readings[0].net_mb_per_day is None and readings[0].cpus == 2
    assert len(store.readings(source="zabbix")) == 30
    assert len(store.as_of(T0 + timedelta(days=1)).readings(["h0001"], source="zabbix")) == 2


def test_share_requests_keep_their_first_answer(store_url):
    store = Store(store_url)
    asked = store.add_share_request("fgw-hgjj/企业名录", "gxj", date(2026, 2, 27), purpose="核查", inventory="city")
    assert store.answer_share_request(asked.id, date(2026, 3, 2), "granted", "同意").decision == "granted"
    again = store.answer_share_request(asked.id, date(2026, 3, 9), "refused")
    assert (again.answered_on, again.decision, again.note) == (date(2026, 3, 2), "granted", "同意")
    assert store.answer_share_request(asked.id + 99, date(2026, 3, 9), "refused") is None
    [only] = store.share_requests("city")
    assert only.requested_on == date(2026, 2, 27) and only.resource == "fgw-hgjj/企业名录"
    assert store.share_requests("other") == []


def test_journal_prefixes_are_escaped_and_locks_conflict(store_url):
    store = Store(store_url)
    store.journal("migrate_100%:a", "s1", "copy", "started", {"路径": "/srv"}, at=T0)
    store.journal("migrate_100%:a", "s1", "copy", "done", at=T0 + timedelta(minutes=5))
    store.journal("migrateX100Z:b", "s2", "copy", "started", at=T0)  # `_` and `%` are not wildcards
    assert [e.status for e in store.journal_entries(prefix="migrate_100%")] == ["started", "done"]
    assert store.journal_entries(subject="s1")[0].detail == {"路径": "/srv"}
    assert len(store.as_of(T0 + timedelta(minutes=1)).journal_entries(subject="s1")) == 1
    assert store.acquire_lock("s1", "run-a", 1, "ctl") and not store.acquire_lock("s1", "run-b", 2, "ctl")
    assert store.lock("s1").holder == "run-a"
    assert not store.release_lock("s1", "run-b") and store.release_lock("s1", "run-a") and store.locks() == []
