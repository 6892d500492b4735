"""A minimal asyncio STOMP client, as the engine talks to a host: for hvagent-client --stomp.

`StompClient.connect(host, port, ssl_ctx)` sends CONNECT and SUBSCRIBEs a private reply queue
in one write (as vdsm.client does); `call(method, params)` SENDs one JSON-RPC request to
`jms.topic.vdsm_requests` with `reply-to` and returns the response object; `events()` yields
every notification from `jms.queue.events`. An ERROR frame raises `StompError`.
`client_context(ca, cert, key)` is the TLS side: the host's certificate must be signed by
`ca`; like VDSM's clients, no host name check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agent.stomp import codec

REQUESTS = "jms.topic.vdsm_requests"
EVENTS = "jms.queue.events"


class StompError(Exception):
    """The server answered ERROR (its message) or closed the connection."""


def client_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(cafile=ca)
    else:
        ctx.load_default_certs()
    if cert:
        ctx.load_cert_chain(cert, key or cert)
    return ctx


class StompClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._decoder = codec.Decoder(commands=codec.SERVER_COMMANDS)
        self._frames: list[codec.Frame] = []
        self.reply_to = f"hvagent-client-{uuid.uuid4()}"

    @classmethod
    async def connect(cls, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> StompClient:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl_ctx, server_hostname="" if ssl_ctx else None
        )
        client = cls(reader, writer)
        writer.write(
            codec.encode("CONNECT", [("accept-version", "1.2"), ("heart-beat", "0,0")])
            + codec.encode("SUBSCRIBE", [("destination", client.reply_to), ("id", "reply")])
        )
        frame = await client._next()
        if frame.command != "CONNECTED":
            raise StompError(f"expected CONNECTED, got {frame.command}")
        return client

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()

    async def _next(self) -> codec.Frame:
        while not self._frames:
            data = await self._reader.read(256 * 1024)
            if not data:
                raise StompError("connection closed by hvagent")
            self._frames += self._decoder.feed(data)
        frame = self._frames.pop(0)
        if frame.command == "ERROR":
            raise StompError(frame.headers.get("message", "ERROR"))
        return frame

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        req_id = str(uuid.uuid4())
        body = json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        headers = [
            ("destination", REQUESTS),
            ("content-type", "application/json"),
            ("reply-to", self.reply_to),
        ]
        self._writer.write(codec.encode("SEND", headers, body.encode()))
        while True:
            frame = await self._next()
            if frame.command == "MESSAGE" and frame.headers.get("subscription") == "reply":
                reply = json.loads(frame.body)
                if isinstance(reply, dict) and reply.get("id") == req_id:
                    return reply

    async def events(self) -> AsyncIterator[str]:
        subscribe = [("destination", EVENTS), ("id", "events")]
        self._writer.write(codec.encode("SUBSCRIBE", subscribe))
        while True:
            frame = await self._next()
            if frame.headers.get("subscription") == "events":
                yield frame.body.decode()
