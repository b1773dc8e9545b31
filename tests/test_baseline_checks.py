"""The baseline's catalog, profiles and checks on captured evidence (no lab needed)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import replace

import pytest

from audit.baseline import engine, model, sshd
from audit.baseline.evidence import Evidence, family_of, logrotate_days
from audit.baseline.model import FAIL, NEEDS_EVIDENCE, PASS, REGISTRY, CheckVerdict
from audit.baseline.probes import ConfigFiles, LoginShells, Shadow, SshdEffective
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
    assert out.status == FAIL and "/etc/security/faillock.conf:1: deny = 8" in out.evidence
    debian = ev({"/etc/pam.d/system-auth": "auth required pam_faillock.so preauth\n"}, os={"id": "uos"})
    assert REGISTRY["login.lockout"].evaluate(debian, params).status == FAIL  # wrong family's file


RH_AUTH = ("auth required pam_env.so\nauth required pam_faillock.so preauth silent\n"
           "auth sufficient pam_unix.so try_first_pass\nauth [default=die] pam_faillock.so authfail\n"
           "auth required pam_deny.so\n")
DEB_AUTH = ("auth required pam_faillock.so preauth\nauth [success=2 default=ignore] pam_unix.so\n"
            "auth [default=die] pam_faillock.so authfail\nauth requisite pam_deny.so\nauth required pam_permit.so\n")


@pytest.mark.parametrize(("files", "family", "status", "says"), [
    ({"/etc/pam.d/system-auth": RH_AUTH,
      "/etc/security/faillock.conf": "# faillock\ndeny = 5 # five\nunlock_time=900\n"}, "anolis", PASS,
     "/etc/security/faillock.conf:2: deny = 5 # five"),
    ({"/etc/pam.d/common-auth": DEB_AUTH, "/etc/pam.d/sshd": "@include common-auth\naccount required pam_nologin.so\n",
      "/etc/security/faillock.conf": "deny = 4\n"}, "debian", PASS, "/etc/pam.d/common-auth:3: auth [default=die]"),
    ({"/etc/pam.d/common-auth": DEB_AUTH.replace("success=2", "success=1"),
      "/etc/security/faillock.conf": "deny = 4\n"}, "debian", FAIL,
     "/etc/pam.d/common-auth:4: auth requisite pam_deny.so"),
    ({"/etc/pam.d/system-auth": RH_AUTH, "/etc/security/faillock.conf": "deny = 0\n"}, "anolis", FAIL,
     "/etc/security/faillock.conf:1: deny = 0"),
    ({"/etc/pam.d/system-auth": "auth sufficient pam_unix.so\n" + RH_AUTH}, "anolis", FAIL,
     "/etc/pam.d/system-auth:1: auth sufficient pam_unix.so"),
    ({"/etc/pam.d/system-auth": "auth [success=done default=ignore] pam_sss.so\n" + RH_AUTH}, "anolis", FAIL,
     "/etc/pam.d/system-auth:1: auth [success=done default=ignore] pam_sss.so"),
    ({"/etc/pam.d/system-auth": RH_AUTH.replace("sufficient pam_unix", "requisite pam_unix")}, "anolis", FAIL,
     "/etc/pam.d/system-auth:3: auth requisite pam_unix.so"),
    ({"/etc/pam.d/sshd": "auth sufficient pam_permit.so\nauth substack password-auth\n",
      "/etc/pam.d/password-auth": RH_AUTH}, "anolis", FAIL, "/etc/pam.d/sshd:1: auth sufficient pam_permit.so"),
])
def test_lockout_runs_the_pam_stack_as_libpam_does(params, files, family, status, says):
    out = REGISTRY["login.lockout"].evaluate(ev(files, os={"id": family}), params)
    assert out.status == status and any(e.startswith(says) for e in out.evidence), out


def test_pwquality_conf_is_read_after_its_conf_d(params):
    """libpwquality 1.4.5 src/settings.c pwquality_read_config(): pwquality.conf.d/*.conf, then pwquality.conf."""
    files = {"/etc/pam.d/common-password": "password requisite pam_pwquality.so retry=3\n",
             "/etc/security/pwquality.conf": "minlen = 6\nminclass = 3 # three\n",
             "/etc/security/pwquality.conf.d/50-city.conf": "minlen = 12\n"}
    out = REGISTRY["password.complexity"].evaluate(ev(files, os={"id": "debian"}), params)
    assert out.status == FAIL and out.summary.startswith("pam_pwquality: minlen 6, 3 character classes")
    assert "/etc/security/pwquality.conf:1: minlen = 6" in out.evidence
    files["/etc/pam.d/common-password"] = "password requisite pam_pwquality.so minlen=12\n"  # the PAM line: last word
    assert REGISTRY["password.complexity"].evaluate(ev(files, os={"id": "debian"}), params).status == PASS


def test_pwquality_arguments_override_the_config_file(params):
    files = {"/etc/pam.d/common-password": "password requisite pam_pwquality.so minlen=12 dcredit=-1 ucredit=-1 "
                                            "ocredit=-1\n", "/etc/security/pwquality.conf": "minlen = 6\n"}
    out = REGISTRY["password.complexity"].evaluate(ev(files, os={"id": "debian"}), params)
    assert out.status == PASS and out.summary.startswith("pam_pwquality: minlen 12, 3 character classes")


def shell_ev(files: dict[str, str], shells: dict[str, tuple[str, str]] | None = None) -> Evidence:
    """Profile files, an administrator (sysadmin), and what each login shell answered (umask, TMOUT)."""
    answers = {u: {"shell": "/bin/bash", "umask": m, "tmout": t} for u, (m, t) in (shells or {}).items()}
    return ev({"/etc/passwd": PASSWD, "/etc/login.defs": "UMASK 027\n", **files}, shells=answers)


@pytest.mark.parametrize(("files", "shells", "check", "status", "says"), [
    # umask after `&&`: bash applies it; the files alone cannot tell for whom
    ({"/etc/profile.d/umask.sh": '[ "$(id -u)" -ge 1000 ] && umask 077\n'}, None, "umask", NEEDS_EVIDENCE,
     "/etc/profile.d/umask.sh:1: [ \"$(id -u)\" -ge 1000 ] && umask 077"),
    ({"/etc/profile.d/umask.sh": '[ "$(id -u)" -ge 1000 ] && umask 077\n'},
     {"root": ("0022", "600"), "sysadmin": ("0077", "600")}, "umask", FAIL,
     "/bin/bash -lc (login shell of root): umask 0022"),
    ({"/etc/bashrc": "if [ $UID -gt 199 ]; then\n    umask 002\nelse\n    umask 027\nfi\n"}, None, "umask",
     NEEDS_EVIDENCE, "/etc/bashrc:2:"),
    ({"/etc/bashrc": "if [ $UID -gt 199 ]; then\n    umask 002\nelse\n    umask 027\nfi\n"},
     {"root": ("0027", "600"), "sysadmin": ("0027", "600")}, "umask", PASS,
     "/bin/bash -lc (login shell of sysadmin): umask 0027"),
    ({"/etc/profile.d/tmout.sh": "readonly TMOUT=600\nexport TMOUT\n", "/etc/profile.d/zz.sh": "TMOUT=0\n"}, None,
     "session.tmout", PASS, "/etc/profile.d/zz.sh:1: TMOUT=0 (no effect: TMOUT is readonly)"),
    ({"/etc/profile.d/tmout.sh": "TMOUT=600\n", "/etc/profile.d/zz.sh": "unset TMOUT\n"}, None, "session.tmout",
     FAIL, "/etc/profile.d/tmout.sh:1: TMOUT=600"),
    ({"/etc/profile.d/tmout.sh": "[ -n \"$SSH_TTY\" ] && TMOUT=600\n"}, None, "session.tmout", NEEDS_EVIDENCE,
     "/etc/profile.d/tmout.sh:1:"),
    ({"/etc/profile.d/tmout.sh": "readonly TMOUT=600\nTMOUT=0\n"},
     {"root": ("0027", "600"), "sysadmin": ("0027", "600")}, "session.tmout", PASS,
     "/bin/bash -lc (login shell of root): TMOUT=600"),
])
def test_umask_and_tmout_are_what_the_login_shell_applies(params, files, shells, check, status, says):
    out = REGISTRY[check].evaluate(shell_ev(files, shells), params)
    assert out.status == status and any(e.startswith(says) for e in out.evidence), out


MGMT_SOURCE = [{"label": "from outside the management networks (203.0.113.7)", "user": "root",
                "address": "203.0.113.7", "host": ""},
               {"label": "from management source 10.0.0.0/8 (10.0.0.1)", "user": "root", "address": "10.0.0.1",
                "host": ""}]
PASSWD = "root:x:0:0:root:/root:/bin/bash\nsysadmin:x:1000:1000::/home/sysadmin:/bin/bash\n"


def sshd_ev(config: str, answers: list[str] | None = None, **more: str) -> Evidence:
    """Evidence with sshd's files (and, when given, its `sshd -T` answers) for the two connections above."""
    files = {"/etc/ssh/sshd_config": config.splitlines(), **{p: t.splitlines() for p, t in more.items()}}
    facts = {"connections": MGMT_SOURCE, "files": files, "expanded": ["/etc/ssh/sshd_config.d/*.conf"],
             "answers": [{"index": i, "rc": 0, "text": t} for i, t in enumerate(answers or [])]}
    return Evidence({"sshd": facts, "config": {"/etc/passwd": PASSWD.splitlines(), "/etc/group": ["root:x:0:"],
                                               **files}})


@pytest.mark.parametrize(("config", "more", "check", "status", "cited"), [
    ("PermitRootLogin=yes\n", {}, "ssh.root_login", FAIL, "/etc/ssh/sshd_config:1: PermitRootLogin=yes (parsed for"),
    ("PermitEmptyPasswords yes # kiosk\n", {}, "ssh.empty_passwords", FAIL, "PermitEmptyPasswords yes # kiosk"),
    ("ClientAliveInterval 5m\nClientAliveCountMax 2\n", {}, "ssh.idle", PASS, "ClientAliveInterval 5m"),
    ("ClientAliveInterval 300\nClientAliveCountMax 0\n", {}, "ssh.idle", FAIL, "ClientAliveCountMax 0"),
    ("Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n",
     {"/etc/ssh/sshd_config.d/10-mgmt.conf": "Match Address 10.0.0.0/8\n  PasswordAuthentication no\n"},
     "ssh.root_login", FAIL, "/etc/ssh/sshd_config:2: PermitRootLogin yes"),
    ("PermitRootLogin no\nAllowUsers root@10.0.0.0/8\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n"
     "  PasswordAuthentication yes\n", {}, "ssh.root_login", FAIL, "user=root,addr=10.0.0.1"),
    ("PermitRootLogin no\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n  PasswordAuthentication yes\n", {},
     "mgmt.restricted", FAIL, "sshd admits root, sysadmin from outside"),
    ("AllowUsers root@10.0.0.0/8\nAllowUsers sysadmin\n", {}, "mgmt.restricted", FAIL, "sshd admits sysadmin"),
    ("AllowUsers root@10.0.0.0/8 sysadmin@10.0.0.0/8\n", {}, "mgmt.restricted", PASS,
     "sshd admits none of root, sysadmin from outside"),
])
def test_sshd_checks_read_sshd_config_as_sshd_does(params, config, more, check, status, cited):
    out = REGISTRY[check].evaluate(sshd_ev(config, **more), params)
    assert out.status == status and any(cited in e for e in out.evidence), out


def test_sshd_answers_are_the_evidence_where_sshd_T_ran(params, catalog):
    outside, mgmt = "permitrootlogin without-password\nport 22\n", "permitrootlogin yes\nport 22\n"
    e = sshd_ev("PermitRootLogin no\n", answers=[outside, mgmt])  # sshd's answer, not the file, decides
    out = REGISTRY["ssh.root_login"].evaluate(e, params)
    assert out.status == FAIL
    assert out.evidence == ("sshd -T -C user=root,addr=10.0.0.1,host=10.0.0.1: permitrootlogin yes",)
    assert "from management source 10.0.0.0/8" in out.summary
    # an Include of a file the probe did not collect is not judged from what it happened to collect
    unread = sshd_ev("Include /etc/security/other.conf\nPermitRootLogin no\n")
    rows = {r.check: r for r in engine.evaluate(unread, 3, params, catalog)}
    assert rows["ssh.root_login"].status == NEEDS_EVIDENCE
    assert "Include /etc/security/other.conf: the file was not collected" in rows["ssh.root_login"].summary


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


# --- sshd: the parser against sshd -T (OpenSSH on this machine), one case per rule ---------------------

SSHD = "/usr/sbin/sshd"
OUTSIDE = sshd.Connection("root", "203.0.113.7", groups=("root",))
MGMT = sshd.Connection("root", "10.1.2.3", groups=("root",))
SSHD_KEYS = ("permitrootlogin", "permitemptypasswords", "passwordauthentication", "clientaliveinterval",
             "clientalivecountmax", "allowusers", "allowgroups", "denyusers", "port", "maxauthtries")
# name: the files (under a temporary directory {d}; sshd_config is the main one)
SSHD_CASES = {
    "first value wins": {"sshd_config": "PermitRootLogin no\nPermitRootLogin yes\nMaxAuthTries 3\nMaxAuthTries 9\n"},
    "Include followed wherever it lives": {
        "sshd_config": "Include {d}/elsewhere/other.conf\nPermitRootLogin no\n",
        "elsewhere/other.conf": "PermitRootLogin yes\n"},
    "a drop-in containing only a Match block": {
        "sshd_config": "Include {d}/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication no\n",
        "sshd_config.d/50-mgmt.conf": "Match Address 10.0.0.0/8\n  PermitRootLogin yes\n"},
    "Key=value": {"sshd_config": "PermitRootLogin=yes\nMaxAuthTries = 4\n"},
    "trailing comment": {"sshd_config": "PermitEmptyPasswords yes # kiosk\nPermitRootLogin no #root\n"},
    "time units": {"sshd_config": "ClientAliveInterval 5m\nClientAliveCountMax 2\n"},
    "AllowUsers and AllowGroups accumulate": {
        "sshd_config": "AllowUsers root@10.0.0.0/8 ops\nAllowGroups wheel\nAllowUsers audit\nAllowGroups adm\n"},
    "ClientAliveCountMax 0": {"sshd_config": "ClientAliveInterval 300\nClientAliveCountMax 0\n"},
    "Match Address loosens for the management network": {
        "sshd_config": "PermitRootLogin no\nPasswordAuthentication no\nMatch Address 10.0.0.0/8\n"
                       "  PermitRootLogin yes\n  PasswordAuthentication yes\n"},
    "a Match block's list replaces the global one": {
        "sshd_config": "AllowUsers ops\nDenyUsers guest\nMatch User root Address !10.0.0.0/8,*\n  AllowUsers nobody\n"},
    "Match all and Match Group": {
        "sshd_config": "PermitRootLogin no\nMatch Group root\n  MaxAuthTries 2\nMatch all\n  PermitRootLogin yes\n"},
    "Include inside a Match block": {
        "sshd_config": "Match Address 10.0.0.0/8\n  Include {d}/inner.conf\nMatch all\n  PermitEmptyPasswords no\n",
        "inner.conf": "PermitRootLogin yes\nMaxAuthTries 2\n"},
    "an included file's own Match ends with it": {
        "sshd_config": "Include {d}/a.conf\nPermitRootLogin no\n",
        "a.conf": "Match Host *\n  MaxAuthTries 2\n"},
}


@pytest.fixture(scope="module")
def host_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("sshd-key") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def _both(tmp_path, host_key, files: dict[str, str], conn: sshd.Connection) -> tuple[sshd.Effective, sshd.Effective]:
    """sshd -T's answer and the parser's, on the same files (collected by the probe's own shell)."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{d}", str(tmp_path)))
    main = str(tmp_path / "sshd_config")
    probe = SshdEffective(config=main)
    collected = probe.process(subprocess.run(["sh", "-c", probe.tree()], capture_output=True, text=True).stdout,
                              Context())
    resolve = sshd.resolver(collected["files"], set(collected["expanded"]))
    mine = sshd.parsed("test", collected["files"], resolve, conn, main=main)
    proc = subprocess.run([SSHD, "-T", "-f", main, "-h", str(host_key), "-C", conn.spec()], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return sshd.from_answer("test", conn, proc.stdout), mine


@pytest.mark.skipif(not os.access(SSHD, os.X_OK), reason="needs OpenSSH's sshd")
@pytest.mark.parametrize("case", SSHD_CASES)
def test_the_sshd_parser_agrees_with_sshd_T(case, tmp_path, host_key):
    for conn in (OUTSIDE, MGMT):
        real, mine = _both(tmp_path / conn.address, host_key, SSHD_CASES[case], conn)
        assert {k: mine.get(k).values for k in SSHD_KEYS} == {k: real.get(k).values for k in SSHD_KEYS}, conn


@pytest.mark.skipif(not os.access(SSHD, os.X_OK) or os.geteuid() != 0, reason="needs OpenSSH's sshd and root")
def test_the_sshd_probe_asks_sshd_for_each_connection(tmp_path, host_key, params):
    """The probe's own shell: `sshd -T -C` per connection (sshd evaluates the Match block), then the files."""
    config = tmp_path / "sshd_config"
    config.write_text(f"HostKey {host_key}\nPermitRootLogin no\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n")
    probe = SshdEffective((("from outside", OUTSIDE), ("from management source 10.0.0.0/8", MGMT)), config=str(config))
    facts = probe.process(subprocess.run(["sh", "-c", probe.command(Context())], capture_output=True,
                                         text=True).stdout, Context())
    assert [a["rc"] for a in facts["answers"]] == [0, 0] and list(facts["files"]) == [str(config)]
    out = REGISTRY["ssh.root_login"].evaluate(Evidence({"sshd": facts}), params)
    assert out.status == FAIL and out.summary.startswith("PermitRootLogin yes from management source 10.0.0.0/8")
    assert out.evidence == ("sshd -T -C user=root,addr=10.1.2.3,host=10.1.2.3: permitrootlogin yes",)


def test_the_login_shell_probe_keeps_only_the_shells_answer():
    text = "U root /bin/bash jy-shell 0027 600\nU ops /bin/sh none\nU x /bin/bash jy-shell 0999 1\nnoise\n"
    assert LoginShells().process(text, Context()) == {"root": {"shell": "/bin/bash", "umask": "0027", "tmout": "600"}}
