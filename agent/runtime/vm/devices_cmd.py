"""Commands on a running VM's hardware: VM.pause/VM.cont, disk and NIC hot-plug and unplug,
VM.setNumberOfCpus and VM.setBalloonTarget.

Like every command they run on the VM's owner, one at a time, so they never race a power
operation or each other. A Down VM (or one still being created) is wrong state (6); a foreign
domain is left alone (75). A libvirt refusal is the verb's own VDSM code (45/46/49/50, 60, 53)
with libvirt's detail in `data.libvirt`; an unknown domain stays 1 and a lost libvirt 40.
After a device change the owner reads the live XML back (`VmState.read_live`), so VM stats'
`hash` and `Host.dumpxmls` show it at once.

Unplugging needs the guest's cooperation: libvirt's detach returns once asked, and the owner
polls the live XML until the device is gone, up to the command's `timeout_s` (`[virt]
hotunplug_timeout_s`, VDSM's `hotunplug_timeout`), then answers the unplug error.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from lxml import etree

from agent import errors
from agent.config import HostAccessConfig, VirtConfig
from agent.domxml import parse, to_string
from agent.intake import hotplug
from agent.runtime.vm.commands import Command
from agent.status import VmStatus

if TYPE_CHECKING:
    from agent.runtime.vm.actor import VmOwner

log = logging.getLogger(__name__)

_POLL_S = 0.5


def refused(exc: errors.AgentError, cls: type[errors.AgentError]) -> errors.AgentError:
    """libvirt's refusal as the verb's error class; an unknown VM or a lost libvirt as is."""
    if isinstance(exc, errors.NoSuchVM | errors.HypervisorUnavailable | cls):
        return exc
    return cls(exc.reason, **{k: v for k, v in exc.data.items() if k != "reason"})


async def read_live(vm: VmOwner) -> str | None:
    """Read libvirt's live XML into the VM's state (devices, hash, vCPUs); None if it failed."""
    try:
        xml = await vm.port.domain_xml(vm.vm_id)
    except errors.AgentError as exc:
        log.warning("could not read the live XML: %s", exc.reason)
        return None
    vm.state.read_live(xml)
    return xml


def _ready(vm: VmOwner) -> None:
    vm.require_managed()
    vm.require_running()


@dataclass
class PauseCommand(Command):
    """VM.pause: stop the guest CPUs; Paused with pauseCode NOERR. A paused VM stays paused."""

    async def execute(self, vm: VmOwner) -> None:
        _ready(vm)
        if vm.state.status is VmStatus.PAUSED:
            return
        await vm.port.suspend(vm.vm_id)
        vm.state.pause_code = "NOERR"
        vm.set_status(VmStatus.PAUSED)
        log.info("VM paused")


@dataclass
class ContCommand(Command):
    """VM.cont: run the guest CPUs again; Up. A running VM stays running."""

    async def execute(self, vm: VmOwner) -> None:
        _ready(vm)
        if vm.state.status is not VmStatus.PAUSED:
            return
        await vm.port.resume(vm.vm_id)
        vm.state.pause_code = vm.state.io_error = None
        vm.set_status(VmStatus.UP)
        log.info("VM continued")


@dataclass
class _DeviceChange(Command):
    """One device hot-plugged or unplugged, from the verb's `params` (checked by
    intake/hotplug.py against the live XML before libvirt sees anything)."""

    params: Any
    # unplug only: how long the guest has to release the device
    timeout_s: float = VirtConfig.hotunplug_timeout_s
    failure: ClassVar[type[errors.AgentError]]
    plug: ClassVar[bool]

    def element(self, vm_id: uuid.UUID, live_xml: str) -> etree._Element:
        raise NotImplementedError

    @staticmethod
    def key(el: etree._Element) -> str | None:
        """What identifies the device in the live XML (disk target, NIC MAC)."""
        raise NotImplementedError

    async def execute(self, vm: VmOwner) -> None:
        _ready(vm)
        live = await vm.port.domain_xml(vm.vm_id)
        el = self.element(vm.vm_id, live)
        text = to_string(el)
        change = vm.port.attach_device if self.plug else vm.port.detach_device
        try:
            await change(vm.vm_id, text)
        except errors.AgentError as exc:
            raise refused(exc, self.failure) from exc
        key = self.key(el)
        log.info("%s %s", "hot-plugged" if self.plug else "hot-unplug asked for", key)
        if not self.plug:
            await self._wait_gone(vm, key)
        await read_live(vm)

    async def _wait_gone(self, vm: VmOwner, key: str | None) -> None:
        deadline = vm.clock.time() + self.timeout_s
        while True:
            xml = await read_live(vm)
            if xml is not None and key not in {self.key(e) for e in self._devices(xml)}:
                log.info("hot-unplugged %s", key)
                return
            if vm.clock.time() >= deadline:
                raise self.failure(
                    f"the guest did not release {key} within {self.timeout_s:g} s",
                    vmId=str(vm.vm_id),
                )
            await vm.clock.sleep_until(min(deadline, vm.clock.time() + _POLL_S))

    @staticmethod
    def _devices(xml: str) -> list[etree._Element]:
        raise NotImplementedError


class _Disk(_DeviceChange):
    @staticmethod
    def key(el: etree._Element) -> str | None:
        target = el.find("target")
        return target.get("dev") if target is not None else None

    @staticmethod
    def _devices(xml: str) -> list[etree._Element]:
        return list(parse(xml).iterfind("devices/disk"))


class _Nic(_DeviceChange):
    @staticmethod
    def key(el: etree._Element) -> str | None:
        mac = el.find("mac")
        return mac.get("address", "").lower() if mac is not None else None

    @staticmethod
    def _devices(xml: str) -> list[etree._Element]:
        return list(parse(xml).iterfind("devices/interface"))


@dataclass
class HotplugDiskCommand(_Disk):
    """VM.hotplugDisk: a file or block disk by path, by storage ids under `image_root`, or
    from engine XML (host-access policy `policy`)."""

    policy: HostAccessConfig = field(default_factory=HostAccessConfig)
    image_root: str = ""  # [virt] image_root: where a disk given by storage ids is
    failure = errors.HotplugDiskFailed
    plug = True

    def element(self, vm_id: uuid.UUID, live_xml: str) -> etree._Element:
        return hotplug.plug_disk(vm_id, self.params, live_xml, self.policy, self.image_root)


@dataclass
class HotunplugDiskCommand(_Disk):
    """VM.hotunplugDisk: the live disk by path (or storage ids), target name, or engine XML."""

    image_root: str = ""
    failure = errors.HotunplugDiskFailed
    plug = False

    def element(self, vm_id: uuid.UUID, live_xml: str) -> etree._Element:
        return hotplug.unplug_disk(vm_id, self.params, live_xml, self.image_root)


@dataclass
class HotplugNicCommand(_Nic):
    """VM.hotplugNic: a NIC from `nic` fields or engine XML (host-access policy `policy`)."""

    policy: HostAccessConfig = field(default_factory=HostAccessConfig)
    failure = errors.HotplugNicFailed
    plug = True

    def element(self, vm_id: uuid.UUID, live_xml: str) -> etree._Element:
        return hotplug.plug_nic(vm_id, self.params, live_xml, self.policy)


@dataclass
class HotunplugNicCommand(_Nic):
    failure = errors.HotunplugNicFailed
    plug = False

    def element(self, vm_id: uuid.UUID, live_xml: str) -> etree._Element:
        return hotplug.unplug_nic(vm_id, self.params, live_xml)


@dataclass
class SetCpusCommand(Command):
    """VM.setNumberOfCpus: the running VM's vCPU count (up to the maximum set at create,
    `maxVCpus`); the guest brings hot-plugged CPUs online."""

    count: int

    async def execute(self, vm: VmOwner) -> None:
        _ready(vm)
        try:
            await vm.port.set_vcpus(vm.vm_id, self.count)
        except errors.AgentError as exc:
            raise refused(exc, errors.SetNumberOfCpusFailed) from exc
        log.info("vCPUs set to %d", self.count)
        await read_live(vm)


@dataclass
class BalloonCommand(Command):
    """VM.setBalloonTarget: the balloon's target (KiB); needs a balloon device."""

    kib: int

    async def execute(self, vm: VmOwner) -> None:
        _ready(vm)
        if not vm.state.facts.devices.balloon:
            raise errors.BalloonFailed("the VM has no balloon device", vmId=str(vm.vm_id))
        try:
            await vm.port.set_balloon(vm.vm_id, self.kib)
        except errors.AgentError as exc:
            raise refused(exc, errors.BalloonFailed) from exc
        await vm.state.persist(balloon_target_kib=self.kib)  # reported after a restart too
        log.info("balloon target set to %d KiB", self.kib)
