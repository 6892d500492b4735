"""sd_notify: the daemon tells a test-owned $NOTIFY_SOCKET READY, WATCHDOG pings, STOPPING."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.integration.conftest import SHARED_URI, Daemon, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def receive(sock: socket.socket, timeout: float) -> list[str]:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), timeout)
    return data.decode().split("\n")


async def wait_line(sock, wanted: str, timeout: float = 30) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while wanted not in seen:
            seen += await receive(sock, timeout)
    return seen


async def test_ready_watchdog_stopping(tmp_path, monkeypatch, virconn):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pings every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    d = Daemon(make_config(tmp_path, SHARED_URI))
    try:
        first = await wait_line(sock, "READY=1")
        # READY comes after startup recovery, never a watchdog ping before the daemon is ready
        assert "STOPPING=1" not in first
        pings = 0
        while pings < 3:
            pings += (await receive(sock, 5)).count("WATCHDOG=1")
    finally:
        code = await d.stop()
    assert code == 0
    rest: list[str] = []
    while True:
        try:
            rest += await receive(sock, 0.5)
        except TimeoutError:
            break
    assert "STOPPING=1" in rest
    sock.close()


async def test_notifier_is_a_noop_without_systemd():
    from agent.systemd import Notifier

    n = Notifier({})
    assert not n.enabled and n.watchdog_interval_s is None and n.notify("READY=1") is False
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000"}).watchdog_interval_s == 0.5
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None
