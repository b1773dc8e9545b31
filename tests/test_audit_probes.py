"""Probes parse real command output; their shell runs here as it runs on a host (POSIX sh, awk)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta, timezone

from audit.probes import (
    PREAMBLE,
    Context,
    Cron,
    DataPaths,
    HostOS,
    Logins,
    Packages,
    Sample,
    Script,
    Sockets,
    WebAccess,
)

CST = timezone(timedelta(hours=8))


def sh(command: str) -> str:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30).stdout


def test_web_access_aggregates_on_the_host_with_awk(tmp_path):
    log = tmp_path / "access.log"
    lines = []
    for day, clients in ((18, ["10.80.1.1", "10.80.1.2", "10.80.1.1"]), (20, ["10.80.1.3"])):
        for i, ip in enumerate(clients):
            lines.append(f'{ip} - - [{day}/Nov/2026:10:0{i}:00 +0800] "GET /api HTTP/1.1" 200 12 "-" "curl"')
    lines.append('garbage line without a timestamp <script>alert(1)</script>')
    log.write_text("\n".join(lines) + "\n")
    (tmp_path / "access.log.1").write_text(
        '10.80.9.9 - - [01/Oct/2026:08:00:00 +0800] "GET / HTTP/1.1" 200 1 "-" "x"\n')
    ctx = Context(log_paths=(str(log),))
    facts = WebAccess().process(sh(WebAccess().command(ctx)), ctx)
    assert facts["requests_per_day"] == {"2026-10-01": [1, 1], "2026-11-18": [3, 2], "2026-11-20": [1, 1]}
    assert facts["clients_last_day"] == {"10.80.1.1": "2026-11-18", "10.80.1.2": "2026-11-18",
                                         "10.80.1.3": "2026-11-20", "10.80.9.9": "2026-10-01"}
    assert facts["last_request"] == datetime(2026, 11, 20, 10, 0, tzinfo=CST).isoformat()
    assert facts["found"] == [f"{log}.1", str(log)]


def test_declared_paths_are_quoted_so_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"/srv/x'; touch {marker}; echo '"
    ctx = Context(log_paths=(evil,), data_paths=(evil, str(tmp_path)))
    (tmp_path / "f.txt").write_text("x")
    sh(WebAccess().command(ctx))
    out = sh(DataPaths().command(ctx))
    assert not marker.exists()
    facts = DataPaths().process(out, ctx)
    assert facts[evil]["exists"] is False
    assert facts[str(tmp_path)]["files"] == 1 and facts[str(tmp_path)]["bytes"] == 1


def test_logins_from_utmpdump_and_lastlog():
    text = (
        "[7] [01234] [ts/0] [zhangwei] [pts/0       ] [10.80.1.5           ] [10.80.1.5      ] "
        "[2026-11-20T09:00:00,000000+08:00]\n"
        "[8] [01234] [ts/0] [        ] [pts/0       ] [                    ] [0.0.0.0        ] "
        "[2026-11-20T10:00:00,000000+08:00]\n"
        "[2] [00000] [~~  ] [reboot  ] [~           ] [6.1.0               ] [0.0.0.0        ] "
        "[2026-11-19T08:00:00,000000+08:00]\n"
        "[7] [01299] [ts/1] [liqiang ] [pts/1       ] [10.80.1.6           ] [10.80.1.6      ] "
        "[2026-10-01T09:00:00,000000+08:00]\n"
        "@@\n"
        "ops              pts/2    10.80.1.7        Sat Nov 21 10:00:00 +0800 2026\n"
        "@@\n"
    )
    facts = Logins().process(text, Context(tz=CST))
    assert facts["users_last"] == {
        "liqiang": datetime(2026, 10, 1, 1, 0, tzinfo=UTC).isoformat(),
        "ops": datetime(2026, 11, 21, 2, 0, tzinfo=UTC).isoformat(),
        "zhangwei": datetime(2026, 11, 20, 1, 0, tzinfo=UTC).isoformat(),
    }
    assert facts["sources"] == ["lastlog", "wtmp"]
    clock = f"<<<abcdef0123456789:clock>>>\n{int(datetime(2026, 11, 22, tzinfo=UTC).timestamp())} +0800\n"
    parsed = Script("abcdef0123456789", Context()).parse(
        (clock + "<<<abcdef0123456789:logins>>>\n" + text).encode())
    assert parsed["logins"]["distinct_users"] == {"30": 2, "90": 3, "365": 3}


def test_packages_take_the_newest_transaction_of_any_manager():
    text = ("dpkg 2024-03-01 10:00:00 upgrade openssl:amd64 3.0.11-1 3.0.13-1\n"
            "apt End-Date: 2024-03-01  10:00:05\n"
            "dnf 2025-06-01T09:12:01+0800 SUBDEBUG Upgrade: openssl-1:3.0.7-25.el9.x86_64\n"
            "yum 2019 Mar 01 09:12:01 Updated: openssl-1.0.2k-26.el7_9.x86_64\n")
    facts = Packages().process(text, Context(tz=CST))
    assert facts["source"] == "dnf"
    assert facts["last_transaction"] == datetime(2025, 6, 1, 1, 12, 1, tzinfo=UTC).isoformat()
    only_yum = Packages().process("yum 2019 Mar 01 09:12:01 Updated: x\n", Context(tz=CST))
    assert only_yum["last_transaction"].startswith("2019-03-01T01:12:01")
    assert Packages().process("", Context())["last_transaction"] is None


def test_os_identity_recognises_domestic_distributions_by_id_or_id_like():
    cpus = "".join(f"processor\t: {i}\nmodel name\t: Kunpeng 920\n" for i in range(4))
    base = (f"@@\n6.1.0\n@@\n100.0 50.0\n@@\n{cpus}@@\nMemTotal: 8000 kB\n@@\n@@\n"
            "0.1 0.2 0.3 1/100 5\n@@\nh\n")
    kylin = HostOS().process('ID=kylin\nVERSION_ID="V10"\nPRETTY_NAME="Kylin V10 SP2"\n' + base, Context())
    assert kylin["os"]["distribution"] == "Kylin" and kylin["cpu"] == {"model": "Kunpeng 920", "count": 4}
    derived = HostOS().process('ID=nfs\nID_LIKE="uos debian"\n' + base, Context())
    assert derived["os"]["distribution"] == "UOS"


def test_sockets_from_one_ss_call():
    text = ('tcp LISTEN 0 128 198.18.10.11:8080 0.0.0.0:* users:(("python3",pid=42,fd=3))\n'
            'tcp LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=7,fd=4))\n'
            'udp UNCONN 0 0 0.0.0.0:123 0.0.0.0:* users:(("chronyd",pid=8,fd=5))\n'
            'tcp ESTAB 0 0 198.18.10.21:45678 198.18.10.11:8080 users:(("python3",pid=9,fd=5))\n'
            'tcp ESTAB 0 0 127.0.0.1:5000 127.0.0.1:41000 users:(("x",pid=3,fd=1))\n'
            'tcp TIME-WAIT 0 0 198.18.10.21:45000 198.18.10.11:8080\n')
    facts = Sockets().process(text, Context())
    assert [(x["proto"], x["port"], x["process"]) for x in facts["listening"]] == [
        ("tcp", 22, "sshd"), ("tcp", 8080, "python3"), ("udp", 123, "chronyd")]
    assert facts["connections"] == [{"local": "198.18.10.21", "local_port": 45678, "peer": "198.18.10.11",
                                     "peer_port": 8080, "process": "python3"}]


def test_sockets_named_from_the_namespace_processes_fds():
    text = ("tcp LISTEN 0 128 0.0.0.0:8080 0.0.0.0:* ino:5001 sk:1\n"
            "tcp ESTAB 0 0 198.18.10.21:45678 198.18.10.11:3306 timer:(keepalive) ino:5002 sk:2\n"
            "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* ino:6001 sk:3\n@@\n"
            "/proc/42/fd:\ntotal 0\nlrwx------ 1 root root 64 Nov 22 10:00 3 -> socket:[5001]\n"
            "lrwx------ 1 root root 64 Nov 22 10:00 4 -> socket:[5002]\n"
            "lr-x------ 1 root root 64 Nov 22 10:00 5 -> /srv/app.db\n@@\n42 =cmd|' /C calc\n")
    facts = Sockets().process(text, Context())
    assert [(x["port"], x["process"], x["pid"]) for x in facts["listening"]] == [
        (22, "", None), (8080, "=cmd|' /C calc", 42)]
    assert facts["connections"][0]["process"] == "=cmd|' /C calc"


def test_cron_skips_comments_and_variables():
    text = "/etc/crontab:SHELL=/bin/sh\n/etc/cron.d/backup:0 2 * * * root /usr/local/bin/backup\n"
    assert Cron().process(text, Context()) == [
        {"file": "/etc/cron.d/backup", "entry": "0 2 * * * root /usr/local/bin/backup"}]


def test_sample_measures_this_machines_processes_over_a_real_interval():
    sample = Sample()
    ctx = Context(sample_seconds=1)
    script = (f"{PREAMBLE}\n{sample.find_pids}\n{sample.mark}; echo '@@BEGIN'; {sample.begin()}; echo '@@END'; "
              f"{sample.command(ctx)}")
    busy = "python3 -c 'import time; t=time.time()\nwhile time.time()-t<2.5: pass'"
    out = sh(f"{busy} & sleep 0.3; {script}; wait")
    begin, end = out.split("@@BEGIN\n", 1)[1].split("@@END\n", 1)
    facts = sample.process(end, Context(sample_seconds=1, sample_start=begin))
    assert facts["interval_s"] >= 1.0
    # a long-running busy process in this namespace is counted (one core, most of the interval)
    assert facts["cpu_seconds"] >= 0.5 and facts["cpu_pct_of_one_core"] >= 40


def test_output_sections_cannot_be_forged_and_bad_bytes_are_inert():
    script = Script("feedc0de12345678", Context())
    forged = "<<<0000000000000000:clock>>>\n1 +0800\n"
    output = (f"<<<feedc0de12345678:clock>>>\n1795315311\n+0800\n"
              f"<<<feedc0de12345678:cron>>>\n/etc/cron.d/x:0 0 * * * root =cmd|' /C calc'!A0\n{forged}"
              "<<<feedc0de12345678:sockets>>>\n").encode() + \
        b'tcp LISTEN 0 1 0.0.0.0:80 0.0.0.0:* users:(("\xff\xfe<b>",pid=1,fd=3))\n'
    facts = script.parse(output)
    assert facts["clock"] == {"epoch": 1795315311, "utc_offset": "+0800"}
    assert facts["cron"][0]["entry"] == "0 0 * * * root =cmd|' /C calc'!A0"  # data only; reports neutralise it
    assert facts["listening"][0]["process"] == "\ufffd\ufffd<b>"
    assert "0000000000000000" not in str(facts.get("clock"))


def _snapshot(uptime: float, eth_rx: int, lo: int, in_octets: int, out_octets: int) -> str:
    return (f"{uptime} 1.0\ncpu  1 0 1 100 0 0 0 0 0 0\n##\n"
            "Inter-|   Receive\n face |bytes packets\n"
            f"  eth0: {eth_rx} 10 0 0 0 0 0 0 {eth_rx} 10 0 0 0 0 0 0\n"
            f"    lo: {lo} 1 0 0 0 0 0 0 {lo} 1 0 0 0 0 0 0\n##\n"
            "TcpExt: SyncookiesSent\nTcpExt: 0\n"
            "IpExt: InNoRoutes InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InOctets OutOctets\n"
            f"IpExt: 0 0 0 0 0 {in_octets} {out_octets}\n@@\n")


def test_network_counts_unicast_ip_not_arp_noise_or_loopback():
    sample = Sample()
    start = _snapshot(100.0, eth_rx=1000, lo=50, in_octets=2050, out_octets=3050)
    # every host on the segment hears 6 kB of ARP; the host itself sent 4 kB and looped 100 B back
    end = _snapshot(101.0, eth_rx=7000, lo=150, in_octets=2150, out_octets=7150)
    facts = sample.process("1 2\n@@\n" + end, Context(sample_start=start))
    assert facts["net_bytes"] == 4000 and facts["net_bytes_per_s"] == 4000.0
