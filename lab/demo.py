"""The main job on the sample city (`invoke demo`): every stage the toolkit has, end to end, on the lab.

The demo is a client of the domains, like any script a city would write: each stage calls the domain's
service functions (`audit.service`, `migrations.service`, `network.service`, `audit.baseline.service`) and
their report writers, and tells a new operator what came back. It never calls a task, and it raises
nothing for a finding: `run` returns the problems, and the `demo` task turns them into its exit code.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from audit import discover_report
from audit import report as audit_report
from audit import service as audit
from audit.baseline import report as baseline_report
from audit.baseline import service as baseline
from audit.discover import DiscoverError, DiscoverOptions, discover
from audit.history import AuditHistory
from audit.prometheus import PrometheusError
from catalog import report as catalog_report
from catalog import service as catalog
from catalog.model import PolicyError
from inventory import export, importer, survey
from inventory.discovered import discovery_proposals
from inventory.importer import Written
from inventory.model import Inventory, Monitoring, PrometheusSource
from jiyue import ansible
from jiyue.cli import console
from jiyue.i18n import bilingual
from jiyue.store import Store
from lab.baseline_seed import seed_baseline
from lab.history import seed_history
from lab.hosts import Lab, LabError
from lab.prometheus import backfill_and_start
from lab.seed import load_scenario
from lab.seed import seed as seed_lab
from lines import report as lines_report
from lines import service as lines_service
from lines.model import EgressResult
from migrations import report as migration_report
from migrations import service as migrations
from migrations.model import MigrationOutcome
from migrations.plan import counts
from network import report as network_report
from network import service as network
from network.push import PushOptions
from progress import report as progress_report
from progress import service as progress


@dataclass
class DemoResult:
    """What the demo found: hosts nobody could reach, and each stage's problems (empty: all went well)."""

    unreachable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run(inv: Inventory, target: Path, history: Store) -> DemoResult:
    """Every stage on the lab, in order; a stage's problem is reported and the next stage still runs.
    Raises LabError when the lab cannot start."""
    result = DemoResult()
    console.rule("1. inventory")
    console.print(f"{len(inv.departments)} departments, {len(inv.systems)} systems, {len(inv.hosts)} hosts, "
                  f"{len(inv.devices)} network devices: valid")
    lab = start_lab(inv, history)
    result.unreachable += exports(inv, target)
    result.unreachable += audit_stage(inv, history, target)
    result.problems += onramp_stage(lab, inv, history, target)
    result.problems += migration_plan(inv, history, target)
    result.problems += migration_run(inv, history, target)
    result.problems += network_stage(inv, history, target)
    baseline_stage(lab, inv, history, target)
    result.problems += monitoring_stage(lab, inv, target)
    result.problems += catalog_stage(inv, history, target)
    result.problems += lines_stage(inv, history, target)
    result.problems += progress_stage(inv, history, target)
    console.rule("next")
    console.print(f"Open {target}/archive.html, {target}/network-push.html, {target}/baseline.html, "
                  f"{target}/catalog.html, {target}/leased-lines.html, {target}/progress.html (or the .xlsx). "
                  "invoke --list shows every task; invoke lab.down removes the lab.")
    return result


def start_lab(inv: Inventory, history: Store) -> Lab:
    console.rule("2. lab: start the hosts, give them a past, start their services")
    lab = Lab()
    started = lab.up(inv)
    seeded = seed_lab(lab, inv)
    console.print(f"{len(inv.hosts)} lab hosts up ({len(started)} started now)")
    for line in seeded.summary():
        console.print(line, highlight=False)
    days = seed_history(history, inv)
    console.print(f"store {history.url}: " + (f"{days} earlier daily runs written, marked seeded" if days
                                               else "seeded history already present"))
    return lab


def exports(inv: Inventory, target: Path) -> list[str]:
    """Write the three exports and have Ansible ping every host through them (all but the classified systems',
    which jiyue never connects to); returns the hosts it missed."""
    console.rule("3. exports, and Ansible reaches every host")
    hosts = inv.contactable_hosts()
    for fmt in export.FORMATS:
        for path in export.write(inv, fmt, hosts, sorted(inv.devices), target):
            console.print(f"wrote {path}")
    proc = ansible.run("ansible", "all", "-i", str(target / "inventory" / "ansible.yml"), "-m", "ping", "-o",
                       "-f", "50")
    ok = set(re.findall(r"^(\S+) \| SUCCESS", proc.stdout, re.M))
    console.print(f"ansible ping: {len(ok)} of {len(hosts)} hosts answered ({len(inv.hosts) - len(hosts)} hosts of "
                  "classified systems left out: 分级保护, the confidential bureau's)")
    missed = sorted(set(hosts) - ok)
    if missed:
        console.print(proc.stdout[-3000:], markup=False, highlight=False)
    return missed


def audit_stage(inv: Inventory, history: Store, target: Path) -> list[str]:
    """Collect every host, judge the zombies, write the archive; returns the hosts not collected."""
    console.rule("4. audit: collect, judge, write the archive")
    audited = audit.collect_and_judge(inv, history)
    console.print(f"collected {len(audited.collection) - len(audited.not_collected)} of {len(audited.collection)} "
                  "hosts")
    for verdict in (v for v in audited.verdicts if v.verdict in ("zombie", "replatform")):
        console.print(f"{verdict.verdict} {verdict.system} {inv.systems[verdict.system].name}: criteria "
                      f"{', '.join(map(str, verdict.met))}")
    for path in audit_report.write_reports(audited, target):
        console.print(f"wrote {path}")
    return list(audited.not_collected)


def onramp_stage(lab: Lab, inv: Inventory, history: Store, target: Path) -> list[str]:
    """A city's own material: the survey workbooks written and read back (a survey nobody changed imports as no
    change), then the hosts nobody declared found by nmap, the Linux ones collected (their keys trusted on first
    use, as an operator would after checking them) and proposed as drafts, previewed for import, never applied to
    the sample city."""
    console.rule("5. a city's own material: survey workbooks out and in, undeclared hosts (未登记主机) found")
    measured = AuditHistory.load(inv, history, datetime(1970, 1, 1, tzinfo=UTC))
    books = [survey.write_survey(inv, code, target / "survey", survey.Measured(inv, measured.facts(),
                                                                                measured.collected_at()))
             for code in inv.departments]
    console.print(f"wrote {len(books)} survey workbooks under {target / 'survey'} (invoke inventory.survey)")
    plan = importer.plan(inv.root, *survey.survey_proposals(books, Written.read(inv.root)))
    console.print(f"inventory.import of the unchanged workbooks: {len(plan.edits)} changes, "
                  f"{len(plan.problems)} problems (the round trip is exact)")
    scenario = load_scenario()
    lab.up_undeclared(inv, scenario.undeclared, scenario.lifetime)
    try:
        found = discover(inv, options=DiscoverOptions(rate=3000, trust_on_first_use=True), store=history)
    except DiscoverError as exc:
        return [f"discover: {exc} (bin/jiyue setup installs nmap)"]
    for f in found.undeclared:
        what = "probable Windows server, out of scope for collection" if f.windows else \
            f"SSH {f.ssh_banner}, collection {f.collection or '-'}"
        console.print(f"undeclared {f.address} ports {','.join(map(str, f.ports))}: {what}", highlight=False)
    for path in discover_report.write_reports(found, target):
        console.print(f"wrote {path}")
    if found.draft_file:
        preview = importer.plan(inv.root, *discovery_proposals(found.draft_file, Written.read(inv.root)))
        console.print(f"inventory.import --from-discovery {found.draft_file} (preview): "
                      f"{', '.join(f'{e.section}[{e.key}]' for e in preview.edits)} as drafts", markup=False,
                      highlight=False)
        return [f"discover: {p}" for p in preview.problems]
    return []


def migration_plan(inv: Inventory, history: Store, target: Path) -> list[str]:
    """Plan the migration; systems awaiting cloud capacity are a problem to report, not a reason to stop: the
    planned waves can still move."""
    console.rule("6. migration plan: dispositions, targets, waves, work orders")
    try:
        planned = migrations.plan_migration(inv, history)
    except (migrations.MigrationInputError, migrations.PlanUnsafe) as exc:
        return [f"migration plan: {exc}"]
    console.print(", ".join(f"{n} {d}" for d, n in counts(planned.plan).items()), highlight=False)
    for wave in planned.plan.waves:
        console.print(f"wave {wave.number} {wave.start:%Y-%m-%d %H:%M}: {', '.join(wave.systems)}", highlight=False)
    console.print(f"wrote {planned.path}")
    for path in migration_report.write_reports(planned, target):
        console.print(f"wrote {path}")
    waiting = planned.awaiting_capacity
    if waiting:
        return [f"{len(waiting)} cloud rehosts await capacity ({', '.join(waiting)}): see the plan's awaiting_capacity"]
    return []


def migration_run(inv: Inventory, history: Store, target: Path) -> list[str]:
    """Rehearse the next wave (check mode: nothing changes), then migrate it for real on the lab, then write
    the archive again: it shows the new locations. The next wave is the first with a cloud rehost not
    migrated yet (wave 1 on a fresh store; a migrated system is never moved twice)."""
    console.rule("7. migration: rehearse the next wave, then run it (--apply) on the lab")
    plan = migrations.load_migration_plan(inv)
    rehearsal = migrations.migrator(inv, history, plan=plan, console=console)
    wave = rehearsal.next_wave()
    if wave is None:
        console.print("every wave's cloud rehosts are migrated already (invoke migrate.status)")
        return []
    console.print(f"wave {wave}: rehearsal first (check mode, nothing changes)")
    rehearsed = rehearsal.run_wave(wave)
    _outcomes(f"wave {wave}: rehearsal", rehearsed)
    bad = [f"{o.system} {o.result}: {o.message}" for o in rehearsed if not o.ok]
    if bad:
        return [f"the rehearsal of wave {wave} failed, nothing was migrated", *bad]
    migrated = migrations.run_wave(inv, history, wave, apply=True, plan=plan, console=console)
    _outcomes(f"wave {wave}: migrated (downtime = freeze to verified; client outage = freeze to the gateway "
              "on the target)", migrated)
    for path in audit_report.write_reports(audit.judge(inv, history), target):
        console.print(f"wrote {path} (with the new locations)")
    return [f"{o.system} {o.result}: {o.message}" for o in migrated if not o.ok]


def _outcomes(title: str, outcomes: list[MigrationOutcome]) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("system", "result", "downtime s", "client outage s", "now on"):
        table.add_column(column)
    for o in outcomes:
        colour = "green" if o.ok else "red"
        table.add_row(o.system, f"[{colour}]{o.result}[/]", "" if o.downtime_s is None else f"{o.downtime_s:.1f}",
                      "" if o.outage_s is None else f"{o.outage_s:.1f}", o.message)
    console.print(table)


def network_stage(inv: Inventory, history: Store, target: Path) -> list[str]:
    """Plan the extranet addresses, render every device's config, push it to the lab's simulated devices
    (a canary first) and push again: the second push must find nothing to change."""
    console.rule("8. network: extranet address plan, configs rendered, pushed (--apply), pushed again (no-op)")
    try:
        planned = network.plan(inv)
        rendering = network.render(inv, target / "network")
    except (network.NetworkInputError, ValueError) as exc:
        return [f"network plan/render: {exc}"]
    for path in [planned.path, *network_report.write_reports(planned, target), *rendering.written]:
        console.print(f"wrote {path}")
    for device, why in sorted(rendering.skipped.items()):
        console.print(f"not rendered: {device}: {why}", highlight=False)
    pushed = network.push(inv, options=PushOptions(apply=True, canary="1"), store=history)
    for path in network_report.write_reports(pushed, target):
        console.print(f"wrote {path}")
    console.print(f"push: {_counts(pushed.counts())}")
    if not pushed.ok:
        failed = [f"{o.device} {o.status}" for o in pushed.outcomes if o.status not in ("applied", "unchanged")]
        return [f"network push: {', '.join(failed)}"]
    again = network.push(inv, store=history)
    console.print(f"second push (dry run), nothing may be left to change: {_counts(again.counts())}")
    left = [o.device for o in again.outcomes if o.lines]
    return [f"network: after the push, {', '.join(left)} still differ from the rendered config"] if left else []


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in counts.items() if n)


def baseline_stage(lab: Lab, inv: Inventory, history: Store, target: Path) -> None:
    """Check every host and device against its level's baseline and write the reports. The lab seeds
    failures on purpose, so failures here are the expected finding (shown, not a problem of the demo);
    reachability was proven by the earlier stages."""
    console.rule("9. graded protection (等保 2.0): every host and device against its level")
    seed_baseline(lab, inv)
    checked = baseline.check(inv, inv.contactable_hosts(), sorted(inv.devices), store=history, console=console)
    failing = checked.with_failures()
    console.print(f"{len(checked.checked())} hosts and devices checked, {len(failing)} fail an item, "
                  f"{len(checked.not_checked())} could not be checked")
    if failing:
        console.print(f"[yellow]{len(failing)} fail their baseline[/] (the lab seeds these on purpose: "
                      "lab/baseline.yaml)")
    for path in baseline_report.write_reports(checked, target):
        console.print(f"wrote {path}")


# Two systems of the scenario judged from the city's monitoring alone (an idle one and a busy one), and a host
# whose monitoring keeps only 10 days: too little for the idle criterion, so "insufficient", never a guess.
MONITORED = {"fgw-hgjj": ["fgw-hgjj-app1", "fgw-hgjj-db1"], "dxzf-web": ["dxzf-web-app1"],
             "dxzf-wgzl": ["dxzf-wgzl-app1"]}
SHORT_MONITORING = {"dxzf-wgzl-app1": 10}


def monitoring_stage(lab: Lab, inv: Inventory, target: Path) -> list[str]:
    """A Prometheus in the lab with 120 days backfilled (marked seeded) and live node_exporters; its history
    imported into a store of its own, so the verdicts rest on Prometheus alone (audit.history --from prometheus)."""
    console.rule("10. the city's monitoring: history from Prometheus, idle judged from it alone")
    hosts = [h for names in MONITORED.values() for h in names if h in inv.hosts]
    systems = [s for s in MONITORED if s in inv.systems]
    work = lab.state_dir / "demo-monitoring"
    shutil.rmtree(work, ignore_errors=True)  # a fresh backfill each time: the same history relative to now
    try:
        mon = backfill_and_start(lab, inv, hosts, work / "prometheus", short=SHORT_MONITORING)
    except (LabError, OSError) as exc:  # no prometheus package, or its port taken: say so, the demo goes on
        return [f"monitoring: {exc} (bin/jiyue setup installs prometheus)"]
    try:
        monitored = inv.model_copy(update={"monitoring": Monitoring(prometheus=PrometheusSource(url=mon.url))})
        store = Store(f"sqlite:///{work / 'history.sqlite'}")
        imported = audit.import_history(monitored, store, hosts=hosts)
        console.print(f"{imported.readings} daily readings of {len(hosts)} hosts from {mon.url} "
                      f"({imported.seeded} of them backfilled, marked seeded)")
        for host, cov in imported.coverage.items():
            console.print(f"  {host}: {cov.describe()}", highlight=False)
        judged = audit.judge(monitored, store, systems=systems)
    except PrometheusError as exc:
        return [f"monitoring: {exc}"]
    else:
        for v in judged.verdicts:
            idle = next(c for c in v.criteria if c.key == "idle")
            console.print(f"{v.system} {inv.systems[v.system].name}: {v.verdict}; idle (criterion 3): "
                          f"{idle.outcome}", highlight=False)
        return []
    finally:
        mon.stop()


def catalog_stage(inv: Inventory, history: Store, target: Path) -> list[str]:
    """The information resource catalog: what the departments declared, what collection proposes beside it, and
    the answering clock a share request made today would run on (a preview: the demo logs no request)."""
    console.rule("11. information resource catalog (政务信息资源目录): declared, proposed from collection")
    try:
        calendar = catalog.WorkCalendar.load()
    except PolicyError as exc:
        return [f"catalog: {exc}"]
    built = catalog.build(inv, history, calendar=calendar)
    shares = ", ".join(f"{n} {share}" for share, n in
                       sorted(Counter(e.resource.share_type.value for e in built.entries).items()))
    console.print(f"{len(built.entries)} resources declared ({shares}); {len(built.candidates)} candidates from the "
                  "collection (databases listening, data paths, exchange-platform connections) not yet catalogued",
                  highlight=False)
    preview = catalog.request(inv, history, "gaj-hjyy/户籍业务预约办理信息", "fgw", calendar=calendar)
    console.print(f"a request made today ({preview.on}) for {preview.entry.key} would be due by {preview.due} "
                  f"({calendar.days} working days)", highlight=False)
    for path in catalog_report.write_reports(built, target):
        console.print(f"wrote {path}")
    return []


def lines_stage(inv: Inventory, history: Store, target: Path) -> list[str]:
    """Leased lines and private networks: each line's cancellation date (after the last system it serves has
    moved, from the migration plan above), each qualifying private network's join, then the read-only egress
    probe of every host on the lab: the line the lab keeps in use (lab/scenario.yaml) carries its department's
    traffic, every other host leaves through the extranet's egress. A line still in use before its date is
    shown with the day from which the same probe makes it a finding; hosts not probed are a problem."""
    console.rule("12. leased lines (互联网专线) and private networks: cancellation dates, the egress probed on the lab")
    try:
        planned = lines_service.plan_lines(inv)
        probed = lines_service.probe_egress(inv, inv.contactable_hosts(), history, lines_plan=planned,
                                            today=planned.today, console=console)
    except lines_service.LinesInputError as exc:
        return [f"lines: {exc}"]
    for c in planned.cancellations:
        console.print(f"{c.line} ({c.department}, {c.annual_cost:,.0f} yuan a year): {c.status}"
                      + (f" {c.date}" if c.date else "") + f"; {escape(bilingual(c.reason, 'en'))}", highlight=False)
    for j in planned.joins:
        console.print(f"{j.network} ({j.department}): {escape(bilingual(j.reason, 'en'))}", highlight=False)
    paths = Counter(f["path"] for f in probed.facts.values())
    console.print(f"egress of {len(probed.facts)} hosts: " + ", ".join(f"{n} {p}" for p, n in sorted(paths.items())),
                  highlight=False)
    dates = {c.line: c.date for c in planned.cancellations}
    for line, hosts in sorted(_carrying(probed).items()):
        console.print(f"{line} still carries traffic: {', '.join(hosts)}", highlight=False)
        day = dates.get(line)
        if day is not None and day >= planned.today:
            console.print(f"  its cancellation date is {day}: from {day + timedelta(days=1)} the same probe makes "
                          "it a finding (lines.egress and report.progress exit 1)", highlight=False)
    for finding in probed.findings:
        console.print(f"[yellow]finding[/] {escape(bilingual(finding.message, 'en'))}", highlight=False)
    for path in lines_report.write_reports(probed, target):
        console.print(f"wrote {path}")
    if probed.failed:
        return [f"lines.egress: {len(probed.failed)} hosts not probed: "
                + "; ".join(f"{h} {why}" for h, why in sorted(probed.failed.items()))]
    return []


def _carrying(probed: EgressResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for host, f in sorted(probed.facts.items()):
        if f["line"]:
            out.setdefault(f["line"], []).append(host)
    return out


def progress_stage(inv: Inventory, history: Store, target: Path) -> list[str]:
    """The programme's milestones as the store now stands (督查通报): every measure from what the stages above
    recorded, the timeline over the earlier runs, the lagging departments. Lagging departments are the finding
    (shown, not a problem of the demo); a programme that cannot be reported is."""
    console.rule("13. progress against the programme's milestones (督查通报)")
    try:
        reported = progress.progress(inv, history)
    except progress.ProgressError as exc:
        return [f"progress: {exc}"]
    for m in reported.milestones:
        share = f"{m.count.percent:g} %" if m.count.percent is not None else "-"
        lagging = ", ".join(d.department for d in m.lagging)
        console.print(f"{escape(m.milestone.name)} ({m.milestone.measure.value}, due {m.milestone.due}): "
                      f"{m.count.done}/{m.count.total} ({share})" + (f"; [yellow]lagging[/] {lagging}" if lagging
                                                                     else f"; {escape(m.note)}" if m.note else ""))
        if m.lines is not None:
            for line, hosts in sorted(m.lines.carrying.items()):
                flagged = line in m.lines.finding_lines
                console.print(f"  {'[yellow]finding[/]' if flagged else 'in use'}: {line} still carries traffic "
                              f"({', '.join(hosts)}, egress probed {m.lines.probed_at})", highlight=False)
    for path in progress_report.write_reports(reported, target):
        console.print(f"wrote {path}")
    return []
