"""One CLI session on a simulated device: modes and views, prompts, questions, the vendors' exec commands.

`feed` takes one line as typed and returns what the device prints before its next prompt (or before
the question it asks). Config lines go through the platform's grammar (`config.py`); what is
vendor-specific here is what a grammar cannot say: prompts, error texts, save and the commit and
rollback commands of each vendor.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import re
import time
from collections.abc import Callable

from lab.netsim.config import Config, Outcome
from lab.netsim.device import Device, now

ERRORS = {
    "huawei": {"unrecognized": "Error: Unrecognized command found at '^' position.",
               "incomplete": "Error: Incomplete command found at '^' position.",
               "wrong_parameter": "Error: Wrong parameter found at '^' position."},
    "comware": {"unrecognized": "% Unrecognized command found at '^' position.",
                "incomplete": "% Incomplete command found at '^' position.",
                "wrong_parameter": "% Wrong parameter found at '^' position."},
    "cisco": {"unrecognized": "% Invalid input detected at '^' marker.",
              "incomplete": "% Incomplete command.",
              "wrong_parameter": "% Invalid input detected at '^' marker."},
}
ERRORS["ruijie"] = ERRORS["cisco"]

VERSIONS = {
    "huawei_vrp": "Huawei Versatile Routing Platform Software\n"
                  "VRP (R) software, Version 5.170 (S5735 V200R019C10SPC500)\n"
                  "Copyright (C) 2000-2020 HUAWEI TECH Co., Ltd.\nHUAWEI S5735-L48T4X-A1 Routing Switch uptime is {up}",
    "huawei_vrpv8": "Huawei Versatile Routing Platform Software\n"
                    "VRP (R) software, Version 8.191 (CE6881 V300R020C10SPC200)\n"
                    "Copyright (C) 2012-2020 Huawei Technologies Co., Ltd.\nHUAWEI CE6881-48S6CQ uptime is {up}",
    "hp_comware": "H3C Comware Software, Version 7.1.070, Release 6635P07\n"
                  "Copyright (c) 2004-2023 New H3C Technologies Co., Ltd. All rights reserved.\n"
                  "H3C S6520X-30QC-EI uptime is {up}",
    "cisco_ios": "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8, RELEASE SOFTWARE\n"
                 "Copyright (c) 1986-2023 by Cisco Systems, Inc.\n{host} uptime is {up}",
    "ruijie_os": "System description      : Ruijie Full 10G Routing Switch(S5750-48GT4XS-E) By Ruijie Networks\n"
                 "System software version : S5750_RGOS 11.0(5)B9P59\nSystem uptime           : {up}",
}
COMWARE_BANNER = """
******************************************************************************
* Copyright (c) 2004-2023 New H3C Technologies Co., Ltd. All rights reserved.*
* Without the owner's prior written consent,                                 *
* no decompiling or reverse-engineering shall be allowed.                    *
******************************************************************************

"""



Question = Callable[[str], str]


class Session:
    """One CLI shell on a device. `feed` takes one line and returns what the device prints before its
    next prompt (or before the question it asks)."""

    def __init__(self, device: Device, user: str) -> None:
        self.device = device
        self.grammar = device.grammar
        self.style = device.style
        self.user = user
        self.sid = device.next_session_id()
        with device.lock:
            device.sessions.add(self)
        self.config_mode = False
        self.privileged = self.style in ("huawei", "comware") or device.spec.privilege >= 15
        self.path: list[str] = []
        self.candidate: Config | None = None  # VRP8
        self.dirty = False  # VRP8: uncommitted changes
        self.question: tuple[str, Question] | None = None
        self.echo = True
        self.config_lines = 0
        self.closed = False  # the user logged out
        self.dropped = False  # a fault cut the session
        self.kill_hook: Callable[[], None] | None = None

    # --- what the user sees ----------------------------------------------------------------------

    def banner(self) -> str:
        if self.style == "huawei":
            stamp = now().strftime("%Y-%m-%d %H:%M:%S+08:00")
            return ("\nInfo: The max number of VTY users is 10, and the number\n"
                    "      of current VTY users on line is 1.\n"
                    f"      The current login time is {stamp}.\n")
        if self.style == "comware":
            return COMWARE_BANNER
        return "\n"

    def prompt(self) -> str:
        if self.question:
            return self.question[0]
        host = self.device.hostname(self._config())
        fragment = self._fragment()
        if self.style in ("huawei", "comware"):
            if not self.config_mode:
                return f"<{host}>"
            mark = ("*" if self.dirty else "~") if self.device.two_stage else ""
            return f"[{mark}{host}{'-' + fragment if fragment else ''}]"
        if not self.config_mode:
            return f"{host}{'#' if self.privileged else '>'}"
        return f"{host}(config{'-' + fragment if fragment else ''})#"

    def _fragment(self) -> str:
        config = self._config()
        nodes = config.resolve(self.path)
        if not nodes or len(nodes) == 1:
            return ""
        fragment = ""
        for parent, node in itertools.pairwise(nodes):
            rule = config.rule_of(parent, node)
            match = rule.pattern.fullmatch(node.text)
            values = {k: (v or "") for k, v in match.groupdict().items()} if match else {}
            fragment = rule.prompt.format(parent=fragment, **values)
        return fragment

    def _config(self) -> Config:
        return self.candidate if (self.device.two_stage and self.config_mode and self.candidate) else \
            self.device.running

    # --- input -----------------------------------------------------------------------------------

    def feed(self, raw: str) -> str:
        line = " ".join(raw.split())
        if self.question:
            _, answer = self.question
            self.question = None
            self.echo = True
            return answer(line)
        if not line:
            return ""
        with self.device.lock:
            if self.config_mode:
                output = self._config_line(line, raw)
                self.config_lines += 1
                faults = self.device.faults()
                if faults.drop_after is not None and self.config_lines >= faults.drop_after:
                    self.device.log(self.sid, "fault", f"dropping the session after {self.config_lines} config lines")
                    self.dropped = True
                if faults.stall_after is not None and self.config_lines >= faults.stall_after:
                    self.device.stall(self.sid, self.config_lines)
                return output
            return self._exec_line(line, raw)

    def ask(self, text: str, answer: Question, echo: bool = True) -> str:
        self.question = (text, answer)
        self.echo = echo
        return ""

    def error(self, line: str, kind: str, caret: int = 0, message: str = "") -> str:
        self.device.log(self.sid, "error", line)
        if kind == "custom":
            return message
        text = ERRORS[self.style][kind]
        if kind == "incomplete" and self.style in ("cisco", "ruijie"):
            return text
        pad = " " * (len(self.prompt()) + caret)
        return f"{pad}^\n{text}" + ("\n" if self.style in ("cisco", "ruijie") else "")

    def unknown(self, line: str) -> str:
        """An exec command the device does not have: the caret goes under the first word it does not know."""
        words = line.split(" ")
        known = ("display", "show", "save", "write", "copy", "configure", "terminal", "screen-length", "commit",
                 "rollback", "archive", "configuration", "enable", "abort")
        caret = len(words[0]) + 1 if words[0] in known and len(words) > 1 else 0
        return self.error(line, "unrecognized", caret)

    # --- exec (user view / privileged EXEC) ------------------------------------------------------

    def _exec_line(self, line: str, raw: str) -> str:
        d = self.device
        d.log(self.sid, "exec", line)
        common = self._show(line)
        if common is not None:
            return common
        if self.style in ("huawei", "comware"):
            return self._huawei_exec(line)
        return self._cisco_exec(line)

    def _huawei_exec(self, line: str) -> str:
        d = self.device
        if self.style == "huawei" and line == "screen-length 0 temporary":
            return "Info: The configuration takes effect on the current user terminal interface only."
        if self.style == "comware" and line == "screen-length disable":
            return ""
        if re.fullmatch(r"screen-width \d+( temporary)?", line) and self.style == "huawei":
            return ""
        if line in ("system-view", "system-view immediately", "sys"):
            self.enter_config()
            return ("Enter system view, return user view with return command." if d.two_stage else
                    "Enter system view, return user view with Ctrl+Z." if self.style == "huawei" else
                    "System View: return to User View with Ctrl+Z.")
        if (line in ("quit", "exit") and self.style == "comware") or line == "quit":
            self.closed = True
            return ""
        if line == "return":
            return ""
        saved = self._save(line)
        if saved is not None:
            return saved
        if d.two_stage:
            m = re.fullmatch(r"rollback configuration last (\d+)", line)
            if m:
                return self._vrp8_rollback_last(int(m.group(1)))
            m = re.fullmatch(r"rollback configuration to file (\S+)", line)
            if m:
                text = d.read_file(m.group(1))
                if text is None:
                    return "Error: The file does not exist."
                before = d.running.render()
                d.replace_running(text, f"rollback to file {m.group(1)}")
                d.add_commit(self.user, before)
                return "Info: Succeeded in rolling back the configuration."
            if line in ("abort trial", "abort trial all"):
                return "" if d.rollback_now("trial") else "Error: No trial commit is running."
        if self.style == "comware" and line == "archive configuration":
            return self.ask("Save the running configuration to an archive file. Continue? [Y/N]:",
                            lambda a: self._archive_comware() if a.lower().startswith("y") else "")
        return self.unknown(line)

    def _cisco_exec(self, line: str) -> str:
        d = self.device
        if re.fullmatch(r"terminal (length|width) \d+", line) or line == "terminal no monitor":
            return ""
        if line in ("exit", "quit", "logout"):
            self.closed = True
            return ""
        if line in ("enable", "en"):
            if self.privileged:
                return ""
            if d.spec.secret is None:
                self.privileged = True
                return ""
            return self.ask("Password: ", self._enable_answer, echo=False)
        if not self.privileged:
            return self.unknown(line)
        if line == "disable":
            self.privileged = d.spec.privilege >= 15 and False
            return ""
        if line in ("configure terminal", "conf t", "configure"):
            self.enter_config()
            return "Enter configuration commands, one per line.  End with CNTL/Z."
        saved = self._save(line)
        if saved is not None:
            return saved
        if self.style == "cisco":
            m = re.fullmatch(r"configure terminal revert timer (\d+)", line)
            if m:
                minutes = int(m.group(1))
                if not 1 <= minutes <= 120:
                    return self.error(line, "wrong_parameter", len("configure terminal revert timer "))
                if d.pending is not None:
                    return "% Rollback Confirmed Change: a revert timer is already running; configure confirm first"
                archive = self._ios_archive_name()
                if archive is None:
                    return "% Rollback Confirmed Change: archive path must be configured (archive / path)"
                d.write_file(archive, d.running.render())
                d.schedule_rollback("revert", minutes * 60)
                self.enter_config()
                return (f"Rollback Confirmed Change: Backing up current running config to {archive}\n\n"
                        "Enter configuration commands, one per line.  End with CNTL/Z.")
            if line == "configure confirm":
                d.cancel_rollback()
                d.log(self.sid, "system", "revert timer confirmed")
                return ""
            if line == "configure revert now":
                return "" if d.rollback_now("revert") else "% No Rollback Confirmed Change pending"
            m = re.fullmatch(r"configure replace (\S+)( force)?", line)
            if m:
                name, force = m.group(1), bool(m.group(2))
                text = d.read_file(name)
                if text is None:
                    return f"%Error opening {name} (No such file or directory)"
                if force:
                    return self._ios_replace(name, text)
                return self.ask("This will apply all necessary additions and deletions\nto replace the current running "
                                "configuration with the\ncontents of the specified configuration file, which is\n"
                                "assumed to be a complete configuration, not a partial\nconfiguration. Enter Y if you "
                                "are sure you want to proceed. ? [no]: ",
                                lambda a: self._ios_replace(name, text) if a.lower().startswith("y") else "")
            if line == "archive config":
                archive = self._ios_archive_name()
                if archive is None:
                    return "%Archive path not specified"
                d.write_file(archive, d.running.render())
                return ""
        return self.unknown(line)

    def _enable_answer(self, answer: str) -> str:
        if hmac.compare_digest(answer.encode(), (self.device.spec.secret or "").encode()):
            self.privileged = True
            return ""
        return "% Access denied" if self.style == "cisco" else "% Password is wrong."

    def _show(self, line: str) -> str | None:
        """display/show commands, in any mode where the vendor allows them."""
        d = self.device
        huawei = self.style in ("huawei", "comware")
        if huawei and not line.startswith("display "):
            return None
        if not huawei and (not line.startswith("show ") or not self.privileged):
            return None
        cmd, _, pipe = line.partition(" | ")
        words = cmd.split(" ", 1)
        what = words[1] if len(words) > 1 else ""
        text: str | None = None
        if re.fullmatch(r"current-configuration|running-config|current-configuration all|running-config all", what):
            text = d.running.render()
            if self.style in ("cisco", "ruijie"):
                text = "\n".join(text.split("\n"))
        elif what in ("saved-configuration", "startup-config"):
            text = d.startup_text()
        elif what == "version":
            up = int(time.monotonic() - d.booted)
            text = VERSIONS[d.spec.platform].format(up=f"0 weeks, 0 days, {up // 3600} hours, {up // 60 % 60} minutes",
                                                    host=d.hostname())
        elif what == "this" and huawei and self.config_mode:
            nodes = self._config().resolve(self.path) or [self._config().root]
            node = nodes[-1]
            lines = [(" " * depth + text) for depth, text in node.lines(1 if len(nodes) > 1 else 0)]
            text = "#\n" + (f"{node.text}\n" if len(nodes) > 1 else "") + "\n".join(lines) + "\n#\nreturn"
        elif what == "configuration candidate" and d.two_stage and self.config_mode and self.candidate:
            text = self.candidate.render()
        elif what in ("configuration commit list", "configuration commit list verbose") and d.two_stage:
            rows = [f"{i:<5}{c['id']:<15}{'-':<7}{c['user']:<10}{c['time']}"
                    for i, c in enumerate(reversed(d.commits), 1)]
            rule = "-" * 75
            text = "\n".join([rule, f"{'No.':<5}{'CommitId':<15}{'Label':<7}{'User':<10}Date", rule, *rows, rule])
        elif what == "archive configuration" and self.style == "comware":
            location, prefix = self._comware_archive_place()
            files = sorted((d.flash / location).glob(f"{prefix}_*.cfg"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
            rows = [f" {i:<4}{time.strftime('%a %b %d %H:%M:%S %Y', time.localtime(p.stat().st_mtime))}  "
                    f"flash:/{location}/{p.name}" for i, p in enumerate(files, 1)]
            text = "\n".join([f"Location: flash:/{location}", f"Filename prefix: {prefix}",
                              "Archive interval in minutes: 0", "Maximum number of archive files: 5",
                              "Saved archive files:", " No. TimeStamp                 FileName", *rows])
        elif what == "archive" and self.style == "cisco":
            base = self._ios_archive_path()
            files = sorted(d.flash.glob(f"{base}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])) if base else []
            rows = [f"   {i:<9}flash:{p.name}" for i, p in enumerate(files, 1)]
            if rows:
                rows[-1] += " <- Most Recent"
            text = "\n".join(["The maximum archive configurations allowed is 14.", *rows])
        if text is None:
            return self.unknown(line)
        if pipe:
            text = _filter(text, pipe)
            if text is None:
                return self.unknown(line)
        return text.rstrip("\n")

    def _save(self, line: str) -> str | None:
        """Save commands, which the vendors allow in user view and (Huawei, Comware) in system view."""
        d = self.device
        if self.style == "huawei":
            m = re.fullmatch(r"save( (\S+\.(?:cfg|zip)))?", line)
            if not m:
                return None
            target = m.group(2)

            def answer(a: str) -> str:
                if not a.lower().startswith("y"):
                    return ""
                if target:
                    d.write_file(target, d.running.render())
                else:
                    d.save_startup()
                d.log(self.sid, "system", f"saved to {target or 'startup'}")
                return ("Now saving the current configuration to the slot 1.\n"
                        "Info: Save the configuration successfully.")

            return self.ask("Warning: The current configuration will be written to the device. Continue? [Y/N]:",
                            answer)
        if self.style == "comware":
            m = re.fullmatch(r"save( (flash:/\S+\.cfg))?( force)?", line)
            if not m:
                return None
            target, force = m.group(2), bool(m.group(3))

            def write(name: str | None) -> str:
                if name:
                    if not d.write_file(name, d.running.render()):
                        return "The file name is invalid."
                else:
                    d.save_startup()
                d.log(self.sid, "system", f"saved to {name or 'startup'}")
                return ("Validating file. Please wait...\nSaved the current configuration to mainboard device "
                        "successfully.")

            if force:
                return write(target)

            def confirm(a: str) -> str:
                if not a.lower().startswith("y"):
                    return ""
                if target:
                    return write(target)
                return self.ask("Please input the file name(*.cfg)[flash:/startup.cfg]\n"
                                "(To leave the existing filename unchanged, press the enter key):",
                                lambda name: write(None if name in ("", "flash:/startup.cfg") else name))

            return self.ask("The current configuration will be written to the device. Are you sure? [Y/N]:", confirm)
        # Cisco, Ruijie
        if line in ("write", "write memory", "wr", "write mem"):
            d.save_startup()
            d.log(self.sid, "system", "saved to startup")
            return "Building configuration...\n[OK]"
        m = re.fullmatch(r"copy running-config (startup-config|flash:\S+)", line)
        if m:
            dest = m.group(1)

            def copy(a: str) -> str:
                if dest == "startup-config":
                    d.save_startup()
                    return "Building configuration...\n[OK]"
                text = d.running.render()
                if not d.write_file(dest, text):
                    return f"%Error opening {dest} (Invalid argument)"
                return f"{len(text)} bytes copied in 0.052 secs"

            shown = dest.split(":", 1)[-1]
            return self.ask(f"Destination filename [{shown}]? ", copy)
        return None

    # --- config mode -----------------------------------------------------------------------------

    def enter_config(self) -> None:
        self.config_mode = True
        self.path = []
        self.config_lines = 0
        if self.device.two_stage:
            self.candidate = self.device.running.copy()
            self.dirty = False

    def leave_config(self) -> None:
        self.config_mode = False
        self.path = []
        self.candidate = None
        self.dirty = False

    def _config_line(self, line: str, raw: str) -> str:
        d = self.device
        g = self.grammar
        if d.two_stage and not self.dirty:
            self.candidate = d.running.copy()  # see what others committed (or what a rollback restored)
        config = self._config()
        if config.resolve(self.path) is None:
            self.path = []  # the view vanished under us (a rollback, a replace)
        d.log(self.sid, "config" + ("/" + "/".join(self.path) if self.path else ""), line)
        huawei = self.style in ("huawei", "comware")
        # leaving views
        if (huawei and line == "quit") or (not huawei and line == "exit"):
            if self.path:
                self.path = self.path[:-1]
                return ""
            return self._leave("")
        if (huawei and line == "return") or (not huawei and line == "end"):
            return self._leave("")
        nodes = config.resolve(self.path) or [config.root]
        if self.path:
            rule = config.rule_of(nodes[-2], nodes[-1])
            if rule.closer and line == rule.closer:
                self.path = self.path[:-1]
                return ""
        if not huawei and line.startswith("do "):
            return self._exec_line(line[3:], raw)  # IOS and RGOS run an exec command from config mode
        if (huawei and line.startswith("display ")) or (self.style == "ruijie" and line.startswith("show ")):
            return self._show(line) or ""
        if huawei:
            saved = self._save(line)
            if saved is not None:
                return saved
        special = self._config_special(line)
        if special is not None:
            return special
        norm = g.normalise(line)
        for pattern in d.faults().reject:
            if pattern.search(norm):
                d.log(self.sid, "fault", f"rejecting {norm!r}")
                return self.error(line, "unrecognized", 0)
        outcome: Outcome = config.apply(self.path, norm)
        if not outcome.ok:
            return self.error(line, outcome.error, outcome.caret, outcome.message)
        self.path = outcome.path
        if outcome.changed:
            if d.two_stage:
                self.dirty = True
            else:
                d.persist()
        return outcome.message

    def _config_special(self, line: str) -> str | None:
        """The vendors' commit and rollback commands that live in config mode."""
        d = self.device
        if d.two_stage:
            m = re.fullmatch(r'commit( trial( (\d+))?)?( (label \S+|comment .+))?', line)
            if m:
                if m.group(1):
                    seconds = int(m.group(3) or 600)
                    if not 60 <= seconds <= 65535:
                        return self.error(line, "wrong_parameter", len("commit trial "))
                    # a second trial before confirming still rolls back to before the first
                    before = d.pending.before if d.pending and d.pending.kind == "trial" else d.running.render()
                    self._commit()
                    d.schedule_rollback("trial", seconds, before)
                    return ""
                confirmed = d.cancel_rollback()
                self._commit()
                if confirmed:
                    d.log(self.sid, "system", "trial commit confirmed")
                return ""
            if line in ("abort trial", "abort trial all"):
                return "" if d.rollback_now("trial") else "Error: No trial commit is running."
            if line == "clear configuration candidate":
                self.candidate = d.running.copy()
                self.dirty = False
                return ""
        if self.style == "comware":
            m = re.fullmatch(r"configuration commit delay (\d+)", line)
            if m:
                minutes = int(m.group(1))
                if not 1 <= minutes <= 65535:
                    return self.error(line, "wrong_parameter", len("configuration commit delay "))
                d.schedule_rollback("delay", minutes * 60)
                d.log(self.sid, "system", f"commit delay {minutes} minutes")
                return ""
            if line == "configuration commit":
                if d.cancel_rollback() is None:
                    return "Info: No configuration commit delay is set."
                return ""
            m = re.fullmatch(r"configuration replace file (\S+)", line)
            if m:
                name = m.group(1)
                text = d.read_file(name)
                if text is None:
                    return f"The file {name} does not exist."

                def replace(a: str) -> str:
                    d.replace_running(text, f"configuration replace file {name}")
                    self.path = []
                    return (f"Now replacing the current configuration. Please wait...\n"
                            f"Succeeded in replacing current configuration with the file {name}.")

                return self.ask("Current configuration will be lost, save current configuration? [Y/N]:", replace)
        return None

    def _commit(self) -> None:
        d = self.device
        with d.lock:
            before = d.running.render()
            if self.candidate is not None and self.dirty:
                d.running = self.candidate
                self.candidate = d.running.copy()
                d.persist()
            d.add_commit(self.user, before)
            self.dirty = False
            d.log(self.sid, "system", "commit")

    def _leave(self, out: str) -> str:
        if self.device.two_stage and self.dirty:
            def answer(a: str) -> str:
                a = a.lower()
                if a.startswith("y"):
                    self._commit()
                elif a.startswith("c"):
                    return ""
                self.leave_config()
                return ""

            return self.ask("Warning: Uncommitted configurations found. Are you sure to commit them before exiting? "
                            "[Y(yes)/N(no)/C(cancel)]:", answer)
        self.leave_config()
        return out

    # --- rollback helpers ------------------------------------------------------------------------

    def _vrp8_rollback_last(self, n: int) -> str:
        d = self.device
        with d.lock:
            if n < 1 or n > len(d.commits):
                return "Error: The number of commit points to roll back exceeds the number of existing ones."
            target = d.commits[-n]["before"]
            before = d.running.render()
            d.cancel_rollback()
            d.replace_running(target, f"rollback configuration last {n}")
            d.add_commit(self.user, before)
        return "Info: Succeeded in rolling back the configuration."

    def _comware_archive_place(self) -> tuple[str, str]:
        for child in self.device.running.root.children:
            m = re.fullmatch(r"archive configuration location flash:/(\S+) filename-prefix (\S+)", child.text)
            if m:
                return m.group(1), m.group(2)
        return "archive", "archive"

    def _archive_comware(self) -> str:
        d = self.device
        location, prefix = self._comware_archive_place()
        existing = [int(p.stem.rsplit("_", 1)[1]) for p in (d.flash / location).glob(f"{prefix}_*.cfg")]
        name = f"flash:/{location}/{prefix}_{max(existing, default=0) + 1}.cfg"
        d.write_file(name, d.running.render())
        return f"The running configuration is saved to an archive file:\n{name}"

    def _ios_archive_path(self) -> str | None:
        archive = self.device.running.root.find("archive")
        for child in archive.children if archive else []:
            m = re.fullmatch(r"path flash:(\S+)", child.text)
            if m:
                return m.group(1)
        return None

    def _ios_archive_name(self) -> str | None:
        base = self._ios_archive_path()
        if base is None:
            return None
        existing = [int(p.name.rsplit("-", 1)[1]) for p in self.device.flash.glob(f"{base}-*")
                    if p.name.rsplit("-", 1)[1].isdigit()]
        return f"flash:{base}-{max(existing, default=0) + 1}"

    def _ios_replace(self, name: str, text: str) -> str:
        self.device.replace_running(text, f"configure replace {name}")
        return "Total number of passes: 1\nRollback Done"

    # --- end -------------------------------------------------------------------------------------

    def kill(self) -> None:
        if self.kill_hook:
            with contextlib.suppress(Exception):
                self.kill_hook()

    def end(self) -> None:
        """The SSH session ended: VRP8 drops an uncommitted candidate, as the real one does."""
        with self.device.lock:
            self.device.sessions.discard(self)
        if self.dirty:
            self.device.log(self.sid, "system", "session ended with uncommitted changes: discarded")


def _filter(text: str, pipe: str) -> str | None:
    m = re.fullmatch(r"(include|exclude|begin|section|i|e|b) (.+)", pipe)
    if not m:
        return None
    kind, pattern = m.group(1)[0], m.group(2)
    try:
        regex = re.compile(pattern)
    except re.error:
        return None
    lines = text.split("\n")
    if kind == "i":
        return "\n".join(line for line in lines if regex.search(line))
    if kind == "e":
        return "\n".join(line for line in lines if not regex.search(line))
    if kind == "b":
        for i, line in enumerate(lines):
            if regex.search(line):
                return "\n".join(lines[i:])
        return ""
    out, inside = [], False  # section
    for line in lines:
        if line and not line.startswith(" "):
            inside = bool(regex.search(line))
        if inside:
            out.append(line)
    return "\n".join(out)

