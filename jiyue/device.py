"""Device sessions: the one place jiyue opens a CLI session to a switch or router (netmiko).

Everything that talks to a device goes through `DeviceSession`: the push engine, the diff, and the
graded-protection device checks. What differs between platforms (commands, prompts, error texts,
commit features) is data in `jiyue/platforms.yaml` (read by jiyue.platforms); this module only knows
how a careful operator drives a CLI:

- the password is resolved from its reference when the session opens, handed to netmiko (which
  keeps it out of its own logs) and never appears in a message;
- the device's host key is checked against the known_hosts file (the inventory's, or the one
  given) exactly as for hosts (jiyue.ssh.verified_client); an unknown key is refused unless
  trust-on-first-use was asked for, a changed key always;
- each configuration line is sent and its answer read up to the next prompt, and an answer
  matching the platform's error pattern raises `DeviceError(kind="rejected")` naming the line;
- leaving configuration mode tries the platform's commands in order until the prompt says it is
  out (a device that does not know `end` is left with `exit`, whatever its name), and answers the
  "commit before leaving?" question with no;
- every failure is a `DeviceError` with a kind (unreachable, auth_failed, timeout, host_key,
  rejected, session_lost, deadline, error), so the fleet runner (jiyue.runner) reports it per device,
  in the operator's words (`SAY`: the one place device failures become text, 中文 / English);
- a device behind jump hosts (堡垒机: the device's `jump:`, its subnet's, department's or the defaults')
  is reached over a `direct-tcpip` channel through them, opened by jiyue.ssh's JumpPool and handed to
  netmiko as its `sock`: one SSH layer (paramiko), the jump hosts' keys and the device's checked separately;
- no read waits past the session's `deadline` (set by the caller: the push engine's per-device
  deadline); a session whose read timed out is `broken` (what the device prints next may answer an
  earlier line) and is not used for changes again.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from netmiko import ConnectHandler
from netmiko.exceptions import (
    ConfigInvalidException,
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadException,
    ReadTimeout,
)

from inventory.model import Device, Inventory
from jiyue.platforms import cli
from jiyue.ssh import JumpPool, SSHError, Target, jump_targets, verified_client

# netmiko's own delays, tuned: fast_cli scales every fixed sleep by the delay factor (netmiko's
# fast_cli default is 0.1). Reads that wait for a prompt are not shortened by it, only sleeps.
DELAY_FACTOR = 0.1
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # one command's answer (a save may take a while on a real device)


class DeviceError(SSHError):
    """A device failure with its kind: unreachable, auth_failed, timeout, deadline, host_key, rejected,
    session_lost or error (the same kinds jiyue.ssh uses for hosts, plus the device ones)."""


# --- targets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceTarget:
    """Where and as whom to log in; the secrets stay references until the session opens."""

    name: str
    platform: str
    address: str
    port: int
    username: str
    password: Any  # SecretRef
    secret: Any | None  # SecretRef of the enable password, if any
    root: Path  # the inventory directory secrets' relative paths start from
    known_hosts: Path | None
    jumps: tuple[Target, ...] = ()  # jump hosts to pass through, outermost first (empty: direct)

    @classmethod
    def of(cls, inv: Inventory, name: str, known_hosts: Path | None = None, jump: str | None = None) -> DeviceTarget:
        """The device's target with its jump chain; `jump` is a run's `--jump NAME|none` override."""
        device: Device = inv.devices[name]
        creds = inv.credentials_for(device)
        try:
            jumps = jump_targets(inv, device, jump)
        except LookupError as exc:
            raise DeviceError("error", f"{name}: {exc}") from exc
        return cls(name=name, platform=device.platform.value, address=str(device.address), port=device.port,
                   username=creds.username, password=creds.password, secret=creds.secret, root=inv.root,
                   known_hosts=known_hosts or inv.path(inv.defaults.ssh.known_hosts), jumps=jumps)

    def ssh_target(self) -> Target:
        """The device as jiyue.ssh sees a target: what the jump pool opens a channel to."""
        return Target(self.name, self.address, self.port, self.username, None, self.known_hosts, self.jumps)


# --- the session -----------------------------------------------------------------------------


# What jiyue says when a device fails, in the operator's words (中文 / English). Every device failure
# becomes text here, whatever raised it (netmiko, paramiko, a socket, jiyue's own reads), so a slow or
# dead device reads the same wherever it happened, and never as a library's advice to its programmer.
SAY: dict[str, tuple[str, str]] = {
    "no_answer": ("设备在 {waited:g} 秒内没有应答 {command}（设备繁忙或挂起，或链路过慢）",
                  "the device did not answer {command} within {waited:g} s (it is busy or hung, or the link is slow)"),
    "deadline": ("等待 {command} 的应答时已到本设备的截止时间（{budget:g} 秒）：设备应答太慢，无法按时完成",
                 "the device's deadline ({budget:g} s) passed while waiting for the answer to {command}: it answers "
                 "too slowly to finish in time"),
    "no_prompt": ("已登录，但设备在 {waited:g} 秒内没有显示提示符（设备挂起或过载）",
                  "logged in, but the device showed no prompt within {waited:g} s (it is hung or overloaded)"),
    "unreachable": ("无法连接 {address}:{port}（SSH 无响应：设备关机、地址错误或被防火墙拦截）",
                    "cannot reach {address}:{port} (no answer to SSH: the device is off, the address is wrong, or a "
                    "firewall is in the way)"),
    "closed": ("设备在 {command} 时关闭了会话", "the device closed the session during {command}"),
    "lost": ("会话意外中断（{detail}）", "the session ended unexpectedly ({detail})"),
    "auth_failed": ("认证失败（用户名或密码被拒绝）", "authentication failed (user name or password refused)"),
    "host_key_changed": ("主机密钥已变更（与 known_hosts 中记录的不同）：可能被仿冒，不连接",
                         "host key CHANGED (not the one in known_hosts): possible impersonation, not connecting"),
    "host_key_unknown": ("未知的主机密钥：请将其加入 known_hosts，或使用 --trust-on-first-use",
                         "unknown host key: add it to the known_hosts file or run with trust-on-first-use"),
    "rejected": ("设备拒绝了 {command}：{answer}", "the device rejected {command}: {answer}"),
    # what the push engine concludes from what the device did
    "timer_expired": ("变更确认之前，设备的自动回滚定时器（{arm}）已到期，设备已自行恢复变更前的配置",
                      "the device's revert timer ({arm}) expired before the change was confirmed: the device went "
                      "back to its pre-change configuration by itself"),
    "still_armed": ("设备自身的回滚定时器（{arm}）仍在运行：若无人确认，设备将在约 {left:.0f} 秒内自行恢复",
                    "the device's own revert timer ({arm}) is still armed: unless someone confirms, the device "
                    "restores itself within about {left:.0f} s"),
    "unreadable": ("无法读取设备当前配置，与备份的差异未知（{why}）",
                   "the device could not be read: how it differs from its backup is unknown ({why})"),
}


def say(key: str, **fields: Any) -> str:
    """One of SAY's messages, both languages: `中文 / English`."""
    zh, en = SAY[key]
    return f"{zh.format(**fields)} / {en.format(**fields)}"


def _shown(command: str) -> str:
    return repr(command) if command else "(login)"


def _kind_of(exc: BaseException, command: str = "", waited: float = READ_TIMEOUT) -> tuple[str, str]:
    """A netmiko/paramiko/socket exception as (kind, message for people); `command` is what was being
    sent (empty while logging in) and `waited` how long an answer was waited for."""
    text = str(exc).strip()
    if isinstance(exc, SSHError):  # DeviceError, or jiyue.ssh's trust-on-first-use refusing to record a key
        return exc.kind, text
    if isinstance(exc, NetmikoAuthenticationException | paramiko.AuthenticationException):
        return "auth_failed", say("auth_failed")
    if isinstance(exc, paramiko.BadHostKeyException) or "does not match" in text:
        return "host_key", say("host_key_changed")
    if "not found in known_hosts" in text:
        return "host_key", say("host_key_unknown")
    if isinstance(exc, ConfigInvalidException):
        return "rejected", text
    # Every way of waiting too long (netmiko's pattern and echo reads, its login reads, a socket) is one thing
    # to the operator: the device did not answer in time. netmiko's texts are advice to its programmer.
    if isinstance(exc, NetmikoTimeoutException | ReadTimeout | socket.timeout | TimeoutError):
        if "TCP connection" in text or "DNS failure" in text:
            return "unreachable", text  # replaced by the caller, who knows the address
        return "timeout", say("no_answer", command=_shown(command), waited=waited) if command else \
            say("no_prompt", waited=waited)
    if isinstance(exc, OSError | EOFError | paramiko.SSHException | ReadException):
        if command:
            return "session_lost", say("closed", command=_shown(command))
        return "session_lost", say("lost", detail=f"{type(exc).__name__}: {text or 'closed'}")
    return "error", f"{type(exc).__name__}: {text}"


@contextmanager
def _named(action: str, command: str = "", waited: float = READ_TIMEOUT) -> Iterator[None]:
    """Turn any failure inside into a DeviceError saying what was being done (`action`, may be empty)."""
    try:
        yield
    except DeviceError:
        raise
    except Exception as exc:
        kind, message = _kind_of(exc, command, waited)
        raise DeviceError(kind, f"{action}: {message}" if action else message) from exc


class DeviceSession:
    """One CLI session to one device. Use as a context manager; `open()` is idempotent.

    Reading (what the graded-protection device checks need)::

        with open_session(inv, "sj-hj1") as s:        # host key checked against the inventory's known_hosts
            s.command("display ssh server status")     # any exec-mode command, its output
            s.running_config()                         # as the device printed it
            s.config_text()                            # configuration lines only, parsed by jiyue.platforms.parse

    Changing: `configure(lines)` (each line checked), `exec_checked(command)`, `leave_config()`, `save()`.
    """

    def __init__(self, target: DeviceTarget, *, trust_on_first_use: bool = False,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                 delay_factor: float = DELAY_FACTOR, pool: JumpPool | None = None) -> None:
        self.target = target
        # A device behind jump hosts borrows a connection of `pool` (the fleet run's), or of a pool of its own.
        self.pool = pool
        self._through = contextlib.ExitStack()  # the borrowed jump channel (and an own pool), closed with the session
        self.cli = cli(target.platform)
        self.trust_on_first_use = trust_on_first_use
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.delay_factor = delay_factor
        self.conn: Any = None
        self._prompt_re = re.compile(self.cli.config_prompt)
        self._error_re = re.compile(self.cli.error_pattern, re.M)
        self._leave_order = list(self.cli.leave_config)
        self._prompt: str | None = None  # the last prompt seen (None: unknown, ask the device)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        # A point in time (time.monotonic) no read waits past: the caller's deadline for what it is doing.
        # A read it cuts raises DeviceError(kind="deadline").
        self.deadline: float | None = None
        self._budget: float | None = None
        # Set when a read timed out or the channel failed: what the device prints next may answer an
        # earlier line, so the session is no longer used for changes (`alive` is False).
        self.broken = False

    # context manager
    def __enter__(self) -> DeviceSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ssh_client(self) -> paramiko.SSHClient:
        """A paramiko client that knows the device's recorded host key and refuses any other."""
        t = self.target
        return verified_client(t.address, t.port, t.known_hosts, self.trust_on_first_use)

    def set_deadline(self, seconds: float | None) -> None:
        """No read waits more than `seconds` from now (None: only the read timeout bounds each read)."""
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self._budget = seconds

    def _wait(self, timeout: float) -> tuple[float, bool]:
        """How long a read may wait, and whether the deadline (not `timeout`) is what limits it."""
        if self.deadline is None:
            return timeout, False
        left = self.deadline - time.monotonic()
        return (left, True) if left < timeout else (timeout, False)

    def _late(self, command: str, waited: float, cut: bool) -> DeviceError:
        self.broken = True
        if cut:
            return DeviceError("deadline", say("deadline", command=_shown(command), budget=self._budget or 0))
        return DeviceError("timeout", say("no_answer", command=_shown(command), waited=waited))

    def open(self) -> DeviceSession:
        if self.conn is not None:
            return self
        t = self.target
        wait, _ = self._wait(self.connect_timeout)
        if wait <= 0:
            raise self._late("", self.connect_timeout, True)
        with _named(f"cannot read the credentials of {t.name}"):
            password = t.password.resolve(t.root)
            secret = t.secret.resolve(t.root) if t.secret is not None else ""
        params = dict(device_type=self.cli.device_type, host=t.address, port=t.port, username=t.username,
                      password=password, secret=secret, use_keys=False, allow_agent=False, fast_cli=True,
                      global_delay_factor=self.delay_factor, conn_timeout=wait, banner_timeout=wait,
                      auth_timeout=wait, ssh_strict=True, auto_connect=False, global_cmd_verify=self.cli.cmd_verify,
                      read_timeout_override=self._wait(self.read_timeout)[0],  # netmiko's login reads too
                      sock=self._jump_channel(wait) if t.jumps else None)
        try:  # the login is the only thing going on: the device's name is all the message needs before it
            with _named(t.name, waited=params["read_timeout_override"]):
                conn = ConnectHandler(**params)
                conn._build_ssh_client = self._ssh_client  # host keys from our known_hosts, cached
                try:
                    conn._open()
                except Exception:
                    conn.disconnect()
                    raise
        except DeviceError as exc:
            self._through.close()
            if exc.kind == "unreachable":
                raise DeviceError("unreachable", f"{t.name}: {say('unreachable', address=t.address, port=t.port)}") \
                    from exc
            if exc.kind == "timeout" and self._wait(self.read_timeout)[0] <= 0:
                raise DeviceError("deadline", f"{t.name}: {self._late('', wait, True)}") from exc
            raise
        conn.read_timeout_override = None  # from now on each read says its own timeout
        self.conn = conn
        self.broken = False
        del password, secret
        if self.cli.enter_config == "configure terminal":  # Cisco-like: configuration needs privileged EXEC
            self._enable()
        return self

    def _jump_channel(self, timeout: float) -> Any:
        """A `direct-tcpip` channel to the device through its jump hosts (their keys checked, each against its
        own known_hosts), held until the session closes; a jump host's failure names the jump host."""
        try:
            pool = self.pool or self._through.enter_context(contextlib.closing(JumpPool()))
            channel = self._through.enter_context(pool.channel(self.target.ssh_target(), timeout,
                                                               self.trust_on_first_use))
            self._through.callback(channel.close)  # netmiko closes it with its transport, unless the login never began
            return channel
        except SSHError as exc:
            self._through.close()
            raise DeviceError(exc.kind, f"{self.target.name}: {exc}") from exc

    def _enable(self) -> None:
        """Privileged mode where the prompt says we are not in it (an empty enable secret is sent as
        it is: some devices accept that)."""
        with _named("cannot enter privileged mode"):
            if not self.conn.check_enable_mode():
                self.conn.enable()

    def close(self) -> None:
        """Log out and close. netmiko's own cleanup probes the mode with a timed read (two seconds on
        Huawei and Ruijie); a session being closed needs none: leave, log out, close the transport."""
        if self.conn is None:
            return
        with suppress(Exception):  # closing a dead session must not hide why it died
            if not self.broken and self._prompt is not None and self._prompt_re.search(self._prompt):
                self.set_deadline(min(self.read_timeout, 5.0))  # leaving must not hold a closing session long
                self.leave_config()
        conn, self.conn = self.conn, None
        with suppress(Exception):
            conn.write_channel(conn.RETURN.join(("quit" if self.cli.section_exit == "quit" else "exit", "")))
        with suppress(Exception):
            conn.paramiko_cleanup()
        self._through.close()

    @property
    def alive(self) -> bool:
        try:
            return self.conn is not None and not self.broken and \
                bool(self.conn.remote_conn.get_transport().is_active())
        except Exception:
            return False

    # --- reading ------------------------------------------------------------------------------

    def command(self, command: str, read_timeout: float | None = None) -> str:
        """Run one exec-mode command and return its output (prompt and echo stripped)."""
        self.open()
        wait, cut = self._wait(read_timeout or self.read_timeout)
        if wait <= 0:
            raise self._late(command, 0, True)
        try:
            with _named("", command, wait):
                out = self.conn.send_command(command, read_timeout=wait)
        except DeviceError as exc:
            if exc.kind == "timeout":
                raise self._late(command, wait, cut) from exc
            self.broken = exc.kind == "session_lost"
            raise
        self._prompt = None
        return out

    def running_config(self) -> str:
        """The running configuration exactly as the device printed it."""
        return self.command(self.cli.show_running)

    def config_text(self) -> str:
        """The running configuration as configuration lines only (see PlatformCLI.config_text)."""
        return self.cli.config_text(self.running_config())

    # --- the line exchange --------------------------------------------------------------------
    # One line out, its answer read up to the next prompt. Reads block on the SSH channel until data
    # arrives (no polling and no fixed sleeps), so a line costs what the device takes to answer it.

    def _prompt_pattern(self) -> re.Pattern:
        base = re.escape(self.conn.base_prompt)
        return re.compile(rf"^[^\n]*{base}[^\n]*[\]>#]\s*\Z", re.M)

    def _read_until(self, pattern: re.Pattern, command: str, echo: str = "") -> str:
        """Read the answer to `command` until `pattern` matches the end of what arrived (after the echo
        of `echo`, if given: a prompt left over from before cannot end the read early)."""
        conn = self.conn
        chan = conn.remote_conn
        buf = conn._read_buffer  # what netmiko read past its last pattern
        conn._read_buffer = ""
        waited, cut = self._wait(self.read_timeout)
        deadline = time.monotonic() + waited
        echo = echo.strip()[:20]

        def done() -> bool:
            start = buf.find(echo) if echo else 0
            return start >= 0 and pattern.search(buf, start) is not None

        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._late(command, waited, cut)
            chan.settimeout(remaining)
            try:
                data = chan.recv(65536)
            except TimeoutError:
                continue
            if not data:
                self.broken = True
                raise DeviceError("session_lost", say("closed", command=_shown(command)))
            text = self._decoder.decode(data)
            buf += conn.strip_ansi_escape_codes(conn.normalize_linefeeds(text))
        return buf

    def _exchange(self, command: str, question: str = "", answer: str = "") -> str:
        """Send one line; answer a question if the device asks one; return everything up to the prompt."""
        self.open()
        try:
            with _named("", command, self.read_timeout):
                prompt = self._prompt_pattern()
                pattern = re.compile(f"(?:{question})[:?]?\\s*\\Z|{prompt.pattern}", re.M) if question else prompt
                self.conn.write_channel(command + self.conn.RETURN)
                out = self._read_until(pattern, command, echo=command)
                if question and not prompt.search(out):
                    self.conn.write_channel(answer + self.conn.RETURN)
                    out += self._read_until(prompt, command)
        except DeviceError as exc:
            self.broken = self.broken or exc.kind in ("session_lost", "timeout", "deadline")
            raise
        self._prompt = out.rstrip().rsplit("\n", 1)[-1].strip()
        return out

    def _check(self, command: str, out: str) -> str:
        # The answer is everything after the echoed line; a rejection names the line.
        answer = out.split("\n", 1)[1] if "\n" in out else ""
        match = self._error_re.search(answer)
        if match:
            raise DeviceError("rejected", say("rejected", command=repr(command), answer=match.group(0).strip()))
        return out

    def prompt(self) -> str:
        if self._prompt is None:
            self._exchange("")
        return self._prompt or ""

    def in_config_mode(self) -> bool:
        return bool(self._prompt_re.search(self.prompt()))

    # --- configuring --------------------------------------------------------------------------

    def configure(self, lines: Iterable[str], *, enter: str | None = None, leave: bool = True) -> str:
        """Send configuration lines, each read up to its prompt; the first rejected line raises
        DeviceError(kind="rejected") naming it. `enter` replaces the command that enters
        configuration mode (e.g. IOS's `configure terminal revert timer 10`): a device that refuses
        it, or is not in configuration mode after it, raises DeviceError(kind="unsupported")."""
        self.open()
        lines = [line.strip() for line in lines if line.strip()]
        for line in lines:
            if re.search(r"[\x00-\x1f\x7f]", line):
                raise DeviceError("error", f"refusing a configuration line with a control character: {line!r}")
        output = ""
        if not self.in_config_mode():
            command = enter or self.cli.enter_config
            out = self._exchange(command)
            output += out
            try:
                self._check(command, out)
            except DeviceError as exc:
                raise DeviceError("unsupported" if enter else "rejected", str(exc)) from exc
            if not self.in_config_mode():
                answer = " ".join(x.strip() for x in out.splitlines()[1:-1] if x.strip())
                raise DeviceError("unsupported" if enter else "error",
                                  f"{command!r} did not enter configuration mode: {answer or 'no answer'}")
        for line in lines:
            output += self._check(line, self._exchange(line))
        if leave:
            output += self.leave_config()
        return output

    def leave_config(self) -> str:
        """Back to exec mode: the platform's leave commands in order while the prompt still says
        configuration mode; a 'commit first?' question is answered no (nothing half-done is kept)."""
        output = ""
        for _ in range(8):
            if not self.in_config_mode():
                return output
            for command in list(self._leave_order):
                answer = self._exchange(command, self.cli.leave_question, self.cli.leave_answer)
                output += answer
                if not self.in_config_mode():
                    return output
                if not self._error_re.search(answer):
                    break  # accepted, but only one level up: repeat it
                # Refused: this device does not know it; try it last from now on.
                self._leave_order.remove(command)
                self._leave_order.append(command)
        raise DeviceError("error", f"still in configuration mode after {', '.join(self.cli.leave_config)}")

    def exec_checked(self, command: str, answer_pattern: str = "", answer: str = "") -> str:
        """A command in the current mode whose answer must not match the error pattern; an optional
        question is answered. Raises DeviceError(kind="rejected") otherwise."""
        return self._check(command, self._exchange(command, answer_pattern, answer))

    def save(self) -> str:
        """Write the running configuration to the startup configuration (answering its question)."""
        if self.in_config_mode():
            self.leave_config()
        save = self.cli.save
        return self.exec_checked(save["command"], save.get("question", ""), save.get("answer", ""))


def open_session(inv: Inventory, name: str, **options: Any) -> DeviceSession:
    """A session to an inventory device (open it with `with`); `jump=NAME|none` overrides its jump hosts."""
    return DeviceSession(DeviceTarget.of(inv, name, options.pop("known_hosts", None), options.pop("jump", None)),
                         **options)
