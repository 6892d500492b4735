"""A VM's stats through its owner (fake port): the sampled fragment merged as it is, timeOffset
from the created offset then RTC_CHANGE (persisted, survives a new registry), hash from the
live XML, pauseCode, elapsedTime reset on reboot, the balloon target (persisted)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from agent.config import VirtConfig
from agent.domxml import parse
from agent.domxml.live import devices_hash
from agent.metrics.snapshot import Snapshot
from agent.runtime.bus import StatusBus
from agent.runtime.registry import VmRegistry
from agent.runtime.vm.devices_cmd import BalloonCommand
from agent.status import VmStatus
from agent.virt.port import DomainEvent, EventKind, StopCause
from tests.fakes import FakeClock, FakeHypervisor, settle

VM = uuid.UUID("3b0d2c4e-5f60-4a7b-8c9d-0e1f2a3b4c5d")


class Host:
    """A registry (one hvagent process) on a fake port that outlives it."""

    def __init__(self, port: FakeHypervisor, snapshot: Snapshot | None = None) -> None:
        self.port = port
        self.snapshot = snapshot or Snapshot(0.0)
        self.registry = VmRegistry(
            port, StatusBus(), virt=VirtConfig(), sampled=lambda: self.snapshot
        )
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> VmRegistry:
        self.task = asyncio.create_task(self.registry.run())
        await self.registry.wait_started()
        return self.registry

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def create(registry: VmRegistry, **params: object) -> None:
    base = {"vmId": str(VM), "vmName": "stats", "memSize": 64}
    await registry.create(VM, base | params)
    for _ in range(50):
        await settle()
        if registry.get(VM).status is VmStatus.UP:
            return
    raise AssertionError(f"never Up: {registry.get(VM).status}")


async def test_time_offset_created_then_rtc_change_persisted_across_a_restart():
    port = FakeHypervisor(FakeClock())
    async with Host(port) as registry:
        await create(registry, timeOffset=3600)
        assert registry.get(VM).stats()["timeOffset"] == "3600"
        port.emit(DomainEvent(VM, EventKind.RTC_CHANGE, utc_offset=-120))
        await settle()
        assert registry.get(VM).stats()["timeOffset"] == "-120"
        assert port.meta[VM].time_offset == -120  # written into the domain's metadata
    async with Host(port) as registry:  # hvagent restarted: adopts the running domain
        registry.adopt(await port.domain(VM))
        await settle()
        assert registry.get(VM).stats()["timeOffset"] == "-120"
        port.emit(DomainEvent(VM, EventKind.STOPPED, StopCause.SHUTDOWN))
        await settle()
        down = registry.get(VM).stats()
        assert down["status"] == "Down" and down["timeOffset"] == "-120"  # as VDSM's Down


async def test_sampled_fragment_merged_else_the_unsampled_shape():
    port = FakeHypervisor(FakeClock())
    host = Host(port)
    async with host as registry:
        await create(registry)
        stats = registry.get(VM).stats()
        assert stats["cpuActual"] is False and stats["cpuUser"] == "0.00"
        assert stats["monitorResponse"] == "0" and stats["disks"] == {}
        assert stats["network"] == {} and stats["memoryStats"] == {}
        assert stats["vcpuQuota"] == "-1" and stats["vcpuPeriod"] == "100000"
        fragment = {"cpuUser": "12.50", "cpuActual": True, "monitorResponse": "-1"}
        host.snapshot = Snapshot(1.0, vm_stats={VM: fragment})
        calls = len(port.calls)
        stats = registry.get(VM).stats()
        assert len(port.calls) == calls  # the verb path only copies: no libvirt call
        assert stats["cpuUser"] == "12.50" and stats["cpuActual"] is True
        assert stats["monitorResponse"] == "-1"


async def test_hash_omitted_until_the_live_xml_then_follows_it():
    port = FakeHypervisor(FakeClock())
    async with Host(port) as registry:
        await registry.create(VM, {"vmId": str(VM), "vmName": "h", "memSize": 64})
        assert "hash" not in registry.get(VM).stats()  # WaitForLaunch: no live XML yet
        for _ in range(50):
            await settle()
            if registry.get(VM).status is VmStatus.UP:
                break
        first = registry.get(VM).stats()["hash"]
        assert first == devices_hash(parse(port._live_xml(VM)))
        # QEMU restarted with another device set (as after a hot-plug and a re-read)
        port.emit(DomainEvent(VM, EventKind.STOPPED, StopCause.SHUTDOWN))
        await settle()
        port.xml[VM] = port.xml[VM].replace("</devices>", "<watchdog model='i6300esb'/></devices>")
        port.emit(DomainEvent(VM, EventKind.STARTED))
        await settle()
        assert registry.get(VM).status is VmStatus.UP
        second = registry.get(VM).stats()["hash"]
        assert isinstance(second, str) and second != first


async def test_pause_code_and_elapsed_time_reset_on_reboot():
    port = FakeHypervisor(FakeClock())
    async with Host(port) as registry:
        await create(registry)
        owner = registry.get(VM)
        assert "pauseCode" not in owner.stats()
        port.emit(DomainEvent(VM, EventKind.SUSPENDED, pause_code="EIO"))
        await settle()
        assert owner.stats()["status"] == "Paused" and owner.stats()["pauseCode"] == "EIO"
        port.emit(DomainEvent(VM, EventKind.RESUMED))
        await settle()
        assert "pauseCode" not in owner.stats()
        port.emit(DomainEvent(VM, EventKind.IO_ERROR, pause_code="ENOSPC"))
        port.emit(DomainEvent(VM, EventKind.SUSPENDED, pause_code="EIO"))
        await settle()
        assert owner.stats()["pauseCode"] == "ENOSPC"  # the reason libvirt gave before
        port.emit(DomainEvent(VM, EventKind.RESUMED))
        port.emit(DomainEvent(VM, EventKind.SUSPENDED, pause_code="NOERR"))
        await settle()
        assert owner.stats()["pauseCode"] == "NOERR"
        port.emit(DomainEvent(VM, EventKind.RESUMED))
        owner.state.started_mono = time.monotonic() - 500
        await settle()
        assert int(owner.stats()["elapsedTime"]) >= 500
        port.emit(DomainEvent(VM, EventKind.REBOOT))
        await settle()
        assert int(owner.stats()["elapsedTime"]) < 500


def test_pause_code_from_the_suspended_event_detail():
    import libvirt

    from agent.virt import events as evtab

    suspended = libvirt.VIR_DOMAIN_EVENT_SUSPENDED
    assert evtab.pause_code(suspended, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR) == "EIO"
    assert evtab.pause_code(suspended, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED) == "NOERR"
    assert evtab.pause_code(libvirt.VIR_DOMAIN_EVENT_RESUMED, 0) is None


async def test_feed_translates_rtc_change_and_io_error_reason():
    """libvirt's callbacks as the feed receives them (arguments in libvirt-python's order)."""
    import libvirt

    from agent.virt.feed import EventFeed

    class Dom:
        def UUIDString(self) -> str:
            return str(VM)

    feed = EventFeed(object())  # type: ignore[arg-type]  # no call reaches the connection
    feed._on_rtc_change(None, Dom(), 7200, None)
    feed._on_io_error(None, Dom(), "/img", "virtio-disk0", 1, "enospc", None)
    feed._on_io_error(None, Dom(), "/img", "virtio-disk0", 1, "", None)
    suspended = libvirt.VIR_DOMAIN_EVENT_SUSPENDED
    feed._on_lifecycle(None, Dom(), suspended, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR, None)
    stream = feed.events()
    got = [await anext(stream) for _ in range(4)]
    assert (got[0].kind, got[0].utc_offset) == (EventKind.RTC_CHANGE, 7200)
    assert [(e.kind, e.pause_code) for e in got[1:]] == [
        (EventKind.IO_ERROR, "ENOSPC"),
        (EventKind.IO_ERROR, "EIO"),
        (EventKind.SUSPENDED, "EIO"),
    ]


async def test_balloon_target_survives_a_restart_and_ends_with_its_qemu():
    port = FakeHypervisor(FakeClock())
    sampled = {"balloonInfo": {"balloon_target": "65536", "balloon_cur": "65536"}}
    host = Host(port, Snapshot(1.0, vm_stats={VM: sampled}))
    async with host as registry:
        await create(registry, devices=[{"type": "balloon", "specParams": {"model": "virtio"}}])
        await registry.get(VM).submit(BalloonCommand(32768))
        assert registry.get(VM).stats()["balloonInfo"]["balloon_target"] == "32768"
        assert port.meta[VM].balloon_target_kib == 32768  # in the domain's metadata
    host = Host(port, Snapshot(1.0, vm_stats={VM: sampled}))
    async with host as registry:  # hvagent restarted: adopts the running domain
        registry.adopt(await port.domain(VM))
        await settle()
        assert registry.get(VM).stats()["balloonInfo"]["balloon_target"] == "32768"
        # QEMU stopped and started again (outside hvagent): a new balloon, at its maximum
        port.emit(DomainEvent(VM, EventKind.STOPPED, StopCause.SHUTDOWN))
        await settle()
        port.emit(DomainEvent(VM, EventKind.STARTED))
        await settle()
        assert registry.get(VM).status is VmStatus.UP
        assert registry.get(VM).stats()["balloonInfo"]["balloon_target"] == "65536"
        assert port.meta[VM].balloon_target_kib is None
