#!/usr/bin/python3
"""Ansible module (run on the controller): compare each copied directory's manifest on its source and target.

The manifests are jiyue_manifest's, one per host; each check names a directory, the source host and the target
host (and, for a copy kept elsewhere, the directory it went to). Every entry is compared both ways: missing on
the target, extra on the target, or differing in type, mode, owner, size, contents, link target, device,
xattrs/ACLs, hardlinks or holes (module_utils/jiyue_tree.py). Never fails on a difference: it reports them, so
that the playbook decides (verify_data fails with `message`, the pre-sync re-copies `recopy`) and the engine
reads the differences by the report name even then.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.jiyue_tree import compare, describe, recopy, under

DOCUMENTATION = r"""
module: jiyue_compare
short_description: compare copied directories entry by entry (names, types, modes, owners, xattrs, links, contents)
options:
  manifests: {type: dict, required: true, description: "host -> its jiyue_manifest result's `manifest`"}
  checks: {type: list, elements: dict, required: true, description: "[{source, target, dir, target_dir}]: each
           copied directory, where it came from and where it went (target_dir defaults to dir)"}
  shown: {type: int, default: 5, description: how many differences the message names}
  report: {type: str, description: the name the migration engine reads this result by (returned as `report`)}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"manifests": {"type": "dict", "required": True},
                                          "checks": {"type": "list", "elements": "dict", "required": True},
                                          "shown": {"type": "int", "default": 5},
                                          "report": {"type": "str"}},
                           supports_check_mode=True)
    p = module.params
    differences, again, lines = [], {}, []
    for check in p["checks"]:
        source, target, top = check["source"], check["target"], check["dir"]
        src = under(p["manifests"].get(source) or [], top)
        dst = under(p["manifests"].get(target) or [], check.get("target_dir") or top)
        for d in compare(src, dst):
            differences.append({**d, "source": source, "target": target, "dir": top})
            lines.append(f"{target}: {describe(d, top)}")
            names = again.setdefault(source, [])
            names += [f"{top.rstrip('/')}/{n}" for n in recopy(d, src) if f"{top.rstrip('/')}/{n}" not in names]
    shown = lines[:p["shown"]]
    more = len(lines) - len(shown)
    message = "; ".join(shown) + (f"; and {more} more (the journal lists up to 100)" if more else "")
    module.exit_json(changed=False, ok=not differences, count=len(differences), differences=differences[:1000],
                     lines=lines[:100], message=message or "every entry is equal on both sides", recopy=again,
                     report=p["report"])


if __name__ == "__main__":
    main()
