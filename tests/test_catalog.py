"""The information resource catalog (政务信息资源目录): validation of the declared resources, candidates from a real
lab collection, the survey's 资源目录 sheet there and back, the 10-working-day clock, the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

import inventory
from audit.collect import CollectOptions, collect
from catalog import report, service
from catalog.model import load_policy
from inventory import importer, survey
from inventory.importer import Written
from jiyue import i18n
from jiyue.store import Store

REPO = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
# The systems whose hosts the candidate tests collect: a database nobody catalogued (fgw-xmk), resources whose
# location covers their database (fgw-xyxx, gaj-hjyy, dsj-gxjh), and a client of the exchange platform that declares
# no 系统对接 resource (dsj-zwfw).
COLLECTED = ("fgw-xmk", "fgw-xyxx", "gaj-hjyy", "dsj-gxjh", "dsj-zwfw")


@pytest.fixture
def city(tmp_path: Path) -> Path:
    root = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, root)
    return root


def _content(path: Path) -> dict[str, list[list[object]]]:
    wb = load_workbook(path)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
            for ws in wb.worksheets}


def _plan(root: Path, *books: Path) -> importer.Plan:
    written = Written.read(root)
    proposals, problems = survey.survey_proposals(books, written)
    return importer.plan(root, proposals, problems, written)


# --- validation -------------------------------------------------------------------------------------------------


def test_the_sample_city_declares_each_share_type(demo):
    entries = {e.key: e.resource for e in service.entries(demo)}
    assert len(entries) >= 4
    basis = entries["swj-js/纳税人涉税信息"]
    assert basis.share_type == "not_shared" and "税收征收管理法" in basis.legal_basis
    conditional = entries["gaj-hjyy/户籍业务预约办理信息"]
    assert conditional.share_type == "conditional" and conditional.conditions and conditional.scope
    assert demo.catalog.exchange_platform == "dsj-gxjh"


def test_every_catalog_problem_is_reported_at_once_at_its_file_and_line(city: Path):
    swj = city / "departments" / "swj.yaml"
    text = swj.read_text(encoding="utf-8")
    basis_line = next(i for i, line in enumerate(text.splitlines(), 1) if "legal_basis:" in line)
    swj.write_text(text.replace("        legal_basis: 《中华人民共和国税收征收管理法》", "        # legal_basis: 《")
                   .replace("format: database", "format: 数据库表"), encoding="utf-8")
    gaj = city / "departments" / "gaj.yaml"
    text = gaj.read_text(encoding="utf-8")
    gaj.write_text(text.replace("        conditions: 仅限依法", "        # conditions: 仅限依法")
                   .replace("        share_method: interface\n", ""), encoding="utf-8")
    with pytest.raises(inventory.InventoryError) as raised:
        inventory.load(city)
    shown = [str(p) for p in raised.value.problems]
    text = "\n".join(shown)
    # the legal basis is missing: reported at the resource (its absent field has no line of its own) ...
    basis = next(p for p in raised.value.problems if p.path == "systems[swj-js].resources[0].legal_basis")
    assert basis.file.name == "swj.yaml" and basis.line < basis_line and "不予共享" in basis.message
    # ... together with the bad format (at its own line) and the other department's conditional resource
    fmt = next(p for p in raised.value.problems if p.path == "systems[swj-js].resources[0].format")
    assert "'数据库表' is not one of: database (数据库)" in fmt.message and "catalog/policy.yaml formats" in fmt.message
    assert swj.read_text(encoding="utf-8").splitlines()[fmt.line - 1].strip() == "format: 数据库表"
    assert "gaj.yaml:" in text and "systems[gaj-hjyy].resources[0].conditions: 有条件共享 (conditional) must state " \
                                   "its conditions (共享条件)" in text
    assert "systems[gaj-hjyy].resources[0].share_method: a shared resource states its share method" in text
    assert len(shown) == 4, shown


def test_cross_record_rules_name_the_field(city: Path):
    fgw = city / "departments" / "fgw.yaml"
    text = fgw.read_text(encoding="utf-8")
    start = text.index("      - name: 企业公共信用信息")
    end = "        location: fgw-xyxx-db1:5432\n"
    block = text[start:text.index(end) + len(end)]
    fgw.write_text(text.replace(block, block + block), encoding="utf-8")  # the same name twice
    city_yaml = city / "city.yaml"
    city_yaml.write_text(city_yaml.read_text(encoding="utf-8").replace("exchange_platform: dsj-gxjh",
                                                                       "exchange_platform: dsj-gxpt"),
                         encoding="utf-8")
    with pytest.raises(inventory.InventoryError) as raised:
        inventory.load(city)
    text = "\n".join(map(str, raised.value.problems))
    assert "fgw.yaml" in text and "systems[fgw-xyxx].resources[1].name: resource '企业公共信用信息' is already " \
                                  "declared (resources[0])" in text
    assert "city.yaml" in text and "catalog.exchange_platform: unknown system 'dsj-gxpt'" in text


# --- the working-day clock ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calendar() -> service.WorkCalendar:
    return service.WorkCalendar.load()


def test_ten_working_days_skip_the_national_day_holiday_and_the_weekends(calendar):
    assert calendar.days == load_policy().requests.answer_working_days == 10
    # Wednesday 30 September 2026: 1-7 October is 国庆节 in the planner's blackouts (a weekend inside it), then
    # Thu 8, Fri 9, a weekend, Mon 12 - Fri 16, a weekend, Mon 19 - Wed 21.
    assert calendar.holiday(date(2026, 10, 5)) == "国庆节" and not calendar.working(date(2026, 10, 5))
    assert calendar.due(date(2026, 9, 30)) == date(2026, 10, 21)
    assert calendar.between(date(2026, 9, 30), date(2026, 10, 21)) == 10
    # an ordinary fortnight: Friday 4 December 2026 -> Friday 18 December
    assert calendar.due(date(2026, 12, 4)) == date(2026, 12, 18)
    # 全国两会 is a change freeze, not a holiday: offices work, the clock runs
    assert calendar.working(date(2026, 3, 9)) and calendar.due(date(2026, 3, 6)) == date(2026, 3, 20)


def test_a_declared_make_up_working_day_counts(calendar):
    from dataclasses import replace

    shifted = replace(calendar, workdays=frozenset({date(2026, 10, 10)}))  # 调休: Saturday 10 October works
    assert shifted.due(date(2026, 9, 30)) == date(2026, 10, 20)


def test_requests_are_logged_and_the_overdue_ones_flagged(demo, calendar, tmp_path):
    store = Store(f"sqlite:///{tmp_path}/h.sqlite")
    preview = service.request(demo, store, "户籍业务预约办理信息", "fgw", date(2026, 9, 30), calendar=calendar)
    assert preview.id is None and preview.due == date(2026, 10, 21) and store.share_requests() == []
    assert any("有条件共享" in n for n in preview.notes)
    late = service.request(demo, store, "gaj-hjyy/户籍业务预约办理信息", "fgw", date(2026, 9, 30), apply=True,
                           calendar=calendar)
    on_time = service.request(demo, store, "swj-js/纳税人涉税信息", "gaj", date(2026, 9, 30), apply=True,
                              calendar=calendar)
    assert late.id and on_time.id
    with pytest.raises(service.CatalogError, match=r"provides .* itself"):
        service.request(demo, store, "gaj-hjyy/户籍业务预约办理信息", "gaj", apply=True, calendar=calendar)
    with pytest.raises(service.CatalogError, match="no resource"):
        service.request(demo, store, "不存在的资源", "gaj", calendar=calendar)

    states = {s.id: s for s in service.request_statuses(demo, store, date(2026, 10, 21), calendar)}
    assert {s.state for s in states.values()} == {"open"} and states[late.id].working_days == 10
    with pytest.raises(service.CatalogError, match="gives its reason"):
        service.answer(demo, store, on_time.id, "refused", date(2026, 10, 16), apply=True, calendar=calendar)
    answered = service.answer(demo, store, on_time.id, "refused", date(2026, 10, 16), "依据税收征收管理法第八条",
                              apply=True, calendar=calendar)
    assert answered.state == "answered" and answered.working_days == 7
    states = {s.id: s for s in service.request_statuses(demo, store, date(2026, 10, 22), calendar)}
    assert states[late.id].state == "overdue" and states[late.id].overdue and states[on_time.id].state == "answered"
    late_answer = service.answer(demo, store, late.id, "granted", date(2026, 10, 23), apply=True, calendar=calendar)
    assert late_answer.state == "answered_late" and late_answer.working_days == 12
    with pytest.raises(service.CatalogError, match="answered on"):
        service.answer(demo, store, late.id, "granted", date(2026, 10, 26), apply=True, calendar=calendar)


def test_the_tasks_log_a_request_and_exit_1_on_an_overdue_one(tmp_path, capsys):
    from invoke import Context, Exit

    from catalog import tasks

    url = f"sqlite:///{tmp_path}/h.sqlite"
    tasks.request(Context(), resource="企业公共信用信息", by="gaj", on="2026-09-30", store=url)
    assert "preview only" in capsys.readouterr().out and Store(url).share_requests() == []
    tasks.request(Context(), resource="企业公共信用信息", by="gaj", on="2026-09-30", store=url, apply=True)
    out = capsys.readouterr().out
    assert "request #1 logged" in out and "due by 2026-10-21" in out
    tasks.requests(Context(), store=url, as_of="2026-10-21")
    with pytest.raises(Exit) as raised:
        tasks.requests(Context(), store=url, as_of="2026-10-22")
    assert raised.value.code == 1
    captured = capsys.readouterr()
    assert "已超期" in captured.out and "overdue" in captured.err
    with pytest.raises(Exit) as raised:
        tasks.request(Context(), resource="企业公共信用信息", by="gaj", on="30/09/2026", store=url)
    assert raised.value.code == 2 and "YYYY-MM-DD" in capsys.readouterr().err


# --- candidates from a real collection, the survey sheet -------------------------------------------------------


@pytest.fixture(scope="module")
def collected(seeded, demo, tmp_path_factory):
    """A store with one real collection of the hosts of COLLECTED (the lab seeded: services listening, data
    files written, dependents holding their connections to the exchange platform)."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('catalog')}/history.sqlite")
    hosts = [h for s in COLLECTED for h in demo.systems[s].hosts]
    _, results = collect(demo, hosts, CollectOptions(), store=store, progress=False)
    assert [(r.target, r.error) for r in results if not r.ok] == []
    return store


def test_candidates_come_from_the_collection_and_skip_what_is_declared(collected, demo):
    found, measured = service.measured_candidates(demo, collected)
    assert measured
    by = {(c.system, c.kind, c.location): c for c in found}
    mysql = by[("fgw-xmk", "database", "fgw-xmk-db1:3306")]
    assert mysql.format == "database" and "MySQL tcp/3306 listening on fgw-xmk-db1" in mysql.evidence
    assert "files" in by[("fgw-xmk", "data_path", "/srv/fgw-xmk")].evidence
    # declared resources whose location is the database: no candidate for it
    for system, location in (("fgw-xyxx", "fgw-xyxx-db1:5432"), ("gaj-hjyy", "gaj-hjyy-db1:3306"),
                             ("dsj-gxjh", "dsj-gxjh-db1:5432")):
        assert (system, "database", location) not in by
    # the exchange platform: its client without a 系统对接 resource is proposed, the ones with one are not
    exchange = by[("dsj-zwfw", "exchange", "dsj-gxjh")]
    assert "dsj-gxjh-app1:8080" in exchange.evidence and exchange.format == "service"
    assert not any(c.kind == "exchange" and c.system in ("fgw-xyxx", "gaj-hjyy", "dsj-gxjh") for c in found)
    # systems never collected propose no database or data path; the platform's own collection shows its other
    # clients, whose side was not collected
    assert {c.system for c in found if c.kind != "exchange"} <= set(COLLECTED)
    others = [c for c in found if c.system not in COLLECTED]
    assert others and all(c.kind == "exchange" and "dsj-gxjh-app1:8080" in c.evidence for c in others)


def test_the_survey_catalog_sheet_offers_the_enumerations_and_the_candidates(collected, demo, city, tmp_path):
    from datetime import UTC, datetime

    from audit.history import AuditHistory

    history = AuditHistory.load(demo, collected, datetime(1970, 1, 1, tzinfo=UTC))
    inv = inventory.load(city)
    measured = survey.Measured(inv, history.facts(), history.collected_at())
    out = tmp_path / "out"
    out.mkdir()
    path = survey.write_survey(inv, "fgw", out, measured)
    wb = load_workbook(path)
    ws = wb["资源目录"]
    headers = [c.value for c in ws[1]]
    assert headers == ["信息资源名称", "所属系统", "信息资源分类", "信息资源摘要", "信息资源提供方", "信息资源格式",
                       "更新周期", "发布日期", "共享类型", "共享条件", "共享范围", "不予共享依据", "共享方式",
                       "开放属性", "用途", "存放位置", "编目状态", "发现依据（实测）"]
    rows = [r for r in ws.iter_rows(min_row=2, values_only=True) if r[0]]
    assert rows[0][:2] == ("企业公共信用信息", "fgw-xyxx") and rows[0][headers.index("编目状态")] == "已编目"
    candidates = [r for r in rows if r[headers.index("编目状态")] == i18n.t("catalog.status.candidate")]
    assert ("重大项目库管理系统数据库（MySQL）", "fgw-xmk") in [r[:2] for r in candidates]
    assert all(r[headers.index("发现依据（实测）")] for r in candidates)
    # drop-downs: share type, share method and the policy's enumerations, listed on the 选项 sheet
    validated = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in ws.data_validations.dataValidation}
    lists = wb["选项"]
    for header, values in (("共享类型", ["无条件共享", "有条件共享", "不予共享"]),
                           ("共享方式", ["信息查询", "批量下载", "系统对接"]),
                           ("更新周期", [x.zh for x in load_policy().update_cycles.values()])):
        letter = ws.cell(1, headers.index(header) + 1).column_letter
        column = validated[f"{letter}2"].split("!")[1].split(":")[0].replace("$", "").rstrip("0123456789")
        assert [lists[f"{column}{r}"].value for r in range(2, 2 + len(values))] == values, header

    # a department completes the MySQL candidate and declares it
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == "重大项目库管理系统数据库（MySQL）")
    for header, value in (("信息资源名称", "重大项目库"), ("信息资源分类", "主题信息资源"),
                          ("信息资源摘要", "全市重大项目的立项、投资和进度信息。"),
                          ("信息资源提供方", "重点项目推进科"),
                          ("更新周期", "每周"), ("发布日期", date(2026, 6, 1)), ("共享类型", "无条件共享"),
                          ("共享方式", "信息查询"), ("开放属性", "不予开放"), ("用途", "项目调度和督查。"),
                          ("编目状态", "已编目")):
        ws.cell(row, headers.index(header) + 1).value = value
    filled = tmp_path / "filled" / "survey-fgw.xlsx"
    filled.parent.mkdir()
    wb.save(filled)
    plan = _plan(city, filled)
    assert plan.problems == []
    # the one completed and declared is imported; the other candidates are not resources until declared
    assert [(e.key, c.field) for e, c in importer.iter_changes(plan)] == [("fgw-xmk", "resources[重大项目库]")]
    before = (city / "departments" / "fgw.yaml").read_text(encoding="utf-8")
    importer.apply(plan)
    after = (city / "departments" / "fgw.yaml").read_text(encoding="utf-8")
    assert [line for line in before.splitlines() if "#" in line] == [line for line in after.splitlines() if "#" in line]
    inv = inventory.load(city)
    declared = inv.systems["fgw-xmk"].resources[0]
    assert declared.location == "fgw-xmk-db1:3306" and declared.share_method == "query"
    # declared now, so no longer a candidate
    assert not any(c.location == "fgw-xmk-db1:3306"
                   for c in service.candidates(inv, history.facts(), history.collected_at()))


def test_survey_import_survey_round_trip_of_the_catalog_sheet(city, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    path = survey.write_survey(inventory.load(city), "fgw", out)
    wb = load_workbook(path)
    ws = wb["资源目录"]
    headers = [c.value for c in ws[1]]
    col = {h: i + 1 for i, h in enumerate(headers)}
    ws.cell(2, col["更新周期"]).value = "每周"
    new = next(r for r in range(2, ws.max_row + 2) if ws.cell(r, 1).value is None)
    for header, value in (("信息资源名称", "宏观经济监测指标"), ("所属系统", "fgw-hgjj"),
                          ("信息资源分类", "部门信息资源"),
                          ("信息资源摘要", "全市地区生产总值、投资、消费等月度指标。\n按区县分列。"),
                          ("信息资源提供方", "综合科"), ("信息资源格式", "电子表格"), ("更新周期", "每月"),
                          ("发布日期", date(2020, 1, 15)), ("共享类型", "有条件共享"),
                          ("共享条件", "用于经济运行分析，不得对外发布未公开数据。"), ("共享范围", "市直各部门"),
                          ("共享方式", "批量下载"), ("开放属性", "有条件开放"), ("用途", "经济运行分析。"),
                          ("存放位置", "/srv/fgw-hgjj/exports"), ("编目状态", "已编目")):
        ws.cell(new, col[header]).value = value
    filled = tmp_path / "filled" / "survey-fgw.xlsx"
    filled.parent.mkdir()
    wb.save(filled)
    plan = _plan(city, filled)
    assert plan.problems == []
    changes = {(e.key, c.field): (c.old, c.new) for e, c in importer.iter_changes(plan)}
    assert changes[("fgw-xyxx", "resources[企业公共信用信息].update_cycle")] == ("daily", "weekly")
    assert changes[("fgw-hgjj", "resources[宏观经济监测指标]")][1]["share_type"] == "conditional"
    assert json.dumps(plan.json(), ensure_ascii=False)  # the preview's JSON carries the new resource's date
    importer.apply(plan)
    inv = inventory.load(city)
    assert inv.systems["fgw-hgjj"].resources[0].description.endswith("按区县分列。")
    again = survey.write_survey(inv, "fgw", tmp_path)
    assert _content(again) == _content(filled)

    # every problem of the sheet at once, at its cell: the basis missing, a value not in the list, an unknown system
    wb = load_workbook(again)
    ws = wb["资源目录"]
    ws.cell(2, col["共享类型"]).value = "不予共享"
    ws.cell(2, col["共享方式"]).value = None
    ws.cell(3, col["信息资源格式"]).value = "纸质"
    new = next(r for r in range(2, ws.max_row + 2) if ws.cell(r, 1).value is None)
    ws.cell(new, col["信息资源名称"]).value = "无主资源"
    ws.cell(new, col["所属系统"]).value = "gaj-hjyy"
    broken = tmp_path / "broken" / "survey-fgw.xlsx"
    broken.parent.mkdir()
    wb.save(broken)
    plan = _plan(city, broken)
    text = "\n".join(plan.problems)
    letter = {h: ws.cell(1, i).column_letter for h, i in col.items()}
    assert f"survey-fgw.xlsx:资源目录!{letter['信息资源格式']}3: format: '纸质' is not one of: 数据库" in text
    assert f"survey-fgw.xlsx:资源目录!{letter['所属系统']}{new}: system: 'gaj-hjyy' is not a system of this " \
           "workbook" in text
    assert f"survey-fgw.xlsx:资源目录!{letter['不予共享依据']}2: resources.0.legal_basis: 不予共享 (not_shared) must " \
           "cite its legal basis (不予共享依据)" in text
    assert len(plan.problems) == 4, plan.problems  # and the format, now missing, at its cell


# --- the report -----------------------------------------------------------------------------------------------------


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is required under CI (Debian package: chromium)")
        pytest.skip("chromium is not installed")
    return browser


def test_the_report_in_the_documents_field_order_with_candidates_and_requests(collected, demo, calendar, tmp_path):
    service.request(demo, collected, "企业公共信用信息", "gaj", date(2026, 9, 30), apply=True, calendar=calendar)
    result = service.build(demo, collected, date(2026, 10, 22), calendar)
    paths = report.write_reports(result, tmp_path / "zh")
    assert sorted(p.name for p in paths) == ["catalog.html", "catalog.json", "catalog.xlsx"]
    wb = load_workbook(tmp_path / "zh" / "catalog.xlsx")
    assert wb.sheetnames == ["资源目录", "候选资源", "共享申请"]
    ws = wb["资源目录"]
    assert [c.value for c in ws[1]][:14] == ["信息资源名称", "信息资源分类", "信息资源摘要", "信息资源提供方",
                                             "信息资源格式", "更新周期", "发布日期", "共享类型", "共享条件", "共享范围",
                                             "不予共享依据", "共享方式", "开放属性", "用途"]
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    tax = rows["纳税人涉税信息"]
    assert tax[7] == "不予共享" and "税收征收管理法" in tax[10] and tax[3] == "国家税务总局示范市税务局 征收管理科"
    assert rows["户籍业务预约办理信息"][7] == "有条件共享" and rows["户籍业务预约办理信息"][8]
    proposed = [r[3] for r in wb["候选资源"].iter_rows(min_row=2, values_only=True)]
    assert "重大项目库管理系统数据库（MySQL）" in proposed
    requests = list(wb["共享申请"].iter_rows(min_row=2, values_only=True))
    assert requests[-1][8] == "已超期"
    data = json.loads((tmp_path / "zh" / "catalog.json").read_text(encoding="utf-8"))
    assert {r["key"] for r in data["resources"]} >= {"swj-js/纳税人涉税信息", "gaj-hjyy/户籍业务预约办理信息"}
    assert data["requests"][-1]["overdue"] and data["requests"][-1]["due"] == "2026-10-21"
    assert data["fields"]["share_type"] == {"zh": "共享类型", "en": "Share type"}

    report.write_reports(result, tmp_path / "en", lang="en")
    assert [c.value for c in load_workbook(tmp_path / "en" / "catalog.xlsx")["Catalog"][1]][:2] == \
        ["Resource name", "Classification"]

    page = tmp_path / "zh" / "catalog.html"
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "已超期" in html and "纳税人涉税信息" in html
    browser = _chromium()
    png = tmp_path / "catalog.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run([*cmd, f"--screenshot={png}", "--window-size=1400,1600", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert png.exists() and png.stat().st_size > 10_000, shot.stderr[-2000:]
    keep = REPO / "reports" / "test-screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, keep / "catalog.png")
