"""The reachability check's report (`invoke network.verify`): a table or JSON, Chinese by default, English with --lang.

Why a module of its own: the check (network/reach.py) returns data; how people and machines read it lives here."""

from __future__ import annotations

import json

from rich.table import Table

from jiyue.i18n import t
from network.reach import Verification

FORMATS = ("table", "json")
COLUMNS = ("check", "family", "source", "destination", "stopped_at", "missing")


def as_json(result: Verification, lang: str) -> str:
    rows = [{**f.as_dict(), "check_label": t(f"verify.check.{f.check}", lang)} for f in result.failures]
    return json.dumps({"ok": result.ok, "checked": result.checked, "failures": rows}, ensure_ascii=False, indent=2)


def as_table(result: Verification, lang: str) -> Table:
    table = Table(title=t("verify.title", lang), title_justify="left")
    for c in COLUMNS:
        table.add_column(t(f"verify.col.{c}", lang))
    for f in result.failures:
        table.add_row(t(f"verify.check.{f.check}", lang), f"IPv{f.family}", f.source, f.destination, f.stopped_at,
                      f.missing)
    return table


def headline(result: Verification, lang: str) -> str:
    if result.ok:
        return t("verify.ok", lang, checked=result.checked)
    return t("verify.failed", lang, failed=len(result.failures), checked=result.checked)
