"""network/scope.yaml, read once: what the scoped diff treats as jiyue's (keys, owned sections, VPN
bindings, routed ports, ACLs, the return routes' tag). Its readers are network/diff.py, network/acl.py and
network/render.py (the tag it prints on return routes)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCOPE_FILE = Path(__file__).resolve().with_name("scope.yaml")


@cache
def scope_data() -> dict[str, Any]:
    return yaml.safe_load(SCOPE_FILE.read_text(encoding="utf-8"))
