#!/usr/bin/python3
"""Ansible module: copy directories from this host to another with rsync over SSH, directly host to host.

Runs one rsync for all the directories on the host it is called on (the sending side). The SSH
connection to the receiving host authenticates with the operator's key through the forwarded agent
(the play connects with ForwardAgent=yes); the receiving host's key is verified against the one
known_hosts line given, written to a private temporary file that is removed again whatever happens.

In check mode rsync runs with --dry-run: it connects and reports what it would transfer, changing
nothing on either side.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

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
  options: {type: list, elements: str, description: rsync options (default -a --delete --numeric-ids)}
  checksum: {type: bool, default: false, description: compare by checksum instead of size and time}
  live: {type: bool, default: false, description: the sender is still in use (pre-sync), so a file that vanished
         during the copy (rsync exit 24, e.g. a database journal) is expected; the final sync never sets it}
  report: {type: str, description: the name the migration engine reads this result by (returned as `report`), so that
           the journal's details never depend on a task's title}
"""

# Nanosecond timestamps (--modify-window=-1): a file rewritten in the same second with the same size
# must not pass rsync's quick check, or an acknowledged write could stay behind.
DEFAULT_OPTIONS = ["-a", "--delete", "--numeric-ids", "--mkpath", "--modify-window=-1"]
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
            "live": {"type": "bool", "default": False},
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
    fd, known_hosts = tempfile.mkstemp(prefix="jiyue-known-hosts-")
    began = time.monotonic()
    try:
        with os.fdopen(fd, "w") as f:
            f.write(p["known_hosts"].strip() + "\n")
        ssh = shlex.join(["ssh", "-p", str(p["dest_port"]), "-o", "BatchMode=yes", "-o", "ForwardAgent=no",
                          "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
                          "-o", "ConnectTimeout=10"])
        argv = ["rsync", *p["options"], *RELATIVE, "--stats", "-e", ssh]
        if p["checksum"]:
            argv.append("--checksum")
        if module.check_mode:
            argv.append("--dry-run")
        dest = p["dest"] if ":" not in p["dest"] else f"[{p['dest']}]"
        argv += [d.rstrip("/") + "/" for d in p["dirs"]] + [f"{p['dest_user']}@{dest}:{p['dest_dir'].rstrip('/')}/"]
        proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    finally:
        os.unlink(known_hosts)
    if proc.returncode != 0 and not (p["live"] and proc.returncode == VANISHED):
        module.fail_json(msg=f"rsync failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}",
                         rc=proc.returncode, cmd=shlex.join(argv))
    totals = stats(proc.stdout)
    changed = bool(totals["files_transferred"] or totals["deleted"])
    module.exit_json(changed=changed, seconds=round(time.monotonic() - began, 3), dirs=p["dirs"], report=p["report"],
                     **totals)


if __name__ == "__main__":
    main()
