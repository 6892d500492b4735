"""EventFeed: libvirt's domain event callbacks on one connection, as a stream of DomainEvents.

libvirtaio delivers callbacks on the event-loop thread. Each callback only translates the
event (agent/virt/events.py, table-driven) and `put_nowait`s it; it never calls libvirt and
never awaits. `events()` iterates the queue; the connection's close callback ends the stream
with `ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import libvirt

from agent.virt import events as evtab
from agent.virt.port import ConnectionLost, DomainEvent, EventKind

log = logging.getLogger(__name__)


class EventFeed:
    def __init__(self, conn: libvirt.virConnect) -> None:
        self._conn = conn
        self._queue: asyncio.Queue[DomainEvent | ConnectionLost] = asyncio.Queue()
        self._callback_ids: list[int] = []
        self.closed = False  # the connection closed underneath us

    def register(self) -> None:
        reg = self._conn.domainEventRegisterAny
        self._callback_ids = [
            reg(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None),
            reg(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None),
            reg(None, libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, self._on_agent, None),
            reg(None, libvirt.VIR_DOMAIN_EVENT_ID_GRAPHICS, self._on_graphics, None),
            reg(None, libvirt.VIR_DOMAIN_EVENT_ID_RTC_CHANGE, self._on_rtc_change, None),
            reg(None, libvirt.VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, self._on_io_error, None),
        ]
        self._conn.registerCloseCallback(self._on_close, None)

    def deregister(self) -> None:
        for cid in self._callback_ids:
            try:
                self._conn.domainEventDeregisterAny(cid)
            except libvirt.libvirtError:
                log.debug("event callback %d already gone", cid)
        self._callback_ids = []
        try:
            self._conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            log.debug("close callback already gone")
        self.closed = True

    async def events(self) -> AsyncIterator[DomainEvent]:
        while True:
            item = await self._queue.get()
            if isinstance(item, ConnectionLost):
                raise item
            yield item

    def _put(self, dom: libvirt.virDomain, kind: EventKind, **kw: Any) -> None:
        self._queue.put_nowait(DomainEvent(uuid.UUID(dom.UUIDString()), kind, **kw))

    def _on_lifecycle(
        self, _c: Any, dom: libvirt.virDomain, event: int, detail: int, _o: Any
    ) -> None:
        kind, cause = evtab.lifecycle(event, detail)
        self._put(dom, kind, stop_cause=cause, pause_code=evtab.pause_code(event, detail))

    def _on_io_error(
        self, _c: Any, dom: libvirt.virDomain, _path: str, _alias: str, _act: int, why: str, _o: Any
    ) -> None:
        self._put(dom, EventKind.IO_ERROR, pause_code="ENOSPC" if why == "enospc" else "EIO")

    def _on_rtc_change(self, _c: Any, dom: libvirt.virDomain, utcoffset: int, _o: Any) -> None:
        self._put(dom, EventKind.RTC_CHANGE, utc_offset=int(utcoffset))

    def _on_reboot(self, _c: Any, dom: libvirt.virDomain, _o: Any) -> None:
        self._put(dom, EventKind.REBOOT)

    def _on_agent(self, _c: Any, dom: libvirt.virDomain, state: int, _r: int, _o: Any) -> None:
        kind = evtab.AGENT_STATE.get(state)
        if kind is not None:
            self._put(dom, kind)

    def _on_graphics(
        self,
        _c: Any,
        dom: libvirt.virDomain,
        phase: int,
        local: dict[str, str],
        remote: dict[str, str],
        _auth: str,
        _subject: Any,
        _o: Any,
    ) -> None:
        kind = evtab.GRAPHICS_PHASE.get(phase)
        if kind is not None:
            self._put(dom, kind, client=evtab.graphics_client(local, remote))

    def _on_close(self, _conn: Any, reason: int, _o: Any) -> None:
        self.closed = True
        log.error("libvirt connection closed (reason %d)", reason)
        self._queue.put_nowait(ConnectionLost(f"libvirt connection closed (reason {reason})"))
