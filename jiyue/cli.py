"""Command-line conventions shared by every task (see README, "Conventions").

Exit codes: 0 success, 1 the run found problems (failed checks, unreachable hosts), 2 bad input
or usage. Messages go to stderr and say what to do next.
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Exit
from rich.console import Console

from inventory import DEFAULT_INVENTORY, Inventory, InventoryError, load
from inventory.groups import PatternError, select_hosts, select_targets

PROBLEMS, BAD_INPUT = 1, 2  # and 0 for success
DEFAULT_OUT = Path("reports")

# Piped output (logs, CI) gets a wide console so tables do not fold into unreadable columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)

HELP = {
    "inventory": "inventory directory (default: the sample city, inventory/demo)",
    "limit": "Ansible-style pattern of hosts/devices/groups, e.g. 'dept_fgw:&zone_extranet:!os_redhat'",
    "out": f"directory for everything written (default: {DEFAULT_OUT}/)",
    "apply": "really change hosts or devices (without it: a dry run that changes nothing)",
    "store": "the store (history, journal, locks): an SQLAlchemy URL (default: $JIYUE_STORE or "
             "sqlite:///state/history.sqlite)",
    "include_classified": "also connect to hosts of classified (涉密) systems: only where the confidential bureau "
                          "asks for it (分级保护 is theirs; without it jiyue never connects to them)",
    "jump": "jump host (堡垒机) for this run: a name under the inventory's jump_hosts, or 'none' to connect "
            "directly; overrides the inventory's `jump:` settings for every host",
}


def jump_override(inv: Inventory, jump: str | None) -> str | None:
    """A run's `--jump NAME|none`, checked against the inventory (bad input otherwise); None: as declared."""
    from inventory.model import JUMP_NONE

    if jump is None or jump == JUMP_NONE or jump in inv.jump_hosts:
        return jump
    known = ", ".join(sorted(inv.jump_hosts)) or "none declared"
    raise fail(f"--jump {jump}: no such jump host in the inventory (jump_hosts: {known}); or --jump {JUMP_NONE}")


def fail(message: str, code: int = BAD_INPUT) -> Exit:
    """An Exit carrying a message for people; raise what this returns."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return Exit(code=code)


def load_inventory(path: str | None) -> Inventory:
    try:
        return load(Path(path) if path else DEFAULT_INVENTORY)
    except InventoryError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        n = len(exc.problems)
        raise fail(f"the inventory has {n} problem{'s' * (n != 1)}; fix them and run again") from None


def limit_hosts(inv: Inventory, limit: str | None, include_classified: bool = False) -> list[str]:
    """Servers selected by --limit (a pattern naming only devices selects no server) for a task that connects
    to them: hosts of classified (涉密) systems only with `include_classified` (the explicit
    `--include-classified`; tasks that never connect, like planning and the lab's own, pass it). Without it,
    naming one is bad input, and a broader pattern leaves them out with a note on stderr."""
    try:
        hosts, left_out = select_hosts(inv, limit, include_classified)
    except PatternError as exc:
        raise fail(str(exc)) from None
    if left_out:
        err.print(f"note: {len(left_out)} classified (涉密) host{'s' * (len(left_out) > 1)} left out "
                  f"({', '.join(left_out)}): 分级保护, handled by the confidential bureau; jiyue does not connect "
                  "to them (--include-classified overrides)", highlight=False, markup=False, soft_wrap=True)
    return hosts


def limit_devices(inv: Inventory, limit: str | None) -> list[str]:
    """Network devices selected by --limit."""
    return _limit(inv, limit, list(inv.devices))


def _limit(inv: Inventory, limit: str | None, names: list[str]) -> list[str]:
    try:
        return select_targets(inv, limit, names)
    except PatternError as exc:
        raise fail(str(exc)) from None


def out_dir(out: str | None) -> Path:
    path = Path(out) if out else DEFAULT_OUT
    path.mkdir(parents=True, exist_ok=True)
    return path
