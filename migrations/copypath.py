"""Which way a migration's data copy goes between two hosts: directly, or through a jump host (堡垒机).

rsync runs on the sending host and reaches the receiving host over SSH (playbooks/library/jiyue_sync.py). Whether
the sender can open that connection directly is read from the inventory, from the same `jump:` settings that say
how the control node reaches each host (a run's `--jump` override included):

1. Both hosts are reached through the same jump chain (the same jump host, or both directly): they are in one
   zone, and the copy goes **direct**, host to host (a bastion sits between zones, not inside one).
2. Otherwise, if the receiver is behind a jump chain: the copy goes **through the receiver's jump hosts**,
   outermost first, as the control node goes; the sender reaches the outermost one at the address the inventory
   gives it (the bastion's address is the one a department's hosts are told to use as well).
3. Otherwise (the receiver is reached directly, the sender only through its jump chain): the copy goes **through
   the sender's jump hosts, innermost first**: out of the sender's zone the way in, backwards.

The copy through a jump host is `ssh -J` from the sender (ProxyJump in a config the module writes for the one
rsync): the data never passes through the control node, no key is copied to any host (each hop authenticates
with the operator's key through the agent the play forwards), and each hop's host key is checked against the
jump host's own known_hosts line (StrictHostKeyChecking yes), the receiver's against its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from inventory.model import Inventory, SSHTarget
from jiyue.ssh import known_host_lines


class CopyPathError(Exception):
    """A jump host the copy must pass has no known host key: it could not be verified."""


@dataclass(frozen=True)
class CopyPath:
    """The way one copy goes: `via` the jump hosts in the order the sender passes them (empty: direct)."""

    sender: str
    receiver: str
    via: tuple[SSHTarget, ...]
    why: str

    @property
    def direct(self) -> bool:
        return not self.via

    @property
    def kind(self) -> str:
        """`direct` or `via <jump host>[,<jump host>]`: what the run's output and the journal say."""
        return "direct" if self.direct else "via " + ",".join(j.name or j.address for j in self.via)

    def hops(self) -> list[dict]:
        """The jump hosts as jiyue_sync's `jump` option: address, port, user and known_hosts line(s) of each."""
        out = []
        for j in self.via:
            lines = known_host_lines(j.known_hosts, j.address, j.port)
            if not lines:
                raise CopyPathError(f"the jump host {j.name} ({j.address}) is not in {j.known_hosts}: its host key "
                                    f"cannot be verified for the copy {self.sender} -> {self.receiver}")
            out.append({"name": j.name or j.address, "address": j.address, "port": j.port, "user": j.user,
                        "known_hosts": "\n".join(lines)})
        return out

    def record(self) -> dict:
        return {"from": self.sender, "to": self.receiver, "path": self.kind, "why": self.why}


def _names(chain: list[SSHTarget]) -> tuple[str, ...]:
    return tuple(j.name or j.address for j in chain)


def copy_path(inv: Inventory, sender: str, receiver: str, jump: str | None = None) -> CopyPath:
    """The path of a copy from `sender` to `receiver` (inventory host names); the rule is the module's docstring."""
    out = inv.jump_chain(inv.hosts[sender], jump)
    into = inv.jump_chain(inv.hosts[receiver], jump)
    if _names(out) == _names(into):
        why = (f"both behind the jump host {_names(out)[-1]}: one zone" if out
               else "both reached directly from the control node")
        return CopyPath(sender, receiver, (), why)
    if into:
        return CopyPath(sender, receiver, tuple(into),
                        f"{receiver} is behind {', '.join(_names(into))} and {sender} is not in its zone")
    return CopyPath(sender, receiver, tuple(reversed(out)),
                    f"{sender} is behind {', '.join(_names(out))}; {receiver} is outside that zone")
