"""A Unix socket server that plays QEMU's side of a virtio-serial channel (`mode="bind"`).

Like QEMU's chardev it serves one client at a time; what the "guest" writes while no client
is attached waits (a guest blocks then) and goes to the next client. Used by the channel
integration tests (the test driver binds no sockets) and bench/channel_memory.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os


class FakeChardev:
    def __init__(self, path: str) -> None:
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._client: asyncio.StreamWriter | None = None
        self._pending = bytearray()
        self.connections = 0
        self._attached = asyncio.Event()
        self._detached = asyncio.Event()

    async def start(self) -> FakeChardev:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._on_client, self.path)
        return self

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._client is not None:  # one client at a time: a second one is not serviced
            await reader.read()
            writer.close()
            return
        self._client = writer
        self._detached.clear()
        self.connections += 1
        self._attached.set()
        if self._pending:
            writer.write(bytes(self._pending))
            self._pending.clear()
        await reader.read()  # until the client goes away
        self._client = None
        self._attached.clear()
        self._detached.set()
        writer.close()

    async def attached(self, timeout: float = 30) -> None:
        await asyncio.wait_for(self._attached.wait(), timeout)

    async def detached(self, timeout: float = 30) -> None:
        await asyncio.wait_for(self._detached.wait(), timeout)

    async def write(self, data: bytes) -> None:
        """The guest writes: to the client if one is attached, else held for the next."""
        if self._client is None:
            self._pending += data
            return
        self._client.write(data)
        await self._client.drain()

    async def close(self) -> None:
        """QEMU exits: the socket and its client connection close."""
        if self._server is not None:
            self._server.close()
        if self._client is not None:
            self._client.close()
            self._client = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
