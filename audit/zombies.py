"""Zombie verdicts: the five zombie criteria of 盘政办发〔2017〕144号 (Panjin) as rules over the stored history.

Every criterion returns an outcome (met / near / not_met / insufficient), the numbers behind it,
the window they cover and the evidence lines that justify it. A system's verdict follows from its
criteria (audit/policy.yaml, `verdict`): a decommission candidate always carries its evidence, and
a history too short to judge is reported as such, never guessed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from audit.history import AuditHistory, HostHistory, percentile_of
from audit.model import (
    ACTIVE,
    CRITERIA,
    INSUFFICIENT,
    MET,
    NEAR,
    NO_DATA,
    NOT_MET,
    SUSPECT,
    ZOMBIE,
    Criterion,
    Evidence,
    OsRelease,
    Verdict,
)
from inventory.model import Inventory, System
from jiyue.store import Store

HERE = Path(__file__).resolve().parent
DEFAULT_POLICY = HERE / "policy.yaml"
LIFECYCLE = HERE / "lifecycle.yaml"


def load_policy(path: Path | None = None) -> dict[str, Any]:
    return yaml.safe_load((path or DEFAULT_POLICY).read_text(encoding="utf-8"))


def load_lifecycle() -> dict[str, dict[str, dict[str, Any]]]:
    return yaml.safe_load(LIFECYCLE.read_text(encoding="utf-8"))


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class Judge:
    """Evaluates every system of an inventory against the policy, over one window of history."""

    def __init__(self, inv: Inventory, store: Store, policy: dict[str, Any] | None = None,
                 now: datetime | None = None) -> None:
        self.inv = inv
        self.policy = policy or load_policy()
        self.lifecycle = load_lifecycle()
        self.now = now or datetime.now(UTC)
        window = timedelta(days=self.policy["observation"]["window_days"])
        self.since = self.now - window
        self.history = AuditHistory.load(inv, store, self.since)

    def _window(self, system: System) -> tuple[list[HostHistory], list[str]]:
        hosts = self.history.hosts
        measured = [hosts[h] for h in system.hosts if hosts[h].records]
        missing = [h for h in system.hosts if not hosts[h].records]
        return measured, missing

    # --- the five criteria ---------------------------------------------------------------------

    def detached(self, system: System, hosts: list[HostHistory]) -> Criterion:
        p = self.policy["detached"]
        signals: list[tuple[datetime | None, Evidence]] = []
        for h in hosts:
            users = h.users_last()
            if users:
                user, at = max(users.items(), key=lambda kv: kv[1])
                signals.append((_dt(at), Evidence(h.name, "last_login", user, at, "wtmp/lastlog")))
            last_request = h.last_request()
            if last_request:
                signals.append((_dt(last_request), Evidence(h.name, "last_request", "", last_request, "access log")))
            for path, info in (h.latest.get("data", {}).items()):
                if info.get("last_modified"):
                    signals.append((_dt(info["last_modified"]), Evidence(h.name, "data_modified", path,
                                                                         info["last_modified"], "data path")))
        dated = [(at, e) for at, e in signals if at is not None]
        if not dated:
            return Criterion("detached", INSUFFICIENT, "没有登录记录、访问日志或数据目录可供判断 / no logins, "
                                                        "access logs or data paths were measured")
        last_at, _ = max(dated, key=lambda s: s[0])
        days = (self.now - last_at).days
        numbers = {"days_since_last_activity": days, "last_activity": last_at.isoformat(),
                   "threshold_days": p["inactive_days"]}
        evidence = [e for _, e in sorted(dated, key=lambda s: s[0], reverse=True)]
        outcome = MET if days > p["inactive_days"] else NEAR if days > p["suspect_days"] else NOT_MET
        return Criterion("detached", outcome, f"最近一次使用在 {days} 天前 / last use {days} days ago "
                                              f"(threshold {p['inactive_days']})", numbers, evidence)

    def _in_use(self, system_id: str) -> bool | None:
        """A system is in active use when none of criteria 1, 3 and 5 is met; None if unknown."""
        other = self.inv.systems[system_id]
        hosts, _ = self._window(other)
        outcomes = [self.detached(other, hosts).outcome, self.idle(other, hosts).outcome,
                    self.small(other, hosts).outcome]
        if MET in outcomes:
            return False
        return None if INSUFFICIENT in outcomes else True

    def replaceable(self, system: System, hosts: list[HostHistory]) -> Criterion:
        covering = []
        if system.replaced_by:
            covering.append((system.replaced_by, "replaced_by"))
        for other in system.overlaps_with:
            target = self.inv.systems.get(other)
            mutual = target is not None and system.id in target.overlaps_with
            same_dept = target is not None and target.department == system.department
            if not mutual and (same_dept or not self.policy["replaceable"]["same_department_only"]):
                covering.append((other, "overlaps_with"))
        if not covering:
            return Criterion("replaceable", NOT_MET, "未声明替代或覆盖本系统功能的系统 / no declared replacement")
        dependents = self.history.dependents.get(system.id, {})
        evidence = [Evidence("", "dependent", f"{dep}: {how}") for dep, how in sorted(dependents.items())]
        active = [(sid, how) for sid, how in covering if self._in_use(sid)]
        unknown = [(sid, how) for sid, how in covering if self._in_use(sid) is None]
        numbers = {"covered_by": [sid for sid, _ in covering], "covering_in_use": [sid for sid, _ in active],
                   "dependents": sorted(dependents)}
        evidence += [Evidence("", how, sid, None, "in active use") for sid, how in active]
        if active and not dependents:
            names = ", ".join(s for s, _ in active)
            return Criterion("replaceable", MET, f"功能已由在用系统 {names} 覆盖，且无系统依赖本系统 / covered by "
                                                 f"{names} (in use); nothing depends on it", numbers, evidence)
        if active:
            n = len(dependents)
            return Criterion("replaceable", NEAR, f"可被替代，但仍有 {n} 个系统依赖 / replaceable, but {n} systems "
                                                  "still depend on it", numbers, evidence)
        if unknown:
            return Criterion("replaceable", INSUFFICIENT, "替代系统的使用情况尚无足够数据 / the replacement's use "
                                                          "is not yet measured", numbers, evidence)
        return Criterion("replaceable", NOT_MET, "替代系统本身未在用 / the replacement is not in use",
                         numbers, evidence)

    def idle(self, system: System, hosts: list[HostHistory]) -> Criterion:
        p, obs = self.policy["idle"], self.policy["observation"]
        evidence: list[Evidence] = []
        host_outcomes: list[str] = []
        numbers: dict[str, Any] = {"hosts": {}}
        for h in hosts:
            samples = [s for s in h.samples() if s[0] >= self.since]
            span = (max(s[0] for s in samples) - min(s[0] for s in samples)).days if samples else 0
            if len(samples) < obs["min_samples"] or span < obs["min_days"]:
                host_outcomes.append(INSUFFICIENT)
                evidence.append(Evidence(h.name, "samples", f"{len(samples)} samples over {span} days "
                                         f"(need {obs['min_samples']} over {obs['min_days']})"))
                continue
            # The thresholds are daily (AWS counts days): average each day's samples, then take the
            # percentile over days, so a burst in one short sample weighs as one day, not as the window.
            days: dict[date, list[tuple[float, float]]] = defaultdict(list)
            for at, cpu_pct, net_mb in samples:
                days[at.date()].append((cpu_pct, net_mb))
            daily = [(sum(c for c, _ in v) / len(v), sum(n for _, n in v) / len(v)) for v in days.values()]
            cpu = percentile_of([d[0] for d in daily], p["percentile"])
            net = percentile_of([d[1] for d in daily], p["percentile"])
            numbers["hosts"][h.name] = {"cpu_p95_pct": round(cpu, 2), "net_p95_mb_per_day": round(net, 2),
                                        "samples": len(samples), "days_sampled": len(daily), "days": span}
            evidence.append(Evidence(h.name, "utilisation", f"P{p['percentile']} of daily means: CPU {cpu:.2f}%, "
                                     f"network {net:.2f} MB/day; {len(samples)} samples on {len(daily)} days "
                                     f"over {span} days"))
            if cpu < p["cpu_pct"] and net < p["network_mb_per_day"]:
                host_outcomes.append(MET)
            elif cpu < p["cpu_pct"] * p["suspect_factor"] and net < p["network_mb_per_day"] * p["suspect_factor"]:
                host_outcomes.append(NEAR)
            else:
                host_outcomes.append(NOT_MET)
        numbers |= {"threshold_cpu_pct": p["cpu_pct"], "threshold_network_mb_per_day": p["network_mb_per_day"]}
        if not host_outcomes or (INSUFFICIENT in host_outcomes and NOT_MET not in host_outcomes):
            return Criterion("idle", INSUFFICIENT, "观察期不足，无法判断资源是否长期空闲 / history too short to judge "
                                                   "utilisation", numbers, evidence)
        for outcome in (NOT_MET, NEAR, MET):
            if outcome in host_outcomes:
                break
        text = {MET: "所有主机资源长期空闲 / every host idle", NEAR: "资源利用率接近空闲阈值 / utilisation near the "
                "idle thresholds", NOT_MET: "资源在使用中 / resources in use"}[outcome]
        return Criterion("idle", outcome, text, numbers, evidence)

    def _eol(self, os_facts: OsRelease | dict[str, Any]) -> tuple[date, str, bool] | None:
        table = self.lifecycle.get(os_facts.get("distribution") or "", {})
        version = str(os_facts.get("version_id") or "")
        for key in (version, version.split(".")[0], version.lstrip("Vv").split(".")[0], version.split(" ")[0]):
            if key in table:
                entry = table[key]
                return entry["eol"], entry["source"], bool(entry.get("verify"))
        return None

    def maintenance(self, system: System, hosts: list[HostHistory]) -> Criterion:
        p = self.policy["maintenance"]
        outcomes: list[str] = []
        evidence: list[Evidence] = []
        numbers: dict[str, Any] = {"hosts": {}}
        for h in hosts:
            os_facts: OsRelease | dict[str, Any] = h.latest.get("os") or {}
            eol = self._eol(os_facts)
            last = _dt(h.last_package_transaction())
            detail = h.latest.get("packages", {}).get("detail")
            days = (self.now - last).days if last else None
            numbers["hosts"][h.name] = {"os": os_facts.get("pretty_name"), "eol": eol[0].isoformat() if eol else None,
                                        "days_since_update": days}
            if eol:
                evidence.append(Evidence(h.name, "os_eol", f"{os_facts.get('pretty_name')}: end of life {eol[0]}"
                                         + (" (vendor statement, verify)" if eol[2] else ""), None, eol[1]))
            if last:
                evidence.append(Evidence(h.name, "last_update", detail or "", last.isoformat(),
                                         h.latest.get("packages", {}).get("source")))
            if (eol and eol[0] < self.now.date()) or (days is not None and days > p["no_update_days"]):
                outcomes.append(MET)
            elif days is None and not eol:
                outcomes.append(INSUFFICIENT)
            elif (days is not None and days > p["suspect_days"]) or (eol and eol[0] < self.now.date() + timedelta(180)):
                outcomes.append(NEAR)
            else:
                outcomes.append(NOT_MET)
        numbers["threshold_days"] = p["no_update_days"]
        if MET in outcomes:
            return Criterion("maintenance", MET, "操作系统已停止维护或长期未更新 / OS past end of life or not updated "
                                                 f"for over {p['no_update_days']} days", numbers, evidence)
        if not outcomes or INSUFFICIENT in outcomes:
            return Criterion("maintenance", INSUFFICIENT, "没有软件包更新记录，且操作系统生命周期未知 / no package "
                                                          "records and unknown OS lifecycle", numbers, evidence)
        outcome = NEAR if NEAR in outcomes else NOT_MET
        text = ("近期有更新 / recently updated" if outcome == NOT_MET else
                "更新间隔偏长或临近停止维护 / long since the last update, or end of life near")
        return Criterion("maintenance", outcome, text, numbers, evidence)

    def small(self, system: System, hosts: list[HostHistory]) -> Criterion:
        p = self.policy["small"]
        since_day = self.since.date().isoformat()
        users: set[str] = set()
        clients: set[str] = set()
        per_day: dict[str, int] = {}
        has_logins = has_web = False
        for h in hosts:
            logins = h.users_last()
            has_logins |= h.logins_collected() and bool(h.latest.get("logins", {}).get("sources"))
            users |= {u for u, at in logins.items() if at >= self.since.isoformat()}
            web = h.clients_last_day()
            has_web |= h.access_logs_found()
            clients |= {ip for ip, day in web.items() if day >= since_day}
            for day, n in h.requests_per_day().items():
                if day >= since_day:
                    per_day[day] = per_day.get(day, 0) + n
        if not has_logins and not has_web:
            return Criterion("small", INSUFFICIENT, "没有登录或访问记录 / no login or access records")
        first = min(per_day) if per_day else since_day
        days = max((self.now.date() - date.fromisoformat(max(first, since_day))).days, 1)
        rate = sum(per_day.values()) / days
        # Logins are mostly operators, clients mostly end users: the larger count estimates the users.
        n_users = max(len(users), len(clients))
        numbers = {"login_users": len(users), "web_clients": len(clients), "users": n_users,
                   "requests_per_day": round(rate, 1), "days": days, "declared_users": system.scope.declared_users,
                   "threshold_users": p["max_users"], "threshold_requests_per_day": p["max_requests_per_day"]}
        window = self.policy["observation"]["window_days"]
        evidence = [Evidence("", "users", f"{len(users)} login users ({', '.join(sorted(users)[:8])}), "
                                          f"{len(clients)} web clients in {window} days"),
                    Evidence("", "requests", f"{rate:.1f} requests/day over {days} days; declared users "
                                             f"{system.scope.declared_users}")]
        if n_users <= p["max_users"] and rate <= p["max_requests_per_day"]:
            outcome = MET
        elif n_users <= p["max_users"] * p["suspect_factor"] and \
                rate <= p["max_requests_per_day"] * p["suspect_factor"]:
            outcome = NEAR
        else:
            outcome = NOT_MET
        return Criterion("small", outcome, f"{n_users} 名用户，日均 {rate:.1f} 次请求 / {n_users} users, "
                                           f"{rate:.1f} requests a day", numbers, evidence)

    # --- verdicts ------------------------------------------------------------------------------

    def judge(self, system: System) -> Verdict:
        hosts, missing = self._window(system)
        criteria = [getattr(self, key)(system, hosts) for key in CRITERIA]
        outcomes = [c.outcome for c in criteria]
        if outcomes.count(MET) >= self.policy["verdict"]["zombie_min_criteria"]:
            verdict = ZOMBIE
        elif INSUFFICIENT in outcomes or not hosts:
            verdict = NO_DATA
        elif NEAR in outcomes:
            verdict = SUSPECT
        else:
            verdict = ACTIVE
        times = [r.at for h in hosts for r in h.records]
        runs = len({r.run_id for h in hosts for r in h.records})
        return Verdict(system.id, verdict, criteria, min(times).isoformat() if times else None,
                       max(times).isoformat() if times else None, runs, [h.name for h in hosts], missing)

    def judge_all(self, systems: list[str] | None = None) -> list[Verdict]:
        return [self.judge(self.inv.systems[s]) for s in (systems or sorted(self.inv.systems))]
