"""Log lines journald can read; watchdog pings only while healthy; the CLI's value parsing."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys

from agent.cli import build_params, parse_value
from agent.systemd import Notifier

SNIPPET = (
    "import logging; from agent import logs; logs.setup('INFO'); logging.getLogger('x').info('hi')"
)


def log_line(env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True
    )
    return proc.stderr.strip()


def test_no_timestamp_under_journald():
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO x ", log_line(env))
    assert log_line({**env, "JOURNAL_STREAM": "8:1234"}) == "INFO x [vm=- req=-] hi"


async def test_watchdog_pings_only_while_healthy(tmp_path):
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        healthy = True
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
        task = asyncio.create_task(n.watchdog(lambda: healthy))
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"WATCHDOG=1"
        healthy = False
        await asyncio.sleep(0.05)
        while True:  # drain pings sent before the flip
            try:
                sock.recv(100)
            except BlockingIOError:
                break
        await asyncio.sleep(0.2)  # ten ping periods: an unhealthy daemon sends nothing
        try:
            got = sock.recv(100)
        except BlockingIOError:
            got = None
        assert got is None
        task.cancel()


def test_cli_values_are_json_where_they_parse(tmp_path):
    assert parse_value("256") == 256 and parse_value("true") is True
    assert parse_value('{"a": [1]}') == {"a": [1]}
    assert parse_value("6f5c3b8e-8e0b") == "6f5c3b8e-8e0b" and parse_value("") == ""
    f = tmp_path / "p.json"
    f.write_text('{"vmParams": {"memSize": 64}, "vmID": "x"}')
    assert build_params(["vmID=y", "n=2"], f) == {"vmParams": {"memSize": 64}, "vmID": "y", "n": 2}
