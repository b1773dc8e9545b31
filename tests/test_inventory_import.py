"""Survey workbooks out and back, Ansible inventories in, drafts: real openpyxl files, real ansible-inventory runs,
real ruamel round trips, the real loader (no lab needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

import inventory
from inventory import importer, survey
from inventory.ansible_import import ansible_proposals
from inventory.importer import Written

REPO = Path(__file__).resolve().parent.parent
INVOKE = [sys.executable, "-m", "invoke"]


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """A copy of the sample city to change."""
    root = tmp_path / "city"
    shutil.copytree(inventory.DEFAULT_INVENTORY, root)
    return root


def _survey(root: Path, code: str, out: Path) -> Path:
    out.mkdir(exist_ok=True)
    return survey.write_survey(inventory.load(root), code, out)


def _plan(root: Path, *books: Path) -> importer.Plan:
    proposals, problems = survey.survey_proposals(books, Written.read(root))
    return importer.plan(root, proposals, problems)


def _content(path: Path) -> dict[str, list[list[object]]]:
    wb = load_workbook(path)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
            for ws in wb.worksheets}


def _col(ws, header: str) -> int:
    return next(c.column for c in ws[1] if c.value == header)


def _row(ws, key: str) -> int:
    return next(c.row for c in ws["A"] if c.value == key)


# --- out -------------------------------------------------------------------------------------------


def test_survey_has_the_archive_headers_drop_downs_protection_and_instructions(city: Path, tmp_path: Path) -> None:
    path = _survey(city, "fgw", tmp_path / "out")
    assert path.name == "survey-fgw.xlsx"
    wb = load_workbook(path)
    assert wb.sheetnames == ["填写说明", "选项", "部门", "系统", "主机", "资源目录"]
    ws = wb["系统"]
    headers = [c.value for c in ws[1]]
    for label in ("系统名称", "功能描述", "使用范围（使用单位）", "使用频度（申报）", "审批部门", "审批时间",
                  "经费来源"):
        assert label in headers
    ids = [ws.cell(r, 1).value for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value]
    assert ids == ["fgw-oa", "fgw-xmk", "fgw-tzsp", "fgw-xyxx", "fgw-jgjc", "fgw-hgjj"]
    frequency = _col(ws, "使用频度（申报）")
    assert ws.cell(_row(ws, "fgw-oa"), frequency).value == "每月"
    validated = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in ws.data_validations.dataValidation}
    letter = ws.cell(1, frequency).column_letter
    lists = wb["选项"]
    column = validated[f"{letter}2"].split("!")[1].split(":")[0].replace("$", "")[0]
    assert [lists[f"{column}{r}"].value for r in range(2, 8)] == ["每日", "每周", "每月", "每季度", "每年", "偶尔"]
    for header in ("业务类别", "涉密情况", "等保级别", "网络区域", "金字工程", "门户网站"):
        assert f"{ws.cell(1, _col(ws, header)).column_letter}2" in validated
    assert wb["部门"].data_validations.dataValidation  # level
    assert ws.protection.sheet and not ws.cell(2, frequency).protection.locked
    assert ws.cell(2, 1).protection.locked  # an existing record keeps its id
    assert ws.cell(2, _col(ws, "资源使用情况")).protection.locked  # measured: read-only
    guide = [c for row in wb["填写说明"].iter_rows(values_only=True) for c in row if c]
    assert any("下拉" in str(c) for c in guide) and any("drop-down" in str(c) for c in guide)


def test_survey_text_is_neutralised_and_read_back_as_written(city: Path, tmp_path: Path) -> None:
    fgw = city / "departments" / "fgw.yaml"
    text = fgw.read_text(encoding="utf-8")
    fgw.write_text(text.replace("vendor: 北京华信政通科技有限公司", 'vendor: "=HYPERLINK(1)"', 1), encoding="utf-8")
    path = _survey(city, "fgw", tmp_path / "out")
    ws = load_workbook(path)["系统"]
    cell = ws.cell(_row(ws, "fgw-xyxx"), _col(ws, "承建单位"))
    assert cell.value == "'=HYPERLINK(1)" and cell.data_type == "s"
    assert not _plan(city, path).texts  # read back as the text it was, no change


# --- back in ---------------------------------------------------------------------------------------


def test_round_trip_survey_fill_import_survey_gives_the_same_workbook(city: Path, tmp_path: Path) -> None:
    path = _survey(city, "fgw", tmp_path / "out")
    wb = load_workbook(path)
    ws = wb["系统"]
    oa = _row(ws, "fgw-oa")
    ws.cell(oa, _col(ws, "系统名称")).value = "发改委办公系统（旧）"  # a rename is a change
    ws.cell(oa, _col(ws, "使用频度（申报）")).value = "每季度"
    ws.cell(oa, _col(ws, "审批时间")).value = date(2012, 7, 1)
    new = next(r for r in range(2, ws.max_row + 2) if ws.cell(r, 1).value is None)
    for header, value in (("系统编号", "fgw-nyjc"), ("系统名称", "能源监测平台"), ("科室", "能源科"),
                          ("功能描述", "重点用能单位能耗在线监测。"), ("业务类别", "监督"),
                          ("使用范围（使用单位）", "市发展和改革委员会、重点用能单位"), ("申报用户数", 80),
                          ("使用频度（申报）", "每日"), ("审批部门", "市发展和改革委员会"),
                          ("审批时间", date(2021, 5, 6)),
                          ("经费来源", "市级财政专项资金"), ("经费金额（元）", 450000.5), ("建设年份", 2021),
                          ("承建单位", "示范市博远信息技术有限公司"), ("涉密情况", "非涉密"), ("等保级别", 2),
                          ("备案编号", "21010099002-21001"), ("网络区域", "电子政务内网"), ("门户网站", "否")):
        ws.cell(new, _col(ws, header)).value = value
    filled = tmp_path / "filled" / "survey-fgw.xlsx"
    filled.parent.mkdir()
    wb.save(filled)
    before = (city / "departments" / "fgw.yaml").read_text(encoding="utf-8")

    plan = _plan(city, filled)
    assert plan.problems == []
    by = {(e.action, e.key): e for e in plan.edits}
    assert {c.field: (c.old, c.new) for c in by[("change", "fgw-oa")].changes} == {
        "name": ("发改委内部办公系统", "发改委办公系统（旧）"), "frequency": ("monthly", "quarterly"),
        "approval.date": ("2012-06-01", "2012-07-01")}
    assert ("add", "fgw-nyjc") in by and not by[("add", "fgw-nyjc")].draft
    assert not any(e.action == "remove" for e in plan.edits)
    importer.apply(plan)

    after = (city / "departments" / "fgw.yaml").read_text(encoding="utf-8")
    assert after.startswith(before.split("  - id: fgw-oa")[0])  # the file's head comment, byte for byte
    import difflib

    ops = [op for op in difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False)
           .get_opcodes() if op[0] != "equal"]
    replaced = [before.splitlines()[i] for tag, i1, i2, _, _ in ops if tag == "replace" for i in range(i1, i2)]
    # name, frequency, approval replaced; the new record inserted; every other line keeps its bytes
    assert [line.split(":")[0].strip() for line in replaced] == ["name", "frequency", "approval"], ops
    assert {tag for tag, *_ in ops} == {"replace", "insert"}
    assert [line for line in before.splitlines() if "#" in line] == [line for line in after.splitlines() if "#" in line]
    assert "  - id: fgw-nyjc\n" in after and "amount: 450000.50" in after
    inv = inventory.load(city)
    assert inv.systems["fgw-nyjc"].funding.amount == 450000.5 and inv.systems["fgw-oa"].name == "发改委办公系统（旧）"

    again = _survey(city, "fgw", tmp_path / "again")
    assert _content(again) == _content(filled)
    assert not _plan(city, again).texts  # and importing it again changes nothing


def test_every_problem_of_every_workbook_at_once_and_nothing_written(city: Path, tmp_path: Path) -> None:
    fgw = _survey(city, "fgw", tmp_path / "out")
    gaj = _survey(city, "gaj", tmp_path / "out")
    wb = load_workbook(fgw)
    ws = wb["系统"]
    freq, when, zone = _col(ws, "使用频度（申报）"), _col(ws, "审批时间"), _col(ws, "网络区域")
    ws.cell(12 - 10, freq).value = "经常"  # row 2: fgw-oa
    ws.cell(3, when).value = "去年"
    ws.cell(4, _col(ws, "申报用户数")).value = "=SUM(A1:A2)"
    ws.cell(5, zone).value = "电子政务内网"  # fgw-xyxx is social_management: the intranet is refused by routing
    vendor = ws.cell(7, _col(ws, "承建单位")).value
    ws.merge_cells(start_row=6, start_column=_col(ws, "承建单位"), end_row=7, end_column=_col(ws, "承建单位"))
    wb.save(fgw)
    wb = load_workbook(gaj)
    wb["主机"].sheet_state = "hidden"
    wb.save(gaj)
    before = {p: p.read_bytes() for p in city.rglob("*.yaml")}

    result = subprocess.run([*INVOKE, "inventory.import", "-f", f"{fgw},{gaj}", "--inventory", str(city), "--apply"],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2, result.stdout + result.stderr
    text = result.stderr
    letter = ws.cell(1, freq).column_letter
    assert f"survey-fgw.xlsx:系统!{letter}2: frequency: '经常' is not one of: 每日、每周" in text
    assert f"survey-fgw.xlsx:系统!{ws.cell(1, when).column_letter}3: approval_date: '去年' is not a date" in text
    assert "survey-fgw.xlsx:系统!" in text and "a formula (=SUM(A1:A2))" in text
    assert "merged cells" in text
    assert "survey-gaj.xlsx:主机: the sheet is hidden" in text
    assert "nothing was written" in text
    assert {p: p.read_bytes() for p in city.rglob("*.yaml")} == before

    # Cell problems fixed, the routing rule the loader applies is reported at the cell that breaks it.
    wb = load_workbook(fgw)
    ws = wb["系统"]
    ws.unmerge_cells(start_row=6, start_column=_col(ws, "承建单位"), end_row=7, end_column=_col(ws, "承建单位"))
    ws.cell(7, _col(ws, "承建单位")).value = vendor
    ws.cell(2, freq).value, ws.cell(3, when).value, ws.cell(4, _col(ws, "申报用户数")).value = "每月", "2019/3/15", 260
    wb.save(fgw)
    plan = _plan(city, fgw)
    assert len(plan.problems) == 1 and plan.problems[0].startswith(
        f"survey-fgw.xlsx:系统!{ws.cell(1, zone).column_letter}5: zone: a social_management system cannot be on the "
        "intranet"), plan.problems


def test_dates_as_text_and_excel_serials_and_removed_rows(city: Path, tmp_path: Path) -> None:
    path = _survey(city, "fgw", tmp_path / "out")
    wb = load_workbook(path)
    ws = wb["系统"]
    when = _col(ws, "审批时间")
    ws.cell(_row(ws, "fgw-oa"), when).value = 41091  # 2012-07-01 as Excel counts days
    ws.cell(_row(ws, "fgw-xmk"), when).value = "2019年3月16日"
    r = _row(ws, "fgw-jgjc")
    for c in range(1, ws.max_column + 1):
        if not ws.cell(r, c).protection.locked or c == 1:
            ws.cell(r, c).value = None
    wb.save(path)
    plan = _plan(city, path)
    changes = {(e.action, e.key): {c.field: c.new for c in e.changes} for e in plan.edits}
    assert changes[("change", "fgw-oa")] == {"approval.date": "2012-07-01"}
    assert changes[("change", "fgw-xmk")] == {"approval.date": "2019-03-16"}
    assert ("remove", "fgw-jgjc") in changes
    # fgw-jgjc's host is still on the hosts sheet and in its machine room: kept, no longer any system's
    assert plan.problems == []


def test_json_preview(city: Path, tmp_path: Path) -> None:
    path = _survey(city, "fgw", tmp_path / "out")
    wb = load_workbook(path)
    ws = wb["系统"]
    ws.cell(_row(ws, "fgw-hgjj"), _col(ws, "承建单位")).value = "新承建单位"
    wb.save(path)
    result = subprocess.run([*INVOKE, "inventory.import", "-f", str(path), "--inventory", str(city),
                             "--format", "json"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["changed"] == [{"section": "systems", "key": "fgw-hgjj", "file": "departments/fgw.yaml",
                                "from": "survey-fgw.xlsx:系统!7", "draft": False, "missing": [],
                                "changes": [{"field": "vendor", "old": "北京华信政通科技有限公司",
                                             "new": "新承建单位"}]}]
    assert data["added"] == data["removed"] == data["problems"] == []
    assert "新承建单位" not in (city / "departments" / "fgw.yaml").read_text(encoding="utf-8")  # a preview


# --- Ansible ---------------------------------------------------------------------------------------

INI = """\
[dept_fgw:children]
system_fgw_nygl

[system_fgw_nygl]
fgw-ny-app1 ansible_host=198.18.10.201 ansible_user=ops ansible_port=2222
fgw-ny-db1 ansible_host=198.18.10.202 ansible_ssh_private_key_file=/etc/jiyue/id_ed25519

[dept_newdept]
nd-web.example ansible_host=198.18.10.203

[all:vars]
ansible_python_interpreter=/usr/bin/python3
"""
YAML_INV = """\
all:
  children:
    ndrc_energy:
      hosts:
        fgw-ny-app1: {ansible_host: 198.18.10.201, ansible_user: ops, ansible_port: 2222}
        fgw-ny-db1: {ansible_host: 198.18.10.202, ansible_ssh_private_key_file: /etc/jiyue/id_ed25519}
    newdept_web:
      hosts:
        nd-web.example: {ansible_host: 198.18.10.203}
"""
MAPPING = """\
groups:
  - match: 'ndrc_(?P<x>[a-z]+)'
    department: fgw
    system: 'fgw-{x}'
  - match: '(?P<department>newdept)_web'
departments:
  newdept: {name: 新部门, level: city}
"""


def _sources(tmp_path: Path) -> dict[str, tuple[Path, Path | None, str]]:
    """The same hosts as INI, YAML, a directory (INI + host_vars) and a script."""
    ini = tmp_path / "hosts.ini"
    ini.write_text(INI, encoding="utf-8")
    yml = tmp_path / "hosts.yml"
    yml.write_text(YAML_INV, encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    directory = tmp_path / "invdir"
    (directory / "host_vars").mkdir(parents=True)
    (directory / "hosts").write_text(INI.replace(" ansible_user=ops ansible_port=2222", ""), encoding="utf-8")
    (directory / "host_vars" / "fgw-ny-app1.yml").write_text("ansible_user: ops\nansible_port: 2222\n",
                                                              encoding="utf-8")
    script = tmp_path / "inventory.py"
    listing = subprocess.run([str(REPO / ".venv/bin/ansible-inventory"), "-i", str(ini), "--list"],
                             capture_output=True, text=True, check=True).stdout
    script.write_text(f"#!{sys.executable}\nimport sys\nprint({listing!r} if '--list' in sys.argv else '{{}}')\n",
                      encoding="utf-8")
    script.chmod(0o755)
    return {"ini": (ini, None, "fgw-nygl"), "yaml": (yml, mapping, "fgw-energy"), "dir": (directory, None, "fgw-nygl"),
            "script": (script, None, "fgw-nygl")}


@pytest.mark.parametrize("kind", ["ini", "yaml", "dir", "script"])
def test_ansible_inventories_propose_hosts_ssh_departments_and_draft_systems(city: Path, tmp_path: Path,
                                                                             kind: str) -> None:
    source, mapping, system = _sources(tmp_path)[kind]
    proposals, problems = ansible_proposals(source, Written.read(city), mapping)
    assert problems == []
    plan = importer.plan(city, proposals)
    assert plan.problems == []
    added = {(e.section, e.key): e for e in plan.edits if e.action == "add"}
    assert set(added) >= {("hosts", "fgw-ny-app1"), ("hosts", "fgw-ny-db1"), ("hosts", "nd-web-example"),
                          ("systems", system), ("departments", "newdept")}
    assert added[("systems", system)].draft and "name" in added[("systems", system)].missing
    assert added[("hosts", "fgw-ny-app1")].draft  # os and role: not in an Ansible inventory
    importer.apply(plan)
    inv = inventory.load(city)  # drafts are incomplete, not invalid
    app = inv.drafts["hosts"]["fgw-ny-app1"].data
    assert app["address"] == "198.18.10.201" and app["ssh"] == {"user": "ops", "port": 2222}
    assert inv.drafts["hosts"]["fgw-ny-db1"].data["ssh"] == {"key": "/etc/jiyue/id_ed25519"}
    assert inv.drafts["systems"][system].data["hosts"] == ["fgw-ny-app1", "fgw-ny-db1"]
    assert inv.drafts["systems"][system].data["department"] == "fgw"
    assert (kind == "yaml") == ("newdept" in inv.departments)  # complete where the mapping names it
    assert "fgw-ny-app1" not in inv.hosts and system not in inv.systems  # nothing else of jiyue sees a draft
    assert (city / "departments" / "fgw.yaml").read_text(encoding="utf-8").startswith("# 市发展和改革委员会")
    # importing the same again changes nothing
    proposals, _ = ansible_proposals(source, Written.read(city), mapping)
    assert not importer.plan(city, proposals).texts


def test_ansible_import_of_the_citys_own_export_finds_every_host_as_it_is(tmp_path: Path, city: Path) -> None:
    """jiyue's Ansible export read back by the default mapping: nothing to change on the city it came from."""
    from inventory import export

    inv = inventory.load(city)
    export.write(inv, "ansible", inv.contactable_hosts(), [], tmp_path)
    source = tmp_path / "inventory" / "ansible.yml"
    proposals, problems = ansible_proposals(source, Written.read(city))
    assert problems == []
    plan = importer.plan(city, proposals)
    assert plan.problems == []
    assert plan.edits == [] and plan.texts == {}  # every host known, as it is: matched, nothing to change


def test_ansible_import_into_an_empty_directory_from_the_command_line(tmp_path: Path) -> None:
    source, mapping, _ = _sources(tmp_path)["yaml"]
    target = tmp_path / "new-city"
    args = [*INVOKE, "inventory.import", "--from-ansible", str(source), "--mapping", str(mapping), "--inventory",
            str(target)]
    preview = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert preview.returncode == 0, preview.stderr
    assert "preview only" in preview.stdout and not target.exists()
    applied = subprocess.run([*args, "--apply"], cwd=REPO, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    check = subprocess.run([*INVOKE, "inventory.check", "--inventory", str(target)], cwd=REPO,
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert check.returncode == 0, check.stderr
    assert "drafts: incomplete" in check.stdout
    assert "systems[fgw-energy]: missing name" in check.stdout.replace("\n", " ")


def test_ansible_import_refuses_what_it_cannot_read(city: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[dept_fgw]\nweb01 ansible_host=not-an-address\nweb02 ansible_user='{{ who }}' "
                   "ansible_host=198.18.10.70\n", encoding="utf-8")
    _, problems = ansible_proposals(bad, Written.read(city))
    assert any("web01: ansible_host: 'not-an-address' is not an IP address" in p for p in problems)
    assert any("web02: ansible_user: '{{ who }}' is a template" in p for p in problems)


# --- drafts ----------------------------------------------------------------------------------------


def test_a_complete_record_may_not_refer_to_a_draft_and_a_draft_may_not_hide_a_bad_value(city: Path) -> None:
    (city / "drafts.yaml").write_text(
        "systems:\n  - id: fgw-draft\n    draft: true\n    department: fgw\n    frequency: sometimes\n"
        "  - id: fgw-ok-draft\n    draft: true\n    department: fgw\n", encoding="utf-8")
    fgw = city / "departments" / "fgw.yaml"
    fgw.write_text(fgw.read_text(encoding="utf-8").replace("depends_on: [fgw-tzsp]", "depends_on: [fgw-ok-draft]"),
                   encoding="utf-8")
    with pytest.raises(inventory.InventoryError) as exc:
        inventory.load(city)
    messages = [f"{p.path}: {p.message}" for p in exc.value.problems]
    assert any(m.startswith("systems[fgw-draft].frequency: Input should be") for m in messages), messages
    assert any("systems[fgw-xmk].depends_on[0]: system 'fgw-ok-draft' is a draft" in m for m in messages), messages
    assert len(messages) == 2


def test_a_host_only_a_draft_lists_is_never_contacted(city: Path) -> None:
    (city / "drafts.yaml").write_text(
        "systems:\n  - id: fgw-new\n    draft: true\n    department: fgw\n    hosts: [fgw-new-app1]\n"
        "hosts:\n  - {name: fgw-new-app1, address: 198.18.10.90, os_family: debian, os: Debian 12, role: app}\n",
        encoding="utf-8")
    inv = inventory.load(city)
    assert "fgw-new-app1" in inv.hosts and inv.is_classified("fgw-new-app1")
    assert "fgw-new-app1" not in inv.contactable_hosts()
    text = (city / "drafts.yaml").read_text(encoding="utf-8")
    (city / "drafts.yaml").write_text(text.replace("department: fgw\n", "department: fgw\n    classification: "
                                                   "non_classified\n"), encoding="utf-8")
    assert "fgw-new-app1" in inventory.load(city).contactable_hosts()


def test_splice_keeps_the_original_bytes_where_ruamel_reflows(tmp_path: Path) -> None:
    original = "# head\nrooms:\n  - id: r1   # keep\n    hosts: [a, b,\n            c]\n    area: 3\n"
    y = importer.yaml_rt()
    doc = y.load(original)
    import io
    dumped = io.StringIO()
    y.dump(doc, dumped)
    assert dumped.getvalue() != original  # ruamel re-flows the two-line list
    doc["rooms"][0]["area"] = 4
    changed = io.StringIO()
    y.dump(doc, changed)
    assert importer.splice(original, dumped.getvalue(), changed.getvalue()) == original.replace("area: 3", "area: 4")


def test_drafts_from_ansible_are_completed_by_the_survey(city: Path, tmp_path: Path) -> None:
    """The on-ramp: Ansible proposes drafts, the department's survey completes them, the city takes them in."""
    source, _, system = _sources(tmp_path)["ini"]
    proposals, _ = ansible_proposals(source, Written.read(city))
    importer.apply(importer.plan(city, proposals))
    path = _survey(city, "fgw", tmp_path / "out")
    wb = load_workbook(path)
    ws = wb["系统"]
    r = _row(ws, system)
    assert ws.cell(r, _col(ws, "主机")).value == "fgw-ny-app1, fgw-ny-db1"
    for header, value in (("系统名称", "能源管理系统"), ("功能描述", "能耗统计。"), ("业务类别", "管理"),
                          ("使用范围（使用单位）", "市发展和改革委员会"), ("申报用户数", 12),
                          ("使用频度（申报）", "每周"),
                          ("审批部门", "市发展和改革委员会"), ("审批时间", "2020-03-01"), ("经费来源", "部门自筹资金"),
                          ("经费金额（元）", 120000), ("建设年份", 2020), ("承建单位", "示范市博远信息技术有限公司"),
                          ("涉密情况", "非涉密"), ("等保级别", 1), ("网络区域", "电子政务内网")):
        ws.cell(r, _col(ws, header)).value = value
    hosts = wb["主机"]
    for name in ("fgw-ny-app1", "fgw-ny-db1"):
        row = _row(hosts, name)
        for header, value in (("操作系统类别", "Debian 系"), ("操作系统（申报）", "Debian 12"), ("用途", "app")):
            hosts.cell(row, _col(hosts, header)).value = value
    wb.save(path)
    plan = _plan(city, path)
    assert plan.problems == []
    assert {e.key for e in plan.edits if any(c.field == "draft" for c in e.changes)} == \
        {system, "fgw-ny-app1", "fgw-ny-db1"}
    importer.apply(plan)
    inv = inventory.load(city)
    assert system in inv.systems and inv.systems[system].hosts == ["fgw-ny-app1", "fgw-ny-db1"]
    assert inv.hosts["fgw-ny-app1"].ssh.port == 2222 and "draft" not in inv.drafts.get("systems", {})
    assert "fgw-ny-app1" in inv.contactable_hosts()
