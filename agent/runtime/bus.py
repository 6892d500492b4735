"""StatusBus: fans VM status changes (and channel markers) out to `/events` and STOMP
subscribers as VDSM-style notifications.

Each subscriber gets a bounded queue; one that falls `MAX_BACKLOG` messages behind is dropped
(its queue receives None, and the WebSocket handler closes) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

log = logging.getLogger(__name__)

MAX_BACKLOG = 1000


def notify_time() -> int:
    """VDSM's event ordering stamp: 2**31-1 plus monotonic milliseconds."""
    return 2**31 - 1 + int(time.monotonic() * 1000)


def status_notification(vm_id: uuid.UUID, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": f"|virt|VM_status|{vm_id}",
        "params": {str(vm_id): details, "notify_time": notify_time()},
    }


def marker_notification(
    vm_id: uuid.UUID, channel: str, marker: str, offset: int, seen: float
) -> dict[str, Any]:
    """hvagent's own event: a configured marker went through a VM's channel."""
    return {
        "jsonrpc": "2.0",
        "method": f"|virt|VM_channel_marker|{vm_id}",
        "params": {
            str(vm_id): {"channel": channel, "marker": marker, "offset": offset, "time": seen},
            "notify_time": notify_time(),
        },
    }


class StatusBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        # Unbounded here: publish() caps each queue at MAX_BACKLOG and then one None. A
        # subscriber may add its own None to end its wait (the /events client closed).
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish_status(self, vm_id: uuid.UUID, details: dict[str, Any]) -> None:
        self.publish(status_notification(vm_id, details))

    def publish(self, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() >= MAX_BACKLOG:
                log.warning(
                    "dropping an /events subscriber that is %d messages behind", MAX_BACKLOG
                )
                self._subscribers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)
