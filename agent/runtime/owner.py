"""VmOwner: the one task that owns a VM and serialises everything that happens to it.

RPC commands and routed libvirt events go through one inbox and are handled one at a time,
so verbs and events never race (jsonrpcserver runs batch entries concurrently; this is what
makes that safe). A command carries a Future: the verb awaits the part it must wait for and
nothing more. An error in a command fails that command only; the loop goes on. The loop ends
when the VM is destroyed (its domain undefined) or when the registry cancels it at shutdown,
which leaves the guest untouched.

Status changes are published on the StatusBus; the Down status and its exit info are first
written to the domain metadata, so a restarted hvagent reports the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from agent import errors
from agent.domxml import metadata, to_string
from agent.domxml.live import DomainFacts
from agent.domxml.metadata import VmMetadata
from agent.logs import vm_id_var
from agent.runtime.bus import StatusBus
from agent.status import ExitInfo, ExitReason, VmStatus
from agent.virt.port import DomainEvent, DomainState, EventKind, Hypervisor, StopCause

log = logging.getLogger(__name__)


def exit_for_stop(cause: StopCause | None, requested: ExitReason | None) -> ExitInfo:
    """Exit info for a domain that stopped; `requested` is the reason hvagent set beforehand."""
    if requested is not None and cause in (StopCause.DESTROYED, StopCause.SHUTDOWN, None):
        return ExitInfo.of(requested)
    match cause:
        case StopCause.SHUTDOWN:
            return ExitInfo.of(ExitReason.USER_SHUTDOWN)
        case StopCause.DESTROYED:
            return ExitInfo.of(ExitReason.LOST_QEMU_CONNECTION, "Domain destroyed outside hvagent")
        case StopCause.CRASHED:
            return ExitInfo.of(ExitReason.LOST_QEMU_CONNECTION, "QEMU process crashed")
        case StopCause.MIGRATED:
            return ExitInfo.of(ExitReason.MIGRATION_SUCCEEDED)
        case StopCause.SAVED:
            return ExitInfo.of(ExitReason.SAVE_STATE_SUCCEEDED)
        case StopCause.FAILED:
            return ExitInfo.of(ExitReason.GENERIC_ERROR, "The domain failed to start or run")
        case _:
            return ExitInfo.of(ExitReason.GENERIC_ERROR, "The domain is not running")


def status_time() -> str:
    """VDSM's statusTime: monotonic milliseconds, as a string."""
    return str(int(time.monotonic() * 1000))


@dataclass
class _Launch:
    xml: str
    paused: bool


@dataclass
class _Destroy:
    graceful_attempts: int
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class VmOwner:
    """State and serialised handling of one VM. Built and supervised by the registry."""

    def __init__(
        self,
        port: Hypervisor,
        bus: StatusBus,
        facts: DomainFacts,
        status: VmStatus,
        *,
        exit_info: ExitInfo | None = None,
    ) -> None:
        self.vm_id = facts.vm_id
        self.facts = facts
        self.external = facts.metadata is None
        self._meta = facts.metadata or VmMetadata()
        self._port = port
        self._bus = bus
        self._inbox: asyncio.Queue[_Launch | _Destroy | DomainEvent] = asyncio.Queue()
        self.status = status
        self.status_time = status_time()
        self.exit_info = exit_info
        self.agent_connected = False
        self._started_mono = time.monotonic()
        self._stop_reason: ExitReason | None = None
        self._gone = False

    @classmethod
    def adopt(
        cls,
        port: Hypervisor,
        bus: StatusBus,
        facts: DomainFacts,
        state: DomainState,
        cause: StopCause | None,
    ) -> VmOwner:
        """An owner for a domain found in libvirt (recovery or a domain defined outside)."""
        if state is DomainState.SHUTOFF:
            recorded = facts.metadata.exit if facts.metadata else None
            exit_info = recorded or exit_for_stop(cause, None)
            return cls(port, bus, facts, VmStatus.DOWN, exit_info=exit_info)
        status = VmStatus.PAUSED if state is DomainState.PAUSED else VmStatus.UP
        return cls(port, bus, facts, status)

    # -- called by the registry / verbs (event-loop thread) -------------------------------

    def launch(self, xml: str, *, paused: bool) -> None:
        self._inbox.put_nowait(_Launch(xml, paused))

    async def destroy(self, graceful_attempts: int) -> None:
        cmd = _Destroy(graceful_attempts)
        self._inbox.put_nowait(cmd)
        await cmd.done

    def post_event(self, event: DomainEvent) -> None:
        self._inbox.put_nowait(event)

    @property
    def gone(self) -> bool:
        return self._gone

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        vm_id_var.set(str(self.vm_id))
        while not self._gone:
            item = await self._inbox.get()
            if isinstance(item, DomainEvent):
                await self._on_event(item)
            elif isinstance(item, _Launch):
                await self._launch(item)
            else:
                try:
                    await self._destroy(item.graceful_attempts)
                except errors.AgentError as exc:
                    item.done.set_exception(exc)
                else:
                    item.done.set_result(None)
        # Anything still queued refers to a VM that no longer exists.
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, _Destroy):
                item.done.set_result(None)

    async def _launch(self, cmd: _Launch) -> None:
        try:
            await self._port.define_and_start(cmd.xml, paused=cmd.paused)
        except errors.AgentError as exc:
            log.warning("VM failed to start: %s", exc.reason)
            self._set_status(
                VmStatus.DOWN, ExitInfo.of(ExitReason.LIBVIRT_START_FAILED, exc.reason)
            )
            return
        self._started_mono = time.monotonic()
        self._set_status(VmStatus.PAUSED if cmd.paused else VmStatus.UP)

    async def _destroy(self, graceful_attempts: int) -> None:
        if self.external:
            raise errors.Unsupported(
                "the VM is not managed by hvagent (foreign domain); it is left untouched",
                vmId=str(self.vm_id),
            )
        if self.status is not VmStatus.DOWN:
            self._stop_reason = ExitReason.ADMIN_SHUTDOWN
            await self._port.destroy(self.vm_id, graceful_attempts=graceful_attempts)
            self._set_status(VmStatus.DOWN, ExitInfo.of(ExitReason.ADMIN_SHUTDOWN))
        await self._port.undefine(self.vm_id)
        log.info("VM destroyed and undefined")
        self._gone = True

    async def _on_event(self, event: DomainEvent) -> None:
        match event.kind:
            case EventKind.STOPPED if self.status is not VmStatus.DOWN:
                await self._went_down(exit_for_stop(event.stop_cause, self._stop_reason))
            case EventKind.STARTED if self.status is VmStatus.DOWN:
                self._started_mono = time.monotonic()
                self._stop_reason = None
                self._set_status(VmStatus.UP)
            case EventKind.SUSPENDED if self.status is not VmStatus.DOWN:
                self._set_status(VmStatus.PAUSED)
            case EventKind.RESUMED if self.status is VmStatus.PAUSED:
                self._set_status(VmStatus.UP)
            case EventKind.AGENT_CONNECTED:
                self.agent_connected = True
            case EventKind.AGENT_DISCONNECTED:
                self.agent_connected = False
            case EventKind.UNDEFINED if self.external:
                self._gone = True
            case _:
                log.debug(
                    "event %s (%s) in status %s: nothing to do",
                    event.kind,
                    event.stop_cause,
                    self.status,
                )

    async def _went_down(self, exit_info: ExitInfo) -> None:
        if not self.external:
            self._meta = replace(self._meta, exit=exit_info)
            try:
                await self._port.set_metadata(self.vm_id, to_string(metadata.build(self._meta)))
            except errors.AgentError as exc:
                log.warning("could not persist exit info: %s", exc.reason)
        self._set_status(VmStatus.DOWN, exit_info)

    def _set_status(self, status: VmStatus, exit_info: ExitInfo | None = None) -> None:
        old = self.status
        self.status = status
        self.status_time = status_time()
        self.exit_info = exit_info if status is VmStatus.DOWN else None
        if exit_info is not None:
            log.info(
                "status %s -> %s (exitReason %d: %s)",
                old,
                status,
                exit_info.reason,
                exit_info.message,
            )
        else:
            log.info("status %s -> %s", old, status)
        self._bus.publish_status(self.vm_id, self.stats())

    # -- reporting -------------------------------------------------------------------------

    def short(self) -> dict[str, Any]:
        return {"vmId": str(self.vm_id), "status": str(self.status), "statusTime": self.status_time}

    def stats(self) -> dict[str, Any]:
        """VDSM's per-VM stats dict (reference §7.2); Down VMs carry their exit info."""
        out = self.short()
        if self.external:
            out["external"] = True
        if self.status is VmStatus.DOWN:
            if self.exit_info is not None:
                out.update(self.exit_info.to_wire())
            out["timeOffset"] = "0"
            return out
        out.update(
            vmName=self.facts.name,
            vmType=self.facts.domain_type,
            kvmEnable="true" if self.facts.domain_type == "kvm" else "false",
            acpiEnable="true" if self.facts.acpi else "false",
            elapsedTime=str(int(time.monotonic() - self._started_mono)),
            monitorResponse="0",
            clientIp="",
            timeOffset="0",
            vcpuCount=str(self.facts.vcpus),
            memSize=self.facts.memory_mib,
            guestAgentConnected=self.agent_connected,
            displayInfo=[],
        )
        return out

    def info(self) -> dict[str, Any]:
        """VM.getInfo: identity and configuration plus status (and exit info when Down)."""
        out = self.short()
        out.update(
            vmName=self.facts.name,
            vmType=self.facts.domain_type,
            memSize=self.facts.memory_mib,
            smp=str(self.facts.vcpus),
            acpiEnable="true" if self.facts.acpi else "false",
            kvmEnable="true" if self.facts.domain_type == "kvm" else "false",
            external=self.external,
            custom=dict(self._meta.custom),
        )
        if self.status is VmStatus.DOWN and self.exit_info is not None:
            out.update(self.exit_info.to_wire())
        return out
