"""Network: the e-government extranet planned, rendered, diffed and pushed to switches and routers.

Same inner shape as every domain: `model.py` (the address plan and what planning returns),
`plan.py` (the address planner), `render.py` and `vendor.py` (intended configs from Jinja2 templates,
every value checked against the vendor's rules), `diff.py` (the scoped hier_config remediation,
`scope.yaml` read by `scope.py`; with `acl.py` for jiyue's ACLs, `floors.py` for the baseline's floors and
`outline.py` for lines read as printed), `push.py` (the push engine: commit safety, verification, rollback, stages),
`service.py` (what the command line and the demo call: plan, render, diff, push, each returning its
result), `report.py` (the one `write_reports` over `plan_report.py` and `push_report.py`), `tasks.py`
(the command line). Device sessions and the platforms' CLI data are shared: `jiyue.device`,
`jiyue.platforms`.
"""
