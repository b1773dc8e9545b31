"""SSH sessions to inventory hosts: verified host keys, bounded waits, failures named by kind.

One connection per host runs one script fed on stdin to `sh -s`, so nothing is written to the
host and the command line stays short whatever the script's size. Host keys come from the
inventory's known_hosts file; an unknown key is refused unless trust-on-first-use was asked for,
and a changed key is always refused. `verified_client` is that policy for any paramiko client, so
device sessions (jiyue.device) check host keys exactly as host sessions do, from the same cached
known_hosts reader.

Jump hosts (堡垒机): a target may carry a chain of one or two jump hosts. jiyue opens an SSH transport to
the jump host (its host key verified like any target's), a `direct-tcpip` channel through it to the target,
and the target's own session over that channel (the target's key verified separately). A `JumpPool` shares
those transports across a fleet run, at most `TARGETS_PER_JUMP_CONNECTION` targets on one.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from inventory.model import Device, Host, Inventory
from jiyue.runner import TargetError


class SSHError(TargetError):
    """A failure with its kind: unreachable, auth_failed, timeout, host_key or error."""


@dataclass(frozen=True)
class Target:
    name: str
    address: str
    port: int
    user: str
    key: Path | None
    known_hosts: Path | None
    jumps: tuple[Target, ...] = ()  # jump hosts to pass through, outermost first (empty: direct)

    @classmethod
    def of(cls, inv: Inventory, name: str, jump: str | None = None) -> Target:
        """The host's target with its jump chain; `jump` is a run's `--jump NAME`/`none` override."""
        host = inv.hosts[name]
        s = inv.ssh_for(host)
        return cls(name, s.address, s.port, s.user, s.key, s.known_hosts, jump_targets(inv, host, jump))


def jump_targets(inv: Inventory, record: Host | Device, jump: str | None = None) -> tuple[Target, ...]:
    """The jump chain of a host or device as targets, outermost first; `jump` is a run's `--jump NAME|none`.
    Raises LookupError for a jump host the inventory does not declare."""
    return tuple(Target(j.name or j.address, j.address, j.port, j.user, j.key, j.known_hosts)
                 for j in inv.jump_chain(record, jump))


@dataclass(frozen=True)
class Output:
    exit_status: int
    stdout: bytes
    stderr: bytes
    elapsed: float


@dataclass(frozen=True)
class _KnownHosts:
    """One known_hosts file, indexed by host name: paramiko's HostKeys looks a name up by scanning every entry
    (and checks every line against all before it while loading), which at a thousand hosts is a million
    comparisons per lookup round. Hashed names (`|1|salt|hash`) cannot be indexed: they are checked in turn."""

    mtime: float
    plain: dict[str, list[tuple[int, paramiko.PKey]]]
    hashed: list[tuple[int, str, paramiko.PKey]]

    @classmethod
    def load(cls, path: Path, mtime: float) -> _KnownHosts:
        plain: dict[str, list[tuple[int, paramiko.PKey]]] = {}
        hashed: list[tuple[int, str, paramiko.PKey]] = []
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
            except paramiko.SSHException:
                continue
            if entry is None or entry.key is None:
                continue
            for name in entry.hostnames:
                if name.startswith("|1|"):
                    hashed.append((lineno, name, entry.key))
                else:
                    plain.setdefault(name, []).append((lineno, entry.key))
        return cls(mtime, plain, hashed)

    def lookup(self, name: str) -> dict[str, paramiko.PKey]:
        """The host's keys by type, the first line of each type winning (as with paramiko's HostKeys)."""
        found = list(self.plain.get(name, ()))
        if self.hashed and not name.startswith("|1|"):
            found += [(lineno, key) for lineno, entry, key in self.hashed
                      if hmac.compare_digest(paramiko.HostKeys.hash_host(name, entry), entry)]
        keys: dict[str, paramiko.PKey] = {}
        for _, key in sorted(found, key=lambda item: item[0]):
            keys.setdefault(key.get_name(), key)
        return keys


_known_hosts_lock = threading.Lock()
_known_hosts_cache: dict[Path, _KnownHosts] = {}


def _known(path: Path | None) -> _KnownHosts | None:
    """A known_hosts file, parsed once per change and shared by every connection (hundreds of hosts); no file:
    None. The file is looked at without the lock (a thousand threads would queue on it for a stat each)."""
    if path is None:
        return None
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    cached = _known_hosts_cache.get(path)
    if cached is not None and cached.mtime == mtime:
        return cached
    with _known_hosts_lock:
        cached = _known_hosts_cache.get(path)
        if cached is None or cached.mtime != mtime:
            cached = _known_hosts_cache[path] = _KnownHosts.load(path, mtime)
        return cached


_host_keys_cache: dict[Path, tuple[float, paramiko.HostKeys]] = {}


def known_hosts(path: Path | None) -> paramiko.HostKeys:
    """A known_hosts file as paramiko's HostKeys, parsed once per change (connections use the indexed
    `host_keys` instead); no file: no known keys."""
    if path is None or not path.exists():
        return paramiko.HostKeys()
    with _known_hosts_lock:
        mtime = path.stat().st_mtime
        cached = _host_keys_cache.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, paramiko.HostKeys(str(path)))
            _host_keys_cache[path] = cached
        return cached[1]


def host_keys(path: Path | None, address: str, port: int = 22) -> dict[str, paramiko.PKey]:
    """The recorded keys of one host, by key type (an indexed lookup in the cached file)."""
    known = _known(path)
    return known.lookup(host_key_name(address, port)) if known else {}


def host_key_name(address: str, port: int) -> str:
    """How known_hosts names a host: the address, or `[address]:port` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def known_host_lines(path: Path | None, address: str, port: int = 22) -> list[str]:
    """The known_hosts lines of one host (hashed entries too), e.g. for a remote side's own check."""
    name = host_key_name(address, port)
    return [f"{name} {keytype} {key.get_base64()}" for keytype, key in host_keys(path, address, port).items()]


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept an unknown key once and append it to known_hosts; a changed key still fails."""

    _lock = threading.Lock()

    def __init__(self, known_hosts: Path | None) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.known_hosts is None:
            raise SSHError("host_key", "trust-on-first-use needs a known_hosts file to record the key in")
        with self._lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with self.known_hosts.open("a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def verified_client(address: str, port: int, known_hosts_file: Path | None,
                    trust_on_first_use: bool = False) -> paramiko.SSHClient:
    """A paramiko client that knows the host's recorded keys and refuses any other (an unknown key is
    accepted and recorded only with trust-on-first-use)."""
    client = paramiko.SSHClient()
    name = host_key_name(address, port)
    for keytype, key in host_keys(known_hosts_file, address, port).items():
        client.get_host_keys().add(name, keytype, key)
    client.set_missing_host_key_policy(
        TrustOnFirstUse(known_hosts_file) if trust_on_first_use else paramiko.RejectPolicy())
    return client


# How many targets one SSH connection to a jump host carries at once. Each target is one `direct-tcpip` channel
# of the same TCP connection, and one paramiko transport thread does all of that connection's crypto and
# windowing: a few dozen channels keep it busy without starving any, hundreds would serialise the whole fleet
# behind one thread and one TCP window (and a bastion's sshd counts them against MaxSessions-like limits).
# A fleet of 1,000 hosts behind one bastion thus opens about 30 connections to it, well under sshd's
# MaxStartups.
TARGETS_PER_JUMP_CONNECTION = 32


@dataclass
class _JumpConnection:
    clients: list[paramiko.SSHClient]  # outermost first; the last one's transport opens the channels
    active: int = 0
    # Channel opens on one transport go one at a time: paramiko keeps one "last open failure" per transport, so
    # two failing at once lose a reason ("administratively prohibited" becomes "Unable to open channel.").
    # An open is one round trip; the channels then run concurrently.
    opening: threading.Lock = field(default_factory=threading.Lock)

    @property
    def alive(self) -> bool:
        transport = self.clients[-1].get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        for client in reversed(self.clients):
            client.close()


@dataclass
class JumpPool:
    """Connections to jump hosts shared by a fleet run: a target borrows a connection that carries fewer than
    `per_connection` targets, or a new one is opened (one at a time per jump chain). Thread-safe; `close` ends
    them all. One pool per fleet run: a jump host that could not be reached is not tried again in it."""

    per_connection: int = TARGETS_PER_JUMP_CONNECTION
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: dict[tuple[Target, ...], list[_JumpConnection]] = field(default_factory=dict)
    _opening: dict[tuple[Target, ...], threading.Lock] = field(default_factory=dict)
    # A chain whose connection failed in this pool's run (host key, auth, unreachable): not tried again per
    # target, or a thousand hosts behind a dead bastion would wait out a thousand timeouts one after another.
    _failed: dict[tuple[Target, ...], SSHError] = field(default_factory=dict)

    @contextlib.contextmanager
    def channel(self, target: Target, timeout: float, trust_on_first_use: bool) -> Iterator[paramiko.Channel]:
        """A `direct-tcpip` channel to the target through its jump chain, held for the block."""
        conn = self._acquire(target.jumps, timeout, trust_on_first_use)
        try:
            with conn.opening:
                channel = _open_forward(conn.clients[-1], target.jumps[-1], target.address, target.port, timeout)
            try:
                yield channel
            finally:
                channel.close()
        finally:
            with self._lock:
                conn.active -= 1

    def _acquire(self, chain: tuple[Target, ...], timeout: float, trust_on_first_use: bool) -> _JumpConnection:
        conn = self._borrow(chain)
        if conn is not None:
            return conn
        # One new connection per chain at a time: a fleet's first hundred workers then share the first few
        # connections instead of each opening its own (the bound is per connection, not a count of them).
        with self._opening_lock(chain):
            conn = self._borrow(chain)
            if conn is not None:
                return conn
            failed = self._failed.get(chain)
            if failed is not None:  # this run could not reach the jump host: its other targets fail alike, at once
                raise SSHError(failed.kind, str(failed))
            try:
                conn = _JumpConnection(_connect_chain(chain, timeout, trust_on_first_use), active=1)
            except SSHError as exc:
                self._failed[chain] = exc
                raise
            with self._lock:
                self._connections.setdefault(chain, []).append(conn)
            return conn

    def _borrow(self, chain: tuple[Target, ...]) -> _JumpConnection | None:
        with self._lock:
            pool = self._connections.setdefault(chain, [])
            for dead in [c for c in pool if not c.alive and c.active == 0]:
                pool.remove(dead)
                dead.close()
            conn = next((c for c in pool if c.alive and c.active < self.per_connection), None)
            if conn is not None:
                conn.active += 1
            return conn

    def _opening_lock(self, chain: tuple[Target, ...]) -> threading.Lock:
        with self._lock:
            return self._opening.setdefault(chain, threading.Lock())

    def connections(self) -> int:
        """How many jump host connections are open (for tests and reports)."""
        with self._lock:
            return sum(len(v) for v in self._connections.values())

    def close(self) -> None:
        with self._lock:
            for pool in self._connections.values():
                for conn in pool:
                    conn.close()
            self._connections.clear()


def _connect_chain(chain: tuple[Target, ...], timeout: float, trust_on_first_use: bool) -> list[paramiko.SSHClient]:
    clients: list[paramiko.SSHClient] = []
    try:
        for i, jump in enumerate(chain):
            sock = _open_forward(clients[-1], chain[i - 1], jump.address, jump.port, timeout) if clients else None
            try:
                clients.append(connect(jump, timeout=timeout, trust_on_first_use=trust_on_first_use, sock=sock))
            except SSHError as exc:
                raise SSHError(exc.kind, f"jump host {jump.name} ({host_key_name(jump.address, jump.port)}): "
                                         f"{exc}") from exc
    except BaseException:
        for client in reversed(clients):
            client.close()
        raise
    return clients


def _open_forward(client: paramiko.SSHClient, jump: Target, address: str, port: int,
                  timeout: float) -> paramiko.Channel:
    """A `direct-tcpip` channel from the jump host to address:port; a refusal says what was tried and why."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise SSHError("unreachable", f"the connection to jump host {jump.name} closed")
    dest = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        return transport.open_channel("direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout)
    except paramiko.ChannelException as exc:
        if exc.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
            raise SSHError("error", f"the jump host {jump.name} ({jump.address}) refused TCP forwarding to {dest} "
                                    f"(AllowTcpForwarding?): tried a direct-tcpip channel through its sshd as "
                                    f"{jump.user}, refused: {exc.text}. jiyue needs TCP forwarding on the jump host; "
                                    "a bastion that offers only a login shell is not supported") from exc
        raise SSHError("unreachable", f"the jump host {jump.name} ({jump.address}) could not reach {dest}: "
                                      f"{exc.text}") from exc
    except paramiko.SSHException as exc:
        raise SSHError("timeout", f"the jump host {jump.name} did not open a channel to {dest} within "
                                  f"{timeout:g} s: {exc}") from exc


class _ChannelSocket:
    """A channel through a jump host as a target session's socket, whose closing is left to the caller, after the
    session's thread has stopped. paramiko's transport closes its socket while its own thread may still be sending;
    a data packet reaching the jump host's sshd after the channel's close makes OpenSSH drop the whole
    connection ("data packet referred to nonexistent channel"), and with it every other target on it: at a
    thousand targets behind one bastion, seven in ten failed so."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self.closing = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.channel, name)

    @property
    def _closed(self) -> bool:  # what paramiko's transport asks of its socket while it stops
        return self.channel.closed

    def send(self, data: bytes) -> int:
        if self.closing:  # the session is closing: nothing more goes out (the channel may close any moment)
            raise OSError("the session is closing")
        return self.channel.send(data)

    def close(self) -> None:
        """Stop sending; the channel itself is closed by whoever opened it (`JumpPool.channel`), after
        `close_session`."""
        self.closing = True


def close_session(client: paramiko.SSHClient) -> None:
    """Close a session and wait until its thread has stopped (it looks up every 0.1 s; at most 10 s under load)."""
    transport = client.get_transport()
    client.close()
    if transport is not None and transport is not threading.current_thread():
        transport.join(10.0)


def connect(target: Target, timeout: float = 10.0, trust_on_first_use: bool = False,
            retries: int = 1, sock: paramiko.Channel | None = None) -> paramiko.SSHClient:
    """Open a verified session (over `sock`, a channel through a jump host, when given), retrying a failed
    direct connect once (a busy sshd drops a few)."""
    attempt = 0
    while True:
        try:
            return _connect_once(target, timeout, trust_on_first_use, sock)
        except SSHError as exc:
            if exc.kind not in ("unreachable", "timeout") or attempt >= retries or sock is not None:
                raise
            attempt += 1
            time.sleep(0.2)


_keys_lock = threading.Lock()
_keys_cache: dict[Path, tuple[float, paramiko.PKey]] = {}


def private_key(path: Path) -> paramiko.PKey | None:
    """The private key file, read once per change for the whole fleet run (paramiko reads and parses it for each
    connection, trying each key type in turn); None when paramiko must read it itself: an encrypted key, a
    certificate beside it (`-cert.pub`), a file it cannot read."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    cached = _keys_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    if Path(f"{path}-cert.pub").exists():
        return None
    with _keys_lock:
        try:
            key = paramiko.PKey.from_path(path)
        except (paramiko.SSHException, OSError, ValueError):
            return None
        _keys_cache[path] = (mtime, key)
        return key


def _discard(client: paramiko.SSHClient, sock: paramiko.Channel | None) -> None:
    """A failed session's end: over a jump host's channel, wait for its thread before the channel may close."""
    if sock is not None:
        close_session(client)
    else:
        client.close()


def _connect_once(target: Target, timeout: float, trust_on_first_use: bool,
                  sock: paramiko.Channel | None = None) -> paramiko.SSHClient:
    client = verified_client(target.address, target.port, target.known_hosts, trust_on_first_use)
    pkey = private_key(target.key) if target.key else None
    try:
        client.connect(target.address, port=target.port, username=target.user, pkey=pkey,
                       key_filename=str(target.key) if target.key and pkey is None else None, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, look_for_keys=target.key is None,
                       allow_agent=False, sock=_ChannelSocket(sock) if sock is not None else None)
    except paramiko.BadHostKeyException as exc:
        _discard(client, sock)
        raise SSHError("host_key", f"host key CHANGED for {target.address} (expected the one in "
                                   f"{target.known_hosts}): possible impersonation, not connecting") from exc
    except paramiko.AuthenticationException as exc:
        _discard(client, sock)
        raise SSHError("auth_failed", f"authentication failed as {target.user}: {exc}") from exc
    except paramiko.SSHException as exc:
        _discard(client, sock)
        if "not found in known_hosts" in str(exc):
            raise SSHError("host_key", f"unknown host key for {target.address}; add it to {target.known_hosts} "
                                       "or run with trust-on-first-use") from exc
        if "timeout" in str(exc).lower() or "banner" in str(exc).lower():
            raise SSHError("timeout", f"SSH handshake timed out after {timeout:g} s: {exc}") from exc
        raise SSHError("error", f"SSH error: {exc}") from exc
    except SSHError:
        _discard(client, sock)
        raise
    except TimeoutError as exc:
        _discard(client, sock)
        raise SSHError("timeout", f"no answer from {target.address}:{target.port} within {timeout:g} s") from exc
    except OSError as exc:
        _discard(client, sock)
        raise SSHError("unreachable", f"cannot reach {target.address}:{target.port}: {exc.strerror or exc}") from exc
    return client


def run_script(client: paramiko.SSHClient, script: str, timeout: float = 60.0) -> Output:
    """Run a POSIX-sh script fed on stdin; its output is returned as bytes, decoded by the caller."""
    began = time.monotonic()
    transport = client.get_transport()
    if transport is None:
        raise SSHError("unreachable", "the session closed before the script could run")
    channel = transport.open_session(timeout=timeout)
    channel.settimeout(timeout)
    try:
        channel.exec_command("LC_ALL=C exec /bin/sh -s")
        channel.sendall(script.encode())
        channel.shutdown_write()
        stdout, stderr = bytearray(), bytearray()
        # Wait on an event paramiko sets when data (or EOF) arrives on either stream, rather than polling: a
        # thousand threads polling every few milliseconds cost more CPU than the sessions themselves.
        arrived = threading.Event()
        channel.in_buffer.set_event(arrived)
        channel.in_stderr_buffer.set_event(arrived)

        def drain() -> None:
            while channel.recv_ready():
                stdout.extend(channel.recv(65536))
            while channel.recv_stderr_ready():
                stderr.extend(channel.recv_stderr(65536))

        # Read until the channel's EOF, not until the exit status: sshd may send the exit status while
        # the last of the output is still on its way (a script that prints everything as it exits).
        while True:
            left = timeout - (time.monotonic() - began)
            if left <= 0:
                raise SSHError("timeout", f"the script ran longer than {timeout:g} s")
            drain()
            if channel.eof_received or channel.closed:
                drain()  # what came in with the EOF
                break
            if channel.recv_ready() or channel.recv_stderr_ready():
                continue  # came in while the other stream was read (that read cleared the shared event)
            arrived.wait(min(left, 1.0))  # woken by data or EOF; the bound only guards against a missed wake
        return Output(channel.recv_exit_status(), bytes(stdout), bytes(stderr), time.monotonic() - began)
    except TimeoutError as exc:
        raise SSHError("timeout", f"the script ran longer than {timeout:g} s") from exc
    finally:
        channel.close()


def run(target: Target, script: str, timeout: float = 60.0, trust_on_first_use: bool = False,
        pool: JumpPool | None = None) -> Output:
    """Connect, run one script, close: the whole of one host's round trip. Through its jump hosts, if it has
    any, on a connection of `pool` (a fleet run's), or of a pool of its own."""
    connect_timeout = min(timeout, 15.0)
    if not target.jumps:
        client = connect(target, timeout=connect_timeout, trust_on_first_use=trust_on_first_use)
        try:
            return run_script(client, script, timeout)
        finally:
            client.close()
    own = pool is None
    pool = JumpPool() if pool is None else pool
    try:
        with pool.channel(target, connect_timeout, trust_on_first_use) as channel:
            client = connect(target, timeout=connect_timeout, trust_on_first_use=trust_on_first_use, sock=channel)
            try:
                return run_script(client, script, timeout)
            finally:
                close_session(client)  # before the pool closes the channel (see _ChannelSocket)
    finally:
        if own:
            pool.close()


def identification(address: str, port: int = 22, timeout: float = 3.0) -> str:
    """The SSH server's identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2`), read as the first line it sends
    (RFC 4253 4.2: the server speaks first), without logging in; "" when nothing SSH-like answers in time."""
    import socket

    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(512)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return ""
    for line in data.decode("ascii", "replace").splitlines():  # servers may send other lines before it
        if line.startswith("SSH-"):
            return line.strip()[:255]
    return ""
