"""Audit: agentless fact collection, the system archive (档案库) and zombie verdicts with evidence.

Same inner shape as every domain:
- `model.py`: the records, declared once: each probe's facts (a TypedDict per probe, the stored
  schema), verdicts with their criteria and evidence, the integration and asset list entries, and
  `AuditResult`, what the service returns;
- `probes.py` and `collect.py`: what runs on hosts (one composed script per host) and the fleet run;
- `history.py`: the read model over the store (each host's history, measured dependents, current
  locations) and `AuditView`, what the migration planner takes from the audit;
- `prometheus.py`: utilisation history from the city's Prometheus (node_exporter metrics over the HTTP API),
  stored as readings marked with their source, with each host's coverage; `zabbix.py`: the same from the city's
  Zabbix (JSON-RPC API, trend.get on the "Linux by Zabbix agent" keys); `monitoring.py`: what both share (the
  aligned window, the reading rows, the coverage);
- `discover.py`: undeclared hosts (未登记主机) on the declared subnets, found by nmap, collected, proposed as draft
  records (`discover.yaml`: ports and rate; `discover_report.py`: its reports);
- `zombies.py`: the five criteria as rules over that history (`Judge`);
- `archive.py`: the archive, the integration list and the asset list as rows;
- `service.py`: collect, import history (`import_history`) and judge, returning an `AuditResult` (no printing,
  no exit codes);
- `report.py`: `write_reports(result, out, formats, lang)`: Excel, CSV, JSON, HTML;
- `tasks.py`: the command line.
`baseline/` is the graded-protection (等保 2.0) check, built on the same probes and script.
"""
