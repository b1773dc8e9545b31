"""Audit: agentless fact collection, the system archive (档案库) and zombie verdicts with evidence.

Same inner shape as every domain: `probes.py` and `collect.py` (the engine: what runs on hosts),
`zombies.py` (rules over the stored history), `archive.py` (the archive and integration list as
rows), `report.py` (Excel, CSV, JSON, HTML), `tasks.py` (the command line).
"""
