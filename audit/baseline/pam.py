"""PAM stacks as libpam runs them (pam.conf(5), libpam/pam_dispatch.c), to judge what a control field does.

A module's presence says little: `auth sufficient pam_unix.so` placed before `pam_faillock.so preauth`
ends the stack with success before the lock is ever looked at, and `auth requisite pam_unix.so`
before `pam_faillock.so authfail` ends it on a wrong password before the failure is counted. So the
lockout check runs the stack, as libpam would, in three scenarios:

- a locked account with the right password: the login must be refused;
- a wrong password: a module that counts the failure (pam_faillock authfail, pam_tally2) must run;
- an account not locked, with the right password: the login must succeed. A jump that lands on
  pam_deny (Debian's `[success=1 default=ignore] pam_unix.so` with a faillock authfail line added after
  it, where `success=2` is needed) locks everyone out, which no lockout policy asks for.

Control fields follow pam.conf(5): `required`, `requisite`, `sufficient`, `optional` are their
documented `[value=action]` equivalents; actions `ignore`, `bad`, `die`, `ok`, `done`, `reset` and
jumps `N` (ok, and skip N modules); `include` reads another file's lines in place, `substack` reads
them as one module whose `done`/`die` end only the substack; Debian's `@include` includes every type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from audit.baseline.source import Line

SIMPLE = {
    "required": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "bad"},
    "requisite": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "die"},
    "sufficient": {"success": "done", "new_authtok_reqd": "done", "default": "ignore"},
    "optional": {"success": "ok", "new_authtok_reqd": "ok", "default": "ignore"},
}
# Modules whose answer does not depend on the password (in these scenarios): they let the stack go on.
NEUTRAL = frozenset({"pam_env", "pam_permit", "pam_faildelay", "pam_succeed_if", "pam_nologin", "pam_securetty",
                     "pam_selinux", "pam_loginuid", "pam_keyinit", "pam_limits", "pam_motd", "pam_mail", "pam_systemd",
                     "pam_shells", "pam_access", "pam_time", "pam_group", "pam_umask", "pam_lastlog", "pam_warn",
                     "pam_echo", "pam_gnome_keyring", "pam_fprintd", "pam_sepermit", "pam_namespace"})


@dataclass(frozen=True)
class PamLine:
    line: Line
    type: str
    control: str
    module: str  # e.g. pam_faillock (no .so, no directory)
    args: dict[str, str]

    def actions(self) -> dict[str, str]:
        """The control field as `value=action` pairs (pam.conf(5))."""
        control = self.control.lower()
        if control in SIMPLE:
            return SIMPLE[control]
        return dict(pair.partition("=")[::2] for pair in control.strip("[]").split())


_LINE = re.compile(r"^-?(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


def parse(lines: list[Line]) -> list[PamLine]:
    out = []
    for line in lines:
        text = line.text.strip()
        if text.startswith("@include"):
            out.append(PamLine(line, "*", "@include", text.split()[1] if len(text.split()) > 1 else "", {}))
            continue
        m = _LINE.match(text)
        if not m:
            continue
        module = m.group(3).rsplit("/", 1)[-1].removesuffix(".so")
        args = {}
        for arg in m.group(4).split():
            key, _, value = arg.partition("=")
            args[key] = value
        out.append(PamLine(line, m.group(1).lower(), m.group(2), module, args))
    return out


@dataclass(frozen=True)
class Substack:
    line: PamLine
    items: tuple[Item, ...]


Item = PamLine | Substack


def stack(read: Callable[[str], list[Line] | None], path: str, kind: str, depth: int = 0) -> tuple[Item, ...]:
    """The `kind` lines of a service file with `include`, `substack` and `@include` expanded (files under
    /etc/pam.d). `read(path)` gives a collected file's lines, None when it was not collected."""
    lines = read(path)
    if lines is None or depth > 8:
        raise ValueError(f"{path}: not collected (a PAM stack includes it)")
    out: list[Item] = []
    for x in parse(lines):
        if x.control == "@include":
            out += stack(read, _pam_path(x.module), kind, depth + 1)
        elif x.type != kind:
            continue
        elif x.control.lower() == "include":
            out += stack(read, _pam_path(x.module), kind, depth + 1)
        elif x.control.lower() == "substack":
            out.append(Substack(x, stack(read, _pam_path(x.module), kind, depth + 1)))
        else:
            out.append(x)
    return tuple(out)


def _pam_path(name: str) -> str:
    return name if name.startswith("/") else f"/etc/pam.d/{name}"


@dataclass
class Run:
    """One run of a stack: its result, the modules that ran, and the line that decided (ended) it."""

    success: bool
    ran: list[PamLine]
    decided_by: PamLine | None


def run(items: tuple[Item, ...], answer: Callable[[PamLine], str]) -> Run:
    """Run the stack as pam_dispatch.c does; `answer(module line)` is the module's return: success, auth_err…"""
    state = {"impression": "undef", "status": "auth_err"}
    ran: list[PamLine] = []

    def go(items: tuple[Item, ...]) -> PamLine | None:
        skip = 0
        for item in items:
            if skip:
                skip -= 1
                continue
            if isinstance(item, Substack):
                go(item.items)  # its done/die end the substack only; a jump counts it as one module
                continue
            rc, line = answer(item), item
            ran.append(item)
            acts = item.actions()
            action = acts.get(rc, acts.get("default", "ignore"))
            if action == "reset":
                state.update(impression="undef", status="auth_err")
            elif action in ("ok", "done") or action.isdigit():
                if (state["impression"] == "undef" or (state["impression"] == "positive"
                                                       and state["status"] == "success")) and rc != "ignore":
                    state.update(impression="positive", status=rc)
                if action == "done" and state["impression"] != "negative":
                    return line
                if action.isdigit():
                    skip = int(action)
            elif action in ("bad", "die"):
                if state["impression"] != "negative":
                    state.update(impression="negative", status=rc)
                if action == "die":
                    return line
        return None

    decided = go(items)
    return Run(state["impression"] == "positive" and state["status"] == "success", ran, decided)


def counts_failures(x: PamLine) -> bool:
    """A module that records a failed login: pam_faillock authfail (or without a mode), pam_tally2 / pam_tally."""
    if x.module == "pam_faillock":
        return "preauth" not in x.args and "authsucc" not in x.args
    return x.module in ("pam_tally2", "pam_tally")


def locked_account(x: PamLine) -> str:
    """A locked account typing the right password: lockout modules refuse, password modules accept."""
    if x.module in ("pam_faillock", "pam_tally2", "pam_tally"):
        return "success" if "authsucc" in x.args else "auth_err"
    return "auth_err" if x.module == "pam_deny" else "success"


def wrong_password(x: PamLine) -> str:
    """A wrong password on an account not (yet) locked: password modules and the recording lockout modules fail."""
    if x.module in ("pam_faillock", "pam_tally2", "pam_tally"):
        return "auth_err" if counts_failures(x) else "success"
    return "success" if x.module in NEUTRAL else "auth_err"


def right_password(x: PamLine) -> str:
    """The right password on an account not locked: only pam_deny refuses."""
    return "auth_err" if x.module == "pam_deny" else "success"
