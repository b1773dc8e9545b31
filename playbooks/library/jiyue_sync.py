#!/usr/bin/python3
"""Ansible module: copy directories from this host to another with rsync over SSH, directly host to host.

Runs one rsync for all the directories on the host it is called on (the sending side). The SSH
connection to the receiving host authenticates with the operator's key through the forwarded agent
(the play connects with ForwardAgent=yes); the receiving host's key is verified against the one
known_hosts line given, written to a private temporary file that is removed again whatever happens.

What is copied: see DEFAULT_OPTIONS. File names are bytes to rsync (no --iconv); rsync's output is read as
bytes and any name in an error shown escaped.

With `files` (names under `dirs`, escaped as jiyue_manifest gives them), only those files are sent, each one
whole again whatever its size and time say (--ignore-times): the repair of a target file whose bytes, holes
or hardlinks differ while rsync's quick check would call it up to date (see presync.yml).

With `jump` (the jump hosts (堡垒机) between the two hosts, in the order this host passes them: the engine's
migrations/copypath.py decides), the SSH connection goes through them as `ssh -J` would: a private OpenSSH config
(removed again with the known_hosts files) gives each hop its address, port, user and its own known_hosts line with
StrictHostKeyChecking yes, the inner hop reached through the outer (ProxyJump); OpenSSH hands the same config to
the ssh it starts per hop. Each hop authenticates with the forwarded agent too: no key is written on any host.

In check mode rsync runs with --dry-run: it connects and reports what it would transfer, changing
nothing on either side.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jiyue_tree import escape, unescape

DOCUMENTATION = r"""
module: jiyue_sync
short_description: rsync directories from this host to another over SSH (agent forwarding, verified host key)
options:
  dirs: {type: list, elements: str, required: true, description: absolute directories, copied to the same path}
  dest: {type: str, required: true, description: the receiving host's address}
  dest_dir: {type: str, default: /, description: "the directory the paths are copied below on the receiver (an archive:
             /srv/archive/<system>/<host> receives /srv/<system> as /srv/archive/<system>/<host>/srv/<system>)"}
  dest_port: {type: int, default: 22}
  dest_user: {type: str, default: root}
  known_hosts: {type: str, required: true, description: the receiving host's known_hosts line(s)}
  options: {type: list, elements: str, description: rsync options (default DEFAULT_OPTIONS)}
  files: {type: list, elements: str, default: [], description: "only these files (absolute, escaped, under dirs),
          each sent whole again (--ignore-times); nothing is deleted"}
  checksum: {type: bool, default: false, description: compare by checksum instead of size and time}
  live: {type: bool, default: false, description: the sender is still in use (pre-sync), so a file that vanished
         during the copy (rsync exit 24, e.g. a database journal) is expected; the final sync never sets it}
  jump: {type: list, elements: dict, default: [], description: "the jump hosts to pass, from this host on:
         [{name, address, port, user, known_hosts}] (empty: direct)"}
  report: {type: str, description: the name the migration engine reads this result by (returned as `report`), so that
           the journal's details never depend on a task's title}
"""

# What a server relies on, as it is (the engine passes the same list: migrations/engine.py RSYNC_OPTIONS):
#   -a  type, permission bits, owner, group, times, symlinks, devices and specials (FIFOs, sockets);
#   -H  hardlinks stay one inode (a linked pair does not become two files and double the space);
#   -S  holes stay holes (a 1 GiB file with 4 KiB allocated arrives with 4 KiB, not 1 GiB). Not combined with
#       --inplace or --preallocate: rsync before 3.1.3 refuses -S with --inplace, and later versions (Debian 12
#       has 3.2.7) punch the holes after allocating; the default (a temporary file renamed over the old) also
#       keeps a reader from ever seeing half a file;
#   -X  extended attributes (user.*, security.*, trusted.* as root), -A POSIX ACLs (implies -p);
#   --numeric-ids  owners by number: the target's user names may map to other numbers;
#   --modify-window=-1  nanosecond times: a file rewritten in the same second with the same size must not pass
#       rsync's quick check, or an acknowledged write could stay behind.
DEFAULT_OPTIONS = ["-a", "-H", "-S", "-X", "-A", "--delete", "--numeric-ids", "--mkpath", "--modify-window=-1"]
# All directories in one rsync (one SSH connection), each to the same absolute path on the receiver: the
# parents (/srv, /etc/app) are not part of the copy, so they are created if missing and never changed.
RELATIVE = ["--relative", "--no-implied-dirs"]
VANISHED = 24
STATS = {
    "files_transferred": r"Number of regular files transferred: ([\d,]+)",
    "files_total": r"Number of files: ([\d,]+)",
    "total_size": r"Total file size: ([\d,]+)",
    "literal_bytes": r"Literal data: ([\d,]+)",
    "bytes_sent": r"Total bytes sent: ([\d,]+)",
    "deleted": r"Number of deleted files: ([\d,]+)",
}


def stats(text: str) -> dict[str, int]:
    out = {}
    for key, pattern in STATS.items():
        m = re.search(pattern, text)
        out[key] = int(m.group(1).replace(",", "")) if m else 0
    return out


HOP = "jiyue-hop-"


def hop_config(folder: str, hops: list[dict]) -> str:
    """An OpenSSH config of the jump hosts `hops` (this host's nearest first) in `folder`: one Host block each,
    its own known_hosts file, StrictHostKeyChecking yes, hop i+1 reached through hop i."""
    lines = []
    for i, hop in enumerate(hops):
        known = os.path.join(folder, f"known_hosts_hop{i}")
        with open(known, "w") as f:
            f.write(str(hop["known_hosts"]).strip() + "\n")
        lines += [f"Host {HOP}{i}", f"  HostName {hop['address']}", f"  Port {int(hop.get('port') or 22)}",
                  f"  User {hop.get('user') or 'root'}", f"  UserKnownHostsFile {known}", "  StrictHostKeyChecking yes",
                  "  BatchMode yes", "  ForwardAgent no", "  ConnectTimeout 10"]
        if i:
            lines.append(f"  ProxyJump {HOP}{i - 1}")
    config = os.path.join(folder, "ssh_config")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    return config


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dirs": {"type": "list", "elements": "str", "required": True},
            "dest": {"type": "str", "required": True},
            "dest_dir": {"type": "str", "default": "/"},
            "dest_port": {"type": "int", "default": 22},
            "dest_user": {"type": "str", "default": "root"},
            "known_hosts": {"type": "str", "required": True, "no_log": False},
            "options": {"type": "list", "elements": "str", "default": DEFAULT_OPTIONS},
            "checksum": {"type": "bool", "default": False},
            "files": {"type": "list", "elements": "str", "default": []},
            "live": {"type": "bool", "default": False},
            "jump": {"type": "list", "elements": "dict", "default": []},
            "report": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["dest_dir"].startswith("/"):
        module.fail_json(msg=f"dest_dir {p['dest_dir']} is not absolute")
    for d in p["dirs"]:
        if not d.startswith("/") or not d.strip("/") or not os.path.isdir(d):
            module.fail_json(msg=f"{d} is not an absolute directory below / on the sending host")
    if not p["dirs"]:
        module.exit_json(changed=False, seconds=0.0, dirs=[], report=p["report"], **dict.fromkeys(STATS, 0))
    for hop in p["jump"]:  # they go into an OpenSSH config: one word each
        for key in ("address", "user", "port"):
            if not re.fullmatch(r"[\w.:%@-]+", str(hop.get(key) or "x")):
                module.fail_json(msg=f"jump host {hop.get('name')}: {key} {hop.get(key)!r} is not a plain word")
    tops = [d.rstrip("/") + "/" for d in p["dirs"]]
    outside = [f for f in p["files"] if not any(f.startswith(t) for t in tops)]
    if outside:
        module.fail_json(msg=f"{outside[0]} is not under the directories to copy ({', '.join(p['dirs'])})")
    private = tempfile.mkdtemp(prefix="jiyue-sync-")  # 0700: the known_hosts lines and the hops' config
    known_hosts = os.path.join(private, "known_hosts")
    listed = None
    began = time.monotonic()
    try:
        with open(known_hosts, "w") as f:
            f.write(p["known_hosts"].strip() + "\n")
        ssh = ["ssh", "-p", str(p["dest_port"]), "-o", "BatchMode=yes", "-o", "ForwardAgent=no",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "ConnectTimeout=10"]
        if p["jump"]:
            config = hop_config(private, p["jump"])
            ssh[1:1] = ["-F", config, "-o", f"ProxyJump={HOP}{len(p['jump']) - 1}"]
        ssh = shlex.join(ssh)
        dest = p["dest"] if ":" not in p["dest"] else f"[{p['dest']}]"
        receiver = f"{p['dest_user']}@{dest}:{p['dest_dir'].rstrip('/')}/"
        if p["files"]:  # the repair: these files only, whole again, nothing deleted
            lfd, listed = tempfile.mkstemp(prefix="jiyue-files-")
            with os.fdopen(lfd, "wb") as f:
                f.write(b"".join(unescape(name).lstrip(b"/") + b"\0" for name in p["files"]))
            options = [o for o in p["options"] if not o.startswith("--delete")]
            argv = ["rsync", *options, *RELATIVE, "--ignore-times", f"--files-from={listed}", "--from0", "--stats",
                    "-e", ssh, "/", receiver]
        else:
            argv = ["rsync", *p["options"], *RELATIVE, "--stats", "-e", ssh, *tops, receiver]
        if p["checksum"]:
            argv.insert(1, "--checksum")
        if module.check_mode:
            argv.insert(1, "--dry-run")
        proc = subprocess.run(argv, capture_output=True, env={**os.environ, "LC_ALL": "C"})
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if listed is not None:
            os.unlink(listed)
    stdout, stderr = proc.stdout.decode("utf-8", "surrogateescape"), proc.stderr.decode("utf-8", "surrogateescape")
    if proc.returncode != 0 and not (p["live"] and proc.returncode == VANISHED):
        said = "\n".join(escape(line) for line in stderr.strip().splitlines()[-20:])
        module.fail_json(msg=f"rsync failed (exit {proc.returncode}): {said[-2000:]}",
                         rc=proc.returncode, cmd=escape(shlex.join(argv)))
    totals = stats(stdout)
    changed = bool(totals["files_transferred"] or totals["deleted"])
    path = "direct" if not p["jump"] else "via " + ",".join(str(h.get("name") or h["address"]) for h in p["jump"])
    module.exit_json(changed=changed, seconds=round(time.monotonic() - began, 3), dirs=p["dirs"], report=p["report"],
                     files=p["files"], path=path, **totals)


if __name__ == "__main__":
    main()
