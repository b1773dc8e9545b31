"""Classified (涉密) systems are not ours to touch, proven on the lab.

Under 分级保护 a classified system is the confidential bureau's: by default jiyue opens no SSH session to
its hosts, judges it as no zombie and shows only its declared fields. Each lab host's sshd logs every
session it accepts (`.lab/hosts/NAME/sshd.log`), so "no session" is read where a session would be
written down; the explicit override shows that the log does see one when it happens.
"""

from __future__ import annotations

import pytest

from audit import service
from audit.collect import CollectOptions, collect
from inventory.groups import ClassifiedRefused
from jiyue.store import AUDIT_COLLECT, Store

CLASSIFIED = {"gaj-qbyp-app1": "gaj-qbyp", "szfb-jmwj-app1": "szfb-jmwj"}


def sessions(lab, host: str) -> int:
    """SSH sessions the host's sshd has accepted since the lab started it."""
    log = lab.host_dir(host) / "sshd.log"
    return log.read_text(errors="replace").count("Accepted publickey") if log.exists() else 0


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path}/history.sqlite")


def test_the_default_audit_opens_no_session_to_a_classified_host(lab, demo, store):
    before = {h: sessions(lab, h) for h in demo.hosts}
    result = service.collect_and_judge(demo, store, progress=False)
    after = {h: sessions(lab, h) for h in demo.hosts}
    assert {h: after[h] - before[h] for h in CLASSIFIED} == dict.fromkeys(CLASSIFIED, 0)
    assert after["szfb-oa-app1"] == before["szfb-oa-app1"] + 1  # the log does record a session
    assert sorted(r.target for r in result.collection) == demo.contactable_hosts()
    assert result.not_collected == []
    assert {v.system for v in result.verdicts}.isdisjoint(CLASSIFIED.values())  # not judged as zombies
    assert {r.target for r in store.history(AUDIT_COLLECT)}.isdisjoint(CLASSIFIED)


def test_naming_a_classified_host_is_refused_before_any_session(lab, demo, store):
    before = {h: sessions(lab, h) for h in ("szfb-oa-app1", "szfb-jmwj-app1")}
    with pytest.raises(ClassifiedRefused, match="szfb-jmwj-app1 \\(szfb-jmwj 机要文件流转系统\\)"):
        collect(demo, ["szfb-oa-app1", "szfb-jmwj-app1"], CollectOptions(), store=store, progress=False)
    with pytest.raises(ClassifiedRefused):
        service.collect_and_judge(demo, store, ["szfb-jmwj-app1"], progress=False)
    assert {h: sessions(lab, h) for h in before} == before  # not even the host that may be contacted
    assert store.history(AUDIT_COLLECT) == []


def test_the_explicit_override_reaches_it_and_the_archive_still_shows_no_fact(lab, demo, store):
    before = sessions(lab, "szfb-jmwj-app1")
    _, [result] = collect(demo, ["szfb-jmwj-app1"], CollectOptions(include_classified=True), store=store,
                          progress=False)
    assert result.ok and sessions(lab, "szfb-jmwj-app1") == before + 1
    judged = service.judge(demo, store)
    assert "szfb-jmwj" not in {v.system for v in judged.verdicts}
    assert judged.judge.history.facts()["szfb-jmwj-app1"] == {}  # stored, never read into a verdict or report
