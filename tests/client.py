"""A small JSON-RPC + /events client for tests (integration and e2e)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RpcClient:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session
        self._ids = itertools.count(1)

    async def raw(self, body: str | bytes) -> tuple[int, Any]:
        async with self.session.post(
            f"{self.base}/jsonrpc", data=body, headers={"Content-Type": "application/json"}
        ) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else None)

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            msg["params"] = params
        status, body = await self.raw(json.dumps(msg))
        assert status == 200, (status, body)
        return body

    async def call(self, method: str, **params: Any) -> Any:
        """The result; AssertionError with the error object if the call failed."""
        body = await self.request(method, params)
        assert "error" not in body, body["error"]
        return body["result"]

    async def error(self, method: str, **params: Any) -> dict[str, Any]:
        body = await self.request(method, params)
        assert "error" in body, f"expected an error, got {body}"
        return body["error"]

    async def wait_status(self, vm_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        """Poll VM.getStats until `status` (a condition wait with a deadline, not a sleep)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = (await self.call("VM.getStats", vmID=vm_id))[0]
            if last["status"] == status:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"VM {vm_id} not {status} after {timeout} s; last stats {last}")

    async def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with self.session.get(f"{self.base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"hvagent at {self.base} not ready after {timeout} s")


class EventStream:
    """Collects /events notifications in the background; `wait_for` finds one by predicate."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(), name="test-events")

    @classmethod
    async def open(cls, client: RpcClient) -> EventStream:
        ws = await client.session.ws_connect(f"{client.base}/events")
        return cls(ws)

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))
                self._changed.set()

    def statuses(self, vm_id: str) -> list[dict[str, Any]]:
        method = f"|virt|VM_status|{vm_id}"
        return [m["params"][vm_id] for m in self.messages if m["method"] == method]

    async def wait_status(self, vm_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for details in self.statuses(vm_id):
                    if details["status"] == status:
                        return details
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
