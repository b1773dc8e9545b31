"""The migration plan as Excel and one self-contained HTML page. Stable names under the output dir:

- `migration-plan.xlsx`: 系统处置 (every system: disposition, rule, network zone, business private network, wave,
  targets, sizing, priority), 迁移批次 (waves), 工单 (work orders), 目标主机 (pool use per zone), 资源缺口
  (awaiting capacity or a zone) and 提示 (warnings);
- `migration-plan.html`: disposition counts, a timeline per wave (inline SVG on a date axis, blackout dates
  shaded, each wave's systems listed), the same tables; static and self-contained.

Writers, escaping and formula neutralising are `jiyue.reports`'; the data is the plan's (`migrations.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from inventory.model import Inventory
from jiyue import i18n, reports
from jiyue.i18n import t
from migrations.model import Disposition, Plan, PlannedMigration, SystemPlan, Wave
from migrations.plan import CLOUD_BOUND, DISPOSITION_ORDER, GB, Planning, PlanningError, counts, load_planning

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
BASENAME = "migration-plan"
DISPOSITION_COLORS = {
    Disposition.cloud_rehost: "#4e79a7", Disposition.site_cluster: "#59a14f", Disposition.idc_move: "#f28e2b",
    Disposition.confidential_handover: "#b07aa1", Disposition.retain: "#9c755f", Disposition.decommission: "#c0392b",
    Disposition.replatform: "#8e44ad",
}


def _e(value: Any) -> str:
    return str(escape(reports.clean_text(str(value))))


def _gb(n: int | float) -> float:
    return round(n / GB, 2)


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"


class PlanReport:
    """The plan's tables and charts in one language, shared by the Excel and HTML writers."""

    def __init__(self, inv: Inventory, plan: Plan, lang: str = "zh", planning: Planning | None = None) -> None:
        self.inv, self.plan, self.lang = inv, plan, i18n.check_lang(lang)
        self.planning = planning
        self.waves = {w.number: w for w in plan.waves}
        order = {code: i for i, code in enumerate(inv.departments)}
        self.systems = sorted(plan.systems, key=lambda s: (DISPOSITION_ORDER.index(s.disposition),
                                                           s.wave if s.wave is not None else 10**6,
                                                           order.get(s.department, len(order)), s.system))

    def _dept(self, code: str) -> str:
        d = self.inv.departments.get(code)
        return d.name if d else code

    def _disp(self, d: Disposition | str) -> str:
        return t(f"disposition.{d}", self.lang)

    def _wave_name(self, n: int | None) -> str:
        return t("migrate.wave.name", self.lang, n=n) if n is not None else ""

    def _targets(self, s: SystemPlan) -> str:
        return "\n".join(f"{x.source} → {x.target} ({x.flavor})" for x in s.targets)

    def _sizing(self, s: SystemPlan) -> str:
        return "\n".join(t("migrate.sizing.host", self.lang, source=x.source, vcpus=f"{x.need_vcpus:g}",
                           memory=f"{x.need_memory_gb:g}", disk=f"{x.need_disk_gb:g}",
                           sized=x.sized_flavor or t("migrate.sizing.none", self.lang), basis=x.basis)
                         for x in s.targets)

    def _zone(self, s: SystemPlan) -> str:
        """The cloud zone a system lands in; for a cloud-bound system without one, the zone it waits for."""
        if s.zone is not None:
            return t(f"cloudzone.{s.zone}", self.lang)
        if s.disposition in CLOUD_BOUND and s.allowed_zones:
            wanted = " / ".join(t(f"cloudzone.{z}", self.lang) for z in s.allowed_zones)
            return t("migrate.zone.waits", self.lang, zone=wanted)
        return ""

    def _notes(self, notes: Sequence[str]) -> str:
        return "\n".join(i18n.bilingual(n, self.lang) for n in notes)

    # --- tables -----------------------------------------------------------------------------------------

    def system_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("department", "system", "name", "disposition", "rule", "zone", "private_network", "verdict",
                "priority", "urgency", "importance", "wave", "window", "group", "depends_on", "targets", "sizing",
                "data_gb", "downtime", "awaiting", "notes")
        rows = []
        for s in self.systems:
            w = self.waves.get(s.wave) if s.wave is not None else None
            verdict = t(f"verdict.{s.verdict}", self.lang) if s.verdict else ""
            rows.append([self._dept(s.department), s.system, s.name, self._disp(s.disposition),
                         i18n.bilingual(s.rule, self.lang), self._zone(s),
                         i18n.bilingual(s.private_network.reason, self.lang) if s.private_network else "",
                         verdict, s.urgency * s.importance, s.urgency,
                         s.importance, s.wave, f"{_when(w.start)} – {_when(w.end)}" if w else "",
                         ", ".join(o.system for o in self.plan.systems if s.group and o.group == s.group
                                   and o.system != s.system),
                         ", ".join(s.depends_on), self._targets(s), self._sizing(s),
                         _gb(s.data_bytes), s.downtime_budget_s, t("migrate.yes", self.lang) if s.awaiting_capacity
                         else "", self._notes(s.notes)])
        return [t(f"migrate.col.{k}", self.lang) for k in keys], rows

    def wave_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("wave", "start", "end", "systems", "hosts", "data_gb", "groups")
        names = {s.system: s.name for s in self.plan.systems}
        rows = [[self._wave_name(w.number), _when(w.start), _when(w.end),
                 "\n".join(f"{sid} {names.get(sid, '')}" for sid in w.systems), w.hosts, _gb(w.data_bytes),
                 "\n".join(" ↔ ".join(g) for g in w.groups)] for w in self.plan.waves]
        return [t(f"migrate.col.{k}", self.lang) for k in keys], rows

    def order_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("order", "kind", "system", "name", "owner", "assets", "rack_units", "status", "rule", "notes")
        names = {s.system: s.name for s in self.plan.systems}
        rows = [[o.id, self._disp(o.kind), o.system, names.get(o.system, ""), self._dept(o.owner),
                 "\n".join(o.assets), o.rack_units or None, t(f"status.{o.status}", self.lang),
                 i18n.bilingual(o.rule, self.lang), self._notes(o.notes)] for o in self.plan.work_orders]
        return [t(f"migrate.col.{k}", self.lang) for k in keys], rows

    def target_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("target", "zone", "flavor", "department", "sources", "vcpus", "memory", "disk")
        flavors = {f.name: f for f in self.inv.cloud.flavors} if self.inv.cloud else {}
        used: dict[str, list[tuple[SystemPlan, Any]]] = {}
        for s in self.plan.systems:
            for x in s.targets:
                used.setdefault(x.target, []).append((s, x))
        rows = []
        for p in self.inv.cloud.pool if self.inv.cloud else []:
            f = flavors.get(p.flavor)
            items = used.get(p.host, [])
            cpu = sum(x.need_vcpus for _, x in items)
            mem = sum(x.need_memory_gb for _, x in items)
            disk = sum(x.need_disk_gb for _, x in items)
            rows.append([p.host, t(f"cloudzone.{p.zone}", self.lang), p.flavor,
                         ", ".join(sorted({self._dept(s.department) for s, _ in items})),
                         "\n".join(f"{x.source} ({s.system})" for s, x in items),
                         f"{cpu:g} / {f.vcpus}" if f else "", f"{mem:g} / {f.memory_gb}" if f else "",
                         f"{disk:g} / {f.disk_gb}" if f else ""])
        return [t(f"migrate.col.{k}", self.lang) for k in keys], rows

    def shortfall_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("system", "source", "need", "request", "reason")
        rows = [[x.system, x.source, f"{x.need_vcpus:g} / {x.need_memory_gb:g} / {x.need_disk_gb:g}",
                 x.request_flavor or t("migrate.sizing.none", self.lang), i18n.bilingual(x.reason, self.lang)]
                for x in self.plan.awaiting_capacity]
        return [t(f"migrate.col.{k}", self.lang) for k in keys], rows

    def sheets(self) -> list[reports.Sheet]:
        out = []
        for key, table in (("systems", self.system_table), ("waves", self.wave_table), ("orders", self.order_table),
                           ("targets", self.target_table), ("shortfall", self.shortfall_table)):
            headers, rows = table()
            out.append(reports.Sheet(t(f"migrate.{key}.sheet", self.lang), headers, rows))
        out.append(reports.Sheet(t("migrate.warnings.sheet", self.lang), [t("migrate.col.warning", self.lang)],
                                 [[w] for w in self.plan.warnings]))
        return out

    # --- charts -----------------------------------------------------------------------------------------

    def disposition_chart(self) -> Markup:
        n = counts(self.plan)
        return reports.svg_bar_chart([(self._disp(d), n[str(d)]) for d in DISPOSITION_ORDER],
                                     title=t("migrate.html.disposition_chart", self.lang),
                                     colors=[DISPOSITION_COLORS[d] for d in DISPOSITION_ORDER], value_format="{:,.0f}",
                                     width=760)

    def timeline(self, width: int = 1100) -> Markup | None:
        """Waves as bars on a date axis (one row per wave, its systems listed beside it), blackout dates shaded."""
        waves: list[Wave] = self.plan.waves
        if not waves:
            return None
        tz = waves[0].start.tzinfo
        first = min(w.start for w in waves).date() - timedelta(days=1)
        last = max(w.end for w in waves).date() + timedelta(days=1)
        days = max((last - first).days, 1)
        label_w, plot_w, gap = 150, 420, 14
        list_x = label_w + plot_w + gap
        top, row = 40, 30
        height = top + row * len(waves) + 28
        names = {s.system: s.name for s in self.plan.systems}

        def x(at: datetime | date) -> float:
            if isinstance(at, datetime):
                at = at.astimezone(tz)
                offset = (at.date() - first).days + (at.hour * 3600 + at.minute * 60) / 86400
            else:
                offset = (at - first).days
            return label_w + plot_w * offset / days

        title = t("migrate.html.timeline", self.lang)
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart timeline" role="img" width="{width}" '
                 f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
                 f"<title>{_e(title)}</title>", f'<text x="0" y="14" class="chart-title">{_e(title)}</text>']
        bottom = top + row * len(waves)
        if self.planning is not None:  # blackout days inside the axis
            day = first
            while day < last:
                b = self.planning.blackout(day)
                if b is not None:
                    parts.append(f'<rect x="{x(day):.1f}" y="{top - 6}" width="{plot_w / days:.1f}" '
                                 f'height="{bottom - top + 6}" fill="#f4c7c3" fill-opacity="0.6">'
                                 f"<title>{_e(day.isoformat())} {_e(b.name)}: "
                                 f"{_e(t('migrate.html.blackout', self.lang))}</title></rect>")
                day += timedelta(days=1)
        # axis: a tick at every Monday (or each day on a short axis), labelled MM-DD
        step = 1 if days <= 14 else 7
        day = first if step == 1 else first + timedelta(days=(7 - first.weekday()) % 7)
        parts.append(f'<line x1="{label_w}" y1="{bottom}" x2="{label_w + plot_w}" y2="{bottom}" stroke="#888"/>')
        while day <= last:
            px = x(day)
            parts.append(f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{bottom + 4}" stroke="#d5dbe1"/>'
                         f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle" class="chart-note">'
                         f"{_e(day.strftime('%m-%d'))}</text>")
            day += timedelta(days=step)
        for i, w in enumerate(waves):
            y = top + i * row
            x1, x2 = x(w.start), x(w.end)
            listed = ", ".join(w.systems)
            full = "; ".join(f"{sid} {names.get(sid, '')}" for sid in w.systems)
            label = f"{self._wave_name(w.number)} {w.start:%m-%d %H:%M}"
            parts.append(f"<g><title>{_e(self._wave_name(w.number))}: {_e(_when(w.start))} – {_e(_when(w.end))}; "
                         f"{_e(full)}</title>"
                         f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_e(label)}</text>'
                         f'<rect x="{x1:.1f}" y="{y + 3}" width="{max(x2 - x1, 6):.1f}" height="16" rx="3" '
                         f'fill="{DISPOSITION_COLORS[Disposition.cloud_rehost]}"/>'
                         f'<text x="{list_x}" y="{y + 15}">{_e(reports.fit_text(listed, int((width - list_x) / 6.8)))}'
                         "</text></g>")
        parts.append("</svg>")
        return Markup("".join(parts))

    # --- HTML -------------------------------------------------------------------------------------------

    def html_context(self) -> dict[str, Any]:
        lang = self.lang
        n = counts(self.plan)
        tables = {}
        for key, table in (("systems", self.system_table), ("waves", self.wave_table), ("orders", self.order_table),
                           ("targets", self.target_table), ("shortfall", self.shortfall_table)):
            headers, rows = table()
            tables[key] = {"headers": headers, "rows": rows}
        start = self.plan.start.isoformat() if self.plan.start else "—"
        return {
            "title": t("migrate.title", lang),
            "subtitle": t("migrate.subtitle", lang, inventory=Path(self.plan.inventory).name, start=start,
                          tz=self.plan.timezone),
            "generated_at": self.plan.generated.isoformat(timespec="seconds"),
            "history": i18n.bilingual(self.plan.history, lang) if self.plan.history else "",
            "total": len(self.plan.systems),
            "cards": [{"key": str(d), "label": self._disp(d), "value": n[str(d)], "color": DISPOSITION_COLORS[d]}
                      for d in DISPOSITION_ORDER],
            "disposition_chart": self.disposition_chart(),
            "timeline": self.timeline(),
            "tables": tables,
            "warnings": self.plan.warnings,
        }


FORMATS = ("xlsx", "html")


def write_reports(result: PlannedMigration, out: Path | str, formats: Sequence[str] = FORMATS,
                  lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write `migration-plan.xlsx` and/or `migration-plan.html` under `out`; return the paths
    (`jiyue.reports.WriteReports`)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    planning = result.planning
    if planning is None:
        try:
            planning = load_planning(Path(result.plan.planning) if result.plan.planning else None)
        except PlanningError:  # the report still renders, without blackout shading
            planning = None
    report = PlanReport(result.inventory, result.plan, lang, planning)
    written = []
    if "xlsx" in formats:
        written.append(reports.write_xlsx(folder / f"{BASENAME}.xlsx", report.sheets()))
    if "html" in formats:
        written.append(reports.write_html(folder / f"{BASENAME}.html", "plan.html.j2", report.html_context(),
                                          lang=lang, search_paths=[TEMPLATES]))
    return written
