#!/usr/bin/python3
"""Ansible module: health URLs answer 200, TCP ports accept connections, files hold a text, all checked at once.

One module run instead of a `uri` per URL, a `wait_for` per port and a `slurp` plus `assert` per file:
inside the cutover's downtime each task costs a module start. Each check retries until it passes or
`timeout` seconds have gone; the checks run concurrently. Read-only, so it runs the same in check mode.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jiyue_checks import port_ok, retry, url_ok

DOCUMENTATION = r"""
module: jiyue_probe
short_description: health URLs answer 200 and TCP ports accept connections (concurrently, with retries)
options:
  urls: {type: list, elements: str, default: []}
  ports: {type: list, elements: dict, default: [], description: "[{address, port}]"}
  files: {type: list, elements: dict, default: [], description: "[{path, contains}]: the file holds the text"}
  timeout: {type: float, default: 10, description: seconds each check may take, retries included}
  delay: {type: float, default: 0.2, description: seconds between tries}
"""


def file_holds(path: str, text: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return None if text in f.read() else f"does not contain {text!r}"
    except OSError as exc:
        return str(exc)


def main() -> None:
    module = AnsibleModule(argument_spec={"urls": {"type": "list", "elements": "str", "default": []},
                                          "ports": {"type": "list", "elements": "dict", "default": []},
                                          "files": {"type": "list", "elements": "dict", "default": []},
                                          "timeout": {"type": "float", "default": 10},
                                          "delay": {"type": "float", "default": 0.2}},
                           supports_check_mode=True)
    p = module.params
    checks = {f"url {u}": (lambda t, u=u: url_ok(u, t)) for u in p["urls"]}
    for item in p["ports"]:
        address, port = str(item["address"]), int(item["port"])
        checks[f"port {address}:{port}"] = lambda t, a=address, n=port: port_ok(a, n, t)
    for item in p["files"]:
        path, text = str(item["path"]), str(item["contains"])
        checks[f"file {path}"] = lambda t, f=path, x=text: file_holds(f, x)
    with ThreadPoolExecutor(max(1, len(checks))) as pool:
        futures = {name: pool.submit(retry, check, p["timeout"], p["delay"]) for name, check in checks.items()}
        problems = {name: f.result() for name, f in futures.items()}
    failed = {name: why for name, why in problems.items() if why is not None}
    if failed:
        module.fail_json(msg="; ".join(f"{name}: {why}" for name, why in failed.items()), failed_checks=failed,
                         passed=sorted(set(problems) - set(failed)))
    module.exit_json(changed=False, passed=sorted(problems))


if __name__ == "__main__":
    main()
