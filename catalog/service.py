"""The catalog's operations: the catalog as declared, candidates from what collection saw, and requests for
shared data with their 10-working-day clock. Each returns a result; nothing here prints or exits.

Working days skip Saturdays, Sundays and the city's public holidays. The holidays are not declared a second
time: they are the blackouts of the migration planner's calendar (migrations/planning.yaml) that
catalog/policy.yaml names as holidays, so the city keeps one calendar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from catalog.model import Candidate, CatalogPolicy, CatalogResult, Entry, PolicyError, RequestStatus, load_policy
from inventory.model import Classification, Inventory, ShareMethod, ShareType
from jiyue.store import ShareRequest, Store

DECISIONS = ("granted", "refused")  # 同意共享 / 不予共享 (with the reason in the note)


class CatalogError(ValueError):
    """Bad input for a catalog operation: the message says what to give instead."""


# --- the working-day calendar -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkCalendar:
    """Working days: Monday to Friday, but not a declared holiday; a weekend day declared a working day
    (调休上班) works. `due(start)` is the Nth working day after `start` (the day of the request not counted)."""

    holidays: tuple  # migrations.plan.Blackout, the ones policy names as holidays
    workdays: frozenset[date]
    days: int
    timezone: str = "Asia/Shanghai"

    @classmethod
    def load(cls, policy: CatalogPolicy | None = None, planning: Path | None = None) -> WorkCalendar:
        from migrations.plan import PlanningError, load_planning

        policy = policy or load_policy()
        try:
            plan = load_planning(planning)
        except PlanningError as exc:
            raise PolicyError(f"cannot read the holiday calendar: {exc}") from None
        by_name = {b.name: b for b in plan.blackouts}
        unknown = [name for name in policy.requests.holidays if name not in by_name]
        if unknown:
            raise PolicyError(f"catalog/policy.yaml requests.holidays names {', '.join(unknown)}, which the planner's "
                              f"calendar (migrations/planning.yaml blackouts) does not declare; known: "
                              f"{', '.join(by_name)}")
        return cls(tuple(by_name[n] for n in policy.requests.holidays), frozenset(policy.requests.workdays),
                   policy.requests.answer_working_days, plan.timezone)

    def holiday(self, day: date) -> str | None:
        return next((b.name for b in self.holidays if b.covers(day)), None)

    def working(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and self.holiday(day) is None

    def due(self, start: date) -> date:
        day, counted = start, 0
        while counted < self.days:
            day += timedelta(days=1)
            counted += self.working(day)
        return day

    def between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end`."""
        return sum(self.working(start + timedelta(days=n)) for n in range(1, (end - start).days + 1))

    def today(self) -> date:
        return datetime.now(UTC).astimezone(ZoneInfo(self.timezone)).date()


# --- the catalog ----------------------------------------------------------------------------------------------


def entries(inv: Inventory) -> list[Entry]:
    """Every declared resource, by department, system and declaration order."""
    out = []
    for system in inv.systems.values():
        dept = inv.departments.get(system.department)
        for resource in system.resources:
            out.append(Entry(system.id, system.name, system.department, dept.name if dept else system.department,
                             resource))
    order = {code: i for i, code in enumerate(inv.departments)}
    return sorted(out, key=lambda e: order.get(e.department, len(order)))


def find(inv: Inventory, name: str) -> Entry:
    """A resource by `<system>/<name>`, or by its name alone when only one system declares it."""
    found = [e for e in entries(inv) if name in (e.key, e.resource.name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise CatalogError(f"resource '{name}' is declared by {', '.join(e.system for e in found)}: name it as "
                           f"{found[0].key}")
    known = ", ".join(e.key for e in entries(inv)) or "none declared"
    raise CatalogError(f"no resource '{name}' in the catalog (known: {known})")


def candidates(inv: Inventory, facts: Mapping[str, Mapping], collected_at: Mapping[str, datetime],
               policy: CatalogPolicy | None = None) -> list[Candidate]:
    """Resources collection suggests and no declared resource covers, per system: a database listening on its
    hosts (a port of policy `candidates.database_ports`), a declared data path collection found holding files,
    and connections to the city's exchange platform (when the system declares no 系统对接 resource).

    A declared resource covers a database or data path when its `location` names it (host:port, or the path or a
    directory above it). Classified (涉密) systems are never collected, so they have no candidates."""
    policy = policy or load_policy()
    ports = policy.candidates.database_ports
    exchange = inv.systems.get(inv.catalog.exchange_platform or "")
    exchange_hosts = {str(inv.hosts[h].address): h for h in exchange.hosts if h in inv.hosts} if exchange else {}
    by_address = {str(h.address): name for name, h in inv.hosts.items()}
    out: list[Candidate] = []
    for system in inv.systems.values():
        if system.classification == Classification.classified:
            continue
        locations = [r.location for r in system.resources if r.location]

        def covered(location: str, locations: list[str] = locations) -> bool:
            return any(location == x or location.startswith(x.rstrip("/") + "/") or x.startswith(location + "/")
                       for x in locations)

        def when(host: str) -> str:
            at = collected_at.get(host)
            return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""

        paths: dict[str, list[str]] = {}
        links: list[str] = []
        for host in system.hosts:
            found = facts.get(host) or {}
            seen_ports: set[int] = set()
            for listener in found.get("listening") or []:
                port = listener.get("port")
                if listener.get("proto") != "tcp" or port not in ports or port in seen_ports:
                    continue
                seen_ports.add(port)
                location = f"{host}:{port}"
                if covered(location):
                    continue
                process = listener.get("process") or "?"
                out.append(Candidate(system.id, system.department, "database",
                                     f"{system.name}数据库（{ports[port]}）", location, "database",
                                     f"{ports[port]} tcp/{port} listening on {host} (process {process}), collected "
                                     f"{when(host)}"))
            for path, data in (found.get("data") or {}).items():
                if data.get("exists") and data.get("files", 0) >= max(policy.candidates.min_files, 1) and \
                        not covered(path):
                    paths.setdefault(path, []).append(f"{host}: {data.get('files')} files, "
                                                      f"{data.get('bytes', 0) / 1e6:.1f} MB")
            if exchange is not None and system.id != exchange.id:
                for conn in found.get("connections") or []:
                    peer = conn.get("peer", "")
                    if peer in exchange_hosts:
                        links.append(f"TCP {host}:{conn.get('local_port')} ↔ {exchange_hosts[peer]}:"
                                     f"{conn.get('peer_port')}")
        for path, seen in paths.items():
            out.append(Candidate(system.id, system.department, "data_path", f"{system.name}数据文件（{path}）", path,
                                 "document", f"data path {path}: {'; '.join(seen)}"))
        if exchange is not None and system.id != exchange.id:
            # The platform's side of the same link: connections its hosts see from this system's hosts.
            for ex_host in exchange_hosts.values():
                for conn in (facts.get(ex_host) or {}).get("connections") or []:
                    client = by_address.get(conn.get("peer", ""))
                    if client in system.hosts:
                        links.append(f"TCP {client}:{conn.get('peer_port')} ↔ {ex_host}:{conn.get('local_port')}")
            interface = any(r.share_method == ShareMethod.interface for r in system.resources)
            if links and not interface:
                shown = sorted(set(links))
                out.append(Candidate(system.id, system.department, "exchange",
                                     f"{system.name}经共享交换平台交换的数据", exchange.id, "service",
                                     f"connected to the exchange platform {exchange.id}: {'; '.join(shown[:3])}"
                                     + (f" (+{len(shown) - 3})" if len(shown) > 3 else "")))
    return out


def measured_candidates(inv: Inventory, store: Store) -> tuple[list[Candidate], bool]:
    """(candidates from the store's collections, whether there was any collection at all)."""
    from audit.history import AuditHistory  # audit imports the inventory and the store: imported at use

    history = AuditHistory.load(inv, store, datetime(1970, 1, 1, tzinfo=UTC))
    collected = history.collected_at()
    facts = {h: f for h, f in history.facts().items() if f}
    return candidates(inv, facts, collected), bool(facts)


# --- requests for shared data ------------------------------------------------------------------------------------


def status(request: ShareRequest, calendar: WorkCalendar, as_of: date, known: set[str] | None = None
           ) -> RequestStatus:
    due = calendar.due(request.requested_on)
    if request.answered_on is not None:
        state = "answered" if request.answered_on <= due else "answered_late"
        used = calendar.between(request.requested_on, request.answered_on)
    else:
        state = "overdue" if as_of > due else "open"
        used = calendar.between(request.requested_on, max(as_of, request.requested_on))
    return RequestStatus(request.id, request.resource, request.requested_by, request.requested_on, due,
                         request.answered_on, request.decision, request.note, state, used,
                         unknown_resource=known is not None and request.resource not in known)


def request_statuses(inv: Inventory, store: Store, as_of: date | None = None,
                     calendar: WorkCalendar | None = None) -> list[RequestStatus]:
    calendar = calendar or WorkCalendar.load()
    as_of = as_of or calendar.today()
    known = {e.key for e in entries(inv)}
    return [status(r, calendar, as_of, known) for r in store.share_requests(inv.identity)]


@dataclass(frozen=True)
class RequestPlan:
    """What `catalog.request` would log (or logged, with `id`): the clock it starts and what to know."""

    entry: Entry
    by: str
    on: date
    due: date
    notes: list[str]
    id: int | None = None


def request(inv: Inventory, store: Store, resource: str, by: str, on: date | None = None, purpose: str = "",
            apply: bool = False, calendar: WorkCalendar | None = None) -> RequestPlan:
    """Log a department's request for a resource's data (with `apply`); the answer is due in N working days."""
    calendar = calendar or WorkCalendar.load()
    entry = find(inv, resource)
    if by not in inv.departments:
        raise CatalogError(f"--by {by}: no such department (known: {', '.join(inv.departments)})")
    if by == entry.department:
        raise CatalogError(f"department {by} provides {entry.key} itself: a share request comes from another one")
    on = on or calendar.today()
    notes = []
    share = entry.resource.share_type
    if share == ShareType.not_shared:
        notes.append(f"不予共享 (not shared): the answer cites its legal basis: {entry.resource.legal_basis}")
    elif share == ShareType.conditional:
        notes.append(f"有条件共享 (conditional): conditions {entry.resource.conditions}; scope {entry.resource.scope}")
    if not calendar.working(on):
        notes.append(f"{on} is no working day ({calendar.holiday(on) or 'weekend'}): the clock counts from the "
                     "next one")
    due = calendar.due(on)
    if not apply:
        return RequestPlan(entry, by, on, due, notes)
    logged = store.add_share_request(entry.key, by, on, purpose=purpose, inventory=inv.identity)
    return RequestPlan(entry, by, on, due, notes, logged.id)


def answer(inv: Inventory, store: Store, request_id: int, decision: str, on: date | None = None, note: str = "",
           apply: bool = False, calendar: WorkCalendar | None = None) -> RequestStatus:
    """Record the answer to a request (with `apply`); the status says whether it came within the clock."""
    calendar = calendar or WorkCalendar.load()
    if decision not in DECISIONS:
        raise CatalogError(f"--decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    found = next((r for r in store.share_requests(inv.identity) if r.id == request_id), None)
    if found is None:
        raise CatalogError(f"no request {request_id} for this inventory: invoke catalog.requests lists them")
    if found.answered_on is not None:
        raise CatalogError(f"request {request_id} was answered on {found.answered_on} ({found.decision}): an answer "
                           "is recorded once")
    on = on or calendar.today()
    if on < found.requested_on:
        raise CatalogError(f"--on {on} is before the request ({found.requested_on})")
    if decision == "refused" and not note:
        raise CatalogError("a refusal gives its reason: --note '…' (the legal basis or the condition not met)")
    if apply:
        found = store.answer_share_request(request_id, on, decision, note) or found
    else:
        found = ShareRequest(found.id, found.inventory, found.resource, found.requested_by, found.requested_on,
                             found.purpose, on, decision, note)
    return status(found, calendar, on)


def build(inv: Inventory, store: Store | None = None, as_of: date | None = None,
          calendar: WorkCalendar | None = None) -> CatalogResult:
    """The catalog, the candidates from the store's collections and the requests as of `as_of`."""
    calendar = calendar or WorkCalendar.load()
    as_of = as_of or calendar.today()
    result = CatalogResult(inv, as_of, entries(inv))
    if store is not None:
        result.candidates, result.collected = measured_candidates(inv, store)
        result.requests = request_statuses(inv, store, as_of, calendar)
    return result


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CatalogError(f"{option} {value}: give a date as YYYY-MM-DD") from None
