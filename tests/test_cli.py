"""The command line as an operator uses it: exit codes, messages, --limit, --out."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "fixtures" / "broken"


def jiyue(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jiyue", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_list_shows_every_task_group():
    proc = jiyue("--list")
    assert proc.returncode == 0
    for name in ("demo", "inventory.check", "inventory.export", "inventory.list", "lab.up", "lab.down",
                 "lab.status"):
        assert name in proc.stdout


def task_names(listing: str) -> dict[str, set[str]]:
    """Each task of an Invoke `--list` (a name starts a line after two spaces) with the names it answers to
    (itself and its aliases)."""
    return {name: {name, *(a.strip() for a in aliases.split(",") if a.strip())}
            for name, aliases in re.findall(r"^  ([a-z][\w.-]*)(?: \(([^)]*)\))?", listing, re.M)}


def readme_task_mentions() -> tuple[set[str], set[str]]:
    """The README's English part: the names it runs as `invoke NAME …`, and every code span's first word."""
    english = (REPO / "README.md").read_text(encoding="utf-8").split("## English", 1)[1]
    spans = re.findall(r"`([^`\n]+)`", english)
    invoked = {m.group(1) for s in spans if (m := re.match(r"invoke ([a-z][\w.-]*)", s))}
    return invoked, {s.removeprefix("invoke ").split()[0] for s in spans if s.strip()}


def test_invoke_itself_finds_the_same_tasks_the_readme_names():
    proc = subprocess.run([str(Path(sys.executable).parent / "invoke"), "--list"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    ours = jiyue("--list")
    tasks = task_names(proc.stdout)
    assert {"demo", "inventory.check", "lab.seed-baseline", "audit.audit"} <= set(tasks)  # the parse found them
    assert task_names(ours.stdout) == tasks
    invoked, mentioned = readme_task_mentions()
    assert invoked - set().union(*tasks.values()) == set(), "the README runs tasks that do not exist"
    assert [t for t, names in tasks.items() if not names & mentioned] == [], "tasks the README does not describe"


def test_check_passes_on_the_sample_city():
    proc = jiyue("inventory.check")
    assert proc.returncode == 0, proc.stderr
    assert "合计 total" in proc.stdout


def test_check_on_a_broken_inventory_lists_every_problem_and_exits_2():
    proc = jiyue("inventory.check", "--inventory", str(BROKEN))
    assert proc.returncode == 2
    problems = [line for line in proc.stderr.splitlines() if ".yaml:" in line]
    assert len(problems) >= 10
    for line in problems:
        file, lineno, rest = line.split(":", 2)
        assert Path(file).name.endswith(".yaml") and int(lineno) > 0 and rest.strip()
    assert "fix them and run again" in proc.stderr


def test_usage_errors_exit_2():
    assert jiyue("inventory.check", "--no-such-flag").returncode == 2
    assert jiyue("no.such.task").returncode == 2
    proc = jiyue("inventory.export", "--format", "excel")
    assert proc.returncode == 2 and "--format must be one of" in proc.stderr


def test_limit_that_matches_nothing_is_bad_input():
    proc = jiyue("inventory.list", "--limit", "dept_nosuch")
    assert proc.returncode == 2
    assert "'dept_nosuch' matches no host, device or group" in proc.stderr


def test_limit_selects_hosts_and_devices(demo):
    proc = jiyue("inventory.list", "--limit", "cloud_pool:devices")
    assert proc.returncode == 0
    assert f"{len(demo.cloud.pool)} hosts, {len(demo.devices)} devices" in proc.stdout


def test_export_writes_stable_files_under_out(tmp_path):
    proc = jiyue("inventory.export", "--out", str(tmp_path), "--limit", "sources")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["inventory/ansible.yml", "inventory/nornir/config.yaml", "inventory/nornir/defaults.yaml",
                     "inventory/nornir/groups.yaml", "inventory/nornir/hosts.yaml",
                     "inventory/pyinfra_inventory.py"]


def test_lab_status_reports_every_host_up(lab, demo):
    proc = jiyue("lab.status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"all {len(demo.hosts)} hosts up" in proc.stdout


def test_lab_status_exits_1_when_a_host_is_down(lab, demo):
    name = sorted(demo.hosts)[0]
    lab.stop_host(name)
    try:
        proc = jiyue("lab.status", "--limit", name)
        assert proc.returncode == 1
        assert "Start them with: invoke lab.up" in proc.stdout
    finally:
        lab.up(demo)


def test_audit_from_the_command_line_reports_a_down_host_and_still_writes(lab, demo, tmp_path):
    store = f"sqlite:///{tmp_path}/history.sqlite"
    proc = jiyue("audit.collect", "--limit", "dept_fgw", "--store", store)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    victim = demo.systems["fgw-oa"].hosts[0]
    lab.stop_host(victim)
    try:
        proc = jiyue("audit", "--limit", "dept_fgw", "--store", store, "--out", str(tmp_path / "out"), "--lang", "en")
    finally:
        lab.up(demo)
    assert proc.returncode == 1
    assert victim in proc.stdout and "unreachable" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "archive.csv", "archive.html", "archive.json", "archive.xlsx"]
    zombies = jiyue("audit.zombies", "--limit", "dept_fgw", "--store", store)
    assert zombies.returncode == 0 and "fgw-oa" in zombies.stdout
    assert "not judged: 2 classified (涉密) systems (gaj-qbyp, szfb-jmwj)" in zombies.stdout
    assert jiyue("audit.report", "--format", "pdf").returncode == 2


# --- classified (涉密) hosts: refused when named, left out otherwise, reached only on the explicit override ---


def test_every_task_that_connects_refuses_a_classified_host_named_in_limit(tmp_path):
    store = f"sqlite:///{tmp_path}/history.sqlite"
    limits = ("szfb-jmwj-app1", "classified", "system_gaj_qbyp")  # by name, by group, by its system
    for i, args in enumerate((("audit.collect", "--store", store), ("audit", "--store", store, "--out", str(tmp_path)),
                              ("audit.zombies", "--store", store), ("baseline.check", "--store", store),
                              ("baseline.remediate", "--store", store), ("inventory.export", "--out", str(tmp_path)))):
        proc = jiyue(*args, "--limit", limits[i % len(limits)])
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "classified (涉密) host" in proc.stderr and "--include-classified" in proc.stderr, args
        assert "szfb-jmwj-app1" in proc.stderr or "gaj-qbyp-app1" in proc.stderr
    assert not (tmp_path / "inventory").exists() and not list(tmp_path.glob("archive.*"))


def test_export_leaves_classified_hosts_out_unless_asked(tmp_path):
    proc = jiyue("inventory.export", "--out", str(tmp_path / "default"), "--format", "ansible")
    assert proc.returncode == 0, proc.stderr
    assert "2 classified (涉密) hosts left out (gaj-qbyp-app1, szfb-jmwj-app1)" in proc.stderr
    assert "szfb-jmwj-app1" not in (tmp_path / "default" / "inventory" / "ansible.yml").read_text()
    proc = jiyue("inventory.export", "--out", str(tmp_path / "asked"), "--format", "ansible", "--include-classified")
    assert proc.returncode == 0 and "left out" not in proc.stderr
    assert "szfb-jmwj-app1" in (tmp_path / "asked" / "inventory" / "ansible.yml").read_text()


def test_inventory_list_shows_classified_hosts_marked():
    proc = jiyue("inventory.list", "--limit", "dept_szfb")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "szfb-jmwj-app1" in x)
    assert "涉密: never contacted" in line


def test_a_stopped_classified_host_is_not_even_tried(lab, demo, tmp_path):
    """Its sshd stopped, a classified host would be reported unreachable by any run that tried it."""
    store = f"sqlite:///{tmp_path}/history.sqlite"
    lab.stop_host("gaj-qbyp-app1")
    try:
        department = jiyue("audit.collect", "--limit", "dept_gaj", "--store", store)
        every = jiyue("audit.collect", "--store", store, "--workers", "20")
        override = jiyue("audit.collect", "--limit", "gaj-qbyp-app1", "--include-classified", "--store", store)
    finally:
        lab.up(demo)
    for proc in (department, every):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "unreachable" not in proc.stdout and "hosts not collected" not in proc.stdout
        assert "left out" in proc.stderr and "gaj-qbyp-app1" in proc.stderr
    assert f"{len(demo.hosts) - 2} of {len(demo.hosts) - 2} hosts collected" in every.stdout
    assert override.returncode == 1 and "unreachable" in override.stdout and "gaj-qbyp-app1" in override.stdout
