"""The STOMP listener: accept connections, route messages, answer JSON-RPC, push events.

`StompListener(cfg, services, table, instruments)` is an async context manager: entering it
builds the TLS context ([tls]; refused plain off loopback unless [stomp] insecure), listens
on [stomp] listen, installs SIGHUP (TLS reload for new connections) and starts the events
task. Certificate files that cannot be loaded leave the port closed, logged, and SIGHUP
tries again (a host installed before the engine deployed its certificates). Leaving it
stops listening, closes every connection after its writes are flushed (5 s, then abort) and
stops the events task. Requests already running finish; their replies
go nowhere.

`Hub` is the broker state shared by connections: subscriptions (per connection `id ->
destination`, plus the global `destination -> {(connection, id)}`), reply routing and
forwarding as VDSM does it (stomp.md §2.1, §4):
- a reply goes to the requesting connection's subscriptions on `reply-to`; if it has none,
  to every subscription on that destination; if there is none, it is dropped (logged);
- a SEND to any other destination goes to its subscribers and its parents' (by dot prefix);
- every bus status event goes to every `jms.queue.events` subscription, with the body the
  /events WebSocket sends.
`answer(body)` is the HTTP dispatcher (`agent.api.rpc.dispatch`), except that a batch of one
(vdsm.client always sends one) is answered with the bare response object, as VDSM does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

from agent import config
from agent.api.context import Services
from agent.api.rpc import dispatch
from agent.stomp import codec
from agent.stomp.connection import Connection
from agent.tls import REASONS, ServerTls, TlsFilesError

log = logging.getLogger("agent.stomp")

EVENTS = "jms.queue.events"


class Hub:
    def __init__(
        self,
        cfg: config.StompConfig,
        tls: ServerTls | None,
        services: Services,
        table: dict[str, Any],
        instruments: Any = None,
    ) -> None:
        self.cfg = cfg
        self.tls = tls
        self.limits = codec.Limits(
            max_headers=cfg.max_headers,
            max_header_bytes=cfg.max_header_bytes,
            max_body=cfg.max_frame_bytes,
        )
        self.services = services
        self.table = table
        self.metrics = instruments
        self.connections: set[Connection] = set()
        self.handshaking: set[Connection] = set()  # TLS handshakes in progress
        self.subscribers: dict[str, dict[tuple[Connection, str], None]] = {}
        self._frames: dict[tuple[str, str], Any] = {}
        if instruments is not None:
            for reason in REASONS:
                instruments.tls_handshake_failures.labels(reason)

    # -- bookkeeping -----------------------------------------------------------------------

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        if self.metrics is not None:
            self.metrics.stomp_connections.inc()

    def closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for sid, dest in list(conn.subs.items()):
            self.unsubscribe(conn, sid, dest)
        if self.metrics is not None:
            self.metrics.stomp_connections.dec()

    def subscribe(self, conn: Connection, sid: str, dest: str) -> None:
        self.subscribers.setdefault(dest, {})[(conn, sid)] = None
        if self.metrics is not None:
            self.metrics.stomp_subscriptions.inc()

    def unsubscribe(self, conn: Connection, sid: str, dest: str) -> None:
        subs = self.subscribers.get(dest, {})
        if subs.pop((conn, sid), 0) is None and self.metrics is not None:
            self.metrics.stomp_subscriptions.dec()
        if not subs:
            self.subscribers.pop(dest, None)

    def frame(self, command: str, direction: str) -> None:
        if self.metrics is None:
            return
        child = self._frames.get((command, direction))
        if child is None:
            child = self._frames[(command, direction)] = self.metrics.stomp_frames.labels(
                command, direction
            )
        child.inc()

    def slow_consumer(self) -> None:
        if self.metrics is not None:
            self.metrics.stomp_slow_consumer_closes.inc()

    def tls_failed(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.tls_handshake_failures.labels(reason).inc()

    # -- messages --------------------------------------------------------------------------

    async def answer(self, body: bytes) -> str:
        if body.lstrip()[:1] == b"[":
            try:
                batch = json.loads(body)
            except ValueError:
                batch = None
            if isinstance(batch, list) and len(batch) == 1 and isinstance(batch[0], dict):
                return await dispatch(json.dumps(batch[0]), self.table, self.services)
        return await dispatch(body, self.table, self.services)

    def reply(self, conn: Connection, dest: str, body: bytes) -> None:
        mine = [sid for sid, d in conn.subs.items() if d == dest]
        if mine:
            for sid in mine:
                conn.write(codec.message(dest, sid, body), "MESSAGE")
            return
        targets = list(self.subscribers.get(dest, ()))
        if not targets:
            log.info("STOMP reply for %s dropped: nobody subscribes to %r", conn.peer, dest)
        for other, sid in targets:
            other.write(codec.message(dest, sid, body), "MESSAGE")

    def publish(self, dest: str, body: bytes) -> int:
        targets = list(self.subscribers.get(dest, ()))
        for conn, sid in targets:
            conn.write(codec.message(dest, sid, body), "MESSAGE")
        return len(targets)

    def forward(self, dest: str, body: bytes) -> bool:
        """VDSM's broker: a SEND reaches subscribers of `dest` and of its dot-prefix parents."""
        sent = 0
        name = dest
        while name:
            for conn, sid in list(self.subscribers.get(name, ())):
                conn.write(codec.message(dest, sid, body), "MESSAGE")
                sent += 1
            name = name.rpartition(".")[0]
        return sent > 0


class StompListener:
    def __init__(
        self,
        cfg: config.Config,
        services: Services,
        table: dict[str, Any],
        instruments: Any = None,
    ) -> None:
        self.cfg = cfg
        self.services = services
        self.table = table
        self.instruments = instruments
        self.hub: Hub | None = None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._events: asyncio.Task[None] | None = None
        self._sighup = False
        self._late: asyncio.Task[None] | None = None  # a start after SIGHUP

    async def __aenter__(self) -> StompListener:
        stomp = self.cfg.stomp
        host, _ = config.split_listen(stomp.listen)
        if not stomp.tls and not stomp.insecure and not config.is_loopback(host):
            raise config.ConfigError(f"[stomp] listen = {stomp.listen!r}: plain, not loopback")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._sighup = True
        if not stomp.tls:
            await self._start(None)
            return self
        try:
            tls = ServerTls(self.cfg.tls)
        except TlsFilesError as exc:
            # A host installed before the engine deployed its certificates: hvagent runs,
            # the engine port stays closed until the files are readable and SIGHUP comes.
            log.error("STOMP on %s not started: %s; SIGHUP retries", stomp.listen, exc)
            return self
        await self._start(tls)
        return self

    async def _start(self, tls: ServerTls | None) -> None:
        stomp = self.cfg.stomp
        host, port = config.split_listen(stomp.listen)
        hub = Hub(stomp, tls, self.services, self.table, self.instruments)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(hub), host, port, reuse_address=True
        )
        self.hub = hub
        self.port = self._server.sockets[0].getsockname()[1]
        self._events = asyncio.create_task(self._push_events(hub), name="stomp-events")
        log.info(
            "serving STOMP on %s:%d (%s)",
            host,
            self.port,
            "mutual TLS" if tls else "plain TCP, no authentication",
        )

    def _on_sighup(self) -> None:
        if self.hub is not None:
            if self.hub.tls is not None:
                self.hub.tls.reload()
            return
        if self._late is not None and not self._late.done():
            return
        try:
            tls = ServerTls(self.cfg.tls)
        except TlsFilesError as exc:
            log.error("STOMP on %s still not started: %s", self.cfg.stomp.listen, exc)
            return
        self._late = asyncio.create_task(self._start(tls), name="stomp-start")

    async def __aexit__(self, *exc_info: object) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._late is not None:
            self._late.cancel()
            await asyncio.gather(self._late, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        if self._events is not None:
            self._events.cancel()
            await asyncio.gather(self._events, return_exceptions=True)
        if self.hub is not None:
            for conn in list(self.hub.handshaking):
                conn.abort_handshake()
            conns = list(self.hub.connections)
            for conn in conns:
                conn.close()
            if conns:
                await asyncio.wait([c.closed for c in conns], timeout=5)
                for conn in conns:
                    if not conn.closed.done():
                        conn.close(abort=True)
                        conn.connection_lost(None)
        log.info("STOMP listener closed")

    async def _push_events(self, hub: Hub) -> None:
        bus = self.services.bus
        queue = bus.subscribe()
        try:
            while True:
                message = await queue.get()
                if message is None:  # the bus dropped us for falling behind: never here
                    log.warning("STOMP events fell behind the status bus; resubscribing")
                    queue = bus.subscribe()
                    continue
                if EVENTS in hub.subscribers:
                    hub.publish(EVENTS, json.dumps(message).encode())
        finally:
            bus.unsubscribe(queue)
