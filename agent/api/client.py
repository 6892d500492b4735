"""The HTTP client side of hvagent's API, for hvagent-client: JSON-RPC calls, the verb list,
the /events stream and a channel's stream (GET /vm/{vmID}/channel/{name}), over the local
Unix socket or a URL. Connection failures raise `Unreachable`, so callers need not know the
HTTP library."""

from __future__ import annotations

from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp

DEFAULT_SOCKET = "/run/hvagent/hvagent.sock"


class Unreachable(Exception):
    """hvagent could not be reached (or did not answer in time)."""


class Client:
    def __init__(self, url: str | None, sock: str | None, timeout: float) -> None:
        self.base = (url or "http://hvagent").rstrip("/")
        connector = None if url else aiohttp.UnixConnector(path=sock or DEFAULT_SOCKET)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
        )

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            async with self.session.post(f"{self.base}/jsonrpc", json=body) as r:
                return await r.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise Unreachable(str(exc)) from exc

    async def verbs(self) -> dict[str, list[str]]:
        try:
            async with self.session.get(f"{self.base}/verbs") as r:
                r.raise_for_status()
                return await r.json()
        except aiohttp.ClientError as exc:
            raise Unreachable(str(exc)) from exc

    async def events(self) -> None:
        """Print every notification, one JSON object per line, until the stream ends."""
        try:
            async with self.session.ws_connect(f"{self.base}/events", timeout=None) as ws:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        print(msg.data, flush=True)
        except aiohttp.ClientError as exc:
            raise Unreachable(str(exc)) from exc

    async def follow_channel(
        self, vm_id: str, name: str, offset: int, out: BinaryIO
    ) -> dict[str, Any] | None:
        """Write a channel's bytes from `offset` to `out` until hvagent ends the stream (the
        VM is down and everything was sent): None then. A refusal (unknown VM or channel,
        bad offset) is answered as VM.readChannel answers it, and returned as that reply;
        a stream that ends otherwise (hvagent stopping) raises Unreachable."""
        check = await self.call(
            "VM.readChannel", {"vmID": vm_id, "name": name, "offset": offset, "size": 0}
        )
        if "error" in check:
            return check
        url = f"{self.base}/vm/{quote(vm_id, safe='')}/channel/{quote(name, safe='')}"
        try:
            async with self.session.ws_connect(url, params={"offset": offset}, timeout=None) as ws:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        out.write(msg.data)
                        out.flush()
                if ws.close_code != aiohttp.WSCloseCode.OK:
                    raise Unreachable(f"the stream ended early (close code {ws.close_code})")
        except aiohttp.ClientError as exc:
            raise Unreachable(str(exc)) from exc
        return None
