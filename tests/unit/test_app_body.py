"""POST /jsonrpc: how the body is read (whole from the buffer, or awaited) and answered."""

import asyncio
import json
from types import SimpleNamespace
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from agent.api import app

PING = b'{"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"}'


def request_with(stream: StreamReader) -> web.Request:
    return make_mocked_request("POST", "/jsonrpc", payload=stream)


def stream() -> StreamReader:
    return StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())


async def test_body_already_complete_is_taken_from_the_buffer():
    s = stream()
    s.feed_data(PING[:10])
    s.feed_data(PING[10:])
    s.feed_eof()
    assert await app.read_body(request_with(s)) == PING


async def test_body_still_arriving_is_awaited():
    s = stream()
    s.feed_data(PING[:10])
    reading = asyncio.ensure_future(app.read_body(request_with(s)))
    await asyncio.sleep(0)
    assert not reading.done()
    s.feed_data(PING[10:])
    s.feed_eof()
    assert await reading == PING


async def test_body_over_the_limit_is_413(monkeypatch):
    monkeypatch.setattr(app, "MAX_BODY", len(PING) - 1)
    s = stream()
    s.feed_data(PING)
    s.feed_eof()
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await app.read_body(request_with(s))


@pytest.fixture
async def client():
    recovered = asyncio.Event()
    recovered.set()
    services = SimpleNamespace(registry=SimpleNamespace(recovered=recovered), metrics=None)
    async with TestClient(TestServer(app.create_app(services))) as c:  # type: ignore[arg-type]
        yield c


async def test_jsonrpc_route_answers_whole_and_streamed_bodies(client):
    response = await client.post("/jsonrpc", data=PING)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await response.json() == {"jsonrpc": "2.0", "result": True, "id": 1}

    async def slowly():
        for i in range(0, len(PING), 8):
            yield PING[i : i + 8]
            await asyncio.sleep(0.01)

    response = await client.post("/jsonrpc", data=slowly())  # chunked, arrives in pieces
    assert await response.json() == {"jsonrpc": "2.0", "result": True, "id": 1}


async def test_jsonrpc_route_notification_is_204_and_bad_utf8_is_32700(client):
    response = await client.post("/jsonrpc", data=b'{"jsonrpc": "2.0", "method": "Host.ping2"}')
    assert response.status == 204 and await response.read() == b""
    response = await client.post("/jsonrpc", data=b'{"jsonrpc": "2.0", "id": 1, "method": "\xe9"}')
    assert json.loads(await response.read())["error"]["code"] == -32700
