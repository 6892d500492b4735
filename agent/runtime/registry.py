"""VmRegistry: vm_id -> VmOwner; creates, supervises and removes owners; routes events.

VM.create comes here with the request as sent: the registry has the intake turn it into a
launch plan (agent/intake/launch.py, pure: every check before libvirt is touched), then
starts the VM's owner, which defines and starts the domain.

`run()` is the registry's life: a TaskGroup holding the event pump and every owner task. A
bug that escapes an owner's loop ends the group and so the daemon (crash-only; systemd brings
it back into recovery). Cancelling `run()` stops all owners and leaves every guest running.
All methods are called on the event-loop thread; `create` checks and inserts without an
await in between, so two concurrent creates of one id cannot both pass.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from agent import errors
from agent.clock import Clock
from agent.config import HostAccessConfig, PowerConfig, VirtConfig
from agent.domxml import live, redact
from agent.intake.hostaccess import host_emulators
from agent.intake.launch import Launch, plan
from agent.runtime.bus import StatusBus
from agent.runtime.vm import DestroyCommand, LaunchCommand, OwnerObserver, VmOwner
from agent.status import VmStatus
from agent.virt.port import DomainEvent, DomainRecord, EventKind, Hypervisor

log = logging.getLogger(__name__)


class VmRegistry:
    def __init__(
        self,
        port: Hypervisor,
        bus: StatusBus,
        *,
        virt: VirtConfig | None = None,
        access: HostAccessConfig | None = None,
        power_config: PowerConfig | None = None,
        clock: Clock | None = None,
        observer: OwnerObserver | None = None,
    ) -> None:
        self._port = port
        self._bus = bus
        self._virt = virt or VirtConfig()
        self._access = access or HostAccessConfig()
        self._emulators: frozenset[str] | None = None  # the host's, from capabilities
        self._owner_kw: dict[str, Any] = {
            "power_config": power_config,
            "clock": clock,
            "observer": observer,
        }
        self._owners: dict[uuid.UUID, VmOwner] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._started = asyncio.Event()
        self.recovered = asyncio.Event()

    async def run(self) -> None:
        """Run the event pump and owner tasks until cancelled (or a bug ends the group)."""
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

    def get(self, vm_id: uuid.UUID) -> VmOwner:
        owner = self._owners.get(vm_id)
        if owner is None:
            raise errors.NoSuchVM(vmId=str(vm_id))
        return owner

    def owners(self, vm_ids: Iterable[uuid.UUID] | None = None) -> list[VmOwner]:
        if vm_ids is None:
            return list(self._owners.values())
        return [self._owners[v] for v in vm_ids if v in self._owners]

    # -- verbs -----------------------------------------------------------------------------

    async def create(self, vm_id: uuid.UUID, params: Any) -> dict[str, Any]:
        """VM.create: plan the launch, answer WaitForLaunch at once (with the plan's warnings);
        the owner then defines and starts the domain."""
        if self._emulators is None:
            self._emulators = host_emulators((await self._port.host_facts()).capabilities_xml)
        return await self.launch(plan(vm_id, params, self._virt, self._access, self._emulators))

    async def launch(self, planned: Launch) -> dict[str, Any]:
        """Start a planned VM. `planned` is fully validated and rendered: nothing here can fail
        on the request's content before libvirt sees it."""
        self._check_free(planned)
        # A domain hvagent has not adopted yet (defined outside a moment ago) must not be
        # overwritten by defineXML: ask libvirt too.
        try:
            await self._port.domain(planned.vm_id)
        except errors.NoSuchVM:
            pass
        else:
            raise errors.VMExists("a libvirt domain with this UUID exists", vmId=str(planned.vm_id))
        self._check_free(planned)  # re-check: we awaited
        owner = VmOwner(
            self._port, self._bus, planned.facts, VmStatus.WAIT_FOR_LAUNCH, **self._owner_kw
        )
        self._start(owner)
        owner.post(LaunchCommand(planned.xml, planned.paused))
        log.info("VM %s (%s) accepted, launching", planned.vm_id, planned.name)
        reply = owner.short()
        if planned.warnings:
            reply["warnings"] = list(planned.warnings)
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
        async for event in self._port.events():
            owner = self._owners.get(event.vm_id)
            if owner is not None:
                owner.post_event(event)
            elif event.kind in (EventKind.DEFINED, EventKind.STARTED) and self.recovered.is_set():
                assert self._tg is not None
                self._tg.create_task(self._adopt_new(event), name=f"adopt:{event.vm_id}")

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
