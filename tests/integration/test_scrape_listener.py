"""[metrics] listen: the read-only plain listener serves /metrics, /healthz, /readyz only."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from agent import config
from tests.client import RpcClient, free_port
from tests.integration.conftest import SHARED_URI, Daemon, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_scrape_listener_is_read_only(tmp_path, virconn):
    cfg = make_config(tmp_path, SHARED_URI)
    listen = f"0.0.0.0:{free_port()}"  # off loopback without `insecure`: no verbs here
    cfg = dataclasses.replace(cfg, metrics=config.MetricsConfig(listen=listen))
    d = Daemon(cfg)
    base = f"http://127.0.0.1:{config.split_listen(listen)[1]}"
    try:
        async with aiohttp.ClientSession() as s:
            await RpcClient(d.base, s).wait_ready(30)
            async with s.get(f"{base}/metrics") as r:
                assert r.status == 200 and "hvagent_libvirt_up 1.0" in await r.text()
            async with s.get(f"{base}/readyz") as r:
                assert r.status == 200 and (await r.json())["ready"] is True
            async with s.get(f"{base}/healthz") as r:
                assert r.status == 200
            body = '{"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"}'
            async with s.post(f"{base}/jsonrpc", data=body) as r:
                assert r.status in (404, 405)
            for path in ("/events", "/verbs"):
                async with s.get(f"{base}{path}") as r:
                    assert r.status == 404
    finally:
        assert await d.stop() == 0
