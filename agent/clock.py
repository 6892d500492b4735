"""Clock: the one source of time for timers, injectable so tests run in milliseconds.

`time()` is wall-clock seconds since the epoch (UTC): power-operation deadlines are absolute
wall-clock instants because they are persisted in domain metadata and must mean the same
after hvagent restarts. `monotonic()` is for durations. `sleep_until(t)` returns once
`time() >= t`. Pure: no asyncio import here; the real clock's sleep is handed in.
"""

from __future__ import annotations

import time as _time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def utcnow(self) -> datetime: ...

    async def sleep_until(self, deadline: float) -> None: ...


class RealClock:
    def __init__(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._sleep = sleep  # asyncio.sleep, handed in by the runtime

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: float) -> None:
        while (left := deadline - _time.time()) > 0:
            await self._sleep(left)


def iso(ts: float) -> str:
    """Epoch seconds -> ISO 8601 UTC with milliseconds ('2026-01-02T03:04:05.678Z')."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
