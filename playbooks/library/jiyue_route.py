#!/usr/bin/python3
"""Ansible module: write a small config file (a gateway route) if it differs, then reload, in one round trip.

The copy module plus a reload task take three SSH round trips and two module runs inside the cutover's
downtime; this takes one. With `check_urls`, the host first checks that the new backend answers (from
the gateway: the very path the proxied requests will take) and changes nothing if it does not.
The file is replaced atomically (temporary file, fsync, rename); the reload
command runs only when the content changed. If the reload fails, the previous content is put back (the
running server keeps its old configuration, the file on disk matches it again) and the task fails.
With `state: absent` the file is removed instead (a system taken offline: the gateway no longer routes it),
with the same reload and the same way back.

Check mode changes nothing and reports whether the file would change; with --diff it shows the change.
"""

from __future__ import annotations

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jiyue_checks import retry, url_ok
from ansible.module_utils.jiyue_files import write_atomic

DOCUMENTATION = r"""
module: jiyue_route
short_description: write a config file atomically if it differs, then run a reload command
options:
  path: {type: str, required: true}
  content: {type: str, default: "", description: the file's content (state present)}
  state: {type: str, choices: [present, absent], default: present}
  mode: {type: str, default: "0644"}
  reload: {type: list, elements: str, default: [], description: command (argv) run after a change}
  check_urls: {type: list, elements: str, default: [], description: must answer 200 (with retries) before any change}
  check_timeout: {type: float, default: 5}
  report: {type: str, description: the name the migration engine reads this result by (returned as `report`)}
"""


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "str", "required": True},
                                          "content": {"type": "str", "default": ""},
                                          "state": {"type": "str", "choices": ["present", "absent"],
                                                    "default": "present"},
                                          "mode": {"type": "str", "default": "0644"},
                                          "reload": {"type": "list", "elements": "str", "default": []},
                                          "check_urls": {"type": "list", "elements": "str", "default": []},
                                          "check_timeout": {"type": "float", "default": 5},
                                          "report": {"type": "str"}},
                           supports_check_mode=True)
    p = module.params
    for url in p["check_urls"]:
        problem = retry(lambda t, u=url: url_ok(u, t), p["check_timeout"], 0.2)
        if problem is not None:
            module.fail_json(msg=f"{url} does not answer from here ({problem}): the route is left as it was")
    before = read(p["path"])
    after = None if p["state"] == "absent" else p["content"]
    changed = before != after
    result: dict = {"changed": changed, "path": p["path"], "reloaded": False, "report": p["report"],
                    "before": before}
    if module._diff:
        result["diff"] = {"before": before or "", "after": after or "", "before_header": p["path"],
                          "after_header": p["path"]}
    if not changed or module.check_mode:
        module.exit_json(**result)
    if after is None:
        os.unlink(p["path"])
    else:
        write_atomic(p["path"], after, int(p["mode"], 8))
    if p["reload"]:
        proc = subprocess.run(p["reload"], capture_output=True, text=True)
        if proc.returncode != 0:
            if before is None:
                os.unlink(p["path"])
            else:
                write_atomic(p["path"], before, int(p["mode"], 8))
            module.fail_json(msg=f"reload failed (exit {proc.returncode}), the previous {p['path']} is back: "
                                 f"{(proc.stderr or proc.stdout).strip()[-1000:]}", **result)
        result["reloaded"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
