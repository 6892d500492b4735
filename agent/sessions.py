"""Console sessions and the action on console disconnect: pure bookkeeping, no I/O.

libvirt reports every console client connection three times (connect, initialize once
authenticated, disconnect). A session is an authenticated client: for VNC one connection,
for SPICE one client host, since a SPICE client opens a connection per channel (main,
display, inputs, cursor, ...) and spice-gtk may reopen the main channel on the TLS port.

The disconnect action (VDSM's `disconnectAction`) runs when the last session of the VM ends
and nobody came back within `delay` (`consoleDisconnectActionDelay` minutes, at least the
configured grace that absorbs the SPICE channel reconnect). VDSM's fixed 2 s timer raced
that reconnect (reference §13.8); here any authenticated client cancels the pending action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from agent.consoles import GraphicsInfo


class DisconnectAction(StrEnum):
    NONE = "NONE"
    LOCK_SCREEN = "LOCK_SCREEN"  # needs the oVirt guest agent
    LOGOUT = "LOGOUT"  # needs the oVirt guest agent
    SHUTDOWN = "SHUTDOWN"
    REBOOT = "REBOOT"


NEEDS_OVIRT_AGENT = frozenset({DisconnectAction.LOCK_SCREEN, DisconnectAction.LOGOUT})
MAX_DELAY_MIN = 7 * 24 * 60  # a week; larger values are refused as a likely unit mistake


@dataclass(frozen=True)
class DisconnectPolicy:
    action: DisconnectAction = DisconnectAction.NONE
    delay_min: int = 0

    @property
    def runs(self) -> bool:
        """Whether hvagent acts on a disconnect (LOCK_SCREEN/LOGOUT cannot: no oVirt agent)."""
        return self.action in (DisconnectAction.SHUTDOWN, DisconnectAction.REBOOT)

    def deadline(self, now: float, grace_s: float) -> float | None:
        """When the action is due after the last session ended at `now`; None: no action."""
        if not self.runs:
            return None
        return now + max(grace_s, self.delay_min * 60.0)


def console_of(consoles: Sequence[GraphicsInfo], port: int | None) -> str:
    """The console type a client reached, by the local port (plain or TLS) libvirt reports.

    A client on a Unix socket (no port) or an unknown port belongs to the only console when
    there is one; otherwise it is reported as "unknown".
    """
    for c in consoles:
        if port is not None and port in (c.port, c.tls_port):
            return c.type
    return consoles[0].type if len(consoles) == 1 else "unknown"


class Sessions:
    """Authenticated console clients: console type -> open (host, port) connections."""

    def __init__(self) -> None:
        self._open: dict[str, dict[tuple[str, int | None], int]] = {}
        self._seq = 0  # order of opening, for the most recent client's address

    def opened(self, console: str, host: str, port: int | None) -> None:
        self._seq += 1
        self._open.setdefault(console, {})[(host, port)] = self._seq

    def closed(self, console: str, host: str, port: int | None) -> bool:
        """Forget a connection; True if it was an authenticated one."""
        conns = self._open.get(console, {})
        return conns.pop((host, port), None) is not None

    def count(self, console: str) -> int:
        conns = self._open.get(console, {})
        if console == "spice":
            return len({host for host, _ in conns})
        return len(conns)

    def counts(self, consoles: list[str]) -> dict[str, int]:
        """Session count per console type, for every type given and any with clients."""
        return {c: self.count(c) for c in dict.fromkeys([*consoles, *self._open])}

    @property
    def total(self) -> int:
        return sum(len(conns) for conns in self._open.values())

    @property
    def client_ip(self) -> str:
        """The most recently authenticated client still connected ("" when none): VDSM's
        `clientIp`."""
        if not self._open:
            return ""  # the common case, on every VM's stats
        latest = max(
            ((seq, host) for conns in self._open.values() for (host, _), seq in conns.items()),
            default=None,
        )
        return latest[1] if latest else ""

    def clear(self) -> None:
        """All clients are gone (the QEMU process stopped)."""
        self._open.clear()
