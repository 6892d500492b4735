"""One STOMP connection (an asyncio.Protocol): TLS handshake, frames in and out, heart-beats.

Lenient like VDSM: no connection state machine, so SUBSCRIBE and SEND are served before
CONNECT (the engine's Java client can send them first, or lose its CONNECT), and `STOMP` is
CONNECT. CONNECT needs `1.2` in accept-version. Frames with `receipt` get a RECEIPT;
DISCONNECT gets it, then a close once the writes are flushed. ACK, NACK, BEGIN, COMMIT and
ABORT are accepted and ignored (only ack mode auto exists). A frame breaking the codec's
limits, a SUBSCRIBE without destination or id or with an id in use, get ERROR and a close.

SEND to a request queue runs the JSON-RPC body through the hub (the HTTP dispatcher), at most
`max_in_flight` at once; past that, and while the peer does not read what we write, the
connection is not read (back-pressure on requests). The reply is encoded by the request's
task, never here. Each verb's log line carries the peer (logs.peer_var).

Heart-beats: CONNECTED answers `<cy>,0`, the client's wish clamped to >= 1000 ms (VDSM's
rule), and a timer writes `\\n` whenever that long passed without output. After a burst of
frames, one more `\\n` once the connection was idle `nudge_ms` (stomp.md §3: the Java client
can leave a frame unread until more bytes come). A peer with more than `max_pending_bytes`
unsent is closed, logged and counted: a response is never dropped on a live connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from agent import tls as tlsmod
from agent.logs import peer_var
from agent.stomp import codec

if TYPE_CHECKING:
    from agent.stomp.server import Hub

log = logging.getLogger("agent.stomp")

REQUEST_QUEUES = ("jms.topic.vdsm_requests", "jms.topic.vdsm_irs_requests")
DEFAULT_REPLY = "jms.topic.vdsm_responses"
_HIGH_WATER = 1024 * 1024


def is_request_queue(destination: str) -> bool:
    return any(destination == q or destination.startswith(q + ".") for q in REQUEST_QUEUES)


def _heart_beat(value: str) -> tuple[int, int]:
    cx, sep, cy = value.partition(",")
    try:
        return (max(int(cx), 0), max(int(cy), 0)) if sep else (0, 0)
    except ValueError:
        return 0, 0


class Connection(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.loop = asyncio.get_running_loop()
        self.peer = "-"
        self.transport: asyncio.Transport | None = None
        self.decoder = codec.Decoder(hub.limits)
        self.subs: dict[str, str] = {}  # subscription id -> destination
        self.closing = False
        self.closed = self.loop.create_future()
        self.last_write = self.loop.time()
        self._heartbeat_s = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._nudge: asyncio.TimerHandle | None = None
        self._pauses: set[str] = set()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._opened = False
        self._raw: asyncio.Transport | None = None  # the TCP transport under TLS
        # TLS: application data can arrive with the handshake's last flight, before
        # start_tls returns the transport; it waits here until _open.
        self._early = bytearray()

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        host, port, *_ = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        if self.hub.tls is None:
            self._open(transport, "plain")
            return
        transport.pause_reading()  # no byte reaches the codec before the handshake is done
        self._raw = transport
        self.hub.handshaking.add(self)
        task = self.loop.create_task(self._handshake(transport), name=f"stomp-tls-{self.peer}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def abort_handshake(self) -> None:
        """The listener is closing: drop a connection still in its TLS handshake."""
        for task in list(self._tasks):
            task.cancel()
        if self._raw is not None:
            self._raw.abort()
        self._lost()

    async def _handshake(self, raw: asyncio.Transport) -> None:
        tls = self.hub.tls
        assert tls is not None
        try:
            transport = await self.loop.start_tls(
                raw,
                self,
                tls.current,
                server_side=True,
                ssl_handshake_timeout=tls.cfg.handshake_timeout_s,
            )
        except Exception as exc:
            reason = tlsmod.failure_reason(exc)
            log.warning("TLS handshake with %s failed: %s (%s)", self.peer, reason, exc)
            self.hub.tls_failed(reason)
            raw.abort()
            self._lost()
            return
        if transport is None:  # the peer went away meanwhile
            self._lost()
            return
        self._open(transport, "TLS, client " + tlsmod.subject(transport.get_extra_info("peercert")))

    def _open(self, transport: asyncio.Transport, how: str) -> None:
        self.hub.handshaking.discard(self)
        self.transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        self._opened = True
        self.hub.opened(self)
        log.info("STOMP connection from %s (%s)", self.peer, how)
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.hub.handshaking.discard(self)
        if self.closed.done():
            return
        self.closing = True
        self._cancel_timers()
        if self._opened:
            self.hub.closed(self)
            log.info("STOMP connection from %s closed", self.peer)
        self.closed.set_result(None)

    def close(self, *, abort: bool = False) -> None:
        """Close after the pending writes are flushed (abort: at once)."""
        if self.closing:
            return
        self.closing = True
        self._cancel_timers()
        if self.transport is not None:
            self.transport.abort() if abort else self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._nudge):
            if timer is not None:
                timer.cancel()
        self._timer = self._nudge = None

    # -- output ----------------------------------------------------------------------------

    def write(self, data: bytes, command: str) -> None:
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return
        transport.write(data)
        self.last_write = self.loop.time()
        self.hub.frame(command, "out")
        if transport.get_write_buffer_size() > self.hub.cfg.max_pending_bytes:
            log.warning(
                "STOMP consumer %s is too slow (over %d bytes unsent): closing it",
                self.peer,
                self.hub.cfg.max_pending_bytes,
            )
            self.hub.slow_consumer()
            self.close(abort=True)
            return
        if self._nudge is None and self.hub.cfg.nudge_ms:
            self._nudge = self.loop.call_later(self.hub.cfg.nudge_ms / 1000, self._do_nudge)

    def _eol(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(b"\n")
            self.last_write = self.loop.time()

    def _do_nudge(self) -> None:
        wait = self.hub.cfg.nudge_ms / 1000 - (self.loop.time() - self.last_write)
        if wait > 0.001:
            self._nudge = self.loop.call_later(wait, self._do_nudge)
            return
        self._nudge = None
        self._eol()

    def _beat(self) -> None:
        wait = self._heartbeat_s - (self.loop.time() - self.last_write)
        if wait <= 0.001:
            self._eol()
            wait = self._heartbeat_s
        self._timer = self.loop.call_later(wait, self._beat)

    def error(self, message: str) -> None:
        """ERROR with a fixed message, then close (STOMP: an ERROR ends the connection)."""
        self.write(codec.encode("ERROR", [("message", message)], message.encode()), "ERROR")
        self.close()

    def pause_writing(self) -> None:
        self._pause("writing")

    def resume_writing(self) -> None:
        self._resume("writing")

    def _pause(self, why: str) -> None:
        if not self._pauses and self.transport is not None and not self.closing:
            self.transport.pause_reading()
        self._pauses.add(why)

    def _resume(self, why: str) -> None:
        self._pauses.discard(why)
        if not self._pauses and self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # -- input -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.transport is None:
            self._early += data
            return
        try:
            frames = self.decoder.feed(data)
        except codec.FrameError as exc:
            log.warning("STOMP %s sent a bad frame: %s; closing", self.peer, exc)
            self.error(str(exc))
            return
        for frame in frames:
            if self.closing:
                return
            self.hub.frame(frame.command, "in")
            self._handle(frame)

    def _handle(self, frame: codec.Frame) -> None:
        command, headers = frame.command, frame.headers
        if command in ("CONNECT", "STOMP"):
            if not self._connect(headers):
                return
        elif command == "SEND":
            if not self._send(frame):
                return
        elif command == "SUBSCRIBE":
            dest, sid = headers.get("destination"), headers.get("id")
            if not dest or not sid:
                self.error("SUBSCRIBE needs destination and id")
                return
            if sid in self.subs:
                self.error("subscription id already in use")
                return
            self.subs[sid] = dest
            self.hub.subscribe(self, sid, dest)
        elif command == "UNSUBSCRIBE":
            sid = headers.get("id", "")
            if sid in self.subs:
                self.hub.unsubscribe(self, sid, self.subs.pop(sid))
        receipt = headers.get("receipt")
        if receipt is not None:
            self.write(codec.encode("RECEIPT", [("receipt-id", receipt)]), "RECEIPT")
        if command == "DISCONNECT":
            self.close()

    def _connect(self, headers: dict[str, str]) -> bool:
        if "1.2" not in headers.get("accept-version", "").replace(" ", "").split(","):
            self.error("Version unsupported")
            return False
        _, wanted = _heart_beat(headers.get("heart-beat", "0,0"))
        send_ms = max(wanted, 1000) if wanted else 0
        connected = [("version", "1.2"), ("heart-beat", f"{send_ms},0")]
        self.write(codec.encode("CONNECTED", connected), "CONNECTED")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if send_ms:
            self._heartbeat_s = send_ms / 1000
            self._timer = self.loop.call_later(self._heartbeat_s, self._beat)
        return True

    def _send(self, frame: codec.Frame) -> bool:
        dest = frame.headers.get("destination")
        if not dest:
            self.error("SEND needs a destination")
            return False
        if not is_request_queue(dest):
            if not self.hub.forward(dest, frame.body):
                self.error("Subscription not available")
                return False
            return True
        reply_to = frame.headers.get("reply-to") or DEFAULT_REPLY
        self._in_flight += 1
        if self._in_flight >= self.hub.cfg.max_in_flight:
            self._pause("in_flight")
        task = self.loop.create_task(self._request(frame.body, reply_to))
        self._tasks.add(task)
        task.add_done_callback(self._request_done)
        return True

    async def _request(self, body: bytes, reply_to: str) -> None:
        peer_var.set(self.peer)
        try:
            reply = await self.hub.answer(body)
        except Exception:
            log.exception("STOMP request from %s failed", self.peer)
            return
        if reply:
            self.hub.reply(self, reply_to, reply.encode())

    def _request_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        if self._in_flight < self.hub.cfg.max_in_flight:
            self._resume("in_flight")
