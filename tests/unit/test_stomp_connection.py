"""One STOMP connection against a recording transport: negotiation, errors, early TLS data."""

from __future__ import annotations

import asyncio

from agent import config
from agent.stomp.codec import SERVER_COMMANDS, Decoder
from agent.stomp.connection import Connection


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.out += data

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 4242) if name == "peername" else default


class Hub:
    def __init__(self, **stomp) -> None:
        self.cfg = config.StompConfig(listen="", **stomp)
        self.limits = None
        self.tls = None
        self.handshaking: set = set()
        self.subs: list = []
        self.requests: list[bytes] = []
        self.release = asyncio.Event()

    def opened(self, conn) -> None: ...
    def closed(self, conn) -> None: ...
    def frame(self, command, direction) -> None: ...

    def subscribe(self, conn, sid, dest) -> None:
        self.subs.append((sid, dest))

    async def answer(self, body: bytes) -> str:
        self.requests.append(body)
        await self.release.wait()
        return '{"jsonrpc": "2.0", "result": true, "id": 1}'

    def reply(self, conn, dest, body) -> None:
        conn.write(b"REPLY " + dest.encode() + b"\0", "MESSAGE")


def frames(t: Transport) -> list:
    return Decoder(commands=SERVER_COMMANDS | {"REPLY r"}).feed(bytes(t.out))


async def test_pipelined_connect_subscribe_and_heart_beat_clamp():
    hub, t = Hub(nudge_ms=0), Transport()
    conn = Connection(hub)
    conn.connection_made(t)
    conn.data_received(
        b"CONNECT\naccept-version:1.2\nheart-beat:0,10\n\n\0SUBSCRIBE\ndestination:r\nid:1\n"
        b"receipt:x\n\n\0"
    )
    got = frames(t)
    assert [f.command for f in got] == ["CONNECTED", "RECEIPT"]
    assert got[0].headers == {"version": "1.2", "heart-beat": "1000,0"}
    assert hub.subs == [("1", "r")]
    conn.close()


async def test_duplicate_subscription_id_is_an_error_and_closes():
    hub, t = Hub(), Transport()
    conn = Connection(hub)
    conn.connection_made(t)
    conn.data_received(b"SUBSCRIBE\ndestination:a\nid:1\n\n\0SUBSCRIBE\ndestination:b\nid:1\n\n\0")
    (error,) = frames(t)
    assert error.command == "ERROR" and error.headers["message"] == "subscription id already in use"
    assert t.closed


async def test_data_arriving_before_tls_open_is_kept_until_open():
    hub, t = Hub(nudge_ms=0), Transport()
    conn = Connection(hub)
    conn.peer = "127.0.0.1:4242"
    conn.data_received(b"CONNECT\naccept-version:1.2\n\n\0")  # before start_tls returned
    assert not t.out
    conn._open(t, "TLS")
    assert [f.command for f in frames(t)] == ["CONNECTED"]
    conn.close()


async def test_reading_pauses_at_max_in_flight_and_resumes():
    hub, t = Hub(max_in_flight=2, nudge_ms=0), Transport()
    conn = Connection(hub)
    conn.connection_made(t)
    send = b"SEND\ndestination:jms.topic.vdsm_requests\nreply-to:r\n\n{}\0"
    conn.data_received(send)
    assert t.reading
    conn.data_received(send)
    assert not t.reading  # two running: the connection is not read
    await asyncio.sleep(0)
    assert hub.requests == [b"{}", b"{}"]
    hub.release.set()
    async with asyncio.timeout(5):
        while not t.reading:
            await asyncio.sleep(0.01)
    assert bytes(t.out).count(b"REPLY r") == 2
    conn.close()
