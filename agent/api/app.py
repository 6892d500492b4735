"""The aiohttp application: POST /jsonrpc, GET /healthz, /readyz, /metrics, /events WebSocket,
GET /vm/{vmID}/channel/{name} WebSocket (api/channels.py)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
import uuid
import weakref
from collections.abc import AsyncIterator, Callable

from aiohttp import WSCloseCode, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent.api import channels, methods
from agent.api.admission import CappedRunner
from agent.api.context import Services
from agent.api.rpc import dispatch
from agent.config import RpcConfig

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
MAX_BODY = 16 * 1024 * 1024


def create_app(
    services: Services,
    metrics_registry: CollectorRegistry | None = None,
    prerendered: Callable[[], bytes] = bytes,
    *,
    body_timeout_s: float = 30.0,
) -> web.Application:
    """`prerendered()` returns exposition text appended to the registry's (per-VM stats).
    A JSON-RPC body not read whole within `body_timeout_s` is answered 408."""
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[SOCKETS] = weakref.WeakSet()
    table = methods.build()

    async def jsonrpc(request: web.Request) -> web.Response:
        # Bytes, not request.text(): no charset lookup, and a body that is not UTF-8 is a
        # parse error (-32700), not an HTTP 500.
        try:
            async with asyncio.timeout(body_timeout_s):
                data = await read_body(request)
        except TimeoutError:
            raise web.HTTPRequestTimeout(text="request body not received in time") from None
        body = await dispatch(data, table, services)
        if not body:  # only notifications: JSON-RPC 2.0 sends nothing back
            return web.Response(status=204)
        return web.Response(text=body, content_type="application/json")

    app.router.add_post("/jsonrpc", jsonrpc)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/events", events)
    app.router.add_get("/verbs", verbs)
    app.router.add_get("/vm/{vm}/channel/{name}", channels.stream_handler(services, app[SOCKETS]))
    if metrics_registry is not None:
        registry = metrics_registry

        async def metrics(request: web.Request) -> web.Response:
            # Reads the sampler's snapshot and in-memory counters only: never libvirt.
            return web.Response(
                body=exposition(registry, prerendered),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )

        app.router.add_get("/metrics", metrics)
    app.on_shutdown.append(_close_sockets)
    return app


def exposition(registry: CollectorRegistry, prerendered: Callable[[], bytes]) -> bytes:
    """The /metrics body. It cannot fail: a part that raises is logged with an error id and
    replaced by `hvagent_metrics_exposition_failed{part=...} 1`, the rest is still served."""
    parts = []
    for name, render in (
        ("registry", lambda: generate_latest(registry)),
        ("vm_stats", prerendered),
    ):
        try:
            parts.append(render())
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("/metrics: rendering %s failed, error_id=%s", name, error_id)
            parts.append(f'hvagent_metrics_exposition_failed{{part="{name}"}} 1\n'.encode())
    return b"".join(parts)


@contextlib.asynccontextmanager
async def serve(
    app: web.Application,
    *,
    listen: tuple[str, int] | None,
    unix: socket.socket | None,
    limits: RpcConfig | None = None,
) -> AsyncIterator[None]:
    """Serve `app` on TCP `listen` and/or the bound Unix socket `unix` until exit; closing
    stops the sites, closes /events sockets and waits up to 5 s for requests in flight.
    `limits` ([rpc]): the connection cap and idle timeout (agent/api/admission.py)."""
    limits = limits or RpcConfig()
    # No access log: the per-verb line in api/rpc.py says more, once.
    runner = CappedRunner(
        app,
        max_connections=limits.max_connections,
        keepalive_timeout=limits.idle_timeout_s,
        shutdown_timeout=5,
        handle_signals=False,
        access_log=None,
    )
    await runner.setup()
    try:
        if listen is not None:
            await web.TCPSite(runner, listen[0], listen[1], reuse_address=True).start()
            log.info("serving JSON-RPC on http://%s:%d/jsonrpc", *listen)
        if unix is not None:
            await web.SockSite(runner, unix).start()
            log.info("serving JSON-RPC on unix socket %s", unix.getsockname())
        yield
    finally:
        await runner.cleanup()


async def read_body(request: web.BaseRequest) -> bytes:
    """The request body, at most MAX_BODY bytes (else 413, as request.read() answers).

    A JSON-RPC request nearly always arrives whole with its headers: then the body is taken
    from the stream's buffer at once. request.read() would await two more reads (the data,
    then end of stream) and copy it twice; ~2 us per request, see bench/rpc_ping.py."""
    content = request.content
    if not content.is_eof():
        return await request.read()
    body = content.read_nowait()
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    return body


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def verb_table() -> dict[str, list[str]]:
    """Every verb and its parameter names, from the running daemon's own method table."""
    out = {}
    for name, (fn, _) in sorted(methods.VERBS.items()):
        params = list(inspect.signature(fn).parameters.values())[1:]  # drop `services`
        out[name] = [p.name + ("" if p.default is p.empty else "?") for p in params]
    return out


async def verbs(request: web.Request) -> web.Response:
    return web.json_response(verb_table())


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = {
        "ready": services.ready,
        "libvirt": services.port.alive,
        "recovered": services.registry.recovered.is_set(),
    }
    return web.json_response(body, status=200 if body["ready"] else 503)


async def events(request: web.Request) -> web.WebSocketResponse:
    """Push every VM status change as a VDSM `|virt|VM_status|<vmId>` notification."""
    services = request.app[SERVICES]
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    queue = services.bus.subscribe()
    reader = asyncio.create_task(_read_until_closed(ws), name="events-reader")
    # The client closing ends the wait too: one `await` per message, no task per message.
    reader.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (message := await queue.get()) is not None:
            try:
                await ws.send_str(json.dumps(message))
            except ConnectionResetError:  # the client went away between two messages
                break
        else:
            if not reader.done():  # the None is the bus dropping us for falling behind
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
    finally:
        services.bus.unsubscribe(queue)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()
    return ws


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass  # clients send nothing we act on


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"hvagent stopping")
