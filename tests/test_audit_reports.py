"""The audit reports (archive, integration list, asset list) and the shared report writers.

No lab needed: a store is filled with collection runs shaped like real facts (audit/probes.py),
including hostile host output: a process named like a spreadsheet formula, a login user that is a
script tag, a cron entry starting with `@`, U+FFFD from invalid UTF-8 and a terminal escape.
Every format must come out inert. The HTML is also rendered by headless Chromium.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

from audit import service
from audit.archive import (
    ARCHIVE_COLUMNS,
    ASSET_COLUMNS,
    INTEGRATION_COLUMNS,
    ROOM_COLUMNS,
    SUMMARY_COLUMNS,
    archive_headers,
    is_single_office,
    load_asset_rules,
)
from audit.model import CRITERIA, INSUFFICIENT, MET, NEAR, NOT_MET, SCRAP, TRANSFER, VERDICT_ORDER
from audit.report import VERDICT_COLORS, write_reports
from inventory.model import RoomReason, RoomStatus
from jiyue import i18n, reports
from jiyue.runner import Result
from jiyue.store import ASSET_FREED, AUDIT_COLLECT, MIGRATE_LOCATION, Store

REPO = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RUNS = [NOW - timedelta(days=28) + timedelta(days=4 * i) for i in range(8)]  # 28 days, 8 collections

FORMULA = "=cmd|' /C calc'!A0"
SCRIPT_USER = "<script>alert(1)</script>"
IMG_PROCESS = '<img src="http://evil.example/x.png" onerror=alert(2)>'
CRON = "@SUM(1+1)"
SECRET = "jmwj-secret-proc"  # a fact of a classified host: must appear in no report
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

DEBIAN_12 = {"id": "debian", "id_like": [], "version_id": "12", "name": "Debian GNU/Linux",
             "pretty_name": "Debian GNU/Linux 12 (bookworm)", "distribution": "Debian"}
CENTOS_6 = {"id": "centos", "id_like": ["rhel"], "version_id": "6.10", "name": "CentOS",
            "pretty_name": "CentOS release 6.10 (Final) \ufffd\ufffd", "distribution": "CentOS"}


def facts(at: datetime, n: int, *, os_=DEBIAN_12, cpus=2, cpu_one_core=0.0, net_bps=0.0, users=None,
          requests=0, clients=0, last_request=None, updated=None, listening=(), connections=(), cron=()):
    """One host's facts in one run, in the shape audit/probes.py produces (see /tmp/sample_facts.json)."""
    days = [(at - timedelta(days=d)).date().isoformat() for d in range(4)]
    return {
        "clock": {"epoch": int(at.timestamp()), "utc_offset": "+0000"},
        "listening": [{"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd", "pid": 100},
                      *listening],
        "connections": list(connections),
        "logins": {"users_last": dict(users or {}), "logins_per_day": {}, "sources": ["wtmp"]},
        "web": {"found": bool(requests), "requests_per_day": {d: [requests, 0] for d in days} if requests else {},
                "clients_last_day": {f"10.1.{i // 250}.{i % 250 + 1}": days[0] for i in range(clients)},
                "last_request": last_request, "logs": ["/var/log/app/x/access.log"]},
        "packages": {"last_transaction": updated, "source": "apt", "detail": f"End-Date: {updated}"},
        "services": {"manager": "systemd", "enabled": ["ssh"], "running": ["ssh"]},
        "cron": [{"file": "/etc/cron.d/app", "entry": e} for e in cron],
        "data": {},
        "sample": {"interval_s": 1.0, "cpu_seconds": 0.0, "cpu_pct_of_one_core": cpu_one_core, "host_cpu_pct": 1.0,
                   "net_bytes": int(net_bps), "net_bytes_per_s": net_bps,
                   "net_counters": {"rx": int(net_bps * 86400 * n * 4), "tx": 0}, "processes": 12, "rss_kb": 1000},
        "os": os_, "kernel": "6.1.0", "uptime_s": 1e6, "cpu": {"model": "Hygon C86", "count": cpus},
        "memory": {"total_kb": 16 * 1024 * 1024, "available_kb": 8 * 1024 * 1024},
        "disks": [{"device": "/dev/vda1", "mount": "/", "size_kb": 200 * 1024 * 1024, "used_kb": 50 * 1024 * 1024}],
        "load": [0.1, 0.1, 0.1], "hostname": "h", "collect_seconds": 1.2,
    }


def busy(at, n, **kw):
    recent = (at - timedelta(hours=3)).isoformat()
    return facts(at, n, cpus=4, cpu_one_core=60.0, net_bps=300_000.0, users={"admin": recent, "ops": recent},
                 requests=4000, clients=80, last_request=recent, updated=(at - timedelta(days=10)).isoformat(), **kw)


def city_run(demo, at: datetime, n: int) -> list[Result]:
    addr = {h: str(demo.hosts[h].address) for h in demo.hosts}
    out = []

    def ok(host, value):
        out.append(Result(host, True, value, started=at))

    # Active: the data exchange platform, with a measured (undeclared) client: gaj-hjyy.
    ok("dsj-gxjh-app1", busy(at, n, listening=[{"proto": "tcp", "address": "0.0.0.0", "port": 8080,
                                                "process": "java", "pid": 200}],
                             connections=[{"local": addr["dsj-gxjh-app1"], "local_port": 8080,
                                           "peer": addr["gaj-hjyy-app1"], "peer_port": 40000, "process": "java"}]))
    ok("dsj-gxjh-db1", busy(at, n))
    ok("szfb-oa-app1", busy(at, n))
    ok("szfb-oa-db1", busy(at, n))
    ok("gaj-hjyy-app1", busy(at, n))
    # Zombie (criteria 1, 3, 4, 5): idle since early 2025.
    old = "2025-01-10T09:00:00+00:00"
    for h in ("fgw-hgjj-app1", "fgw-hgjj-db1"):
        ok(h, facts(at, n, cpu_one_core=0.05, net_bps=8.0, users={"root": old}, updated=old))
    # Zombie with hostile host output: CentOS 6 (end of life), a formula process, a script user.
    ok("fgw-jgjc-app1", facts(
        at, n, os_=CENTOS_6, cpu_one_core=0.02, net_bps=5.0,
        users={SCRIPT_USER: (at - timedelta(days=1)).isoformat(), "op\ufffd\x1b[31m": old},
        updated="2019-03-01T00:00:00+00:00",
        listening=[{"proto": "tcp", "address": "0.0.0.0", "port": 21, "process": FORMULA, "pid": 7},
                   {"proto": "tcp", "address": "0.0.0.0", "port": 8081, "process": IMG_PROCESS, "pid": 8}],
        cron=[CRON, "-2+3 /usr/bin/evil", "30 2 * * * root /opt/app/backup.sh \ufffd"]))
    # Suspect: near the idle thresholds, otherwise in use.
    ok("qszf-nyfw-app1", facts(at, n, cpu_one_core=9.0, net_bps=80.0, users={"zhang": at.isoformat()},
                               requests=15, clients=8, last_request=at.isoformat(),
                               updated=(at - timedelta(days=20)).isoformat()))
    # Never reachable.
    out.append(Result("zjj-wxzj-app1", False, None, "unreachable", "connect timed out", started=at))
    # A classified host someone collected with --include-classified: nothing of it may reach a report.
    ok("szfb-jmwj-app1", busy(at, n, listening=[{"proto": "tcp", "address": "0.0.0.0", "port": 9443,
                                                 "process": SECRET, "pid": 300}],
                              connections=[{"local": addr["szfb-jmwj-app1"], "local_port": 50000,
                                            "peer": addr["dsj-gxjh-app1"], "peer_port": 8080, "process": SECRET}]))
    return out


@pytest.fixture(scope="module")
def audit(demo, tmp_path_factory):
    base = tmp_path_factory.mktemp("audit")
    store = Store(f"sqlite:///{base}/h.sqlite")
    for n, at in enumerate(RUNS):
        store.record(AUDIT_COLLECT, city_run(demo, at, n), started=at, seeded=True)
    result = service.judge(demo, store, now=NOW)
    zh = write_reports(result, base / "zh")
    en = write_reports(result, base / "en", lang="en")
    return {"judge": result.judge, "verdicts": {v.system: v for v in result.verdicts}, "zh": base / "zh",
            "en": base / "en", "written": (zh, en)}


# --- the scenario is what the reports are about -------------------------------------------------


def test_scenario_verdicts(audit):
    v = audit["verdicts"]
    assert v["dsj-gxjh"].verdict == "active"
    assert v["fgw-hgjj"].verdict == "zombie" and {1, 3, 4, 5} <= set(v["fgw-hgjj"].met)
    assert v["fgw-jgjc"].verdict == "zombie" and 4 in v["fgw-jgjc"].met
    assert v["fgw-oa"].verdict == "zombie" and 2 in v["fgw-oa"].met  # replaced by szfb-oa, in use
    assert v["qszf-nyfw"].verdict == "suspect"
    assert v["zjj-wxzj"].verdict == "insufficient_data"
    assert "gaj-hjyy" in audit["judge"].history.dependents["dsj-gxjh"]  # measured


def test_stable_file_names(audit):
    for out, written in zip((audit["zh"], audit["en"]), audit["written"], strict=True):
        assert [p.name for p in written] == ["archive.xlsx", "archive.csv", "archive.json", "archive.html"]
        assert all(p.parent == out and p.stat().st_size > 0 for p in written)
        assert not list(out.glob(".*.tmp"))


# --- Excel --------------------------------------------------------------------------------------


def test_xlsx_sheets_and_layout(audit, demo):
    wb = openpyxl.load_workbook(audit["zh"] / "archive.xlsx")
    depts = [d.name for code, d in demo.departments.items() if any(s.department == code for s in demo.systems.values())]
    assert wb.sheetnames == ["城市汇总", *depts, "整合共享清单", "机房腾退", "资产清单"]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), ws.title
        assert all(c.font.bold for c in ws[1] if c.value is not None), ws.title
    headers = [c.value for c in wb[depts[0]][1]]
    assert headers == archive_headers("zh")
    for name in ("部门", "科室", "系统名称", "功能描述", "使用范围（使用单位）", "使用频度（申报）", "审批部门",
                 "审批时间", "经费来源", "资源使用情况", "僵尸判定", "符合的认定标准", "判定依据", "观察期"):
        assert name in headers
    fgw = wb["市发展和改革委员会"]
    rows = {r[2]: dict(zip(headers, r, strict=True)) for r in fgw.iter_rows(min_row=2, values_only=True)}
    hgjj = rows["fgw-hgjj"]
    assert hgjj["僵尸判定"] == "僵尸"
    assert "1 长期脱节" in hgjj["符合的认定标准"] and "3 资源空闲" in hgjj["符合的认定标准"]
    assert "资源空闲" in hgjj["判定依据"] and "utilisation" in hgjj["判定依据"] and "观察期" in hgjj["判定依据"]
    assert hgjj["业务类别"] == "决策" and hgjj["网络区域"] == "电子政务内网" and hgjj["涉密情况"] == "非涉密"
    assert "2 核" in hgjj["资源使用情况"] and "CPU P95" in hgjj["资源使用情况"]
    assert isinstance(hgjj["经费金额（元）"], int | float)
    # long text columns wrap; CJK widths count double
    evidence_col = openpyxl.utils.get_column_letter(headers.index("判定依据") + 1)
    assert fgw[f"{evidence_col}2"].alignment.wrap_text
    assert fgw.column_dimensions["B"].width >= reports.display_width("科室") + 2


def test_xlsx_summary_counts(audit, demo):
    ws = openpyxl.load_workbook(audit["zh"] / "archive.xlsx")["城市汇总"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("部门", "级别", "系统数")
    assert rows[-1][0] == "合计" and rows[-1][2] == len(demo.systems)
    assert sum(r[2] for r in rows[1:-1]) == len(demo.systems)
    header = list(rows[0])
    assert rows[-1][header.index("僵尸")] == sum(v.verdict == "zombie" for v in audit["verdicts"].values())


def _all_cells(path: Path):
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            yield from row


def test_xlsx_is_inert(audit):
    texts = []
    for cell in _all_cells(audit["zh"] / "archive.xlsx"):
        assert cell.data_type != "f", (cell.coordinate, cell.value)
        if isinstance(cell.value, str):
            texts.append(cell.value)
            assert not cell.value.startswith(TRIGGERS), (cell.coordinate, cell.value)
            assert "\x1b" not in cell.value
    # the hostile values are there, neutralised (the whole cell starts with the formula)
    assert any(t.startswith("'" + FORMULA + " (21/tcp)") for t in texts)
    assert any(t.startswith("'" + CRON) for t in texts)
    assert any(SCRIPT_USER in t for t in texts)
    assert any("\ufffd" in t for t in texts)


def test_asset_and_integration_sheets(audit):
    wb = openpyxl.load_workbook(audit["zh"] / "archive.xlsx")
    assets = list(wb["资产清单"].iter_rows(values_only=True))
    header = list(assets[0])
    by_name = {r[1]: dict(zip(header, r, strict=True)) for r in assets[1:]}
    assert set(by_name) >= {"fgw-hgjj-app1", "fgw-hgjj-db1", "fgw-jgjc-app1", "fgw-oa-app1"}
    hgjj = by_name["fgw-hgjj-app1"]
    assert hgjj["处置方式"] == "移交划转" and hgjj["释放原因"] == "僵尸系统清理下线"
    assert hgjj["状态"].startswith("待释放")  # until it is taken offline
    # the owning department is accountable (谁建设、谁负责); the contractor built it
    assert hgjj["责任单位（谁建设、谁负责）"] == "市发展和改革委员会" and hgjj["承建单位"]
    # Changed by issue 12: CentOS 6 past its end of life was scrapped; the OS is reinstalled, the hardware reused.
    jgjc = by_name["fgw-jgjc-app1"]
    assert jgjc["处置方式"] == "移交划转" and "重装" in jgjc["处置依据"] and jgjc["所在机房"] == "fgw-room"
    assert by_name["fgw-oa-app1"]["处置方式"] == "报损报废" and "现场核实" in by_name["fgw-oa-app1"]["处置依据"]
    assert hgjj["CPU（核）"] == 2 and hgjj["内存（GB）"] == 16
    assert jgjc["所属系统"] == "fgw-jgjc"
    # websites are freed by the move to the site cluster
    assert by_name["gaj-web-app1"]["释放原因"] == "网站迁入网站集约化平台"
    # the room being vacated: the retired leased-line router (2015, past 5 years), its racks (2012) and UPS (2022)
    router = by_name["华为 AR2220 互联网专线接入路由器"]
    assert router["资产类别"] == "机房设备" and router["释放原因"] == "整合后退役的设备" and router["状态"] == "已释放"
    assert router["处置方式"] == "报损报废" and "最低使用年限 5 年" in router["处置依据"]
    assert by_name["42U 机柜"]["处置方式"] == "报损报废" and by_name["42U 机柜"]["数量"] == 2
    assert by_name["山特 C6K UPS"]["处置方式"] == "移交划转" and by_name["山特 C6K UPS"]["状态"].startswith("待释放")
    room = by_name["fgw-room"]
    assert room["资产类别"] == "机房" and room["处置方式"] == "移交划转" and "32 平方米" in room["处置依据"]
    # kept rooms are not freed: not on the asset list, nor is what remains in them
    assert "szfb-room" not in by_name and "机要网密码设备" not in by_name and "zjj-room" not in by_name
    rooms = list(wb["机房腾退"].iter_rows(values_only=True))
    header = list(rooms[0])
    rooms_by_id = {r[0]: dict(zip(header, r, strict=True)) for r in rooms[1:]}
    assert set(rooms_by_id) == {"fgw-room", "szfb-room", "zjj-room"}
    assert rooms_by_id["szfb-room"]["核查发现"] == "符合要求" and "领导小组" in rooms_by_id["szfb-room"]["领导小组审议"]
    assert "zjj.yaml:" in rooms_by_id["zjj-room"]["核查发现"] and "area_m2" in rooms_by_id["zjj-room"]["核查发现"]
    assert "zjj-gjj-app1" in rooms_by_id["zjj-room"]["机房内现存设备"]
    assert "华为 AR2220" not in rooms_by_id["fgw-room"]["机房内现存设备"]  # retired: no longer remains
    integ = list(wb["整合共享清单"].iter_rows(values_only=True))
    header = list(integ[0])
    rows = {r[header.index("系统编号")]: dict(zip(header, r, strict=True)) for r in integ[1:]}
    assert rows["zjj-jzsc"]["整合类型"] == rows["zjj-zlaq"]["整合类型"] == "功能重叠（互相声明）"
    assert {rows["zjj-jzsc"]["建议整合目标"], rows["zjj-zlaq"]["建议整合目标"]} - {""}  # one keeps, one merges
    assert rows["fgw-oa"]["整合类型"] == "以科室名义存在的独立系统"
    assert rows["fgw-oa"]["建议整合目标"].startswith("szfb-oa")  # its declared replacement
    assert "清理下线" in rows["fgw-hgjj"]["建议措施"]  # a zombie is decommissioned, not merged
    assert "rsj-rczp" not in rows  # a one-way overlap is criterion 2, not a merge


def test_single_office_rule(demo):
    assert is_single_office(demo, demo.systems["fgw-oa"])  # office 办公室, used by its own department only
    assert is_single_office(demo, demo.systems["fgw-jgjc"])  # used by its own office only
    assert not is_single_office(demo, demo.systems["fgw-xmk"])
    assert not is_single_office(demo, demo.systems["gaj-jd"])  # no office (and a golden network)


# --- CSV and JSON ---------------------------------------------------------------------------------


def test_csv(audit, demo):
    raw = (audit["zh"] / "archive.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(keepends=True)))
    assert rows[0] == archive_headers("zh")
    assert {r[2] for r in rows[1:]} == set(demo.systems)
    for row in rows:
        for cell in row:
            assert not cell.startswith(TRIGGERS), cell
    assert any(SCRIPT_USER in cell for row in rows for cell in row)


def test_json(audit, demo):
    data = json.loads((audit["zh"] / "archive.json").read_text(encoding="utf-8"))
    systems = {s["id"]: s for s in data["systems"]}
    assert set(systems) == set(demo.systems)
    hgjj = systems["fgw-hgjj"]
    assert hgjj["verdict"]["verdict"] == "zombie"
    assert [c["number"] for c in hgjj["verdict"]["criteria"]] == [1, 2, 3, 4, 5]
    idle = hgjj["verdict"]["criteria"][2]
    assert idle["key"] == "idle" and idle["outcome"] == "met"
    assert idle["numbers"]["hosts"]["fgw-hgjj-app1"]["cpu_p95_pct"] < 3 and idle["evidence"]
    assert hgjj["inventory"]["office"] == "综合科" and hgjj["archive"]["verdict"] == "僵尸"
    assert hgjj["hosts"][0]["collected"] and hgjj["hosts"][0]["cpus"] == 2
    assert data["policy"]["idle"]["cpu_pct"] == 3 and data["window"]["until"].startswith("2026-06-01")
    assert data["generated_at"] and data["summary"]["totals"]["systems"] == len(demo.systems)
    assert {a["name"] for a in data["assets"]} >= {"fgw-jgjc-app1", "fgw-room"}
    assert all(a["reasons"] and a["disposal"] in (TRANSFER, SCRAP) for a in data["assets"])
    assert {r["room"]: bool(r["findings"]) for r in data["machine_rooms"]} == {
        "fgw-room": False, "szfb-room": False, "zjj-room": True}
    assert any(e["kind"] == "overlap" for e in data["integration"])
    assert any(SCRIPT_USER in json.dumps(c["evidence"], ensure_ascii=False)
               for c in systems["fgw-jgjc"]["verdict"]["criteria"])


# --- HTML -----------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def test_html_static_and_escaped(audit):
    html = (audit["zh"] / "archive.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(html)
    names = [tag for tag, _ in parser.tags]
    assert "<script" not in html.lower()
    assert not {"script", "iframe", "object", "embed", "link", "img", "base", "form"} & set(names)
    for tag, attrs in parser.tags:
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key)  # no event handlers
            if key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                assert not re.match(r"\s*(https?:|//|javascript:)", value or "", re.I), (tag, key, value)
    assert "url(" not in parser.style and "@import" not in parser.style and "@font-face" not in parser.style
    assert "<svg" in html and names.count("svg") >= 4  # verdicts, CPU, network, dependencies
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=&#34;http://evil.example/x.png&#34;" in html
    assert FORMULA.replace("'", "&#39;") in html  # shown as text
    assert "\x1b" not in html
    assert 'lang="zh-CN"' in html and "Noto Sans CJK SC" in html
    assert "僵尸系统判定依据" in html and "fgw-hgjj" in html and "系统依赖关系" in html
    assert "stroke-dasharray" in html  # the measured dependency edge


def test_english(audit):
    wb = openpyxl.load_workbook(audit["en"] / "archive.xlsx")
    assert wb.sheetnames[0] == "City summary"
    assert wb.sheetnames[-3:] == ["Integration list", "Machine rooms", "Asset list"]
    headers = [c.value for c in wb.worksheets[1][1]]
    assert headers == archive_headers("en") and "System name" in headers and "Evidence" in headers
    row = {r[2]: r for r in wb["市发展和改革委员会"].iter_rows(min_row=2, values_only=True)}["fgw-hgjj"]
    assert row[headers.index("Zombie verdict")] == "Zombie" and row[headers.index("Business category")] == "Decision"
    assert row[headers.index("Network zone")] == "E-government intranet"
    assert "Idle resources" in row[headers.index("Criteria met")]
    csv_headers = next(csv.reader((audit["en"] / "archive.csv").open(encoding="utf-8-sig")))
    assert csv_headers == archive_headers("en")
    html = (audit["en"] / "archive.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Zombie systems and their evidence" in html
    assert "&lt;script&gt;" in html and "<script" not in html


# --- the shared writers on their own --------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"),
    ("\r=x", "'\r=x"), ("  =x", "'  =x"), ("normal", "normal"), ("", ""), ("a=b", "a=b"), (-5, -5), (1.5, 1.5),
    (None, None),
])
def test_neutralise(value, expected):
    assert reports.neutralise(value) == expected


def test_sheet_titles():
    used: set[str] = set()
    assert reports.sheet_title("a/b:c*d?e[f]g\\h", used) == "a_b_c_d_e_f_g_h"
    long = "市" * 40
    first = reports.sheet_title(long, used)
    second = reports.sheet_title(long, used)
    assert len(first) == len(second) == 31 and first != second


def test_writers_strip_illegal_characters(tmp_path):
    path = reports.write_xlsx(tmp_path / "x.xlsx", [reports.Sheet("t", ["列"], [["a\x00b\x07c", "=x"]])])
    ws = openpyxl.load_workbook(path).active
    assert ws["A2"].value == "abc" and ws["B2"].value == "'=x"
    reports.write_json(tmp_path / "x.json", {"d": NOW, "s": "中文"})
    assert '"中文"' in (tmp_path / "x.json").read_text(encoding="utf-8")


def test_svg_helpers_escape():
    svg = reports.svg_bar_chart([("<b>x</b>", 1.0)], title="<t>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    svg = reports.svg_stacked_bar(["<c>"], [("<s>", "#000", [2])], title="x")
    assert "<c>" not in svg and "<s>" not in svg
    nodes = [reports.GraphNode("a", "<a>", "g"), reports.GraphNode("b", "b", "g")]
    svg = reports.svg_graph(nodes, [reports.GraphEdge("a", "b", "measured", "<e>")], group_colors={"g": "#123456"})
    assert "<a>" not in svg and "<e>" not in svg and "stroke-dasharray" in svg


def test_dependency_layers_with_cycles():
    layers = reports.dependency_layers("abcde", {"a": ["b"], "b": ["c"], "d": ["e"], "e": ["d"]})
    assert layers["c"] == 0 and layers["b"] == 1 and layers["a"] == 2
    assert {layers["d"], layers["e"]} <= {0, 1}


LABEL_CALL = re.compile(r"""(?<![\w.])t\(\s*['"]([a-z_]+(?:\.[a-z0-9_]+)+)['"]""")


def test_every_label_the_audit_shows_exists():
    """Every label key the audit's code and template name, literally or by a family of values, is defined.

    i18n checks at load that each defined label has both languages; this checks the other side: no
    report asks for a key nobody defined (which would fail only when that branch is reached)."""
    sources = [*(REPO / "audit").glob("*.py"), *(REPO / "audit" / "templates").glob("*.j2")]
    literal = {key for path in sources for key in LABEL_CALL.findall(path.read_text(encoding="utf-8"))}
    assert {"audit.title", "html.zombies", "archive.window", "report.total"} <= literal  # the scan sees calls
    families = {
        *(f"archive.{c}" for c in ARCHIVE_COLUMNS), *SUMMARY_COLUMNS, *INTEGRATION_COLUMNS, *ASSET_COLUMNS,
        *(f"verdict.{v}" for v in VERDICT_ORDER), *(f"criterion.{c}" for c in CRITERIA),
        *(f"outcome.{o}" for o in (MET, NEAR, NOT_MET, INSUFFICIENT)), *(f"disposal.{d}" for d in (TRANSFER, SCRAP)),
        *(f"integration.kind.{k}" for k in ("overlap", "single_office")),
        *(f"integration.action.{a}" for a in ("keep", "merge", "merge_none", "decommission")),
        *ROOM_COLUMNS, *(f"rooms.status.{x}" for x in RoomStatus), *(f"rooms.reason.{x}" for x in RoomReason),
        *(f"assets.kind.{k}" for k in ("host", "equipment", "room")),
        *(f"assets.stage.{k}" for k in ("freed", "pending")),
        *(f"assets.cause.{k}" for k in ("zombie", "migrated_source", "website", "retired", "room_equipment",
                                        "vacated_room")),
    }
    assert sorted(k for k in literal | families if not i18n.has(k)) == []
    assert i18n.bilingual("中文 / English", "en") == "English"
    with pytest.raises(i18n.LabelError):
        i18n.t("report.total", "fr")


# --- rendered by a browser --------------------------------------------------------------------------


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is required under CI (Debian package: chromium, fonts: fonts-noto-cjk)")
        pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    return browser


def _render(page: Path, tmp_path: Path, *output: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", *output,
           page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class _PrintedPdf:
    """What Chromium printed, read back from its PDF: the text drawn (in drawing order, each character
    with the font it was drawn in) and the fill colours painted.

    Enough of PDF for Skia's output: objects, Flate streams, each font's ToUnicode map, the pages'
    content streams (`Tf`, `Tj`, `TJ`, `rg`) and the `ActualText` spans Skia writes where a glyph
    maps to a different code point (a CJK radical for its unified ideograph)."""

    def __init__(self, data: bytes) -> None:
        self.objects = {int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj\s*(.*?)endobj", data, re.S)}
        self.chars: list[tuple[str, str]] = []  # (character, font name)
        self.fills: set[tuple[int, int, int]] = set()
        for body in self.objects.values():
            if body.startswith(b"<</Type /Page\n"):
                resources = body.partition(b"/Font <<")[2].partition(b">>")[0]  # empty on a page without text
                fonts = dict(re.findall(rb"/(F\d+) (\d+) 0 R", resources))
                self._content(self._stream(int(re.search(rb"/Contents (\d+) 0 R", body).group(1))),
                              {name.decode(): self._font(int(ref)) for name, ref in fonts.items()})

    @property
    def text(self) -> str:
        return "".join(c for c, _ in self.chars)

    def _stream(self, ref: int) -> bytes:
        head, _, raw = self.objects[ref].partition(b"stream")
        raw = raw.lstrip(b"\r\n")
        return zlib.decompressobj().decompress(raw) if b"/FlateDecode" in head else raw

    def _font(self, ref: int) -> tuple[str, int, dict[int, str]]:
        """(font name, bytes per character code, code -> text) of one font object."""
        body = self.objects[ref]
        descriptor = re.search(rb"/FontDescriptor (\d+) 0 R", body)
        name = re.search(rb"/FontName /(\S+)", self.objects[int(descriptor.group(1))]) if descriptor else \
            re.search(rb"/BaseFont /(\S+)", body)  # a Type0 font names itself
        cmap: dict[int, str] = {}
        unicode = re.search(rb"/ToUnicode (\d+) 0 R", body)
        text = self._stream(int(unicode.group(1))).decode("latin-1") if unicode else ""
        space = re.search(r"begincodespacerange\s*<([0-9A-Fa-f]+)>", text)
        width = len(space.group(1)) // 2 if space else 1
        for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
            for code, uni in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                cmap[int(code, 16)] = bytes.fromhex(uni).decode("utf-16-be")
        for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
            for lo, hi, uni in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                    cmap[code] = chr(int(uni, 16) + i)
        return (name.group(1).decode() if name else "?"), width, cmap

    def _content(self, stream: bytes, fonts: dict[str, tuple[str, int, dict[int, str]]]) -> None:
        font: tuple[str, int, dict[int, str]] = ("?", 1, {})
        actual: str | None = None
        ops = re.finditer(rb"/(F\d+) [\d.]+ Tf|<<\s*/ActualText <([0-9A-Fa-f]+)>\s*>>\s*BDC|(EMC)"
                          rb"|\[((?:[^\]])*)\]\s*TJ|<([0-9A-Fa-f]*)>\s*Tj|([\d.]+) ([\d.]+) ([\d.]+) rg", stream)
        for m in ops:
            if m.group(1):
                font = fonts[m.group(1).decode()]
            elif m.group(2):
                actual = bytes.fromhex(m.group(2).decode())[2:].decode("utf-16-be")  # after the BOM
                self.chars += [(c, font[0]) for c in actual]
            elif m.group(3):
                actual = None
            elif m.group(4) is not None or m.group(5) is not None:
                if actual is not None:  # the span already gave the text these glyphs draw
                    continue
                hexes = re.findall(rb"<([0-9A-Fa-f]*)>", m.group(4)) if m.group(4) is not None else [m.group(5)]
                name, width, cmap = font
                for h in hexes:
                    codes = bytes.fromhex(h.decode())
                    self.chars += [(cmap.get(int.from_bytes(codes[i:i + width]), "\ufffd"), name)
                                   for i in range(0, len(codes), width)]
            else:
                self.fills.add(tuple(round(float(m.group(i)) * 255) for i in (6, 7, 8)))


def test_chromium_prints_the_charts_and_the_chinese_text(audit, tmp_path):
    """What a person sees in headless Chromium (no network needed): the page printed to PDF has the Chinese
    headings and the hostile host strings as text, drawn in the CJK font (not as empty boxes), and its
    charts painted in the verdict colours. A screenshot is kept for people to look at."""
    page = audit["zh"] / "archive.html"
    pdf = tmp_path / "archive.pdf"
    proc = _render(page, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.exists(), f"no PDF (exit {proc.returncode}): {proc.stderr[-2000:]}"
    printed = _PrintedPdf(pdf.read_bytes())
    text = printed.text
    for label in ("audit.title", "html.overview", "html.verdict_chart", "html.cpu_chart", "html.dependencies",
                  "html.zombies", "html.integration", "html.assets"):
        assert i18n.t(label, "zh") in text, label
    assert "fgw-hgjj" in text and "市发展和改革委员会" in text
    assert SCRIPT_USER in text and FORMULA in text  # hostile strings are shown, as text
    cjk = {font for c, font in printed.chars if "\u4e00" <= c <= "\u9fff"}
    assert cjk and all("CJK" in font for font in cjk), cjk
    for colour in VERDICT_COLORS.values():
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert any(all(abs(a - b) <= 1 for a, b in zip(rgb, fill, strict=True)) for fill in printed.fills), colour

    png = tmp_path / "archive.png"
    proc = _render(page, tmp_path, f"--screenshot={png}", "--window-size=1400,2000")
    assert png.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    keep = REPO / "reports" / "test-screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, keep / "archive.png")


# --- classified systems: declared fields only -------------------------------------------------------


def test_a_classified_system_is_listed_declared_only_and_never_judged(audit, demo):
    assert "szfb-jmwj" not in audit["verdicts"] and "gaj-qbyp" not in audit["verdicts"]
    assert audit["judge"].history.hosts["szfb-jmwj-app1"].records == []  # stored, never read
    assert "szfb-jmwj" not in audit["judge"].history.dependents.get("dsj-gxjh", {})
    for lang, out in (("zh", audit["zh"]), ("en", audit["en"])):
        with (out / "archive.csv").open(encoding="utf-8-sig", newline="") as f:
            rows = {r[ARCHIVE_COLUMNS.index("id")]: dict(zip(ARCHIVE_COLUMNS, r, strict=True)) for r in csv.reader(f)}
        row = rows["szfb-jmwj"]
        assert row["name"] == "机要文件流转系统" and row["approval_department"] == "市国家保密局"  # declared fields
        assert row["classification"] == i18n.t("classification.classified", lang)
        assert row["verdict"] == row["location"] == i18n.t("archive.classified", lang)
        assert row["resources"] == i18n.t("archive.classified_not_collected", lang)
        assert row["protection_level"] == i18n.t("scheme.fenbao", lang) and row["filing_number"] == ""
        assert row["requests_per_day"] == row["measured_users"] == row["evidence"] == row["criteria_met"] == ""
        assert "szfb-jmwj-app1" in row["hosts"] and "Kylin V10 SP1" in row["os"]
        for path in out.iterdir():
            text = path.read_bytes().decode("utf-8", "replace") if path.suffix != ".xlsx" else \
                " ".join(str(c.value) for c in _all_cells(path))
            assert SECRET not in text, path
    data = json.loads((audit["zh"] / "archive.json").read_text(encoding="utf-8"))
    jmwj = next(s for s in data["systems"] if s["id"] == "szfb-jmwj")
    assert jmwj["verdict"] is None and all(not h["collected"] and h["cpus"] is None for h in jmwj["hosts"])
    assert jmwj["measured"]["requests_per_day"] is None and jmwj["inventory"]["protection"]["scheme"] == "fenbao"
    html = (audit["zh"] / "archive.html").read_text(encoding="utf-8")
    assert 'class="badge v-classified"' in html


# --- what the consolidation frees, as the store records it ----------------------------------------


def test_freed_assets_and_an_auditors_rules(demo, tmp_path):
    """A migrated system's sources are pending through the grace period and freed by their decommission
    (`ASSET_FREED`, which `migrate.decommission` records); the disposal rules come from the auditor's
    copy of audit/assets.yaml."""
    store = Store(f"sqlite:///{tmp_path}/h.sqlite")
    for n, at in enumerate(RUNS):
        store.record(AUDIT_COLLECT, city_run(demo, at, n), started=at, seeded=True)
    store.record(MIGRATE_LOCATION, [Result("szfb-oa", True, {
        "system": "szfb-oa", "hosts": {"szfb-oa-app1": "zwy-01", "szfb-oa-db1": "zwy-02"}, "what": "migrated"})])
    store.record(ASSET_FREED, [Result("szfb-oa-app1", True, {"system": "szfb-oa", "cause": "migrated_source",
                                                             "signed_off_by": "王工"}),
                               Result("szfb-jmwj-app1", True, {"system": "szfb-jmwj", "cause": "zombie"})])
    rules = load_asset_rules()
    rules["disposal"]["service_life_years"]["network"] = 20  # this city keeps routers for 20 years
    rules["machine_rooms"]["max_area_m2"] = 30
    result = replace(service.judge(demo, store, now=NOW), asset_rules=rules)
    assert set(result.freed) == {"szfb-oa-app1", "szfb-jmwj-app1"}
    write_reports(result, tmp_path / "out", ["json"])
    data = json.loads((tmp_path / "out" / "archive.json").read_text(encoding="utf-8"))
    assets = {a["name"]: a for a in data["assets"]}
    assert assets["szfb-oa-app1"]["cause"] == "migrated_source" and assets["szfb-oa-app1"]["stage"] == "freed"
    assert assets["szfb-oa-db1"]["stage"] == "pending"  # not decommissioned yet
    assert assets["szfb-oa-app1"]["disposal"] == TRANSFER and assets["szfb-oa-app1"]["room"] == ""
    assert "szfb-dcdb-app1" not in assets  # still running in its department: nothing freed
    assert "szfb-jmwj-app1" not in assets  # classified: the confidential bureau disposes of it, not this list
    router = assets["华为 AR2220 互联网专线接入路由器"]
    assert router["disposal"] == TRANSFER and "20" in router["reasons"][0]
    assert not any(r["findings"] for r in data["machine_rooms"])  # zjj's 26 m² is within the auditor's 30
