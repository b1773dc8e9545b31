"""The system archive (档案库), the integration list (整合共享清单) and the asset list (资产清单) as rows.

Inputs are the inventory, the zombie verdicts (`Judge(inv, store).judge_all()`) and the latest
facts per host (`judge.history.facts()`, `{}` for a host never reached). Everything here is
data: language-dependent text is produced per row with `jiyue.i18n`, and escaping or formula
neutralising is the writers' job (`jiyue.reports`), so host strings pass through unchanged.

- Archive: one row per system with the fields the audits ask for (Panjin 盘政办发〔2017〕144号, Hezhou), what was
  measured, the verdict, the criteria met and the evidence behind every met or near criterion.
- Integration list: (a) systems of one department that declare overlapping functions with each
  other (mutual `overlaps_with`); (b) systems that exist in the name of one office (科室): an
  `office` whose declared users are only that office or its own department ("以科室名义存在的
  独立政务信息系统原则上必须整合", Panjin), with a suggested target per system.
- Asset list: everything the consolidation frees (zombie hosts, decommissioned migrated sources,
  website hosts, retired room equipment, vacated rooms), each with its disposal route (移交划转 or
  报损报废) and the reason, by the rules of audit/assets.yaml; and the machine rooms (机房腾退) with what
  remains in each and the findings of the one-room, 20 m², approved-by-the-leading-group rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from audit.history import declared_dependents
from audit.model import (
    MET,
    NEAR,
    SCRAP,
    TRANSFER,
    VERDICT_ORDER,
    ZOMBIE,
    AssetEntry,
    Criterion,
    Evidence,
    HostFacts,
    IntegrationEntry,
    Location,
    RoomEntry,
    Verdict,
)
from inventory.model import Classification, Inventory, ProtectionScheme, RoomStatus, System
from inventory.validate import room_findings
from jiyue.i18n import bilingual, enum_label, t

ARCHIVE_COLUMNS = (
    "department", "office", "id", "name", "function", "category", "user_units", "declared_users", "frequency",
    "measured_frequency", "requests_per_day", "measured_users", "approval_department", "approval_date",
    "funding_source", "funding_amount", "build_year", "vendor", "classification", "protection_level",
    "filing_number", "zone", "golden_network", "website", "depends_on", "dependents", "hosts", "location",
    "resources", "os", "verdict", "criteria_met", "evidence", "window",
)
EVIDENCE_LINES_PER_CRITERION = 12  # more are counted, not listed: a cell stays readable

SUMMARY_COLUMNS = ("department", "department.level", "summary.systems", *(f"verdict.{v}" for v in VERDICT_ORDER),
                   "summary.hosts", "summary.zombie_hosts")

INTEGRATION_COLUMNS = ("integration.kind", "archive.department", "integration.group", "archive.id", "archive.name",
                       "archive.office", "archive.user_units", "archive.verdict", "integration.target",
                       "integration.action", "integration.reason")
ASSET_COLUMNS = ("assets.kind", "assets.name", "assets.address", "assets.accountable", "assets.vendor", "assets.system",
                 "assets.system_name", "assets.room", "assets.cause", "assets.stage", "assets.os", "assets.cpu",
                 "assets.memory_gb", "assets.disk_gb", "assets.count", "assets.year", "assets.listening", "assets.cron",
                 "assets.last_collected", "assets.eol", "assets.disposal", "assets.disposal_reason")
ROOM_COLUMNS = ("rooms.id", "rooms.department", "rooms.address", "rooms.area", "rooms.status", "rooms.reason",
                "rooms.remains", "rooms.approval", "rooms.findings")
ASSET_RULES = Path(__file__).resolve().parent / "assets.yaml"
HOST_CAUSES = ("zombie", "migrated_source", "website")  # what frees a host (`ASSET_FREED` records' `cause`)


# --- small helpers ---------------------------------------------------------------------------------


def _short_time(iso: str | None) -> str:
    """2026-05-01T08:00:00+00:00 -> 2026-05-01 08:00 (UTC offset dropped only when it is UTC)."""
    if not iso:
        return ""
    text = iso.replace("T", " ")
    if text.endswith("+00:00"):
        text = text[:-6]
    return text[:16]


def _gb(kb: Any) -> float | None:
    try:
        return round(float(kb) / 1024 / 1024, 1)
    except (TypeError, ValueError):
        return None


def _criterion(verdict: Verdict | None, key: str) -> Criterion | None:
    return next((c for c in verdict.criteria if c.key == key), None) if verdict else None


def criterion_label(c: Criterion, lang: str) -> str:
    return f"{c.number} {t(f'criterion.{c.key}', lang)}"


def evidence_line(e: Evidence) -> str:
    """host signal: value @ time (source); empty parts left out."""
    head = " ".join(x for x in (e.host, e.signal) if x)
    text = f"{head}: {e.value}" if e.value not in (None, "") else head
    if e.at:
        text += f" @ {e.at}"
    if e.source:
        text += f" ({e.source})"
    return text


def window_text(verdict: Verdict | None, lang: str) -> str:
    if verdict is None or not verdict.window_start:
        text = t("window.none", lang)
    else:
        text = t("window.range", lang, start=_short_time(verdict.window_start), end=_short_time(verdict.window_end),
                 runs=verdict.runs)
        if verdict.window_days:
            text += "; " + t("window.days", lang, days=verdict.window_days)
    if verdict is not None and verdict.hosts_missing:
        text += "; " + t("window.missing", lang, hosts=", ".join(verdict.hosts_missing))
    return text


def frequency_text(verdict: Verdict | None, lang: str) -> str:
    """The measured frequency beside the declared one: its level, the active days, or what is missing."""
    if verdict is None or verdict.measured_frequency is None:
        return t("measured_frequency.unmeasured", lang)
    text = t("measured_frequency.value", lang, level=enum_label("frequency", verdict.measured_frequency, lang),
             active=verdict.active_days or 0, days=min(verdict.window_days, verdict.covered_days or 0))
    if verdict.missing_days:
        text += "; " + t("measured_frequency.missing", lang, days=verdict.missing_days, cycle=verdict.cycle_days)
    return text


def evidence_text(verdict: Verdict | None, lang: str, outcomes: Sequence[str] = (MET, NEAR)) -> str:
    """The observation window, then each met or near criterion: its summary and evidence lines."""
    if verdict is None:
        return ""
    lines = [f"{t('archive.window', lang)}: {window_text(verdict, lang)}",
             f"{t('archive.verdict', lang)}: {bilingual(verdict.rule, lang)}" if verdict.rule else ""]
    lines = [line for line in lines if line]
    for c in verdict.criteria:
        if c.outcome not in outcomes:
            continue
        lines.append(f"[{criterion_label(c, lang)} · {t(f'outcome.{c.outcome}', lang)}] {bilingual(c.summary, lang)}")
        for e in c.evidence[:EVIDENCE_LINES_PER_CRITERION]:
            lines.append(f"  - {evidence_line(e)}")
        if len(c.evidence) > EVIDENCE_LINES_PER_CRITERION:
            lines.append("  - " + t("evidence.more", lang, n=len(c.evidence) - EVIDENCE_LINES_PER_CRITERION))
    return "\n".join(lines)


def measured(verdict: Verdict | None) -> dict[str, Any]:
    """What was measured for a system, from its verdict's numbers: users, requests a day, and per
    host CPU P95 % and network P95 MB/day; None where the criterion could not be judged."""
    out: dict[str, Any] = {"requests_per_day": None, "users": None, "cpu_p95_pct": None,
                           "net_p95_mb_per_day": None, "hosts": {}}
    small = _criterion(verdict, "small")
    if small is not None and "requests_per_day" in small.numbers:
        out["requests_per_day"] = small.numbers["requests_per_day"]
        out["users"] = small.numbers.get("users")
    idle = _criterion(verdict, "idle")
    hosts = idle.numbers.get("hosts", {}) if idle is not None else {}
    if hosts:
        out["hosts"] = hosts
        out["cpu_p95_pct"] = max(h["cpu_p95_pct"] for h in hosts.values())
        out["net_p95_mb_per_day"] = round(sum(h["net_p95_mb_per_day"] for h in hosts.values()), 2)
    return out


def host_resources(facts: HostFacts) -> dict[str, Any]:
    """CPU count, memory and disk (GB) from a host's facts; None where not collected."""
    disks = [d for d in facts.get("disks") or [] if isinstance(d, dict)]
    size = sum(int(d.get("size_kb") or 0) for d in disks)
    used = sum(int(d.get("used_kb") or 0) for d in disks)
    return {
        "cpus": facts.get("cpu", {}).get("count") if facts else None,
        "memory_gb": _gb(facts.get("memory", {}).get("total_kb")) if facts else None,
        "disk_gb": _gb(size) if disks else None,
        "disk_used_pct": round(100 * used / size) if size else None,
    }


def host_os(inv: Inventory, host: str, facts: HostFacts, lang: str) -> str:
    pretty = facts.get("os", {}).get("pretty_name") if facts else None
    if pretty:
        return str(pretty)
    return t("resources.declared_os", lang, os=inv.hosts[host].os if host in inv.hosts else "?")


def resources_text(system: System, facts: Mapping[str, HostFacts], verdict: Verdict | None,
                   lang: str) -> str:
    m = measured(verdict)
    lines = []
    for h in system.hosts:
        f = facts.get(h) or {}
        u = m["hosts"].get(h)
        if not f and not u:
            lines.append(f"{h}: {t('resources.not_collected', lang)}")
            continue
        r = host_resources(f)
        parts = []
        if r["cpus"]:
            parts.append(t("resources.cores", lang, n=r["cpus"]))
        if r["memory_gb"] is not None:
            parts.append(t("resources.memory", lang, gb=r["memory_gb"]))
        if r["disk_gb"] is not None:
            parts.append(t("resources.disk", lang, gb=r["disk_gb"], pct=r["disk_used_pct"] or 0))
        if u:
            parts.append(t("resources.cpu_p95", lang, pct=u["cpu_p95_pct"]))
            parts.append(t("resources.network", lang, mb=u["net_p95_mb_per_day"]))
            if u.get("sources"):  # where those figures came from: jiyue's samples, a monitoring system
                parts.append(t("resources.sources", lang, sources=", ".join(
                    f"{k} {n}" for k, n in sorted(u["sources"].items()))))
        lines.append(f"{h}: " + ("，" if lang == "zh" else ", ").join(parts))
    return "\n".join(lines)


def verdicts_by_system(verdicts: Iterable[Verdict]) -> dict[str, Verdict]:
    return {v.system: v for v in verdicts}


def ordered_systems(inv: Inventory) -> list[System]:
    """Systems by department (inventory order), then by id."""
    dept_order = {code: i for i, code in enumerate(inv.departments)}
    return sorted(inv.systems.values(), key=lambda s: (dept_order.get(s.department, len(dept_order)), s.id))


# --- the archive -----------------------------------------------------------------------------------


def archive_headers(lang: str = "zh") -> list[str]:
    return [t(f"archive.{c}", lang) for c in ARCHIVE_COLUMNS]


def location_text(location: Location | None, lang: str) -> str:
    """Where a system runs now, from the migration engine's record (`MIGRATE_LOCATION` in the store)."""
    if not location or location.get("what") != "migrated":
        return t("archive.location_source", lang)
    moves = ", ".join(f"{src} → {dst}" for src, dst in sorted(location.get("hosts", {}).items()))
    return f"{t('archive.location_migrated', lang)} {moves} ({_short_time(location.get('at'))})"


def archive_record(inv: Inventory, system: System, verdict: Verdict | None,
                   facts: Mapping[str, HostFacts], lang: str = "zh",
                   dependents: Mapping[str, Mapping[str, str]] | None = None,
                   location: Location | None = None) -> dict[str, Any]:
    """One system's archive row as {column key: value}, texts in `lang`.

    A classified (涉密) system's row holds its declared fields only, marked as the confidential bureau's
    (分级保护): jiyue neither measures nor judges it, so no fact, verdict or measured edge is shown."""
    classified = system.classification == Classification.classified
    if classified:
        verdict, facts, dependents, location = None, {}, declared_dependents(inv), None
    dept = inv.departments.get(system.department)
    m = measured(verdict)
    deps = (dependents if dependents is not None else declared_dependents(inv)).get(system.id, {})
    yes, no = t("report.yes", lang), t("report.no", lang)
    p = system.protection
    row = {
        "department": dept.name if dept else system.department,
        "office": system.office or "",
        "id": system.id,
        "name": system.name,
        "function": system.function,
        "category": enum_label("category", system.category, lang),
        "user_units": "、".join(system.scope.user_units) if lang == "zh" else ", ".join(system.scope.user_units),
        "declared_users": system.scope.declared_users,
        "frequency": enum_label("frequency", system.frequency, lang),
        "measured_frequency": frequency_text(verdict, lang),
        "requests_per_day": m["requests_per_day"],
        "measured_users": m["users"],
        "approval_department": system.approval.department,
        "approval_date": system.approval.date,
        "funding_source": system.funding.source,
        "funding_amount": system.funding.amount,
        "build_year": system.build_year,
        "vendor": system.vendor,
        "classification": enum_label("classification", system.classification, lang),
        "protection_level": p.level if p.scheme == ProtectionScheme.dengbao else enum_label("scheme", p.scheme, lang),
        "filing_number": p.filing_number or "",
        "zone": enum_label("zone", system.zone, lang),
        "golden_network": system.golden_network.value if system.golden_network else "",
        "website": yes if system.website else no,
        "depends_on": ", ".join(system.depends_on),
        "dependents": ", ".join(sorted(deps)),
        "hosts": "\n".join(f"{h} ({inv.hosts[h].address})" if h in inv.hosts else h for h in system.hosts),
        "location": location_text(location, lang),
        "resources": resources_text(system, facts, verdict, lang),
        "os": "\n".join(dict.fromkeys(host_os(inv, h, facts.get(h) or {}, lang) for h in system.hosts)),
        "verdict": t(f"verdict.{verdict.verdict}", lang) if verdict else "",
        "criteria_met": "; ".join(criterion_label(c, lang) for c in verdict.criteria if c.outcome == MET)
        if verdict else "",
        "evidence": evidence_text(verdict, lang),
        "window": window_text(verdict, lang) if verdict else "",
    }
    if classified:
        handled = t("archive.classified", lang)
        row |= {"location": handled, "verdict": handled, "resources": t("archive.classified_not_collected", lang)}
    return row


def archive_records(inv: Inventory, verdicts: Iterable[Verdict], facts: Mapping[str, HostFacts],
                    lang: str = "zh", dependents: Mapping[str, Mapping[str, str]] | None = None,
                    department: str | None = None,
                    locations: Mapping[str, Location] | None = None) -> list[dict[str, Any]]:
    """Archive rows ({column key: value}) for every system, or one department's, in archive order."""
    by_id = verdicts_by_system(verdicts)
    return [archive_record(inv, s, by_id.get(s.id), facts, lang, dependents, (locations or {}).get(s.id))
            for s in ordered_systems(inv) if department is None or s.department == department]


# --- the city summary ------------------------------------------------------------------------------


def summary(inv: Inventory, verdicts: Iterable[Verdict]) -> list[dict[str, Any]]:
    """Per department (inventory order, only those with systems): counts of systems by verdict,
    hosts, and hosts of zombie systems."""
    by_id = verdicts_by_system(verdicts)
    out = []
    for code, dept in inv.departments.items():
        systems = [s for s in inv.systems.values() if s.department == code]
        if not systems:
            continue
        counts = dict.fromkeys(VERDICT_ORDER, 0)
        zombie_hosts = 0
        for s in systems:
            v = by_id.get(s.id)
            if v is not None:
                counts[v.verdict] = counts.get(v.verdict, 0) + 1
                zombie_hosts += len(s.hosts) if v.verdict == ZOMBIE else 0
        out.append({"department": code, "name": dept.name, "level": dept.level.value, "systems": len(systems),
                    "verdicts": counts, "hosts": sum(len(s.hosts) for s in systems), "zombie_hosts": zombie_hosts})
    return out


def summary_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"systems": sum(r["systems"] for r in rows), "hosts": sum(r["hosts"] for r in rows),
            "zombie_hosts": sum(r["zombie_hosts"] for r in rows),
            "verdicts": {k: sum(r["verdicts"].get(k, 0) for r in rows) for k in VERDICT_ORDER}}


def summary_rows(rows: Sequence[Mapping[str, Any]], lang: str = "zh") -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the city summary sheet, the totals row last."""
    headers = [t(c, lang) for c in SUMMARY_COLUMNS]
    out = [[r["name"], enum_label("level", r["level"], lang), r["systems"],
            *(r["verdicts"].get(k, 0) for k in VERDICT_ORDER), r["hosts"], r["zombie_hosts"]] for r in rows]
    tot = summary_totals(rows)
    out.append([t("report.total", lang), "", tot["systems"], *(tot["verdicts"][k] for k in VERDICT_ORDER),
                tot["hosts"], tot["zombie_hosts"]])
    return headers, out


# --- the integration list --------------------------------------------------------------------------


def is_single_office(inv: Inventory, system: System) -> bool:
    """A system in the name of one office (科室): it has an `office`, and its declared users are only
    that office or its own department (Panjin: 以科室名义存在的独立政务信息系统)."""
    if not system.office or system.golden_network is not None:
        return False
    dept = inv.departments.get(system.department)
    allowed = {system.office} | ({dept.name} if dept else set())
    return set(system.scope.user_units) <= allowed


def _mutual_overlap_groups(inv: Inventory) -> list[list[str]]:
    """Connected groups of systems in one department that declare overlap with each other."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for s in inv.systems.values():
        for other_id in s.overlaps_with:
            other = inv.systems.get(other_id)
            if other is not None and s.id in other.overlaps_with and other.department == s.department:
                parent[find(s.id)] = find(other_id)
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _size(system: System, verdict: Verdict | None) -> float:
    m = measured(verdict)
    return float(m["users"]) if m["users"] is not None else float(system.scope.declared_users)


def integration_list(inv: Inventory, verdicts: Iterable[Verdict]) -> list[IntegrationEntry]:
    by_id = verdicts_by_system(verdicts)

    def zombie(sid: str) -> bool:
        v = by_id.get(sid)
        return v is not None and v.verdict == ZOMBIE

    out: list[IntegrationEntry] = []
    in_overlap: set[str] = set()
    for group in _mutual_overlap_groups(inv):
        in_overlap |= set(group)
        systems = [inv.systems[g] for g in group]
        living = [s for s in systems if not zombie(s.id)] or systems
        # The merged system: not a zombie, the most users (measured, else declared), then by id.
        keep = sorted(living, key=lambda s: (-_size(s, by_id.get(s.id)), s.id))[0]
        for s in systems:
            others = ", ".join(x for x in group if x != s.id)
            action = "decommission" if zombie(s.id) else "keep" if s.id == keep.id else "merge"
            out.append(IntegrationEntry("overlap", s.department, group, s.id, None if action == "keep" else keep.id,
                                        action, [("integration.reason.overlap", {"other": others})]))
    dept_order = {code: i for i, code in enumerate(inv.departments)}
    single = sorted((s for s in inv.systems.values() if s.id not in in_overlap and is_single_office(inv, s)),
                    key=lambda s: (dept_order.get(s.department, len(dept_order)), s.id))
    single_ids = {s.id for s in single}
    for s in single:
        group = [x.id for x in single if x.department == s.department]
        reasons = [("integration.reason.single_office", {"office": s.office or "",
                                                         "units": "、".join(s.scope.user_units)})]
        target: str | None = None
        if s.replaced_by:
            target = s.replaced_by
            reasons.append(("integration.reason.replaced_by", {"target": s.replaced_by}))
        else:
            # Same department, same classification and network zone (an intranet system never merges
            # into an extranet one), not itself single-office, a zombie, a website or a golden network.
            pool = [o for o in inv.systems.values() if o.department == s.department and o.id not in single_ids
                    and not zombie(o.id) and not o.website and o.golden_network is None
                    and o.classification == s.classification and o.zone == s.zone]
            if pool:
                best = sorted(pool, key=lambda o: (o.category != s.category, -_size(o, by_id.get(o.id)), o.id))[0]
                target = best.id
        action = "decommission" if zombie(s.id) else "merge" if target else "merge_none"
        out.append(IntegrationEntry("single_office", s.department, group, s.id, target, action, reasons))
    return out


def integration_rows(inv: Inventory, entries: Sequence[IntegrationEntry], verdicts: Iterable[Verdict],
                     lang: str = "zh") -> tuple[list[str], list[list[Any]]]:
    by_id = verdicts_by_system(verdicts)
    headers = [t(c, lang) for c in INTEGRATION_COLUMNS]
    rows = []
    for e in entries:
        s = inv.systems[e.system]
        dept = inv.departments.get(e.department)
        dept_name = dept.name if dept else e.department
        v = by_id.get(e.system)
        if e.kind == "overlap":
            group = t("integration.group.overlap", lang, dept=dept_name, systems=" + ".join(e.group))
        else:
            group = t("integration.group.single_office", lang, dept=dept_name)
        target = inv.systems.get(e.target) if e.target else None
        target_text = f"{target.id} {target.name}" if target else (e.target or "")
        if e.action == "merge":
            action = t("integration.action.merge", lang, target=target_text)
        else:
            action = t(f"integration.action.{e.action}", lang)
        reasons = "\n".join(t(key, lang, **args) for key, args in e.reasons)
        rows.append([t(f"integration.kind.{e.kind}", lang), dept_name, group, s.id, s.name, s.office or "",
                     "、".join(s.scope.user_units), t(f"verdict.{v.verdict}", lang) if v else "",
                     target_text, action, reasons])
    return headers, rows


# --- the asset list and the machine rooms -------------------------------------------------------


def load_asset_rules(path: Path = ASSET_RULES) -> dict[str, Any]:
    """The disposal and machine-room rules (audit/assets.yaml, or an auditor's copy)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _room_of(inv: Inventory) -> dict[str, str]:
    return {h: room.id for room in inv.machine_rooms.values() for h in room.hosts}


def _host_entry(inv: Inventory, s: System, h: str, cause: str, freed: Mapping[str, Mapping[str, Any]],
                facts: Mapping[str, HostFacts], eol: str | None, today: date, rules: Mapping[str, Any],
                collected_at: Mapping[str, datetime], room: str, lang: str) -> AssetEntry:
    """A freed host and its route: reused (移交划转) when its hardware answers; a host never reached is
    proposed for scrapping only pending an on-site check. An OS past its end of life is noted, never a
    reason to scrap: the OS is reinstalled."""
    f = facts.get(h) or {}
    r = host_resources(f)
    reasons: list[tuple[str, dict[str, str]]]
    if not f:
        disposal = rules["disposal"].get("never_reached", SCRAP)
        reasons = [("disposal.reason.unreachable", {})]
    else:
        disposal, reasons = rules["disposal"].get("default", TRANSFER), [("disposal.reason.reusable", {})]
    if eol and date.fromisoformat(eol) < today:
        reasons.append(("disposal.reason.eol_reinstall", {"eol": eol}))
    listening = [f"{x.get('process') or '?'} ({x.get('port')}/{x.get('proto')})"
                 for x in sorted(f.get("listening") or [],
                                 key=lambda x: (int(x.get("port") or 0), str(x.get("proto"))))]
    cron = [str(c.get("entry", "")) for c in f.get("cron") or [] if isinstance(c, dict)]
    dept = inv.departments.get(s.department)
    address = str(inv.hosts[h].address) if h in inv.hosts else ""
    return AssetEntry("host", h, address, dept.name if dept else s.department, cause,
                      "freed" if h in freed else "pending", disposal, reasons, s.id, s.name, s.vendor,
                      host_os(inv, h, f, lang), r["cpus"], r["memory_gb"], r["disk_gb"], room=room,
                      listening=listening, cron=cron, last_collected=collected_at.get(h), eol=eol)


def _equipment_route(kind: str, year: int | None, today: date, rules: Mapping[str, Any]
                     ) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    life = rules["disposal"]["service_life_years"].get(kind, rules["disposal"]["service_life_years"].get("other"))
    if year is not None and life is not None and today.year - year >= int(life):
        return SCRAP, [("disposal.reason.service_life", {"year": str(year), "years": str(life)})]
    if year is None:
        return rules["disposal"].get("default", TRANSFER), [("disposal.reason.year_unknown", {})]
    return rules["disposal"].get("default", TRANSFER), [("disposal.reason.within_life",
                                                          {"year": str(year), "years": str(life)})]


def asset_list(inv: Inventory, verdicts: Iterable[Verdict], facts: Mapping[str, HostFacts],
               today: date | None = None, collected_at: Mapping[str, datetime] | None = None,
               lang: str = "zh", locations: Mapping[str, Location] | None = None,
               freed: Mapping[str, Mapping[str, Any]] | None = None,
               rules: Mapping[str, Any] | None = None) -> list[AssetEntry]:
    """Everything the consolidation frees (盘政办发〔2017〕144号: 资产清单, 移交划转 or 报损报废):

    - the hosts of zombie systems, freed once taken offline;
    - the source hosts of migrated systems, freed by their decommission after the grace period;
    - the hosts of websites, freed by the move to the site cluster (网站集约化);
    - equipment retired from a machine room (a network device of a cancelled leased line, …) and all
      equipment of a room being vacated; the vacated rooms themselves (the space is handed back).

    A host is `freed` once the store holds its `ASSET_FREED` record, `pending` until then. Disposal
    follows audit/assets.yaml: transfer by default; scrap for equipment past its service life or a
    host that never answered (to be checked on site); never for an OS past its end of life.
    """
    today = today or date.today()
    rules = rules or load_asset_rules()
    freed = freed or {}
    collected_at = collected_at or {}
    by_id = verdicts_by_system(verdicts)
    rooms = _room_of(inv)
    out: list[AssetEntry] = []
    seen: set[str] = set()
    for s in ordered_systems(inv):
        if s.classification == Classification.classified:
            continue  # its hardware goes with it to the confidential bureau (分级保护), not through this list
        v = by_id.get(s.id)
        location = (locations or {}).get(s.id)
        if v is not None and v.verdict == ZOMBIE:
            cause, hosts = "zombie", list(s.hosts)
        elif location and location.get("what") == "migrated":
            cause, hosts = "migrated_source", [h for h in location.get("hosts", {}) if h in s.hosts]
        elif s.website and s.golden_network is None:
            cause, hosts = "website", list(s.hosts)
        else:  # freed by another route the store records (a zombie taken offline since the verdict, …)
            hosts = [h for h in s.hosts if h in freed]
            cause = str(freed[hosts[0]].get("cause")) if hosts else ""
            cause = cause if cause in HOST_CAUSES else "retired"
        maintenance = _criterion(v, "maintenance")
        eol_by_host = maintenance.numbers.get("hosts", {}) if maintenance else {}
        for h in hosts:
            if h in seen:
                continue
            seen.add(h)
            out.append(_host_entry(inv, s, h, cause, freed, facts, (eol_by_host.get(h) or {}).get("eol"),
                                   today, rules, collected_at, rooms.get(h, ""), lang))
    for room in inv.machine_rooms.values():
        dept = inv.departments.get(room.department)
        dept_name = dept.name if dept else room.department
        leaving = room.status != RoomStatus.kept
        for e in room.equipment:
            if not (e.retired or leaving):
                continue
            disposal, reasons = _equipment_route(e.kind.value, e.year, today, rules)
            out.append(AssetEntry("equipment", e.name, room.address, dept_name,
                                  "retired" if e.retired else "room_equipment",
                                  "freed" if e.retired or room.status == RoomStatus.vacated else "pending",
                                  disposal, reasons, count=e.count, year=e.year, room=room.id))
        if leaving:
            out.append(AssetEntry("room", room.id, room.address, dept_name, "vacated_room",
                                  "freed" if room.status == RoomStatus.vacated else "pending", TRANSFER,
                                  [("disposal.reason.room", {"area": f"{room.area_m2:g}"})], room=room.id))
    return out


def asset_rows(entries: Sequence[AssetEntry], lang: str = "zh") -> tuple[list[str], list[list[Any]]]:
    headers = [t(c, lang) for c in ASSET_COLUMNS]
    rows = [[t(f"assets.kind.{a.kind}", lang), a.name, a.address, a.department, a.vendor, a.system, a.system_name,
             a.room, t(f"assets.cause.{a.cause}", lang), t(f"assets.stage.{a.stage}", lang), a.os, a.cpus,
             a.memory_gb, a.disk_gb, a.count, a.year, "\n".join(a.listening), "\n".join(a.cron),
             _short_time(a.last_collected.isoformat()) if a.last_collected else "",
             a.eol or "", t(f"disposal.{a.disposal}", lang), asset_reasons(a, lang)]
            for a in entries]
    return headers, rows


def asset_reasons(a: AssetEntry, lang: str) -> str:
    return "\n".join(t(key, lang, **args) for key, args in a.reasons)


def room_list(inv: Inventory, rules: Mapping[str, Any] | None = None) -> list[RoomEntry]:
    """Every declared machine room with what remains in it and the findings of the 20 m² rule."""
    rule = (rules or load_asset_rules())["machine_rooms"]
    findings = room_findings(inv, float(rule["max_area_m2"]), str(rule["approval_body"]),
                             int(rule.get("max_rooms_per_department", 1)), rule.get("reasons") or ())
    out = []
    for room in inv.machine_rooms.values():
        dept = inv.departments.get(room.department)
        a = room.approval
        approval = " ".join(x for x in (a.body, a.date.isoformat(), a.document or "") if x) if a else ""
        out.append(RoomEntry(room.id, dept.name if dept else room.department, room.address, float(room.area_m2),
                             room.status.value, room.reason.value if room.reason else None, room.remains, approval,
                             [str(p) for p in findings.get(room.id, [])]))
    return out


def room_rows(entries: Sequence[RoomEntry], lang: str = "zh") -> tuple[list[str], list[list[Any]]]:
    headers = [t(c, lang) for c in ROOM_COLUMNS]
    rows = [[r.room, r.department, r.address, r.area_m2, t(f"rooms.status.{r.status}", lang),
             t(f"rooms.reason.{r.reason}", lang) if r.reason else "", "\n".join(r.remains), r.approval,
             "\n".join(r.findings) or t("rooms.complies", lang)] for r in entries]
    return headers, rows
