"""Remediation of the fixable baseline failures with playbooks/baseline_remediate.yml (ansible-runner).

Driven by a fresh `baseline.check` run (service.remediate): each host gets the failed checks the
playbook can fix (checks.py marks them `fixable`) and the profile's parameters. Without `apply` the
playbook runs with `--check --diff`: nothing changes and the diff shows what would. After an applied
run service.remediate checks the hosts again, so the result says which failures are gone.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import ansible_runner

from audit.baseline.model import FAIL, REGISTRY, Catalog, HostRemediation, Profile, Remediation
from inventory import export
from inventory.model import Inventory
from jiyue import ansible
from jiyue.runner import Result

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "baseline_remediate.yml"


def planned_fixes(results: list[Result]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """From a check run's results: per host, its failed checks that the playbook fixes, and its family."""
    fixes, families = {}, {}
    for host, data in ((r.target, r.value) for r in results if r.ok):
        failed = sorted({row["check"] for row in data["rows"] if row["status"] == FAIL
                         and REGISTRY.get(row["check"]) and REGISTRY[row["check"]].fixable})
        if failed:
            fixes[host] = failed
            families[host] = data.get("family") or "redhat"
    return fixes, families


def run(inv: Inventory, fixes: dict[str, list[str]], families: dict[str, str], profile: Profile, catalog: Catalog,
        apply: bool = False, workdir: Path | None = None, jump: str | None = None) -> Remediation:
    """Run the playbook for `fixes`; a check-mode run unless `apply`. Each host's `changed` and `diff`
    come from the playbook's events (in check mode: what would change). Hosts behind a jump host are reached
    through it (the export's ssh_config, jiyue.sshconfig; `jump` is a run's `--jump NAME|none`)."""
    if not fixes:
        return Remediation(apply, {})
    with tempfile.TemporaryDirectory(prefix="jiyue-remediate-") as tmp:
        work = Path(workdir or tmp)
        inventory_file = export.write(inv, "ansible", sorted(fixes), [], work, jump=jump)[0].resolve()
        events: list[dict] = []
        private = work / "runner"
        private.mkdir(parents=True, exist_ok=True)
        params = {k: v for k, v in profile.params(catalog).items() if not k.startswith("_")}
        env = ansible.env()
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True"  # ansible-runner turns it off by default: not here
        result = ansible_runner.run(
            private_data_dir=str(private), playbook=str(PLAYBOOK), inventory=str(inventory_file),
            extravars={"jiyue_fix": fixes, "jiyue_family": families, "p": params},
            cmdline=None if apply else "--check --diff", envvars=env, quiet=True,
            event_handler=lambda e: events.append(e) or True, ident=f"baseline-{uuid.uuid4().hex[:8]}",
            suppress_env_files=True)
    tasks: dict[str, list[str]] = {}
    diffs: dict[str, list[str]] = {}
    failures: list[str] = []
    for ev in events:
        data = ev.get("event_data") or {}
        host, task, res = data.get("host", ""), data.get("task", ""), data.get("res") or {}
        if ev.get("event") == "runner_on_ok" and res.get("changed"):
            tasks.setdefault(host, []).append(task)
            for d in res.get("diff") or [] if isinstance(res.get("diff"), list) else [res.get("diff") or {}]:
                if d.get("before") != d.get("after"):
                    diffs.setdefault(host, []).append(
                        f"{task}: {d.get('before_header', '')}\n- {str(d.get('before', ''))[:400]}\n"
                        f"+ {str(d.get('after', ''))[:400]}")
        elif ev.get("event") in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            failures.append(f"{host}: {task}: {res.get('msg') or res.get('stderr') or res}"[:500])
    if not (result.status == "successful" and result.rc == 0) and not failures:
        failures.append(f"ansible-playbook {result.status} (rc {result.rc})")
    hosts = {h: HostRemediation(h, tuple(checks), changed=bool(tasks.get(h)), diff="\n".join(diffs.get(h, [])),
                                tasks=tuple(tasks.get(h, ()))) for h, checks in fixes.items()}
    return Remediation(apply, hosts, tuple(failures))
