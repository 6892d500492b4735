"""Which HTTP connections hvagent admits: at most `max_connections` open at once, on every
listener (TCP and the Unix socket together). A connection past the cap is answered
`503 Service Unavailable` with `Connection: close` and closed, before aiohttp parses anything.

Timeouts are aiohttp's own, set where the runner is built (agent/daemon.py): its keep-alive
timeout, counted from the moment a connection opens or its last response went out, closes a
connection that has not sent a whole request head by then (idle, or a slow client dribbling
headers); `create_app(body_timeout_s=...)` bounds reading a request body (408 past it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: 30\r\n\r\nhvagent: too many connections\n"
)


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class _Capped:
    """The protocol factory the listeners call: aiohttp's handler while under the cap."""

    def __init__(self, server: web.Server, cap: int, refused: list[int]) -> None:
        self._server = server
        self._cap = cap
        self._refused = refused

    def __call__(self) -> asyncio.Protocol:
        if len(self._server.connections) >= self._cap:
            self._refused[0] += 1
            if self._refused[0] in (1, 10, 100) or self._refused[0] % 1000 == 0:
                log.warning(
                    "connection refused: %d open (rpc.max_connections); %d refused so far",
                    len(self._server.connections),
                    self._refused[0],
                )
            return _Refused()
        return self._server()


class CappedRunner(web.AppRunner):
    """web.AppRunner whose listeners admit at most `max_connections` connections."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._cap = max_connections
        self.refused = [0]  # connections turned away, for tests and logs

    @property
    def server(self) -> Any:
        inner = super().server
        return None if inner is None else _Capped(inner, self._cap, self.refused)
