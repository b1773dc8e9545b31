"""Remediation of the fixable baseline failures with playbooks/baseline_remediate.yml (ansible-runner).

Driven by a fresh `baseline.check` run (stored like any other): each host gets the failed checks the playbook can
fix (checks.py marks them `fixable`) and the profile's parameters. Without `apply` the playbook runs
with `--check --diff`: nothing changes and the diff shows what would. After an applied run the hosts
are checked again (fleet path) so the result says which failures are gone.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from audit.baseline import checks as checks_module
from audit.baseline.checks import FAIL
from audit.baseline.model import Catalog, Profile
from inventory import export
from inventory.model import Inventory
from jiyue import ansible
from jiyue.runner import Result

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "baseline_remediate.yml"


@dataclass
class Outcome:
    ok: bool
    fixes: dict[str, list[str]]
    changed: dict[str, list[str]] = field(default_factory=dict)  # host -> tasks that changed (or would)
    diffs: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def planned_fixes(results: list[Result]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """From a check run's results: per host, its failed checks that the playbook fixes, and its family."""
    fixes, families = {}, {}
    for host, data in ((r.target, r.value) for r in results if r.ok):
        failed = sorted({row["check"] for row in data["rows"] if row["status"] == FAIL
                         and checks_module.REGISTRY.get(row["check"]) and checks_module.REGISTRY[row["check"]].fixable})
        if failed:
            fixes[host] = failed
            families[host] = data.get("family") or "redhat"
    return fixes, families


def run(inv: Inventory, fixes: dict[str, list[str]], families: dict[str, str], profile: Profile, catalog: Catalog,
        apply: bool = False, workdir: Path | None = None) -> Outcome:
    """Run the playbook for `fixes`; a check-mode run unless `apply`."""
    if not fixes:
        return Outcome(True, fixes)
    with tempfile.TemporaryDirectory(prefix="jiyue-remediate-") as tmp:
        work = Path(workdir or tmp)
        inventory_file = export.write(inv, "ansible", sorted(fixes), [], work)[0].resolve()
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
    out = Outcome(result.status == "successful" and result.rc == 0, fixes)
    for ev in events:
        data = ev.get("event_data") or {}
        host, task, res = data.get("host", ""), data.get("task", ""), data.get("res") or {}
        if ev.get("event") == "runner_on_ok" and res.get("changed"):
            out.changed.setdefault(host, []).append(task)
            for d in res.get("diff") or [] if isinstance(res.get("diff"), list) else [res.get("diff") or {}]:
                if d.get("before") != d.get("after"):
                    out.diffs.setdefault(host, []).append(
                        f"{task}: {d.get('before_header', '')}\n- {str(d.get('before', ''))[:400]}\n"
                        f"+ {str(d.get('after', ''))[:400]}")
        elif ev.get("event") in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            out.failures.append(f"{host}: {task}: {res.get('msg') or res.get('stderr') or res}"[:500])
    if not out.ok and not out.failures:
        out.failures.append(f"ansible-playbook {result.status} (rc {result.rc})")
    return out
