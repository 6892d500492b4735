"""STOMP clients for tests: stomp.py (third-party, threaded) driven like the engine, and a raw
socket client for byte-level checks. Both talk to hvagent running on the test's own loop, so
every blocking call goes through a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import stomp

ROOT = Path(__file__).parents[1]
EVENTS = "jms.queue.events"
REQUESTS = "jms.topic.vdsm_requests"


def make_pki(directory: Path) -> Path:
    """The test CA, host and client certificates (scripts/test-ca.sh)."""
    subprocess.run([ROOT / "scripts" / "test-ca.sh", str(directory)], check=True)
    return directory


class _Listener(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.by_sub: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.errors: queue.Queue[Any] = queue.Queue()
        self.disconnects = 0
        self.heartbeat_timeouts = 0

    def on_message(self, frame: Any) -> None:
        sub = frame.headers.get("subscription", "")
        self.by_sub.setdefault(sub, queue.Queue()).put(json.loads(frame.body))

    def on_error(self, frame: Any) -> None:
        self.errors.put(frame)

    def on_disconnected(self) -> None:
        self.disconnects += 1

    def on_heartbeat_timeout(self) -> None:
        self.heartbeat_timeouts += 1


class StompPyClient:
    """stomp.py wired as the engine is: a private reply queue, jms.queue.events, requests as
    vdsm.client sends them (a batch of one, reply-to)."""

    def __init__(
        self, port: int, pki: Path | None = None, heartbeats: tuple[int, int] = (0, 24000)
    ) -> None:
        host = ("127.0.0.1", port)
        self.conn = stomp.Connection12([host], heartbeats=heartbeats, reconnect_attempts_max=1)
        if pki is not None:
            self.conn.set_ssl(
                for_hosts=[host],
                cert_file=str(pki / "client" / "cert.pem"),
                key_file=str(pki / "client" / "key.pem"),
                ca_certs=str(pki / "certs" / "cacert.pem"),
                ssl_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.listener = _Listener()
        self.conn.set_listener("test", self.listener)
        self.reply_to = f"reply-{uuid.uuid4()}"
        self.reply_sub, self.events_sub = str(uuid.uuid4()), str(uuid.uuid4())
        for sub in (self.reply_sub, self.events_sub):
            self.listener.by_sub[sub] = queue.Queue()

    @classmethod
    async def open(cls, port: int, pki: Path | None = None, **kw: Any) -> StompPyClient:
        client = cls(port, pki, **kw)
        await asyncio.to_thread(client._connect)
        return client

    def _connect(self) -> None:
        self.conn.connect(wait=True)
        self.conn.subscribe(self.reply_to, self.reply_sub, ack="auto")
        self.conn.subscribe(EVENTS, self.events_sub, ack="auto")

    async def close(self) -> None:
        await asyncio.to_thread(self.conn.disconnect)

    async def request(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        req_id = str(uuid.uuid4())
        body = json.dumps([{"jsonrpc": "2.0", "method": method, "params": params, "id": req_id}])
        await asyncio.to_thread(
            self.conn.send,
            REQUESTS,
            body,
            content_type="application/json",
            headers={"reply-to": self.reply_to},
        )
        reply = await asyncio.to_thread(self.listener.by_sub[self.reply_sub].get, True, timeout)
        assert isinstance(reply, dict), reply  # a batch of one is answered with a bare object
        assert reply["id"] == req_id, reply
        return reply

    async def call(self, method: str, timeout: float = 30, **params: Any) -> Any:
        reply = await self.request(method, timeout, **params)
        assert "error" not in reply, reply["error"]
        return reply["result"]

    async def wait_status(self, vm_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        events = self.listener.by_sub[self.events_sub]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = await asyncio.to_thread(events.get, True, left)
            except queue.Empty:
                break
            assert event["method"].startswith("|virt|VM_status|"), event
            details = event["params"].get(vm_id)
            if details and details.get("status") == status:
                return details
        raise AssertionError(f"no {status} event for {vm_id} within {timeout} s")


class RawStomp:
    """Bytes in, frames out: for what a well-behaved client library would never send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.eols = 0

    @classmethod
    async def open(cls, port: int, ssl_ctx: ssl.SSLContext | None = None) -> RawStomp:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl_ctx, limit=64 * 1024 * 1024
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, timeout: float = 10) -> tuple[str, dict[str, str], bytes] | None:
        """The next frame, skipping heart-beat EOLs; None at end of stream (or a reset: a
        server closing with our unread bytes in its buffer resets, which can discard its
        last frame in our buffer)."""
        try:
            return await self._frame(timeout)
        except ConnectionResetError:
            return None

    async def _frame(self, timeout: float) -> tuple[str, dict[str, str], bytes] | None:
        async with asyncio.timeout(timeout):
            while True:
                first = await self.reader.read(1)
                if not first:
                    return None
                if first != b"\n":
                    break
                self.eols += 1
            head = first + await self.reader.readuntil(b"\n\n")
            command, *lines = head.decode().rstrip("\n").split("\n")
            headers: dict[str, str] = {}
            for line in lines:
                key, _, value = line.partition(":")
                headers.setdefault(key, value)
            if "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]) + 1)
            else:
                body = await self.reader.readuntil(b"\0")
            assert body.endswith(b"\0")
            return command, headers, body[:-1]

    async def closed(self, timeout: float = 10) -> bool:
        """True once the server closed the connection (frames before that are skipped)."""
        async with asyncio.timeout(timeout):
            try:
                while await self.reader.read(65536):
                    pass
            except ConnectionResetError:
                pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


def reissue_host_cert(pki: Path) -> None:
    """A new host certificate and key from the same test CA, over the old files."""
    ca = pki / "ca"
    subprocess.run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=hvagent test/CN=localhost",
         "-keyout", str(pki / "keys" / "vdsmkey.pem"), "-out", str(pki / "req.csr")],
        check=True, capture_output=True,
    )  # fmt: skip
    (pki / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(pki / "req.csr"), "-CA", str(ca / "cacert.pem"),
         "-CAkey", str(ca / "cakey.pem"), "-CAcreateserial", "-days", "30",
         "-extfile", str(pki / "ext.cnf"), "-out", str(pki / "certs" / "vdsmcert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip


def served_serial(port: int, pki: Path) -> str:
    """The serial number of the certificate hvagent presents to a new connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki / "certs" / "cacert.pem"))
    ctx.load_cert_chain(str(pki / "client" / "cert.pem"), str(pki / "client" / "key.pem"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        return tls.getpeercert()["serialNumber"]
