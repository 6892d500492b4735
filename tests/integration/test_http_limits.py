"""HTTP timeouts and the connection cap on a real daemon (issue 15, found item 9): idle and
slow clients are closed, a slow body gets 408, connections past rpc.max_connections get 503,
and the daemon keeps serving."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest
import pytest_asyncio

from tests.integration.conftest import SHARED_URI, Daemon, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"}).encode()


def post(body: bytes) -> bytes:
    head = "POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return (
        head.encode() + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )


@pytest_asyncio.fixture(loop_scope="session")
async def limited(tmp_path, virconn):
    cfg = make_config(tmp_path, SHARED_URI)
    rpc = dataclasses.replace(cfg.rpc, idle_timeout_s=1.0, body_timeout_s=1.0, max_connections=4)
    d = Daemon(dataclasses.replace(cfg, rpc=rpc))
    host, port = rpc.host, rpc.port
    deadline = time.monotonic() + 60
    while True:  # ready: a ping answers over a raw connection
        try:
            status, _ = await exchange(host, port, post(PING))
            if status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "daemon not serving"
        await asyncio.sleep(0.1)
    yield d, host, port
    assert await d.stop() == 0


async def exchange(host, port, data: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        reply = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    if not reply:
        return 0, b""
    return int(reply.split(b" ", 2)[1]), reply


async def closed_within(reader, seconds: float) -> float:
    """Seconds until the server closed the connection (EOF or reset)."""
    start = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(65536), seconds):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


async def test_idle_connection_is_closed(limited):
    _, host, port = limited
    reader, writer = await asyncio.open_connection(host, port)
    assert await closed_within(reader, 30) < 30
    writer.close()


async def test_slow_headers_are_closed(limited):
    _, host, port = limited
    reader, writer = await asyncio.open_connection(host, port)

    async def dribble():
        for char in b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
            writer.write(bytes([char]))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(dribble())
    try:
        assert await closed_within(reader, 30) < 30
    finally:
        task.cancel()
        writer.close()


async def test_slow_body_gets_408(limited):
    _, host, port = limited
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(post(PING)[: -len(PING) + 5])  # the head and 5 bytes of the body
    reply = await asyncio.wait_for(reader.read(), 30)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    writer.close()


async def test_connections_past_the_cap_get_503_and_service_resumes(limited):
    _, host, port = limited
    held = [await asyncio.open_connection(host, port) for _ in range(4)]
    status, reply = await exchange(host, port, post(PING))
    assert status == 503 and b"too many connections" in reply
    for _, writer in held:
        writer.close()
    deadline = time.monotonic() + 30
    while (await exchange(host, port, post(PING)))[0] != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
