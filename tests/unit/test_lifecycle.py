"""The daemon's lifecycle: components stop once, in reverse order, each within its limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from agent.lifecycle import Lifecycle


def component(name: str, log: list[str], *, hang: bool = False):
    @contextlib.asynccontextmanager
    async def cm():
        log.append(f"start {name}")
        try:
            yield name
        finally:
            log.append(f"stop {name}")
            if hang:
                await asyncio.Event().wait()

    return cm()


async def test_components_stop_once_in_reverse_order():
    log: list[str] = []
    stop = asyncio.Event()
    async with Lifecycle() as life:
        assert await life.enter("a", component("a", log)) == "a"
        await life.enter("b", component("b", log))
        life.on_stop("notify", lambda: log.append("notify"))
        await life.enter("c", component("c", log))
        stop.set()
        await life.wait(stop.wait())
    assert log == ["start a", "start b", "start c", "stop c", "notify", "stop b", "stop a"]


async def test_a_stuck_component_is_left_behind_and_the_rest_still_stop(caplog):
    caplog.set_level(logging.INFO)
    log: list[str] = []
    async with asyncio.timeout(10):
        async with Lifecycle(stop_timeout_s=0.2) as life:
            await life.enter("first", component("first", log))
            await life.enter("stuck", component("stuck", log, hang=True))
    assert log[-1] == "stop first"
    assert "stopping stuck took longer than 0 s: left behind" in caplog.text


async def test_a_crashed_background_task_ends_wait_with_its_error():
    async def crash() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("libvirt went away")

    async def quiet() -> None:
        return  # e.g. the watchdog without systemd: finishing is not a crash

    with pytest.raises(ConnectionError, match="went away"):
        async with Lifecycle() as life:
            await life.background("watchdog", quiet)
            sleeper = await life.background("sleeper", asyncio.Event().wait)
            await life.background("pump", crash)
            await life.wait(asyncio.Event().wait())
    assert sleeper.cancelled()


def test_exit_goes_past_a_thread_stuck_in_a_call(caplog):
    """A libvirt call that never returns must not keep hvagent from exiting (issue: SIGTERM
    hung forever while a worker thread waited on a domain job)."""
    import threading

    from agent.daemon import exit_past_stuck_threads

    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="libvirt_0")
    stuck.start()
    exits: list[int] = []
    try:
        exit_past_stuck_threads(0, grace_s=0.1, exit_now=exits.append, threads=[stuck])
    finally:
        release.set()
        stuck.join()
    assert exits == [0]
    assert "exiting with 1 thread(s) still in a call: libvirt_0" in caplog.text
    exits.clear()
    exit_past_stuck_threads(0, grace_s=0.1, exit_now=exits.append, threads=[stuck])  # done now
    assert exits == []
