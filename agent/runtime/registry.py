"""VmRegistry: vm_id -> VmOwner; creates, supervises and removes owners; routes events.

VM.create comes here with the request as sent: the registry has the intake turn it into a
launch plan (runtime/creation.py -> agent/intake/: every check before libvirt is touched),
then starts the VM's owner, which defines and starts the domain.

`run()` is the registry's life: a TaskGroup holding the event pump and every owner task. A
bug that escapes an owner's loop ends the group and so the daemon (systemd brings it back into
recovery). Cancelling `run()` stops all owners and leaves every guest running. When the
libvirt connection is lost, the pump either ends the group with ConnectionLost (crash-only)
or has the port reconnect and then reconciles every owner with what libvirt reports, since
events were missed meanwhile (`reconcile`).
All methods are called on the event-loop thread; `create` checks and inserts without an
await in between, so two concurrent creates of one id cannot both pass.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from agent import errors
from agent.clock import Clock
from agent.config import (
    ChannelsConfig,
    GuestAgentConfig,
    HostAccessConfig,
    PayloadConfig,
    PowerConfig,
    VirtConfig,
)
from agent.domxml import live, redact
from agent.domxml.metadata import VmMetadata
from agent.intake.hostaccess import for_host, host_emulators
from agent.intake.launch import Launch
from agent.metrics.snapshot import Snapshot
from agent.runtime import creation, payloads
from agent.runtime.bus import StatusBus
from agent.runtime.channels.drain import Keeper
from agent.runtime.records import DownRecords
from agent.runtime.vm import DestroyCommand, LaunchCommand, OwnerObserver, VmOwner
from agent.status import VmStatus
from agent.virt.port import (
    ConnectionLost,
    DomainEvent,
    DomainRecord,
    DomainState,
    EventKind,
    Hypervisor,
    StopCause,
)
from agent.vmstats import VmFacts

log = logging.getLogger(__name__)


class VmRegistry:
    def __init__(
        self,
        port: Hypervisor,
        bus: StatusBus,
        *,
        virt: VirtConfig | None = None,
        access: HostAccessConfig | None = None,
        reconnect: bool = False,
        records: DownRecords | None = None,
        power_config: PowerConfig | None = None,
        clock: Clock | None = None,
        observer: OwnerObserver | None = None,
        payload: PayloadConfig | None = None,
        sampled: Callable[[], Snapshot] | None = None,
        guest_agent: GuestAgentConfig | None = None,
        channels: ChannelsConfig | None = None,
        fd_keeper: Keeper | None = None,
    ) -> None:
        self._port = port
        # Without a channels config (unit tests) nothing is drained; the daemon passes its
        # [channels] section with log_dir resolved.
        self._channels = channels
        # Without a payload config (unit tests) images go to the default dir and nothing
        # removes them; the daemon always passes its [payload] section.
        self._payload = payload or PayloadConfig()
        self._bus = bus
        self._virt = virt or VirtConfig()
        self._access = access or HostAccessConfig()
        self._emulators: frozenset[str] | None = None  # the host's, from capabilities
        self._reconnect = reconnect
        self._records = records or DownRecords(None)
        self._owner_kw: dict[str, Any] = {
            "records": self._records,
            "power_config": power_config,
            "clock": clock,
            "observer": observer,
            "payload_dir": payload.dir if payload else None,
            "sampled": sampled,
            "guest_agent": guest_agent,
            "channels": channels,
            "fd_keeper": fd_keeper,
            "virt": virt,
        }
        self._owners: dict[uuid.UUID, VmOwner] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._started = asyncio.Event()
        self.recovered = asyncio.Event()

    async def run(self) -> None:
        """Run the event pump and owner tasks until cancelled (or a bug ends the group)."""
        # Nothing is being written yet: what a killed hvagent left half-built goes now.
        if self._owner_kw["payload_dir"]:
            await asyncio.to_thread(payloads.sweep_partial, self._owner_kw["payload_dir"])
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self._started.set()
            tg.create_task(self._pump(), name="libvirt-events")

    async def wait_started(self) -> None:
        await self._started.wait()

    # -- membership ------------------------------------------------------------------------

    def adopt(self, record: DomainRecord) -> VmOwner:
        owner = VmOwner.adopt(
            self._port,
            self._bus,
            live.facts(record.xml),
            record.state,
            record.stop_cause,
            **self._owner_kw,
        )
        self._start(owner)
        return owner

    def _start(self, owner: VmOwner) -> None:
        assert self._tg is not None, "registry.run() must be running"
        self._owners[owner.vm_id] = owner
        self._tg.create_task(self._supervise(owner), name=f"vm:{owner.vm_id}")

    async def _supervise(self, owner: VmOwner) -> None:
        try:
            await owner.run()
        finally:
            if self._owners.get(owner.vm_id) is owner and owner.gone:
                del self._owners[owner.vm_id]

    async def adopt_down_records(self) -> int:
        """Recovery: the VMs that went Down without a domain before hvagent restarted are
        listed Down again, with their exit info, until VM.destroy. Returns how many."""
        adopted = 0
        for record in await self._records.load():
            if record.vm_id in self._owners:  # a domain exists again: the record is stale
                await self._records.remove(record.vm_id)
                continue
            facts = live.DomainFacts(
                record.vm_id, record.name, "", False, 0, 0, VmMetadata(exit=record.exit)
            )
            owner = VmOwner(
                self._port, self._bus, facts, VmStatus.DOWN, exit_info=record.exit,
                **self._owner_kw,
            )  # fmt: skip
            self._start(owner)
            adopted += 1
        return adopted

    def get(self, vm_id: uuid.UUID) -> VmOwner:
        owner = self._owners.get(vm_id)
        if owner is None:
            raise errors.NoSuchVM(vmId=str(vm_id))
        return owner

    def owners(self, vm_ids: Iterable[uuid.UUID] | None = None) -> list[VmOwner]:
        if vm_ids is None:
            return list(self._owners.values())
        return [self._owners[v] for v in vm_ids if v in self._owners]

    def vm_facts(self) -> dict[uuid.UUID, VmFacts]:
        """What the sampler needs of each VM to build its stats (agent/vmstats.py)."""
        return {v: VmFacts(o.facts.devices, o.facts.memory_mib) for v, o in self._owners.items()}

    # -- verbs -----------------------------------------------------------------------------

    @property
    def device_policy(self) -> HostAccessConfig:
        """[host_access] with hvagent's own places: hot-plugged disk paths pass it as
        VM.create's do."""
        return for_host(self._access, self._virt)

    async def create(self, vm_id: uuid.UUID, params: Any) -> dict[str, Any]:
        """VM.create: plan the launch (runtime/creation.py), answer WaitForLaunch at once
        with the plan's warnings; the owner then defines and starts the domain. The plan is
        checked against [host_access] with the host's emulators (from capabilities, cached)."""
        if self._emulators is None:
            self._emulators = host_emulators((await self._port.host_facts()).capabilities_xml)
        access = (self._access, self._emulators)
        # A domain hvagent has not adopted yet (defined outside a moment ago) must not be
        # overwritten by defineXML: libvirt is asked on its thread while the plan is made.
        # The plan is CPU on this loop: yield once so the look-up reaches its thread first.
        known = asyncio.ensure_future(self._port.has_domain(vm_id))
        try:
            await asyncio.sleep(0)
            async with creation.planned(
                self._port, self._virt, vm_id, params, access, self._payload, self._channels
            ) as planned:
                return await self.launch(planned, known)
        finally:
            if not known.done():
                known.cancel()
                await asyncio.gather(known, return_exceptions=True)
            elif not known.cancelled():
                known.exception()  # retrieved: the plan's error, if any, is the answer

    async def launch(self, planned: Launch, known: Awaitable[bool] | None = None) -> dict[str, Any]:
        """Start a planned VM. `planned` is fully validated and rendered: nothing here can fail
        on the request's content before libvirt sees it. `known`: whether libvirt has a
        domain with this UUID (asked here when not given)."""
        self._check_free(planned)
        if await (known if known is not None else self._port.has_domain(planned.vm_id)):
            raise errors.VMExists("a libvirt domain with this UUID exists", vmId=str(planned.vm_id))
        self._check_free(planned)  # re-check: we awaited
        owner = VmOwner(
            self._port, self._bus, planned.facts, VmStatus.WAIT_FOR_LAUNCH, **self._owner_kw
        )
        self._start(owner)
        owner.post(LaunchCommand(planned.xml, planned.paused))
        log.info("VM %s (%s) accepted, launching", planned.vm_id, planned.name)
        reply = owner.short()  # WaitForLaunch, whatever the owner does next
        if planned.warnings:
            reply["warnings"] = list(planned.warnings)
        # Yield once: the owner's first step takes the command and hands the define to
        # libvirt's threads, so writing this reply overlaps libvirt's work.
        await asyncio.sleep(0)
        return reply

    def _check_free(self, spec: Launch) -> None:
        if spec.vm_id in self._owners:
            raise errors.VMExists(vmId=str(spec.vm_id))
        for owner in self._owners.values():
            if owner.facts.name == spec.name:
                raise errors.VMExists(
                    f"VM name {spec.name!r} is used by {owner.vm_id}",
                    vmId=str(spec.vm_id),
                    param="vmName",
                )

    async def dump_xml(self, vm_id: uuid.UUID) -> str:
        """Host.dumpxmls: the live XML of a VM hvagent knows, passwords blanked."""
        self.get(vm_id)
        return redact.blank_passwords(await self._port.domain_xml(vm_id))

    async def destroy(self, vm_id: uuid.UUID, graceful_attempts: int) -> None:
        await self.get(vm_id).submit(DestroyCommand(graceful_attempts))

    # -- events ----------------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            try:
                async for event in self._port.events():
                    self._route(event)
            except ConnectionLost:
                if not self._reconnect:
                    raise
                log.error("libvirt connection lost: reconnecting (verbs answer 40 meanwhile)")
                await self._port.reconnect()
                self.reconcile(await self._port.list_domains())

    def _route(self, event: DomainEvent) -> None:
        owner = self._owners.get(event.vm_id)
        if owner is not None:
            owner.post_event(event)
        elif event.kind in (EventKind.DEFINED, EventKind.STARTED) and self.recovered.is_set():
            assert self._tg is not None
            self._tg.create_task(self._adopt_new(event), name=f"adopt:{event.vm_id}")

    def reconcile(self, records: list[DomainRecord]) -> None:
        """After a reconnect: tell each owner what changed while events could not arrive
        (as the events libvirt would have sent), adopt new domains, and stop owners whose
        domain vanished."""
        seen = {r.vm_id for r in records}
        for record in records:
            owner = self._owners.get(record.vm_id)
            if owner is None:
                self.adopt(record)
                log.info("adopted domain %s found after reconnecting", record.vm_id)
                continue
            for event in missed_events(owner.status, record):
                owner.post_event(event)
        for vm_id, owner in list(self._owners.items()):
            if vm_id not in seen and owner.status is not VmStatus.DOWN:
                log.warning("VM %s: its domain is gone after reconnecting", vm_id)
                owner.post_event(DomainEvent(vm_id, EventKind.STOPPED, StopCause.UNKNOWN))
        log.info("reconciled %d domains with libvirt after reconnecting", len(records))

    async def _adopt_new(self, event: DomainEvent) -> None:
        try:
            record = await self._port.domain(event.vm_id)
        except errors.NoSuchVM:
            return
        if record.vm_id not in self._owners:
            owner = self.adopt(record)
            log.info(
                "adopted domain %s defined outside hvagent (%s)",
                owner.vm_id,
                "foreign" if owner.external else "hvagent metadata",
            )


def missed_events(status: VmStatus, record: DomainRecord) -> list[DomainEvent]:
    """The lifecycle events that take an owner in `status` to the domain's current state."""
    vm_id, state = record.vm_id, record.state
    if state is DomainState.SHUTOFF:
        if status is VmStatus.DOWN:
            return []
        return [DomainEvent(vm_id, EventKind.STOPPED, record.stop_cause or StopCause.UNKNOWN)]
    events = []
    if status is VmStatus.DOWN:
        events.append(DomainEvent(vm_id, EventKind.STARTED))
    if state is DomainState.PAUSED and status is not VmStatus.PAUSED:
        events.append(DomainEvent(vm_id, EventKind.SUSPENDED))
    elif state is DomainState.RUNNING and status is VmStatus.PAUSED:
        events.append(DomainEvent(vm_id, EventKind.RESUMED))
    return events
