"""Liveness: whether libvirtd answers at all, from a cheap question asked every few seconds.

A libvirtd that is hung (stopped, deadlocked) neither answers nor closes the connection, so
the event feed never notices. `watch` asks one question at a time on a thread of its own
(a hung libvirtd never ties up the verbs' threads, and never gets a second question behind
the first); a question unanswered for `timeout_s` makes `answering` false until one is
answered. The adapter refuses calls meanwhile (40 at once) and /readyz turns 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self) -> None:
        self.answering = True
        self._asked_at = time.monotonic()

    @property
    def silent_s(self) -> float:
        """How long the question in flight has gone unanswered."""
        return time.monotonic() - self._asked_at

    async def watch(
        self, ask: Callable[[], object], *, interval_s: float, timeout_s: float
    ) -> None:
        """Ask `ask()` every `interval_s` until cancelled; a failed question (an error,
        e.g. a closed connection) counts as answered: the event feed handles closing."""
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvirt-probe")
        try:
            while True:
                self._asked_at = time.monotonic()
                asked = loop.run_in_executor(pool, ask)
                try:
                    async with asyncio.timeout(timeout_s):
                        await asyncio.shield(asked)
                except TimeoutError:
                    if self.answering:
                        log.error("libvirt has not answered for %.0f s", timeout_s)
                    self.answering = False
                except Exception:
                    pass
                with contextlib.suppress(Exception):
                    await asked  # the same question: never a second one behind it
                if not self.answering:
                    log.info("libvirt answers again after %.0f s", self.silent_s)
                self.answering = True
                await asyncio.sleep(max(0.0, interval_s - self.silent_s))
        finally:
            pool.shutdown(wait=False)
