"""The graded-protection (等保 2.0) baseline of hosts and network devices.

- model.py: the typed records: statuses, `CheckVerdict`, the check registry, the catalog and profiles
  (catalog.yaml, profiles/), `Row`, `BaselineRun`, `Remediation`;
- checks.py (hosts) and device_checks.py (devices): the checks, pure functions of a target's
  evidence, read by evidence.py (host files) and device_evidence.py (running configurations,
  device_rules.yaml); probes.py: what a host's evidence is collected with; what the reading
  programs do, where they could not answer themselves: sshd.py (`sshd -T`'s answers and sshd's
  rules), pam.py (a PAM stack run as libpam runs it), shell.py (umask and TMOUT as a login shell
  sets them); source.py: `Line`, a collected file's line;
- engine.py: the judgement (`evaluate`) and the host path; devices.py: the device path;
- service.py: the service the command line and the demo call: `check`, `load_run`, `remediate`
  (remediate.py runs the playbook);
- report.py: `write_reports(run, out, formats, lang)`; tasks.py: `invoke baseline.*`;
- testinfra/: the same checks as a pytest-testinfra suite.
"""
