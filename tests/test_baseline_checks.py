"""The baseline's catalog, profiles and checks on captured evidence (no lab needed)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest

from audit.baseline import engine, model
from audit.baseline.evidence import Evidence, family_of, logrotate_days
from audit.baseline.model import FAIL, NEEDS_EVIDENCE, PASS, REGISTRY, CheckVerdict
from audit.baseline.probes import ConfigFiles, Shadow
from audit.probes import Context
from jiyue import i18n


@pytest.fixture(scope="module")
def catalog():
    return model.load_catalog()


@pytest.fixture(scope="module")
def params(catalog):
    return model.load_profile(None, catalog).params(catalog)


def ev(files: dict[str, str], **facts) -> Evidence:
    return Evidence({"config": {p: t.splitlines() for p, t in files.items()}, **facts})


def test_catalog_covers_both_levels_with_labels(catalog):
    l3, l2 = catalog.items_at(3), catalog.items_at(2)
    assert len(l3) == 34 and {i.test_id for i in l3} == {f"L3-CES1-{n:02d}" for n in range(1, 36) if n != 16}
    assert not any(i.id.startswith("8.1.4.8") for i in l2)  # level 2 has no 数据保密性
    assert {i.clause_at(2) for i in l2 if i.id.startswith("8.1.4.9")} == {"7.1.4.8 a", "7.1.4.8 b"}
    used = {c for i in catalog.items for c in i.checks}
    linux = {c for c, chk in REGISTRY.items() if chk.kind == "linux"}
    assert linux <= used  # every Linux check decides some item (device checks join the same items)
    for c in used:  # a name and a remediation hint in both languages for every check
        assert i18n.t(f"baseline.check.{c}", "zh") and i18n.t(f"baseline.hint.{c}", "en")
    assert all(spec["source"] in ("ref", "csl", "jiyue") for spec in catalog.parameters.values())


def test_profiles_override_parameters_without_code(catalog, tmp_path):
    city = model.load_profile(model.PROFILES / "example-city.yaml", catalog)
    assert city.level == 3 and city.params(catalog)["pass_max_days"] == 180
    assert city.params(catalog)["lockout_deny"] == 5  # not named: the catalog's default
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: level2\nparameters: {pass_max_dayz: 30}\n")
    message = re.escape("bad.yaml: parameters.pass_max_dayz: not a catalog parameter")
    with pytest.raises(model.CatalogError, match=message):
        model.load_profile(bad, catalog)
    bad.write_text("extends: level2\nparameters: {pass_max_days: ninety}\n")
    with pytest.raises(model.CatalogError, match="expected int"):
        model.load_profile(bad, catalog)
    bad.write_text('extends: level2\nparameters: {umask: "027\\nPermitRootLogin yes"}\n')
    with pytest.raises(model.CatalogError, match="line breaks are not allowed"):
        model.load_profile(bad, catalog)


@pytest.mark.parametrize(("os_id", "like", "family"), [
    ("kylin", ["rhel", "fedora"], "redhat"), ("kylin", ["debian"], "debian"), ("openEuler", [], "redhat"),
    ("uos", ["debian"], "debian"), ("anolis", ["rhel", "centos", "fedora"], "redhat"), ("ubuntu", ["debian"], "debian"),
    ("neverheard", ["rhel"], "redhat")])
def test_distributions_by_id_then_id_like(os_id, like, family):
    assert family_of(os_id, like) == family


def test_faillock_is_read_before_tally2_and_its_defaults_count(params):
    files = {"/etc/pam.d/system-auth": "auth required pam_tally2.so deny=10\nauth required pam_faillock.so preauth\n"}
    e = ev(files, os={"id": "anolis", "id_like": ["rhel"]})
    out = REGISTRY["login.lockout"].evaluate(e, params)
    assert out.status == PASS and out.summary == "pam_faillock: deny 3, unlock_time 600 s"
    files["/etc/security/faillock.conf"] = "deny = 8\n"
    out = REGISTRY["login.lockout"].evaluate(ev(files, os={"id": "anolis"}), params)
    assert out.status == FAIL and "/etc/security/faillock.conf:1: 8" in out.evidence[1]
    debian = ev({"/etc/pam.d/system-auth": "auth required pam_faillock.so preauth\n"}, os={"id": "uos"})
    assert REGISTRY["login.lockout"].evaluate(debian, params).status == FAIL  # wrong family's file


def test_pwquality_arguments_override_the_config_file(params):
    files = {"/etc/pam.d/common-password": "password requisite pam_pwquality.so minlen=12 dcredit=-1 ucredit=-1 "
                                            "ocredit=-1\n", "/etc/security/pwquality.conf": "minlen = 6\n"}
    out = REGISTRY["password.complexity"].evaluate(ev(files, os={"id": "debian"}), params)
    assert out.status == PASS and out.summary.startswith("pam_pwquality: minlen 12, 3 character classes")


def test_sshd_first_value_wins_includes_and_match_blocks(params):
    files = {"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n"
                                     "Match Address 10.0.0.0/8\n  PermitRootLogin yes\n",
             "/etc/ssh/sshd_config.d/50-cloud.conf": "PermitRootLogin yes\n"}
    e = ev(files)
    assert e.sshd_value("PermitRootLogin").path == "/etc/ssh/sshd_config.d/50-cloud.conf"
    assert REGISTRY["ssh.root_login"].evaluate(e, params).status == FAIL
    assert REGISTRY["mgmt.restricted"].evaluate(e, params).status == PASS  # Match Address


def test_logrotate_retention_is_rotate_times_period():
    files = {"/etc/logrotate.conf": "weekly\nrotate 4\ninclude /etc/logrotate.d\n",
             "/etc/logrotate.d/rsyslog": "/var/log/syslog\n/var/log/auth.log\n{\n  daily\n  rotate 200\n}\n"}
    kept = logrotate_days(ev(files), ["/var/log/auth.log", "/var/log/kern.log"])
    assert kept["/var/log/auth.log"][0] == 200 and kept["/var/log/kern.log"] == (None, [])


def test_shadow_probe_never_returns_a_hash(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$salt$SECRETHASH:20000:1:90:7:::\nold:$1$ab$MD5SECRET:19000::::::\n"
                      "nobody:*:19000:0:99999:7:::\nguest::19000:0:99999:7:::\nlocked:!$y$j9T$x$YESSECRET:1::::::\n")
    probe = Shadow()
    text = subprocess.run(["sh", "-c", probe.command(Context()).replace("/etc/shadow", str(shadow))],
                          capture_output=True, text=True).stdout
    assert "SECRET" not in text
    facts = probe.process(text, Context())
    assert {u: (s["status"], s["scheme"]) for u, s in facts.items()} == {
        "root": ("hash", "6"), "old": ("hash", "1"), "nobody": ("locked", "-"), "guest": ("empty", "-"),
        "locked": ("locked", "y")}
    assert facts["root"]["max"] == 90 and facts["old"]["max"] is None


def test_a_file_cannot_forge_another_files_content():
    text = "F /etc/profile\n@ /etc/profile\n|@ /etc/shadow\n|F /etc/passwd\n|TMOUT=600\n"
    files = ConfigFiles().process(text, Context())
    assert files == {"/etc/profile": ["@ /etc/shadow", "F /etc/passwd", "TMOUT=600"]}


def test_a_check_that_breaks_needs_evidence_never_passes(catalog, params):
    results = engine.evaluate(Evidence({"config": {"/etc/passwd": ["root:x:0:0"]}, "shadow": "garbage"}), 3, params,
                              catalog)
    broken = next(r for r in results if r.check == "accounts.unique")
    assert broken.status == NEEDS_EVIDENCE and broken.summary.startswith("could not evaluate")


def test_device_evidence_plugs_into_the_same_engine(catalog, params):
    """The device-check helper's API: register checks of another kind, list them in catalog items, evaluate
    the device's evidence (any object) with kind=…: the same rows, reports and store."""
    @model.check("test.device_ssh_only", kind="device")
    def device_ssh_only(cfg: str, p: dict) -> CheckVerdict:
        bad = [line for line in cfg.splitlines() if "protocol inbound telnet" in line]
        return CheckVerdict(FAIL, "telnet allowed", tuple(bad)) if bad else CheckVerdict(PASS, "SSH only")

    try:
        items = tuple(replace(i, checks=(*i.checks, "test.device_ssh_only")) if i.id == "8.1.4.1 c" else i
                      for i in catalog.items)
        cat = replace(catalog, items=items)
        rows = engine.evaluate("user-interface vty 0 4\n protocol inbound telnet\n", 3, params, cat, kind="device")
        device_rows = [r for r in rows if r.check == "test.device_ssh_only"]  # beside the catalog's device.*
        assert [(r.item, r.check, r.status, r.evidence) for r in device_rows] == [
            ("8.1.4.1 c", "test.device_ssh_only", FAIL, (" protocol inbound telnet",))]
    finally:
        del REGISTRY["test.device_ssh_only"]
