"""The drain: hvagent as the one client of a channel socket QEMU binds, from domain start.

Connects with retries while QEMU creates the socket (quickly at first, then every
`MAX_RETRY_S`), reads everything into the channel (`Channel.append`) as it arrives and
reconnects whenever the socket closes, until the VM's channels are told the domain stopped
(then it reads on to the end QEMU left, and ends) or the task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Protocol

from agent.runtime.channels.channel import Channel

log = logging.getLogger(__name__)


class Keeper(Protocol):
    """Who keeps connections open across an hvagent restart (agent/systemd.py FdStore)."""

    def take(self, name: str) -> socket.socket | None: ...

    def keep(self, name: str, fd: int) -> None: ...

    def drop(self, name: str) -> None: ...


FIRST_RETRY_S = 0.05
MAX_RETRY_S = 1.0
WARN_AFTER_S = 30.0


class _Sink(asyncio.Protocol):
    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._channel.append(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def drain(channel: Channel, stopping: asyncio.Event, keeper: Keeper | None = None) -> None:
    """Drain `channel` until `stopping` is set and the socket is closed or absent. With a
    `keeper`, a connection kept across a restart is taken up again instead of connecting,
    and a new connection is handed to it (dropped again once its socket closes)."""
    loop = asyncio.get_running_loop()
    await channel.open()
    channel.set_live(True)
    delay = FIRST_RETRY_S
    waited = 0.0
    warned = False
    try:
        while True:
            kept = keeper.take(channel.key) if keeper is not None else None
            try:
                if kept is not None:
                    transport, sink = await loop.create_unix_connection(
                        lambda: _Sink(channel), sock=kept
                    )
                else:
                    transport, sink = await loop.create_unix_connection(
                        lambda: _Sink(channel), channel.path
                    )
                    if keeper is not None:
                        keeper.keep(channel.key, transport.get_extra_info("socket").fileno())
            except OSError as exc:
                if stopping.is_set():
                    return
                if waited >= WARN_AFTER_S and not warned:
                    log.warning(
                        "channel %s: cannot attach to %s for %.0f s: %s (still trying)",
                        channel.name, channel.path, waited, exc.strerror or exc,
                    )  # fmt: skip
                    warned = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                waited += delay
                delay = min(delay * 2, MAX_RETRY_S)
                continue
            log.info(
                "channel %s: attached at offset %d%s", channel.name, channel.end,
                " (the connection kept across the restart)" if kept is not None else "",
            )  # fmt: skip
            delay, waited, warned = FIRST_RETRY_S, 0.0, False
            try:
                await asyncio.shield(sink.closed)
            finally:
                transport.close()
            log.info("channel %s: socket closed at offset %d", channel.name, channel.end)
            if keeper is not None:
                keeper.drop(channel.key)
            if stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):  # no tight loop on a flapping socket
                await asyncio.wait_for(stopping.wait(), FIRST_RETRY_S)
    finally:
        channel.set_live(False)
