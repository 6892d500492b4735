"""The read-only scrape listener ([metrics] listen): GET /metrics, /healthz and /readyz only.

For Prometheus on a management network while the JSON-RPC listener stays on loopback and the
engine uses STOMP over mutual TLS. Plain HTTP, no verbs, no /events, no /verbs: nothing here
changes state. It does show VM names, UUIDs and their stats, so bind it to a network the
scraper is on. Off by default (`listen = ""`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent.api.app import SERVICES, healthz, readyz
from agent.api.context import Services

log = logging.getLogger(__name__)


def create_scrape_app(
    services: Services, registry: CollectorRegistry, prerendered: Callable[[], bytes]
) -> web.Application:
    app = web.Application(client_max_size=1024)
    app[SERVICES] = services

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry) + prerendered()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@contextlib.asynccontextmanager
async def serve_scrape(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app, shutdown_timeout=2, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("serving /metrics /healthz /readyz (read-only) on http://%s:%d", host, port)
        yield
    finally:
        await runner.cleanup()
