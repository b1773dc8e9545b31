"""Remediation on the lab: dry run changes nothing, --apply makes the fixable items pass, a second
run changes nothing, and the operator can still log in with its key."""

from __future__ import annotations

import subprocess

import pytest

from audit.baseline import model, service
from audit.baseline import remediate as rem
from audit.baseline.model import FAIL, REGISTRY
from jiyue import ssh
from lab.baseline_seed import expected_failures, load, seed_baseline
from lab.hosts import SSHD

HOSTS = ["dsj-zwfw-app1", "szfb-dcdb-app1", "szfb-web-app1", "fgw-xyxx-app1", "dxzf-wgzl-app1", "zjj-wxzj-app1"]
WATCHED = ["/etc/ssh/sshd_config", "/etc/login.defs", "/etc/security/pwquality.conf", "/etc/security/faillock.conf",
           "/etc/pam.d/system-auth", "/etc/pam.d/common-password", "/etc/pam.d/common-auth",
           "/etc/profile.d/jiyue-security.sh", "/etc/logrotate.conf", "/etc/shadow"]


def _state(lab, host: str) -> dict[str, tuple[str, int]]:
    out = {}
    for f in [*WATCHED, "/var/log/secure", "/var/log/auth.log"]:
        p = lab.path(host, f)
        if p.exists():
            out[f] = (p.read_text(errors="replace"), p.stat().st_mode & 0o777)
    return out


def _failed(results) -> dict[str, set[str]]:
    return {r.target: {row["check"] for row in r.value["rows"] if row["status"] == FAIL} for r in results}


@pytest.fixture
def fresh(baseline_seeded, lab, demo):
    """The remediated hosts get their seeded state back afterwards (other tests expect it)."""
    yield
    seed_baseline(lab, demo, hosts=HOSTS)


def test_remediation_fixes_what_it_can_and_is_idempotent(fresh, lab, demo):
    catalog = model.load_catalog()
    profile = model.load_profile(None, catalog)
    data = load()
    fixable = {c for c, chk in REGISTRY.items() if chk.fixable}
    allow_users = {h: [x for x in _state(lab, h)["/etc/ssh/sshd_config"][0].splitlines()
                       if x.startswith(("AllowUsers", "PasswordAuthentication", "PubkeyAuthentication"))]
                   for h in HOSTS}
    state = {h: _state(lab, h) for h in HOSTS}

    dry = service.remediate(demo, HOSTS, profile=profile, catalog=catalog, progress=False)
    assert dry.ok, dry.failures
    before = dry.before.results
    fixes, families = rem.planned_fixes(before)
    assert dry.fixes == fixes
    levels = {r.target: r.value["level"] for r in before}
    for host in HOSTS:
        seeded = {c for c in expected_failures(data, host) if any(
            c in item.checks for item in catalog.items_at(levels[host]))}
        assert _failed(before)[host] == seeded
        assert set(fixes.get(host, [])) == seeded & fixable
    assert fixes["dsj-zwfw-app1"] == ["login.lockout", "password.complexity", "session.tmout"]
    assert {h for h, x in dry.hosts.items() if x.changed} == set(fixes)  # it says what it would change …
    assert any(x.diff for x in dry.hosts.values()) and dry.after is None
    assert {h: _state(lab, h) for h in HOSTS} == state  # … and changes nothing

    applied = service.remediate(demo, HOSTS, profile=profile, catalog=catalog, apply=True, progress=False)
    assert applied.ok, applied.failures
    assert applied.fixes == fixes and applied.still_failing == {}
    assert {r.target for r in applied.after.results} == set(fixes)  # the remediated hosts, checked again
    after = service.check(demo, HOSTS, profile=profile, catalog=catalog, progress=False).results
    for host in HOSTS:
        assert _failed(after)[host] == _failed(before)[host] - fixable, host  # only the unfixable remain

    again = rem.run(demo, fixes, families, profile, catalog, apply=True)
    assert again.ok and not any(x.changed for x in again.hosts.values()), {h: x.tasks for h, x in again.hosts.items()}

    for host in HOSTS:  # the operator still gets in with its key; sshd's config is valid; access unchanged
        out = ssh.run(ssh.Target.of(demo, host), "id -u; grep -i '^PermitRootLogin' /etc/ssh/sshd_config")
        assert out.stdout.decode().split("\n")[0] == "0"
        config = lab.path(host, "/etc/ssh/sshd_config")
        assert subprocess.run([str(SSHD), "-t", "-f", str(config)]).returncode == 0
        assert [x for x in config.read_text().splitlines() if x.startswith(
            ("AllowUsers", "PasswordAuthentication", "PubkeyAuthentication"))] == allow_users[host]
    root_login = ssh.run(ssh.Target.of(demo, "fgw-xyxx-app1"), "grep -i '^PermitRootLogin' /etc/ssh/sshd_config")
    assert root_login.stdout.decode().split() == ["PermitRootLogin", "prohibit-password"]


DEBIAN_STOCK_AUTH = ("auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
                     "auth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n")


def test_lockout_on_a_debian_stack_keeps_the_right_password_working(fresh, lab, demo):
    """Debian's stock common-auth jumps over one line after pam_unix; the remediation adds the authfail line
    there, so the jump must grow by one, or every right password lands on pam_deny (pam.py runs the stack)."""
    host = "dxzf-wgzl-app1"  # UOS 20: the Debian family
    lab.path(host, "/etc/pam.d/common-auth").write_text(DEBIAN_STOCK_AUTH)
    catalog = model.load_catalog()
    profile = model.load_profile(None, catalog)
    before = service.check(demo, [host], profile=profile, catalog=catalog, progress=False).results
    assert "login.lockout" in _failed(before)[host]
    fixes, families = rem.planned_fixes(before)
    assert families[host] == "debian" and "login.lockout" in fixes[host]
    done = rem.run(demo, {host: ["login.lockout"]}, families, profile, catalog, apply=True)
    assert done.ok, done.hosts
    stack = lab.path(host, "/etc/pam.d/common-auth").read_text()
    assert "[success=2 default=ignore]\tpam_unix.so nullok" in stack, stack
    after = service.check(demo, [host], profile=profile, catalog=catalog, progress=False).results
    assert "login.lockout" not in _failed(after)[host], [r for r in after[0].value["rows"]
                                                          if r["check"] == "login.lockout"]
    again = rem.run(demo, {host: ["login.lockout"]}, families, profile, catalog, apply=True)
    assert again.ok and not any(x.changed for x in again.hosts.values())
