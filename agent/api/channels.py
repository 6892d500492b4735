"""Channel readers: the VM.readChannel verb and the `GET /vm/{vmID}/channel/{name}` stream.

Both read a VM's drained channel (agent/runtime/channels/) from an offset: never from the
socket (hvagent is QEMU's one client), so any number of readers get the same bytes and none
can slow the drain. The stream is a WebSocket on the JSON-RPC listener (same listeners,
same connection cap): binary frames replay from `?offset=N` (default 0) and then follow
live; once the VM is down and every byte is sent the server closes it normally (1000).
A bad request is refused before the upgrade: 400 for a bad offset, 404 for an unknown VM
or channel, 503 while recovering, each with a JSON body in the error shape of the verbs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

from aiohttp import WSCloseCode, web

from agent import errors, wirevalues
from agent.api.context import Services
from agent.runtime.channels.channel import Channel
from agent.wirevalues import parse_uuid

MAX_READ = 1024 * 1024  # VM.readChannel's size cap (bytes)
DEFAULT_READ = 65536
FRAME = 65536  # stream frame size
MAX_OFFSET = 1 << 62


def _int(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, str) and wirevalues.is_decimal(value) and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.InvalidParams(
            f"{param} must be a whole number from {low} to {high}", param=param
        )
    return value


def _channel(services: Services, vm_id: Any, name: Any) -> Channel:
    vm = services.registry.get(parse_uuid(vm_id, "vmID"))
    if not wirevalues.is_channel_name(name):
        raise errors.InvalidParams(
            "name must be a channel name (letters, digits, _ . -, at most 100)", param="name"
        )
    return vm.channels.get(name)


async def read_channel(
    services: Services, vmID: Any, name: Any, offset: Any = 0, size: Any = DEFAULT_READ
) -> dict[str, Any]:
    """Bytes of a VM's channel from `offset`: `{data (base64), nextOffset, eof}`; `offset`
    in the answer is where `data` starts (later than asked only when the log dropped the
    bytes asked for); `eof` once the VM is down and `nextOffset` is at the end."""
    channel = _channel(services, vmID, name)
    start = _int(offset, "offset", 0, MAX_OFFSET)
    want = _int(size, "size", 0, MAX_READ)
    await channel.open()
    if start > channel.end:
        raise errors.InvalidParams(
            f"offset is past the end of the channel ({channel.end})", param="offset"
        )
    chunk = await channel.read(start, want)
    return {
        "data": base64.b64encode(chunk.data).decode("ascii"),
        "offset": chunk.offset,
        "nextOffset": chunk.next_offset,
        "eof": channel.eof(chunk.next_offset),
    }


def _refuse(exc: errors.AgentError) -> web.Response:
    status = {errors.InvalidParams: 400, errors.Recovering: 503}.get(type(exc), 404)
    return web.json_response({"error": exc.to_wire()}, status=status)


def stream_handler(services: Services, sockets: Any) -> Any:
    """The GET handler; `sockets` is the app's set of open WebSockets (closed at shutdown)."""

    async def stream(request: web.Request) -> web.StreamResponse:
        try:
            if not services.registry.recovered.is_set():
                raise errors.Recovering()
            channel = _channel(services, request.match_info["vm"], request.match_info["name"])
            offset = _int(request.query.get("offset", "0"), "offset", 0, MAX_OFFSET)
            await channel.open()
            if offset > channel.end:
                raise errors.InvalidParams(
                    f"offset is past the end of the channel ({channel.end})", param="offset"
                )
        except errors.AgentError as exc:
            return _refuse(exc)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        sockets.add(ws)
        channel.readers += 1
        follow = asyncio.create_task(_follow(ws, channel, offset), name="channel-follow")
        reader = asyncio.create_task(_read_until_closed(ws), name="channel-reader")
        try:
            await asyncio.wait({follow, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            channel.readers -= 1
            for task in (follow, reader):
                task.cancel()
            await asyncio.gather(follow, reader, return_exceptions=True)
            with contextlib.suppress(ConnectionResetError):
                await ws.close()
        return ws

    return stream


async def _follow(ws: web.WebSocketResponse, channel: Channel, offset: int) -> None:
    with contextlib.suppress(ConnectionResetError):  # the reader went away
        while not ws.closed:
            chunk = await channel.read(offset, FRAME)
            if chunk.data:
                await ws.send_bytes(chunk.data)
                offset = chunk.next_offset
                continue
            if channel.eof(offset):
                await ws.close(code=WSCloseCode.OK, message=b"end of channel: the VM is down")
                return
            await channel.wait_beyond(offset)


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass  # readers send nothing hvagent acts on
