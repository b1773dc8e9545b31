"""The network domain's reports, one entry: `write_reports(result, out, formats, lang)`.

The domain's services return two kinds of result, and each has its report: an address plan
(`PlannedAddresses`: `network-plan.{xlsx,html}`, network/plan_report.py) and a push, diff or dry run
(`PushRun`: `network-push.{json,html,xlsx}`, network/push_report.py). This follows the protocol every
domain's `report.py` follows (`jiyue.reports.WriteReports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jiyue import i18n
from network import plan_report, push_report
from network.model import PlannedAddresses
from network.push import PushRun


def write_reports(result: PlannedAddresses | PushRun, out: Path | str, formats: Sequence[str] | None = None,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write the report of a plan or a push under `out` (default formats: the plan's xlsx and html, the
    push's json and html); return the paths."""
    if isinstance(result, PlannedAddresses):
        return plan_report.write_plan_reports(result, out, formats or plan_report.FORMATS, lang)
    return push_report.write_push_reports(result, out, formats or push_report.DEFAULT_FORMATS, lang)
