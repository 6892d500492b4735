"""ConsoleWatch: one VM's console clients, its disconnect policy and its console metrics.

Owned and called by the VmOwner only (its task, no awaits here): graphics events go in, the
owner asks `action_due(now)` at the deadline `action_at` and runs the power ladder itself.
The bookkeeping rules are the pure ones in agent/sessions.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from agent.consoles import GraphicsInfo
from agent.sessions import (
    NEEDS_OVIRT_AGENT,
    DisconnectAction,
    DisconnectPolicy,
    Sessions,
    console_of,
)
from agent.virt.port import EventKind, GraphicsClient

log = logging.getLogger(__name__)


class ConsoleObserver(Protocol):
    """Who publishes console state (metrics.instruments.Instruments)."""

    def console_sessions(self, vm: str, console: str, count: int | None) -> None:
        """Open sessions on one console; None: the console is gone (VM down)."""

    def console_ticket(self, vm: str, console: str, expiry_epoch_s: float | None) -> None:
        """A ticket was set (math.inf: no expiry); None: no ticket any more (VM down)."""


class ConsoleWatch:
    def __init__(self, vm: str, observer: ConsoleObserver | None, grace_s: float) -> None:
        self._vm = vm
        self._observer = observer
        self._grace_s = grace_s
        self.sessions = Sessions()
        self.policy = DisconnectPolicy()
        self.action_at: float | None = None  # when the disconnect action is due
        self._published: set[str] = set()  # console labels with metric series

    def set_policy(self, policy: DisconnectPolicy) -> None:
        if policy == self.policy:
            return
        if policy.action in NEEDS_OVIRT_AGENT:
            log.warning(
                "disconnect action %s needs an oVirt guest agent, which hvagent does not "
                "speak: nothing will happen on console disconnect",
                policy.action,
            )
        else:
            log.info(
                "console disconnect action: %s (delay %d min)", policy.action, policy.delay_min
            )
        self.policy = policy
        if self.action_at is not None and not policy.runs:
            log.info("pending disconnect action cancelled: the policy changed")
            self.action_at = None

    def on_client(
        self,
        kind: EventKind,
        client: GraphicsClient,
        consoles: Sequence[GraphicsInfo],
        now: float,
    ) -> None:
        """A GRAPHICS event: count sessions, arm or cancel the disconnect action."""
        console = console_of(consoles, client.local_port)
        before = self.sessions.count(console)
        if kind is EventKind.GRAPHICS_INITIALIZE:
            self.sessions.opened(console, client.remote_host, client.remote_port)
            if self.action_at is not None:
                log.info("disconnect action %s cancelled: a client connected", self.policy.action)
                self.action_at = None
        elif kind is EventKind.GRAPHICS_DISCONNECT:
            if not self.sessions.closed(console, client.remote_host, client.remote_port):
                return  # never authenticated (a wrong password, a port probe)
            if self.sessions.total == 0:
                self.action_at = self.policy.deadline(now, self._grace_s)
                if self.action_at is not None:
                    log.info(
                        "the last console client left: %s in %.0f s unless one connects",
                        self.policy.action,
                        self.action_at - now,
                    )
        else:
            return  # CONNECT: not authenticated yet
        after = self.sessions.count(console)
        if after != before:
            log.info(
                "%s console: client %s %s (%d session(s))",
                console,
                client.remote_host,
                "connected" if after > before else "disconnected",
                after,
            )
            self.publish(consoles, running=True)

    def action_due(self, now: float) -> DisconnectAction | None:
        """The action to run now, if its deadline passed and still nobody is connected."""
        if self.action_at is None or now < self.action_at:
            return None
        self.action_at = None
        if not self.policy.runs or self.sessions.total:
            return None
        return self.policy.action

    def ticket_set(self, console: str, expiry_epoch_s: float) -> None:
        if self._observer is not None:
            self._observer.console_ticket(self._vm, console, expiry_epoch_s)
            self._published.add(console)

    def clients_gone(self) -> None:
        """The QEMU process stopped: its clients went with it, and any pending action."""
        self.sessions.clear()
        self.action_at = None

    def publish(self, consoles: Sequence[GraphicsInfo], *, running: bool) -> None:
        """Session counts for every console while the VM runs; once it is down or gone, its
        console series (sessions and tickets) are removed."""
        if self._observer is None:
            return
        if not running:
            for console in self._published:
                self._observer.console_sessions(self._vm, console, None)
                self._observer.console_ticket(self._vm, console, None)
            self._published.clear()
            return
        counts = self.sessions.counts([c.type for c in consoles])
        for console, count in counts.items():
            self._observer.console_sessions(self._vm, console, count)
        self._published.update(counts)
