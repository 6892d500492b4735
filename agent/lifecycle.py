"""Lifecycle: the daemon's components, started in order and stopped once, in reverse order,
each within a time limit.

A component is an async context manager (a connection, a listener) or a background task.
`Lifecycle` enters them on one `contextlib.AsyncExitStack`; `wait()` returns when a stop is
requested or a background task ended on its own (a crash, which `wait()` re-raises after
the stack unwound so the daemon exits non-zero). Leaving the `Lifecycle` stops everything in
reverse order; every step is logged with its duration, and a step that takes longer than
`stop_timeout_s` is logged with what is still pending and left behind, so an orderly stop
always ends (shared/design/STYLE.md B.13). Adding a listener is one `enter` line in the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Lifecycle:
    def __init__(self, *, stop_timeout_s: float = 10.0) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._stop_timeout_s = stop_timeout_s
        self._ended: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> Lifecycle:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._stack.__aexit__(exc_type, exc, tb)

    async def enter(self, name: str, component: AbstractAsyncContextManager[T]) -> T:
        """Start `component` now; it is stopped when the lifecycle ends (reverse order)."""
        return await self._stack.enter_async_context(self._bounded(name, component))

    async def background(
        self, name: str, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> asyncio.Task[None]:
        """Run `work()` as a named task until the lifecycle ends; if it raises first,
        `wait()` returns and re-raises its error (a task may also just finish)."""
        return await self.enter(name, self._task(name, work))

    def on_stop(self, name: str, callback: Callable[[], object]) -> None:
        """Call `callback` first when stopping (before the components entered so far)."""

        async def call(*_: object) -> None:
            log.info("stopping: %s", name)
            callback()

        self._stack.push_async_exit(call)

    async def wait(self, *triggers: Awaitable[Any]) -> None:
        """Until one trigger completes (a stop request) or a background task failed."""
        waiters = [asyncio.ensure_future(t) for t in triggers]
        try:
            await asyncio.wait([*waiters, self._ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if self._ended.done():
            raise self._ended.result()

    @contextlib.asynccontextmanager
    async def _task(
        self, name: str, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> AsyncIterator[asyncio.Task[None]]:
        task = asyncio.create_task(work(), name=name)

        def ended(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None and not self._ended.done():
                self._ended.set_result(t.exception())

        task.add_done_callback(ended)
        try:
            yield task
        finally:
            task.remove_done_callback(ended)
            task.cancel()
            await asyncio.wait([task])
            failed = None if task.cancelled() else task.exception()
            reported = self._ended.done() and self._ended.result() is failed
            if failed is not None and not reported:
                log.error("%s had failed: %s", name, failed, exc_info=failed)

    @contextlib.asynccontextmanager
    async def _bounded(
        self, name: str, component: AbstractAsyncContextManager[T]
    ) -> AsyncIterator[T]:
        value = await component.__aenter__()
        try:
            yield value
        finally:
            await self._stop(name, component)

    async def _stop(self, name: str, component: AbstractAsyncContextManager[Any]) -> None:
        start = time.monotonic()
        try:
            async with asyncio.timeout(self._stop_timeout_s):
                await component.__aexit__(None, None, None)
        except TimeoutError:
            log.warning(
                "stopping %s took longer than %.0f s: left behind (still running: %s)",
                name,
                self._stop_timeout_s,
                _pending(),
            )
        except Exception as err:
            log.error("stopping %s failed: %s", name, err, exc_info=err)
        else:
            log.info("stopped %s in %.3f s", name, time.monotonic() - start)


def _pending() -> str:
    """The tasks still running, by name: what a stuck stop is waiting for."""
    current = asyncio.current_task()
    names = sorted(t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done())
    return ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") or "no tasks"
