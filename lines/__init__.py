"""Leased internet lines (互联网专线) and business private networks (业务专网).

Panjin (盘政办发〔2017〕144号) asks departments to give up their own internet lines and reach the internet through
the extranet's egress, and merges qualifying private networks into the extranet. This domain plans both (a
cancellation date per line, a join per private network), probes each host's real way out (`lines.egress`) and
reports the progress: `model.py` (the records of a result), `plan.py`, `egress.py` (the probe), `service.py`,
`report.py`, `tasks.py`, `policy.yaml` (the tunable numbers).
"""
