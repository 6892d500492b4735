"""GuestPoller: one running VM's guest-agent poller, a subtask beside (never in) the VM's
command inbox, so a slow or dead agent cannot delay a shutdown, a ticket or any verb.

Every `[guest_agent] poll_interval_s` it asks the port for guest info (time-boxed by the
port, and again here). An answer replaces the fields VM stats report (agent/guestinfo.py)
and clears `stale`; a failure or a timeout keeps the last fields, sets `stale`, and doubles
the wait up to `backoff_max_s`. `wake()` (the agent connected) asks again at once. On a
fresh start (not an adoption) the first question waits for that wake or one interval: no
agent answers while the guest boots, and a create's libvirt calls come first.
Verbs only copy `report()`: never an agent call on a verb's path. `GuestPolling` is the
owner's slot for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from agent import errors
from agent.config import GuestAgentConfig
from agent.guestinfo import UNKNOWN, to_wire
from agent.runtime.vm.reporting import JsonMemo
from agent.runtime.vm.subtasks import Subtasks
from agent.virt.port import Hypervisor

log = logging.getLogger(__name__)


class GuestPoller:
    def __init__(
        self, port: Hypervisor, vm_id: uuid.UUID, cfg: GuestAgentConfig, *, fresh: bool = False
    ) -> None:
        self._port = port
        self._fresh = fresh
        self._vm_id = vm_id
        self._cfg = cfg
        self._wake = asyncio.Event()
        self.fields: Mapping[str, Any] = UNKNOWN
        self.answered_at: float | None = None  # time.monotonic() of the last answer
        self.stale = True
        self.failures = 0  # in a row
        self._json: str | None = None  # report() serialized, until it changes

    def wake(self) -> None:
        self._wake.set()

    def report(self) -> dict[str, Any]:
        """The guest fields for VM stats: the last answer, marked stale or not."""
        out = {**self.fields, "guestInfoStale": self.stale}
        if self.answered_at is not None:
            out["guestInfoTime"] = str(int(self.answered_at * 1000))  # like statusTime
        return out

    def report_json(self) -> str:
        """report() as JSON object members (no braces), serialized once per change."""
        if self._json is None:
            self._json = json.dumps(self.report())[1:-1]
        return self._json

    async def poll_once(self) -> None:
        # The port time-boxes the call; this deadline covers a port that does not.
        deadline = 3 * self._cfg.timeout_s + 5
        try:
            async with asyncio.timeout(deadline):
                info = await self._port.guest_info(self._vm_id, timeout_s=self._cfg.timeout_s)
            fields = to_wire(info)
        except (errors.AgentError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, errors.AgentError) else f"{deadline} s"
            self._failed(logging.INFO, reason)
            return
        except Exception as exc:  # a bug must not end the poller: counted as a failure
            self._failed(logging.WARNING, f"{type(exc).__name__}: {exc}")
            return
        self._json = None
        self.fields = fields
        self.answered_at = time.monotonic()
        self.stale = False
        self.failures = 0

    def _failed(self, level: int, reason: str) -> None:
        self._json = None
        self.stale = True
        self.failures += 1
        level = level if self.failures == 1 else logging.DEBUG
        log.log(level, "guest agent did not answer (%d in a row): %s", self.failures, reason)

    def next_wait(self) -> float:
        wait = self._cfg.poll_interval_s * 2 ** min(self.failures, 20)
        return min(wait, self._cfg.backoff_max_s)

    async def run(self) -> None:
        if self._fresh:
            await self._wait(self._cfg.poll_interval_s)
        while True:
            self._wake.clear()
            await self.poll_once()
            await self._wait(self.next_wait())

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()


class GuestPolling:
    """A VM owner's guest-agent poller slot: started with the domain (a `while_running`
    subtask, so it ends when the domain stops), none without a config or for a foreign VM.
    Also keeps the owner's JsonMemo for Host.getAllVmStats (runtime/vm/reporting.py)."""

    def __init__(self, port: Hypervisor, vm_id: uuid.UUID, cfg: GuestAgentConfig | None) -> None:
        self._port, self._vm_id, self._cfg = port, vm_id, cfg
        self.poller: GuestPoller | None = None
        self._task: asyncio.Task[None] | None = None
        self.memo = JsonMemo()

    def start(self, subtasks: Subtasks, *, foreign: bool, fresh: bool = False) -> None:
        """`fresh`: the domain has just started (not adopted running)."""
        if self._cfg is None or foreign or (self._task is not None and not self._task.done()):
            return
        self.poller = GuestPoller(self._port, self._vm_id, self._cfg, fresh=fresh)
        self._task = subtasks.start("guest-agent", self.poller.run, while_running=True)

    @property
    def running(self) -> GuestPoller | None:
        """The poller while its domain runs (its last answer means nothing after)."""
        return self.poller if self._task is not None and not self._task.done() else None

    def wake(self) -> None:
        if self.running is not None:
            self.running.wake()

    def report(self) -> dict[str, Any] | None:
        return self.running.report() if self.running is not None else None

    def report_json(self) -> str | None:
        return self.running.report_json() if self.running is not None else None
