"""LibvirtHypervisor: the port implemented on libvirt-python, with events through libvirtaio.

Threading: every blocking libvirt call runs on one bounded, named thread pool (`_call`).
Events are delivered by libvirtaio on the event-loop thread to an EventFeed (virt/feed.py),
whose stream `events()` returns. The runtime serialises calls per VM,
so no VM ever has two calls in flight from hvagent.

Connection loss (shared/design/STYLE.md B.4): the close callback ends the event stream with
`ConnectionLost`. The registry then either exits the daemon non-zero (`[libvirt] reconnect =
false`: crash-only, systemd restarts it into recovery) or calls `reconnect()`, which opens a
new connection with capped backoff; calls made meanwhile fail with HypervisorUnavailable (40).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libvirt

from agent import errors
from agent.config import LibvirtConfig
from agent.domxml import metadata
from agent.virt import events as evtab
from agent.virt import queries
from agent.virt.connection import connect, drain_events, register_event_loop
from agent.virt.errors import is_not_running, translate
from agent.virt.feed import EventFeed
from agent.virt.guest import AgentQueries, GuestInfo
from agent.virt.liveness import Liveness
from agent.virt.port import DomainEvent, DomainRecord, DomainStats, HostFacts, PowerMethod
from agent.virt.running import RunningDomainCalls
from agent.virt.undefine import undefine_now

log = logging.getLogger(__name__)

T = TypeVar("T")


class LibvirtHypervisor(RunningDomainCalls):
    """One libvirt connection, its event callbacks and its call thread pool.

    Create with `await LibvirtHypervisor.open(uri)`; `close()` deregisters callbacks, closes
    the connection and drains libvirtaio. Methods are called from the event-loop thread.
    Calls on a running domain (pause, hot-plug, vCPUs, balloon) are in `virt/running.py`.
    """

    def __init__(
        self,
        conn: libvirt.virConnect,
        pool: ThreadPoolExecutor,
        uri: str,
        *,
        call_timeout_s: float = 60.0,
    ) -> None:
        self._uri = uri
        self._conn = conn
        self._pool = pool
        self._feed = EventFeed(conn)
        self._call_timeout_s = call_timeout_s
        self.liveness = Liveness()
        # Bulk stats for metrics run on their own threads: a domain stuck in a QEMU monitor
        # call may hold one of these, never the verbs' pool.
        self._stats_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="libvirt-stats")
        self._agent = AgentQueries(self.liveness)  # a hung guest agent holds these
        # Set by the daemon: called with (call name, seconds) after every libvirt call, and
        # with the call name when a call ran into its deadline.
        self.call_observer: Callable[[str, float], None] | None = None
        self.timeout_observer: Callable[[str], None] | None = None

    @classmethod
    async def open(
        cls, uri: str, *, threads: int = 8, wait: bool = False, call_timeout_s: float = 60.0
    ) -> LibvirtHypervisor:
        """Connect to `uri`. With `wait`, an unreachable libvirtd is retried with capped
        backoff (logged, no traceback) until it answers; else HypervisorUnavailable."""
        register_event_loop()
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="libvirt")
        try:
            conn = await connect(pool, uri, wait=wait)
        except BaseException:
            pool.shutdown(wait=False)
            raise
        self = cls(conn, pool, uri, call_timeout_s=call_timeout_s)
        self._feed.register()
        log.info("connected to libvirt at %s", uri)
        return self

    async def reconnect(self) -> None:
        """After the event stream ended with ConnectionLost: open a new connection (retried
        with capped backoff until libvirtd answers) and stream its events. `events()` must
        be called again afterwards."""
        self._feed.deregister()
        conn = await connect(self._pool, self._uri, wait=True)
        old, self._conn = self._conn, conn
        self._feed = EventFeed(conn)
        self._feed.register()
        with contextlib.suppress(libvirt.libvirtError):
            await self._call("close", old.close)
        log.info("reconnected to libvirt at %s", self._uri)

    # -- calls -----------------------------------------------------------------------------

    async def _call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking libvirt call on the pool; libvirt errors propagate as is.

        While the liveness probe finds libvirt not answering, no call is made: the caller
        gets HypervisorUnavailable (40) at once instead of a thread stuck behind a hung
        libvirtd. Every call has a deadline ([libvirt] call_timeout_s); past it the caller
        gets HypervisorUnavailable and the call is counted. Cancelling (or the deadline)
        does not stop the thread: the call runs to its end and its result is dropped.
        """
        if not self.liveness.answering:
            raise errors.HypervisorUnavailable(
                f"libvirt is not answering (no reply to a probe for "
                f"{self.liveness.silent_s:.0f} s): {name} not attempted",
                call=name,
            )
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        try:
            async with asyncio.timeout(self._call_timeout_s):
                return await loop.run_in_executor(self._pool, functools.partial(fn, *args))
        except TimeoutError:
            if self.timeout_observer is not None:
                self.timeout_observer(name)
            raise errors.HypervisorUnavailable(
                f"libvirt did not answer {name} within {self._call_timeout_s:.0f} s", call=name
            ) from None
        finally:
            if self.call_observer is not None:
                self.call_observer(name, time.monotonic() - start)

    async def probe(self, *, interval_s: float, timeout_s: float) -> None:
        """Keep `liveness` (and so `alive` and /readyz) up to date; runs until cancelled."""
        await self.liveness.watch(
            lambda: self._conn.getLibVersion(), interval_s=interval_s, timeout_s=timeout_s
        )

    async def all_domain_stats(self) -> list[DomainStats]:
        """virConnectGetAllDomainStats with NOWAIT (where supported) on the stats executor."""

        loop = asyncio.get_running_loop()
        start = time.monotonic()
        try:
            return await loop.run_in_executor(self._stats_pool, queries.domain_stats, self._conn)
        finally:
            if self.call_observer is not None:
                self.call_observer("getAllDomainStats", time.monotonic() - start)

    async def _lookup(self, vm_id: uuid.UUID) -> libvirt.virDomain:
        try:
            return await self._call("lookup", self._conn.lookupByUUIDString, str(vm_id))
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    def _record(self, dom: libvirt.virDomain) -> DomainRecord:
        # Runs on a pool thread: two libvirt calls in one hop.
        st, reason = dom.state()
        state, cause = evtab.state(st, reason)
        return DomainRecord(uuid.UUID(dom.UUIDString()), state, cause, dom.XMLDesc(0))

    async def list_domains(self) -> list[DomainRecord]:
        def work() -> list[DomainRecord]:
            out = []
            for dom in self._conn.listAllDomains(0):
                try:
                    out.append(self._record(dom))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # a domain undefined while we listed is simply not there
            return out

        try:
            return await self._call("list_domains", work)
        except libvirt.libvirtError as exc:
            raise translate(exc) from exc

    async def domain(self, vm_id: uuid.UUID) -> DomainRecord:
        def work() -> DomainRecord:  # look-up and record in one trip to the threads
            return self._record(self._conn.lookupByUUIDString(str(vm_id)))

        try:
            return await self._call("domain", work)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def has_domain(self, vm_id: uuid.UUID) -> bool:
        try:
            await self._lookup(vm_id)
        except errors.NoSuchVM:
            return False
        return True

    async def domain_xml(self, vm_id: uuid.UUID) -> str:
        def work() -> str:
            # No VIR_DOMAIN_XML_SECURE: libvirt leaves graphics passwords out.
            return self._conn.lookupByUUIDString(str(vm_id)).XMLDesc(0)

        try:
            return await self._call("domain_xml", work)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def update_graphics(self, vm_id: uuid.UUID, element_xml: str) -> None:
        dom = await self._lookup(vm_id)
        try:
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
            await self._call("update_graphics", dom.updateDeviceFlags, element_xml, flags)
        except libvirt.libvirtError as exc:
            err = translate(exc, errors.TicketFailed, vmId=str(vm_id))
            if not isinstance(err, errors.NoSuchVM | errors.HypervisorUnavailable):
                detail = {k: v for k, v in err.data.items() if k != "reason"}
                err = errors.TicketFailed(err.reason, **detail)
            raise err from exc

    async def define_and_start(self, xml: str, *, paused: bool) -> str:
        """Define (schema-validated) and start in one trip to the libvirt threads; a domain
        that fails to start is undefined again before this returns. Cancelling the caller
        does not stop the thread: the domain then runs with hvagent's metadata and the next
        recovery adopts it."""

        def work() -> str:
            try:
                dom = self._conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
            except libvirt.libvirtError as exc:
                raise translate(exc, errors.CreateFailed) from exc
            try:
                dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
            except libvirt.libvirtError as exc:
                log.info("start failed, undefining the domain: %s", exc.get_error_message())
                try:
                    undefine_now(dom)
                except libvirt.libvirtError as undef:
                    log.warning("could not undefine it: %s", undef.get_error_message())
                raise translate(exc, errors.CreateFailed) from exc
            try:
                return dom.XMLDesc(0)  # the live XML: ports, aliases, addresses
            except libvirt.libvirtError:
                return ""  # read again later; the domain runs

        return await self._call("define_and_start", work)

    async def destroy(self, vm_id: uuid.UUID, *, graceful_attempts: int) -> None:
        dom = await self._lookup(vm_id)
        last: libvirt.libvirtError | None = None
        for _ in range(graceful_attempts):
            try:
                await self._call("destroy", dom.destroyFlags, libvirt.VIR_DOMAIN_DESTROY_GRACEFUL)
                return
            except libvirt.libvirtError as exc:
                if is_not_running(exc):
                    return
                last = exc
        if last is not None and last.get_error_code() not in (
            libvirt.VIR_ERR_OPERATION_FAILED,
            libvirt.VIR_ERR_SYSTEM_ERROR,
        ):
            raise translate(last, errors.DestroyFailed, vmId=str(vm_id)) from last
        try:
            await self._call("destroy", dom.destroyFlags, 0)
        except libvirt.libvirtError as exc:
            if not is_not_running(exc):
                raise translate(exc, errors.DestroyFailed, vmId=str(vm_id)) from exc

    async def shutdown(self, vm_id: uuid.UUID, method: PowerMethod) -> None:
        dom = await self._lookup(vm_id)
        flags = {
            PowerMethod.AGENT: libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
            PowerMethod.ACPI: libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
        }[method]
        try:
            await self._call("shutdown", dom.shutdownFlags, flags)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def reboot(self, vm_id: uuid.UUID, method: PowerMethod) -> None:
        dom = await self._lookup(vm_id)
        flags = {
            PowerMethod.AGENT: libvirt.VIR_DOMAIN_REBOOT_GUEST_AGENT,
            PowerMethod.ACPI: libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN,
        }[method]
        try:
            await self._call("reboot", dom.reboot, flags)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def reset(self, vm_id: uuid.UUID) -> None:
        dom = await self._lookup(vm_id)
        try:
            await self._call("reset", dom.reset, 0)
        except libvirt.libvirtError as exc:
            raise translate(exc, errors.ResetFailed, vmId=str(vm_id)) from exc

    async def undefine(self, vm_id: uuid.UUID) -> None:
        try:
            dom = await self._lookup(vm_id)
        except errors.NoSuchVM:
            return
        await self._undefine_dom(dom)

    async def _undefine_dom(self, dom: libvirt.virDomain) -> None:
        try:
            await self._call("undefine", undefine_now, dom)
        except libvirt.libvirtError as exc:
            raise translate(exc) from exc

    async def set_metadata(self, vm_id: uuid.UUID, element_xml: str) -> None:
        dom = await self._lookup(vm_id)

        def work() -> None:
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            dom.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                element_xml,
                metadata.PREFIX,
                metadata.NS,
                flags,
            )

        try:
            await self._call("set_metadata", work)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def host_facts(self) -> HostFacts:
        try:
            return await self._call("host_facts", queries.host_facts, self._conn)
        except libvirt.libvirtError as exc:
            raise translate(exc) from exc

    async def guest_info(self, vm_id: uuid.UUID, *, timeout_s: int) -> GuestInfo:
        return await self._agent.info(self._conn, vm_id, timeout_s)  # see virt/guest.py

    # -- events ----------------------------------------------------------------------------

    def events(self) -> AsyncIterator[DomainEvent]:
        return self._feed.events()

    @property
    def alive(self) -> bool:
        return not self._feed.closed and self.liveness.answering and self._conn.isAlive() == 1

    async def close(self) -> None:
        self._feed.deregister()
        await self._call("close", self._conn.close)
        self._pool.shutdown(wait=False)
        self._stats_pool.shutdown(wait=False)
        self._agent.close()
        await drain_events()
        log.info("libvirt connection closed")


@contextlib.asynccontextmanager
async def connected(cfg: LibvirtConfig) -> AsyncIterator[LibvirtHypervisor]:
    """The daemon's libvirt connection as a lifecycle component: opened (waiting for
    libvirtd when `reconnect` is on), then closed."""
    port = await LibvirtHypervisor.open(
        cfg.uri, threads=cfg.call_threads, wait=cfg.reconnect, call_timeout_s=cfg.call_timeout_s
    )
    try:
        yield port
    finally:
        await port.close()
