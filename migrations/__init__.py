"""Migrations: route every system (dispositions), plan waves, and move cloud rehosts with a journal.

Same inner shape as every domain: `model.py` (the plan), `plan.py` (the planner), `engine.py`
(the run: steps as playbooks, journal, resume, rollback), `report.py`, `tasks.py`.
"""
