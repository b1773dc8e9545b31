"""fake-switches (Internap's Cisco simulator, Twisted) on a lab address: a device nobody here wrote.

It is installed with `--no-deps` (its declared Twisted<17 does not build on Python 3.11; it runs on the
Twisted pinned in requirements.txt). Quirks a client meets, left as they are, as on a real device:
its enable password check compares text with bytes on Python 3, so only an empty enable secret works;
it has no `end` (leave config mode with `exit`); its host key is the one built into the package.

    switch = start_fake_switch(lab, "198.18.30.250")     # cisco_generic, user/password root/root
    ConnectHandler(device_type="cisco_ios", host=switch.address, port=switch.port, username=switch.username,
                   password=switch.password, secret="", ...)
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.hosts import Lab

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeSwitch:
    address: str
    port: int
    hostname: str
    username: str
    password: str
    pid: int
    known_hosts: Path  # holds the package's built-in host key for this address

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)


def host_public_key() -> str:
    from fake_switches.transports.ssh_service import getRSAKeys

    return " ".join(getRSAKeys()[0].split()[:2])


def start_fake_switch(lab: Lab, address: str, port: int = 22, hostname: str = "fake-sw1", username: str = "root",
                      password: str = "root", model: str = "cisco_generic") -> FakeSwitch:
    """Run fake-switches in the lab's device namespace at `address:port`; wait until it answers SSH."""
    from lab.hosts import LabError, ssh_banner
    from lab.netsim.lab import NETNS_NAME, ensure_addresses

    ensure_addresses(lab, [ipaddress.ip_interface(f"{address}/24")])
    state = lab.state_dir / "devices" / f"fake-{hostname}"
    state.mkdir(parents=True, exist_ok=True)
    command = ["ip", "netns", "exec", lab.netns(NETNS_NAME), sys.executable, "-m", "lab.netsim.fakeswitches",
               "--address", address, "--port", str(port), "--hostname", hostname, "--username", username,
               "--model", model]
    with (state / "fake-switches.log").open("ab") as out:
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO),
                                                             "FAKE_SWITCH_PASSWORD": password})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"fake-switches exited with {proc.returncode}: see {state / 'fake-switches.log'}")
        if ssh_banner(address, port, timeout=0.5):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise LabError(f"fake-switches did not answer on {address}:{port}: see {state / 'fake-switches.log'}")
    known_hosts = state / "known_hosts"
    where = address if port == 22 else f"[{address}]:{port}"
    known_hosts.write_text(f"{where} {host_public_key()}\n")
    return FakeSwitch(address, port, hostname, username, password, proc.pid, known_hosts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake-switches on one address (the password comes from "
                                                 "FAKE_SWITCH_PASSWORD, never from the command line)")
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--hostname", default="fake-sw1")
    parser.add_argument("--username", default="root")
    parser.add_argument("--model", default="cisco_generic")
    args = parser.parse_args(argv)
    from fake_switches import switch_factory
    from fake_switches.transports.ssh_service import SwitchSshService
    from twisted.internet import reactor

    password = os.environ.get("FAKE_SWITCH_PASSWORD", "root").encode()
    # The third argument is the enable password; on Python 3 its check never matches (the quirk), so any
    # value works as long as clients send an empty enable secret.
    core = switch_factory.SwitchFactory().get(args.model, args.hostname, password)
    SwitchSshService(ip=args.address, port=args.port, switch_core=core,
                     users={args.username: password}).hook_to_reactor(reactor)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
