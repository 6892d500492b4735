"""LibvirtHypervisor: the port implemented on libvirt-python, with events through libvirtaio.

Threading: every blocking libvirt call runs on one bounded, named thread pool (`_call`).
Events are delivered by libvirtaio on the event-loop thread to an EventFeed (virt/feed.py),
whose stream `events()` returns. The runtime serialises calls per VM,
so no VM ever has two calls in flight from hvagent.

Connection loss is crash-only (shared/design/STYLE.md B.4): the close callback ends the event
stream with `ConnectionLost`, the daemon exits non-zero, systemd restarts it into recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libvirt
import libvirtaio

from agent import errors
from agent.config import LibvirtConfig
from agent.domxml import metadata
from agent.virt import events as evtab
from agent.virt.errors import is_not_running, translate
from agent.virt.feed import EventFeed
from agent.virt.port import (
    DomainEvent,
    DomainRecord,
    DomainStats,
    HostFacts,
    PowerMethod,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

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


def _xml_version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


class LibvirtHypervisor:
    """One libvirt connection, its event callbacks and its call thread pool.

    Create with `await LibvirtHypervisor.open(uri)`; `close()` deregisters callbacks, closes
    the connection and drains libvirtaio. Methods are called from the event-loop thread.
    """

    def __init__(self, conn: libvirt.virConnect, pool: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._pool = pool
        self._feed = EventFeed(conn)
        # Bulk stats for metrics run on their own threads: a domain stuck in a QEMU monitor
        # call may hold one of these, never the verbs' pool.
        self._stats_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="libvirt-stats")
        # Set by the daemon: called with (call name, seconds) after every libvirt call.
        self.call_observer: Callable[[str, float], None] | None = None

    @classmethod
    async def open(cls, uri: str, *, threads: int = 8) -> LibvirtHypervisor:
        register_event_loop()
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="libvirt")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(pool, libvirt.open, uri)
        except libvirt.libvirtError as exc:
            pool.shutdown(wait=False)
            raise translate(exc, errors.HypervisorUnavailable, uri=uri) from exc
        self = cls(conn, pool)
        self._feed.register()
        log.info("connected to libvirt at %s", uri)
        return self

    # -- calls -----------------------------------------------------------------------------

    async def _call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking libvirt call on the pool; libvirt errors propagate as is.

        Cancelling the awaiting coroutine does not stop the thread: the call runs to its end
        and its result is dropped. Callers add `asyncio.timeout` where libvirt may block long.
        """
        loop = asyncio.get_running_loop()
        if self.call_observer is None:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args))
        start = time.monotonic()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args))
        finally:
            self.call_observer(name, time.monotonic() - start)

    async def all_domain_stats(self) -> list[DomainStats]:
        """virConnectGetAllDomainStats with NOWAIT (where supported) on the stats executor."""

        def work() -> list[DomainStats]:
            flags = getattr(libvirt, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)
            try:
                raw = self._conn.getAllDomainStats(0, flags)
            except libvirt.libvirtError:
                if not flags:
                    raise
                raw = self._conn.getAllDomainStats(0, 0)  # NOWAIT unsupported by this driver
            return [DomainStats(uuid.UUID(d.UUIDString()), d.name(), dict(s)) for d, s in raw]

        loop = asyncio.get_running_loop()
        start = time.monotonic()
        try:
            return await loop.run_in_executor(self._stats_pool, work)
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
        dom = await self._lookup(vm_id)
        try:
            return await self._call("domain", self._record, dom)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def domain_xml(self, vm_id: uuid.UUID) -> str:
        dom = await self._lookup(vm_id)
        try:
            # No VIR_DOMAIN_XML_SECURE: libvirt leaves graphics passwords out.
            return await self._call("domain_xml", dom.XMLDesc, 0)
        except libvirt.libvirtError as exc:
            raise translate(exc, vmId=str(vm_id)) from exc

    async def update_graphics(self, vm_id: uuid.UUID, element_xml: str) -> None:
        dom = await self._lookup(vm_id)
        try:
            await self._call(
                "update_graphics", dom.updateDeviceFlags, element_xml,
                libvirt.VIR_DOMAIN_AFFECT_LIVE,
            )  # fmt: skip
        except libvirt.libvirtError as exc:
            err = translate(exc, errors.TicketFailed, vmId=str(vm_id))
            if not isinstance(err, errors.NoSuchVM | errors.HypervisorUnavailable):
                detail = {k: v for k, v in err.data.items() if k != "reason"}
                err = errors.TicketFailed(err.reason, **detail)
            raise err from exc

    async def define_and_start(self, xml: str, *, paused: bool) -> None:
        """Define (schema-validated) and start in one trip to the libvirt threads; a domain
        that fails to start is undefined again before this returns. Cancelling the caller
        does not stop the thread: the domain then runs with hvagent's metadata and the next
        recovery adopts it."""

        def work() -> None:
            try:
                dom = self._conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
            except libvirt.libvirtError as exc:
                raise translate(exc, errors.CreateFailed) from exc
            try:
                dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
            except libvirt.libvirtError as exc:
                log.info("start failed, undefining the domain: %s", exc.get_error_message())
                try:
                    self._undefine_now(dom)
                except libvirt.libvirtError as undef:
                    log.warning("could not undefine it: %s", undef.get_error_message())
                raise translate(exc, errors.CreateFailed) from exc

        await self._call("define_and_start", work)

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
            await self._call("undefine", self._undefine_now, dom)
        except libvirt.libvirtError as exc:
            raise translate(exc) from exc

    @staticmethod
    def _undefine_now(dom: libvirt.virDomain) -> None:
        """Undefine with the flags that also drop NVRAM, managed save, snapshot and
        checkpoint metadata; the plain call for drivers without them (the test driver); a
        domain already gone is not an error. Runs on a libvirt thread."""
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
        )
        try:
            dom.undefineFlags(flags)
            return
        except libvirt.libvirtError as exc:
            code = exc.get_error_code()
            if code == libvirt.VIR_ERR_NO_DOMAIN:
                return
            if code not in (
                libvirt.VIR_ERR_NO_SUPPORT,
                libvirt.VIR_ERR_INVALID_ARG,
                libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
            ):
                raise
        try:
            dom.undefine()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise

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
        def work() -> HostFacts:
            model, mem, cpus, mhz, nodes, sockets, cores, threads = self._conn.getInfo()
            return HostFacts(
                hostname=socket.gethostname(),
                capabilities_xml=self._conn.getCapabilities(),
                cpu_model=model,
                memory_mib=mem,
                cpus=cpus,
                mhz=mhz,
                numa_nodes=nodes,
                sockets_per_node=sockets,
                cores_per_socket=cores,
                threads_per_core=threads,
                libvirt_version=_xml_version(self._conn.getLibVersion()),
                hypervisor_version=_xml_version(self._conn.getVersion()),
                hypervisor_type=self._conn.getType(),
            )

        try:
            return await self._call("host_facts", work)
        except libvirt.libvirtError as exc:
            raise translate(exc) from exc

    # -- events ----------------------------------------------------------------------------

    def events(self) -> AsyncIterator[DomainEvent]:
        return self._feed.events()

    @property
    def alive(self) -> bool:
        return not self._feed.closed and self._conn.isAlive() == 1

    async def close(self) -> None:
        self._feed.deregister()
        await self._call("close", self._conn.close)
        self._pool.shutdown(wait=False)
        self._stats_pool.shutdown(wait=False)
        if _aio_impl is not None:
            await _aio_impl.drain()
        log.info("libvirt connection closed")


@contextlib.asynccontextmanager
async def connected(cfg: LibvirtConfig) -> AsyncIterator[LibvirtHypervisor]:
    """The daemon's libvirt connection as a lifecycle component: opened, then closed."""
    port = await LibvirtHypervisor.open(cfg.uri, threads=cfg.call_threads)
    try:
        yield port
    finally:
        await port.close()
