"""GET /events: status notifications pushed in order; the socket ends when the client closes
or when the bus drops a subscriber that fell behind."""

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from agent.api import app
from agent.runtime import bus as busmod

VM = uuid.UUID("5f0f1a6c-1111-4a5e-9d2a-000000000001")


@pytest.fixture
async def served():
    recovered = asyncio.Event()
    recovered.set()
    bus = busmod.StatusBus()
    services = SimpleNamespace(registry=SimpleNamespace(recovered=recovered), metrics=None, bus=bus)
    async with TestClient(TestServer(app.create_app(services))) as c:  # type: ignore[arg-type]
        yield c, bus


async def subscribed(bus: busmod.StatusBus, count: int) -> None:
    async with asyncio.timeout(10):
        while bus.subscriber_count != count:
            await asyncio.sleep(0.01)


async def test_notifications_arrive_in_order_and_closing_unsubscribes(served):
    client, bus = served
    ws = await client.ws_connect("/events")
    await subscribed(bus, 1)
    for status in ("WaitForLaunch", "Up", "Down"):
        bus.publish_status(VM, {"status": status})
    got = [(await ws.receive_json(timeout=10))["params"][str(VM)]["status"] for _ in range(3)]
    assert got == ["WaitForLaunch", "Up", "Down"]
    await ws.close()
    await subscribed(bus, 0)  # the handler saw the close and left the bus


async def test_a_subscriber_that_falls_behind_is_closed_1013(served, monkeypatch):
    monkeypatch.setattr(busmod, "MAX_BACKLOG", 5)
    client, bus = served
    ws = await client.ws_connect("/events")
    await subscribed(bus, 1)
    for i in range(8):  # no turn of the loop in between: the handler cannot keep up
        bus.publish_status(VM, {"status": "Up", "n": i})
    assert bus.subscriber_count == 0
    got = []
    async with asyncio.timeout(10):
        while (msg := await ws.receive()).type is WSMsgType.TEXT:
            got.append(msg.json()["params"][str(VM)]["n"])
    assert got == [0, 1, 2, 3, 4]  # what was queued before the drop, then the close
    assert msg.type is WSMsgType.CLOSE and ws.close_code == 1013
