"""Liveness: a hung libvirtd is noticed within the probe timeout and forgiven once it
answers; a question is never asked twice while one is in flight."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from agent.virt.liveness import Liveness


async def _until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_an_unanswered_question_marks_libvirt_silent_until_it_answers():
    hung = threading.Event()
    hung.set()
    released = threading.Event()
    asked = []

    def ask() -> int:
        asked.append(time.monotonic())
        if hung.is_set():
            released.wait(30)
        return 9000000

    live = Liveness()
    watcher = asyncio.create_task(live.watch(ask, interval_s=0.05, timeout_s=0.2))
    try:
        await _until(lambda: not live.answering)
        assert live.silent_s >= 0.2
        in_flight = len(asked)
        await asyncio.sleep(0.3)
        assert len(asked) == in_flight  # no second question behind the hung one
        hung.clear()
        released.set()
        await _until(lambda: live.answering)
        await _until(lambda: len(asked) > in_flight + 2)  # asking on schedule again
        assert live.answering
    finally:
        released.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_an_error_is_an_answer():
    def ask() -> int:
        raise OSError("connection closed")  # the event feed handles a closed connection

    live = Liveness()
    watcher = asyncio.create_task(live.watch(ask, interval_s=0.01, timeout_s=0.2))
    await asyncio.sleep(0.1)
    assert live.answering
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
