"""Opening libvirt connections: the once-per-process event loop binding (libvirtaio), and
`connect`, which retries an unreachable libvirtd with capped backoff when asked to wait
(logged each time, never a traceback)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import libvirt
import libvirtaio

from agent import errors
from agent.virt.errors import translate

log = logging.getLogger(__name__)

_aio_impl: libvirtaio.virEventAsyncIOImpl | None = None


def register_event_loop() -> libvirtaio.virEventAsyncIOImpl:
    """Bind libvirt's event loop to the running asyncio loop; once per process.

    libvirt allows exactly one registration per process, so later calls return the first
    implementation (tests share one session-wide loop for this reason).
    """
    global _aio_impl
    if _aio_impl is None:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        _aio_impl = libvirtaio.virEventRegisterAsyncIOImpl()
    return _aio_impl


async def drain_events() -> None:
    """Let libvirtaio finish the callbacks of a closed connection."""
    if _aio_impl is not None:
        await _aio_impl.drain()


RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0


async def connect(pool: ThreadPoolExecutor, uri: str, *, wait: bool) -> libvirt.virConnect:
    loop = asyncio.get_running_loop()
    delay = RETRY_FIRST_S
    while True:
        try:
            return await loop.run_in_executor(pool, libvirt.open, uri)
        except libvirt.libvirtError as exc:
            if not wait:
                raise translate(exc, errors.HypervisorUnavailable, uri=uri) from exc
            log.warning(
                "libvirt at %s is not reachable (%s); retrying in %.1f s",
                uri,
                exc.get_error_message(),
                delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)
