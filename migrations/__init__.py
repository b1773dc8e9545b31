"""Migrations: route every system (dispositions), plan waves, and move cloud rehosts with a journal.

Same inner shape as every domain: `model.py` (the plan, a planning result, a system's migration
outcome), `plan.py` (the planner, six stages), `service.py` (what the command line and the demo call:
plan, load, run), `report.py` (the plan's Excel and HTML), `tasks.py` (the command line). The engine is
in parts: `engine.py` (orchestration: steps, cutover turns, resume, rollback, locks), `playbook.py`
(a step's ansible-runner run and its results as data), `journal.py` (the journal and what each step
records), `agent.py` (the run's ssh-agent), `verify.py` (the testinfra functional check) and
`observers.py` (progress rows, the store's run record).
"""
