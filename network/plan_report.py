"""The address plan report: Excel and one self-contained HTML page. Stable names under the output dir:

- `network-plan.xlsx`: 部门地址分配 (each department's share and how much of it is used), VLAN子网 (every VLAN's
  IPv4 subnet and IPv6 /64, department or interconnect, the interfaces on it), 接口地址 (every VLAN
  interface's addresses, by device), 已释放 (what the last planning released) and 提示 (notes);
- `network-plan.html`: counts, the share use per department as a bar chart, the same tables.

Writers, escaping and formula neutralising are `jiyue.reports`'; the data is the plan's (`network.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inventory.model import Inventory
from jiyue import i18n, reports
from jiyue.i18n import t
from network.model import AddressPlan, PlannedAddresses

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "report_templates"
BASENAME = "network-plan"
FORMATS = ("xlsx", "html")


class PlanReport:
    """The plan's tables in one language, shared by the Excel and HTML writers."""

    def __init__(self, inv: Inventory, plan: AddressPlan, lang: str = "zh") -> None:
        self.inv, self.plan, self.lang = inv, plan, i18n.check_lang(lang)

    def _dept(self, code: str | None) -> str:
        if code is None:
            return t("network.interconnect", self.lang)
        d = self.inv.departments.get(code)
        return d.name if d else code

    def _kind(self, department: str | None) -> str:
        return t(f"network.kind.{'interconnect' if department is None else 'department'}", self.lang)

    def _headers(self, keys: tuple[str, ...]) -> list[str]:
        return [t(f"network.col.{k}", self.lang) for k in keys]

    def share_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("code", "department", "level", "ipv4_share", "ipv6_share", "vlans", "ipv4_used", "ipv6_used")
        ext = self.inv.extranet
        rows = []
        shares = [(a.department, a.ipv4, a.ipv6, ext.vlan_ipv4_prefix) for a in ext.departments] if ext else []
        if ext is not None and ext.interconnect is not None:
            pool = ext.interconnect
            shares.append((None, pool.ipv4, pool.ipv6, pool.ipv4_prefix))
        for code, v4, v6, length in shares:
            used = [s for s in self.plan.subnets if s.department == code]
            d = self.inv.departments.get(code) if code else None
            rows.append([code or "", self._dept(code), i18n.enum_label("level", d.level, self.lang) if d else "",
                         str(v4), str(v6), len(used), f"{len(used)} / {2 ** max(length - v4.prefixlen, 0)}",
                         f"{len(used)} / {2 ** max(64 - v6.prefixlen, 0)}"])
        return self._headers(keys), rows

    def subnet_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("department", "kind", "vlan", "ipv4", "ipv6", "interfaces")
        rows = []
        for s in self.plan.subnets:
            on = [f"{a.device} {a.interface}" for a in self.plan.addresses if (a.department, a.vlan) == s.key]
            rows.append([self._dept(s.department), self._kind(s.department), s.vlan, str(s.ipv4), str(s.ipv6),
                         "\n".join(on)])
        return self._headers(keys), rows

    def address_table(self) -> tuple[list[str], list[list[Any]]]:
        keys = ("device", "platform", "site", "role", "interface", "description", "department", "vlan", "ipv4",
                "ipv6")
        rows = []
        for a in self.plan.addresses:
            device = self.inv.devices.get(a.device)
            iface = next((i for i in device.interfaces if i.name == a.interface), None) if device else None
            rows.append([a.device, str(device.platform) if device else "", device.site if device else "",
                         i18n.enum_label("network.role", device.role, self.lang) if device else "", a.interface,
                         (iface.description or "") if iface else "", self._dept(a.department), a.vlan,
                         str(a.ipv4), str(a.ipv6)])
        return self._headers(keys), rows

    def sheets(self) -> list[reports.Sheet]:
        out = []
        for key, table in (("shares", self.share_table), ("subnets", self.subnet_table),
                           ("addresses", self.address_table)):
            headers, rows = table()
            out.append(reports.Sheet(t(f"network.{key}.sheet", self.lang), headers, rows))
        out.append(reports.Sheet(t("network.released.sheet", self.lang), self._headers(("released",)),
                                 [[r] for r in self.plan.released]))
        out.append(reports.Sheet(t("network.warnings.sheet", self.lang), self._headers(("note",)),
                                 [[i18n.bilingual(w, self.lang)] for w in self.plan.warnings]))
        return out

    def html_context(self) -> dict[str, Any]:
        lang, plan = self.lang, self.plan
        tables = {}
        for key, table in (("shares", self.share_table), ("subnets", self.subnet_table),
                           ("addresses", self.address_table)):
            headers, rows = table()
            tables[key] = {"headers": headers, "rows": rows}
        ext = self.inv.extranet
        use = []
        for a in ext.departments if ext else []:
            n = sum(s.department == a.department for s in plan.subnets)
            total = 2 ** max(ext.vlan_ipv4_prefix - a.ipv4.prefixlen, 0)
            use.append((self._dept(a.department), 100.0 * n / total))
        return {
            "title": t("network.title", lang),
            "subtitle": t("network.subtitle", lang, inventory=Path(plan.inventory).name, vpn=plan.vpn_instance,
                          ipv4=str(plan.ipv4), ipv6=str(plan.ipv6)),
            "generated_at": plan.generated.isoformat(timespec="seconds"),
            "cards": [{"label": t("network.html.departments", lang),
                       "value": len({s.department for s in plan.subnets if s.department})},
                      {"label": t("network.html.subnets", lang), "value": len(plan.subnets)},
                      {"label": t("network.html.addresses", lang), "value": len(plan.addresses)}],
            "chart": reports.svg_bar_chart(use, title=t("network.html.use_chart", lang), unit="%",
                                           value_format="{:,.0f}"),
            "tables": tables, "released": plan.released,
            "warnings": [i18n.bilingual(w, lang) for w in plan.warnings],
        }


def write_plan_reports(result: PlannedAddresses, out: Path | str, formats: Sequence[str] = FORMATS,
                       lang: str = i18n.DEFAULT_LANG) -> list[Path]:
    """Write `network-plan.xlsx` and `network-plan.html` (those of `formats`) under `out`; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = PlanReport(result.inv, result.plan, lang)
    written = []
    if "xlsx" in formats:
        written.append(reports.write_xlsx(out / f"{BASENAME}.xlsx", report.sheets()))
    if "html" in formats:
        written.append(reports.write_html(out / f"{BASENAME}.html", "network-plan.html.j2", report.html_context(),
                                          lang=lang, search_paths=[TEMPLATES]))
    return written
