"""Subtasks: per-VM tasks a VM's owner starts and always ends (cancelled and awaited).

A subtask lives at most as long as its owner: while the domain runs (`while_running`, e.g.
a channel reader or a guest-info poller) or until the owner stops. `stop_running()` ends the
first kind when the domain goes down; `close()` ends all when the VM is forgotten or hvagent
stops. A subtask that fails is logged and forgotten; it never takes the owner down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Subtasks:
    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], bool] = {}  # task -> ends when the domain stops

    def start(
        self, name: str, factory: Callable[[], Coroutine[Any, Any, None]], *, while_running: bool
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(name, factory()), name=name)
        self._tasks[task] = while_running
        task.add_done_callback(self._tasks.pop)
        return task

    @property
    def names(self) -> list[str]:
        return sorted(t.get_name() for t in self._tasks)

    async def stop_running(self) -> None:
        await self._end([t for t, while_running in self._tasks.items() if while_running])

    async def close(self) -> None:
        await self._end(list(self._tasks))

    @staticmethod
    async def _end(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _guard(name: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subtask %s failed", name)
