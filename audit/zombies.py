"""Zombie verdicts: the five criteria of 盘政办发〔2017〕144号 as rules over the stored collection history.

Every criterion returns an outcome (met / near / not_met / insufficient), the numbers behind it,
the window they cover and the evidence lines that justify it. Each system is judged over its own
window, one that covers its declared frequency's cycle (a yearly system over a year), and where
the history does not cover that cycle yet, a criterion that would count against it says how many
days are missing instead. A system's verdict follows from its criteria by the policy's ordered
rules (audit/policy.yaml, `verdict.rules`): zombie (清理下线), replatform (重新部署/升级改造), or
the fallbacks; a decommission candidate always carries its evidence, and a history too short to
judge is reported as such, never guessed.
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
    FINDINGS,
    INSUFFICIENT,
    MET,
    NEAR,
    NO_DATA,
    NOT_MET,
    REPLATFORM,
    SUSPECT,
    ZOMBIE,
    Criterion,
    Evidence,
    OsRelease,
    Verdict,
)
from inventory.model import Classification, Inventory, System
from jiyue.store import Store

HERE = Path(__file__).resolve().parent
DEFAULT_POLICY = HERE / "policy.yaml"
LIFECYCLE = HERE / "lifecycle.yaml"


LEVELS = ("daily", "weekly", "monthly", "quarterly", "yearly", "rarely")  # declared frequencies, most often first
RULE_KEYS = {"finding", "any_met", "met", "in_use"}


def load_policy(path: Path | None = None) -> dict[str, Any]:
    """The policy as data; ValueError names what is wrong with a verdict rule, so an auditor's edit fails loudly."""
    policy = yaml.safe_load((path or DEFAULT_POLICY).read_text(encoding="utf-8"))
    if not isinstance(policy, dict):
        raise ValueError(f"{path or DEFAULT_POLICY}: not a mapping")
    for i, rule in enumerate(policy.get("verdict", {}).get("rules") or []):
        where = f"verdict.rules[{i}]"
        if not isinstance(rule, dict) or set(rule) - RULE_KEYS:
            raise ValueError(f"{where}: keys are {', '.join(sorted(RULE_KEYS))}")
        if rule.get("finding") not in FINDINGS:
            raise ValueError(f"{where}.finding: one of {', '.join(FINDINGS)}")
        unknown = [c for c in [*rule.get("any_met", []), *rule.get("met", [])] if c not in CRITERIA]
        if unknown:
            raise ValueError(f"{where}: unknown criteria {', '.join(unknown)} (known: {', '.join(CRITERIA)})")
    return policy


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
    """Evaluates every system of an inventory against the policy, each over a window covering its declared cycle."""

    def __init__(self, inv: Inventory, store: Store, policy: dict[str, Any] | None = None,
                 now: datetime | None = None) -> None:
        self.inv = inv
        self.policy = policy or load_policy()
        self.lifecycle = load_lifecycle()
        self.now = now or datetime.now(UTC)
        # `since` is the policy's own window (reports, sizing); each system's may reach further back.
        self.since = self.now - timedelta(days=self.policy["observation"]["window_days"])
        longest = max([self.window_days(s) for s in inv.systems.values()],
                      default=self.policy["observation"]["window_days"])
        self.history = AuditHistory.load(inv, store, self.now - timedelta(days=longest))

    def cycle_days(self, system: System) -> int:
        """The days of history one cycle of the system's declared frequency needs."""
        return int(self.policy.get("frequency", {}).get("cycle_days", {}).get(str(system.frequency), 0) or 0)

    def window_days(self, system: System) -> int:
        """The system's window: the policy's, or its declared cycle if longer."""
        return max(int(self.policy["observation"]["window_days"]), self.cycle_days(system))

    def system_since(self, system: System) -> datetime:
        return self.now - timedelta(days=self.window_days(system))

    def covered_days(self, hosts: list[HostHistory]) -> int | None:
        """How many days back the system's evidence reaches (None: nothing collected)."""
        earliest = [at for h in hosts if (at := h.earliest_evidence()) is not None]
        return (self.now - min(earliest)).days if earliest else None

    def _missing(self, system: System, hosts: list[HostHistory]) -> int:
        return max(self.cycle_days(system) - (self.covered_days(hosts) or 0), 0)

    def _window(self, system: System) -> tuple[list[HostHistory], list[str]]:
        hosts = self.history.hosts
        measured = [hosts[h] for h in system.hosts if hosts[h].measured]
        missing = [h for h in system.hosts if not hosts[h].measured]
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
        # A seasonal system is quiet between its seasons: the threshold is at least its declared cycle.
        cycle = self.cycle_days(system)
        threshold, suspect = max(p["inactive_days"], cycle), max(p["suspect_days"], cycle // 2)
        numbers = {"days_since_last_activity": days, "last_activity": last_at.isoformat(),
                   "threshold_days": threshold, "declared_frequency": str(system.frequency)}
        evidence = [e for _, e in sorted(dated, key=lambda s: s[0], reverse=True)]
        outcome = MET if days > threshold else NEAR if days > suspect else NOT_MET
        return Criterion("detached", outcome, f"最近一次使用在 {days} 天前（阈值 {threshold} 天）/ last use "
                                              f"{days} days ago (threshold {threshold})", numbers, evidence)

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
        since, cycle = self.system_since(system), self.cycle_days(system)
        evidence: list[Evidence] = []
        host_outcomes: list[str] = []
        numbers: dict[str, Any] = {"hosts": {}}
        for h in hosts:
            samples = [s for s in h.samples() if s[0] >= since]
            span = (max(s[0] for s in samples) - min(s[0] for s in samples)).days if samples else 0
            # Which source each figure came from (jiyue's own samples, a monitoring system's readings).
            sources = h.sources(since)
            source = ", ".join(f"{k} {n}" for k, n in sorted(sources.items())) or "none"
            if len(samples) < obs["min_samples"] or span < obs["min_days"]:
                host_outcomes.append(INSUFFICIENT)
                evidence.append(Evidence(h.name, "samples", f"{len(samples)} samples over {span} days "
                                         f"(need {obs['min_samples']} over {obs['min_days']})", None, source))
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
                                        "samples": len(samples), "days_sampled": len(daily), "days": span,
                                        "sources": sources}
            evidence.append(Evidence(h.name, "utilisation", f"P{p['percentile']} of daily means: CPU {cpu:.2f}%, "
                                     f"network {net:.2f} MB/day; {len(samples)} samples on {len(daily)} days "
                                     f"over {span} days", None, source))
            if cpu < p["cpu_pct"] and net < p["network_mb_per_day"] and span < cycle:
                # Idle so far, but "长期" is measured against the declared cycle: off-season is not idle.
                host_outcomes.append(INSUFFICIENT)
                evidence.append(Evidence(h.name, "samples", f"idle over {span} days; the declared cycle needs "
                                         f"{cycle}: {cycle - span} days missing"))
            elif cpu < p["cpu_pct"] and net < p["network_mb_per_day"]:
                host_outcomes.append(MET)
            elif cpu < p["cpu_pct"] * p["suspect_factor"] and net < p["network_mb_per_day"] * p["suspect_factor"]:
                host_outcomes.append(NEAR)
            else:
                host_outcomes.append(NOT_MET)
        numbers |= {"threshold_cpu_pct": p["cpu_pct"], "threshold_network_mb_per_day": p["network_mb_per_day"]}
        if not host_outcomes or (INSUFFICIENT in host_outcomes and NOT_MET not in host_outcomes):
            return Criterion("idle", INSUFFICIENT, "观察期不足，无法判断资源是否长期空闲 / history too short to judge "
                                                   "utilisation over the declared cycle", numbers, evidence)
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

    def measured_frequency(self, active_days: int, days: int) -> str:
        """The declared level whose interval matches the mean interval between active days."""
        if active_days <= 0:
            return "rarely"
        interval = days / active_days
        limits = self.policy.get("frequency", {}).get("measured_interval_days", {})
        return next((level for level in LEVELS[:-1] if level in limits and interval <= limits[level]), "rarely")

    def small(self, system: System, hosts: list[HostHistory]) -> Criterion:
        p, freq = self.policy["small"], self.policy.get("frequency", {})
        since = self.system_since(system)
        since_day, window = since.date().isoformat(), self.window_days(system)
        users: set[str] = set()
        clients: set[str] = set()
        per_day: dict[str, int] = {}
        login_days: set[str] = set()
        has_logins = has_web = False
        for h in hosts:
            logins = h.users_last()
            has_logins |= h.logins_collected() and bool(h.latest.get("logins", {}).get("sources"))
            users |= {u for u, at in logins.items() if at >= since.isoformat()}
            login_days |= {d for d in h.login_days() if d >= since_day}
            web = h.clients_last_day()
            has_web |= h.access_logs_found()
            clients |= {ip for ip, day in web.items() if day >= since_day}
            for day, n in h.requests_per_day().items():
                if day >= since_day:
                    per_day[day] = per_day.get(day, 0) + n
        covered = self.covered_days(hosts)
        if (not has_logins and not has_web) or covered is None:
            return Criterion("small", INSUFFICIENT, "没有登录或访问记录 / no login or access records")
        # Per day of the window, or of the history when it covers less of it: never per day since the
        # first request seen, which reads 30 requests in one hour of a long-dead system as 30 a day.
        days = max(min(window, covered), 1)
        rate = sum(per_day.values()) / days
        active = len({d for d, n in per_day.items() if n} | login_days)
        measured = self.measured_frequency(active, days)
        declared = str(system.frequency)
        gap = LEVELS.index(measured) - LEVELS.index(declared) if declared in LEVELS else 0
        far_below = gap >= int(freq.get("far_below_levels", 2))
        # Logins are mostly operators, clients mostly end users: the larger count estimates the users.
        n_users = max(len(users), len(clients))
        missing = self._missing(system, hosts)
        numbers = {"login_users": len(users), "web_clients": len(clients), "users": n_users,
                   "requests_per_day": round(rate, 1), "days": days, "window_days": window,
                   "covered_days": covered, "active_days": active, "declared_frequency": declared,
                   "measured_frequency": measured, "declared_users": system.scope.declared_users,
                   "threshold_users": p["max_users"], "threshold_requests_per_day": p["max_requests_per_day"]}
        evidence = [Evidence("", "users", f"{len(users)} login users ({', '.join(sorted(users)[:8])}), "
                                          f"{len(clients)} web clients in {window} days"),
                    Evidence("", "requests", f"{rate:.1f} requests/day over {days} days; declared users "
                                             f"{system.scope.declared_users}"),
                    Evidence("", "frequency", f"declared {declared}, measured {measured}: used on {active} of "
                                              f"{days} days")]
        if n_users <= p["max_users"] and rate <= p["max_requests_per_day"]:
            outcome = MET
        elif n_users <= p["max_users"] * p["suspect_factor"] and \
                rate <= p["max_requests_per_day"] * p["suspect_factor"]:
            outcome = NEAR
        else:
            outcome = NOT_MET
        if far_below:
            evidence.append(Evidence("", "frequency_far_below", f"measured {measured} is {gap} levels below the "
                                                                f"declared {declared}"))
            if outcome == NEAR:
                outcome = MET
        if outcome in (MET, NEAR) and missing:
            evidence.append(Evidence("", "history", f"history covers {covered} of the {self.cycle_days(system)} "
                                                    f"days of the declared cycle ({declared}): {missing} missing"))
            return Criterion("small", INSUFFICIENT, f"历史记录尚未覆盖申报的使用周期，还差 {missing} 天 / the "
                                                    f"history does not cover the declared cycle yet: {missing} days "
                                                    "missing",
                             numbers, evidence)
        return Criterion("small", outcome, f"{n_users} 名用户，日均 {rate:.1f} 次请求，实测频度 {measured}（申报 "
                                           f"{declared}） / {n_users} users, {rate:.1f} requests a day, measured "
                                           f"{measured} (declared {declared})", numbers, evidence)

    # --- verdicts ------------------------------------------------------------------------------

    @staticmethod
    def in_use(criteria: dict[str, Criterion]) -> bool | None:
        """Measurably used: criteria 1 and 5 judged and not met; False if either is met; None if unknown."""
        outcomes = [criteria["detached"].outcome, criteria["small"].outcome]
        if MET in outcomes:
            return False
        return None if INSUFFICIENT in outcomes else True

    def _finding(self, criteria: dict[str, Criterion]) -> tuple[str, str] | None:
        """(finding, the rule that gave it) from the policy's ordered verdict rules; None if no rule holds."""
        met = {k for k, c in criteria.items() if c.outcome == MET}
        in_use = self.in_use(criteria)
        for i, rule in enumerate(self.policy["verdict"].get("rules") or []):
            if "any_met" in rule and not met & set(rule["any_met"]):
                continue
            if not set(rule.get("met", [])) <= met:
                continue
            if "in_use" in rule and in_use is not rule["in_use"]:
                continue
            hit = sorted(CRITERIA.index(k) + 1 for k in met & set(rule.get("any_met", []) + rule.get("met", [])))
            return rule["finding"], (f"策略规则 verdict.rules[{i}]（标准 {'、'.join(map(str, hit))}）/ policy rule "
                                     f"verdict.rules[{i}] (criteria {', '.join(map(str, hit))})")
        return None

    def judge(self, system: System) -> Verdict:
        hosts, missing = self._window(system)
        criteria = {key: getattr(self, key)(system, hosts) for key in CRITERIA}
        outcomes = [c.outcome for c in criteria.values()]
        found = self._finding(criteria)
        small = criteria["small"].numbers
        daily_use = small.get("measured_frequency") == "daily" and criteria["small"].outcome == NOT_MET
        met = {k for k, c in criteria.items() if c.outcome == MET}
        if found and found[0] == ZOMBIE and met == {"maintenance"} and daily_use:
            # The hard gate, whatever the policy file says: measured daily business use is never
            # decommissioned for its stack alone; the stack is what gets replaced.
            found = (REPLATFORM, "每日在用的系统不因第 4 条单独清理下线：重新部署/升级改造 / a system in measured "
                                 "daily use is never decommissioned by criterion 4 alone: re-platform it")
        if found:
            verdict, rule = found
        elif INSUFFICIENT in outcomes or not hosts:
            verdict, rule = NO_DATA, "有认定标准无法判断 / a criterion could not be judged"
        elif NEAR in outcomes:
            verdict, rule = SUSPECT, "有认定标准接近阈值 / a criterion is near its threshold"
        else:
            verdict, rule = ACTIVE, "各项认定标准均不符合 / no criterion met"
        times = [r.at for h in hosts for r in [*h.records, *h.readings]]
        runs = len({r.run_id for h in hosts for r in [*h.records, *h.readings]})
        return Verdict(system.id, verdict, list(criteria.values()), min(times).isoformat() if times else None,
                       max(times).isoformat() if times else None, runs, [h.name for h in hosts], missing,
                       rule=rule, window_days=self.window_days(system), cycle_days=self.cycle_days(system),
                       covered_days=self.covered_days(hosts), declared_frequency=str(system.frequency),
                       measured_frequency=small.get("measured_frequency"), active_days=small.get("active_days"))

    def judge_all(self, systems: list[str] | None = None) -> list[Verdict]:
        """Every (or each given) system's verdict, but none for a classified (涉密) system: it is under
        分级保护, the confidential bureau's to judge, and jiyue holds no facts of it."""
        chosen = (self.inv.systems[s] for s in (systems or sorted(self.inv.systems)))
        return [self.judge(s) for s in chosen if s.classification != Classification.classified]
