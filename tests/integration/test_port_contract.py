"""The port contract: the same scenarios against the fake port (tests/fakes.py) and against
the real adapter on libvirt's test driver, so the fake the unit tests rely on cannot drift
from libvirt.

Scenarios: create (define + start and the events it causes), the event sequence of a
destroy and an undefine, metadata round trip, reset on a stopped domain, the shutdown
ladder and a ticket through the VM runtime (registry + owners). Where the test driver
lacks a feature (live device updates), the scenario says `fake+qemu only` and the QEMU
e2e suite covers the real side (shared/design/STYLE.md B.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from agent import errors, hostinfo
from agent.config import PowerConfig, VirtConfig
from agent.domxml import metadata, parse, to_string
from agent.domxml.metadata import VmMetadata
from agent.intake.launch import plan
from agent.logs import Secret
from agent.runtime.bus import StatusBus
from agent.runtime.registry import VmRegistry
from agent.runtime.vm import PowerCommand, TicketCommand
from agent.status import ExitInfo, ExitReason
from agent.virt.adapter import LibvirtHypervisor
from agent.virt.port import DomainEvent, DomainState, EventKind, Hypervisor, StopCause
from tests.fakes import FakeHypervisor

pytestmark = pytest.mark.asyncio(loop_scope="session")

NODE_XML = Path(__file__).parents[1] / "data" / "libvirt" / "node.xml"
VIRT = VirtConfig(domain_type="qemu", console_log_dir="/tmp/hvagent-contract")


class _WallClock:
    def time(self) -> float:
        return time.time()


@pytest_asyncio.fixture(loop_scope="session", params=["fake", "libvirt-test-driver"])
async def port(request) -> AsyncIterator[Hypervisor]:
    if request.param == "fake":
        fake = FakeHypervisor(_WallClock())
        yield fake
        await fake.close()
        return
    real = await LibvirtHypervisor.open(f"test://{NODE_XML}", threads=2)
    try:
        yield real
    finally:
        await real.close()


def _xml(vm_id: uuid.UUID, **params) -> str:
    vm = {"vmId": str(vm_id), "vmName": f"ct-{str(vm_id)[:8]}", "memSize": 64, **params}
    return plan(vm_id, vm, VIRT).xml


async def _events_for(port: Hypervisor, vm_id: uuid.UUID, kinds: list[EventKind]):
    """The port's events for `vm_id` until the kinds wanted were all seen (in order)."""
    seen: list[DomainEvent] = []
    want = list(kinds)
    async with asyncio.timeout(10):
        async for event in port.events():
            if event.vm_id != vm_id:
                continue
            seen.append(event)
            if want and event.kind is want[0]:
                want.pop(0)
            if not want:
                return seen
    return seen


async def test_create_runs_the_domain_and_says_so(port):
    vm_id = uuid.uuid4()
    assert not await port.has_domain(vm_id)
    live_at_start = parse(await port.define_and_start(_xml(vm_id), paused=False))
    assert live_at_start.findtext("uuid") == str(vm_id)  # the live XML, in the same trip
    seen = await _events_for(port, vm_id, [EventKind.DEFINED, EventKind.STARTED])
    assert [e.kind for e in seen][:2] == [EventKind.DEFINED, EventKind.STARTED]
    record = await port.domain(vm_id)
    assert record.state is DomainState.RUNNING and record.vm_id == vm_id
    assert await port.has_domain(vm_id)
    live = parse(await port.domain_xml(vm_id))
    assert live.findtext("uuid") == str(vm_id)
    assert metadata.read(metadata.find(live)) == VmMetadata()
    assert vm_id in {r.vm_id for r in await port.list_domains()}
    with pytest.raises(errors.CreateFailed):  # the same domain twice
        await port.define_and_start(_xml(vm_id), paused=False)
    await port.destroy(vm_id, graceful_attempts=0)
    await port.undefine(vm_id)


async def test_paused_start_is_suspended(port):
    """fake+qemu only: the test driver refuses VIR_DOMAIN_START_PAUSED (and leaves nothing
    defined, which is the adapter's contract on a failed start)."""
    vm_id = uuid.uuid4()
    if not isinstance(port, FakeHypervisor):
        with pytest.raises(errors.CreateFailed, match="unsupported flags"):
            await port.define_and_start(_xml(vm_id), paused=True)
        with pytest.raises(errors.NoSuchVM):
            await port.domain(vm_id)
        return
    await port.define_and_start(_xml(vm_id), paused=True)
    await _events_for(port, vm_id, [EventKind.STARTED, EventKind.SUSPENDED])
    await port.destroy(vm_id, graceful_attempts=0)
    await port.undefine(vm_id)


async def test_destroy_and_undefine_event_sequence(port):
    vm_id = uuid.uuid4()
    await port.define_and_start(_xml(vm_id), paused=False)
    await port.destroy(vm_id, graceful_attempts=1)
    seen = await _events_for(port, vm_id, [EventKind.STARTED, EventKind.STOPPED])
    stopped = [e for e in seen if e.kind is EventKind.STOPPED]
    assert stopped[0].stop_cause is StopCause.DESTROYED
    assert (await port.domain(vm_id)).state is DomainState.SHUTOFF
    await port.destroy(vm_id, graceful_attempts=0)  # not running: not an error
    with pytest.raises(errors.AgentError):  # reset needs a running domain
        await port.reset(vm_id)
    await port.undefine(vm_id)
    await _events_for(port, vm_id, [EventKind.UNDEFINED])
    for call in (port.domain(vm_id), port.domain_xml(vm_id), port.reset(vm_id)):
        with pytest.raises(errors.NoSuchVM):
            await call
    assert not await port.has_domain(vm_id)
    await port.undefine(vm_id)  # gone already: not an error


async def test_metadata_round_trip(port):
    vm_id = uuid.uuid4()
    await port.define_and_start(_xml(vm_id), paused=False)
    meta = VmMetadata(
        exit=ExitInfo.of(ExitReason.ADMIN_SHUTDOWN),
        destroy_on_reboot=True,
        custom={"k": "v"},
        operation={"kind": "shutdown", "stage": "acpi"},
    )
    await port.set_metadata(vm_id, to_string(metadata.build(meta)))
    for xml in (await port.domain_xml(vm_id), (await port.domain(vm_id)).xml):
        assert metadata.read(metadata.find(parse(xml))) == meta
    await port.destroy(vm_id, graceful_attempts=0)
    await port.undefine(vm_id)


@contextlib.asynccontextmanager
async def _runtime(port: Hypervisor) -> AsyncIterator[tuple[VmRegistry, StatusBus]]:
    bus = StatusBus()
    registry = VmRegistry(port, bus, virt=VIRT, power_config=PowerConfig(acpi_retry_s=1))
    task = asyncio.create_task(registry.run())
    await registry.wait_started()
    registry.recovered.set()
    try:
        yield registry, bus
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _status(registry: VmRegistry, vm_id: uuid.UUID, status: str) -> dict:
    async with asyncio.timeout(10):
        while (stats := registry.get(vm_id).stats())["status"] != status:
            await asyncio.sleep(0.02)
    return stats


async def test_runtime_create_then_forced_shutdown_is_down_6(port):
    async with _runtime(port) as (registry, _):
        vm_id = uuid.uuid4()
        params = {"vmId": str(vm_id), "vmName": f"ct-{str(vm_id)[:8]}", "memSize": 64}
        assert (await registry.create(vm_id, params))["status"] == "WaitForLaunch"
        await _status(registry, vm_id, "Up")
        owner = registry.get(vm_id)
        await owner.submit(PowerCommand(timeout_s=0, delay_s=0, force=True))
        down = await _status(registry, vm_id, "Down")
        assert (down["exitCode"], down["exitReason"]) == (0, 6)
        await registry.destroy(vm_id, 0)
        with pytest.raises(errors.NoSuchVM):
            await port.domain(vm_id)


async def test_runtime_ticket_on_headless_vm_is_18(port):
    async with _runtime(port) as (registry, _):
        vm_id = uuid.uuid4()
        params = {"vmId": str(vm_id), "vmName": f"ct-{str(vm_id)[:8]}", "memSize": 64}
        await registry.create(vm_id, params)
        await _status(registry, vm_id, "Up")
        with pytest.raises(errors.TicketFailed, match="headless"):
            await registry.get(vm_id).submit(TicketCommand(Secret("pw"), 30))
        await registry.destroy(vm_id, 0)


async def test_runtime_ticket_on_vnc_console(port):
    """fake+qemu only: the test driver cannot update a device live (it answers 18, which the
    ticket tests on it check); tests/e2e/test_tickets.py shows the same on real QEMU."""
    if not isinstance(port, FakeHypervisor):
        vm_id = uuid.uuid4()
        async with _runtime(port) as (registry, _):
            await registry.create(vm_id, _vnc_params(vm_id))
            await _status(registry, vm_id, "Up")
            with pytest.raises(errors.TicketFailed):
                await registry.get(vm_id).submit(TicketCommand(Secret("pw"), 30))
            await registry.destroy(vm_id, 0)
        return
    async with _runtime(port) as (registry, _):
        vm_id = uuid.uuid4()
        await registry.create(vm_id, _vnc_params(vm_id))
        up = await _status(registry, vm_id, "Up")
        assert up["displayInfo"][0]["type"] == "vnc" and up["displayPort"] != "-1"
        await registry.get(vm_id).submit(TicketCommand(Secret("pw"), 30))
        live = parse(await port.domain_xml(vm_id))
        graphics = live.find("devices/graphics")
        assert graphics.get("passwdValidTo") not in (None, "1970-01-01T00:00:01")
        assert graphics.get("passwd") is None
        await registry.destroy(vm_id, 0)


def _vnc_params(vm_id: uuid.UUID) -> dict:
    return {
        "vmId": str(vm_id),
        "vmName": f"ct-{str(vm_id)[:8]}",
        "memSize": 64,
        "devices": [{"type": "graphics", "device": "vnc"}],
    }


async def test_guest_info_answers_what_the_driver_has_and_maps_errors(port):
    """The test driver has no virDomainGetGuestInfo nor guest vCPU query: the answer holds
    the agent's interface addresses (none for a domain without NICs) and names the parts
    missing. QEMU's full answer is shown by tests/e2e/test_guest_stats.py."""
    vm_id = uuid.uuid4()
    await port.define_and_start(_xml(vm_id), paused=False)
    info = await port.guest_info(vm_id, timeout_s=2)
    assert info.info == {} and info.interfaces == () and info.cpu_count is None
    assert info.missing == ("info", "cpu_count")
    await port.destroy(vm_id, graceful_attempts=0)
    with pytest.raises(errors.WrongState):
        await port.guest_info(vm_id, timeout_s=2)
    await port.undefine(vm_id)
    with pytest.raises(errors.NoSuchVM):
        await port.guest_info(vm_id, timeout_s=2)


async def test_pause_and_resume(port):
    vm_id = uuid.uuid4()
    await port.define_and_start(_xml(vm_id), paused=False)
    await port.suspend(vm_id)
    assert (await port.domain(vm_id)).state is DomainState.PAUSED
    await port.resume(vm_id)
    assert (await port.domain(vm_id)).state is DomainState.RUNNING
    seen = await _events_for(port, vm_id, [EventKind.SUSPENDED, EventKind.RESUMED])
    suspended = [e for e in seen if e.kind is EventKind.SUSPENDED]
    assert suspended[0].pause_code == "NOERR"
    await port.destroy(vm_id, graceful_attempts=0)
    with pytest.raises(errors.WrongState):  # not running
        await port.suspend(vm_id)
    with pytest.raises(errors.AgentError):  # the test driver says "not paused" (1003)
        await port.resume(vm_id)
    await port.undefine(vm_id)
    with pytest.raises(errors.NoSuchVM):
        await port.suspend(vm_id)


async def test_vcpus_and_balloon_within_the_domains_limits(port):
    vm_id = uuid.uuid4()
    await port.define_and_start(_xml(vm_id, smp=1, maxVCpus=2), paused=False)
    await port.set_vcpus(vm_id, 2)
    vcpu = parse(await port.domain_xml(vm_id)).find("vcpu")
    assert vcpu.get("current", vcpu.text) == "2"
    await port.set_vcpus(vm_id, 1)
    assert parse(await port.domain_xml(vm_id)).find("vcpu").get("current") == "1"
    with pytest.raises(errors.HypervisorError) as err:  # above the maximum
        await port.set_vcpus(vm_id, 3)
    assert err.value.data["libvirt"]["code"] == 8  # VIR_ERR_INVALID_ARG
    await port.set_balloon(vm_id, 32 * 1024)
    with pytest.raises(errors.HypervisorError) as err:  # above the memory
        await port.set_balloon(vm_id, 128 * 1024)
    assert err.value.data["libvirt"]["code"] == 8
    await port.destroy(vm_id, graceful_attempts=0)
    await port.undefine(vm_id)


async def test_device_hotplug(port):
    """fake+qemu only: the test driver has no device hot-plug; it refuses with libvirt's
    words, which the runtime answers as 45/46/49/50 (test_running_verbs_testdriver.py)."""
    vm_id = uuid.uuid4()
    await port.define_and_start(_xml(vm_id), paused=False)
    disk = (
        "<disk type='file' device='disk'><source file='/x.img'/>"
        "<target dev='vdb' bus='virtio'/></disk>"
    )
    if not isinstance(port, FakeHypervisor):
        for call in (port.attach_device(vm_id, disk), port.detach_device(vm_id, disk)):
            with pytest.raises(errors.AgentError) as err:
                await call
            assert err.value.data["libvirt"]["code"] == 3  # VIR_ERR_NO_SUPPORT
    else:
        await port.attach_device(vm_id, disk)
        assert (
            parse(await port.domain_xml(vm_id)).find("devices/disk/target[@dev='vdb']") is not None
        )
        with pytest.raises(errors.AgentError) as err:  # the same target twice
            await port.attach_device(vm_id, disk)
        assert err.value.data["libvirt"]["message"]
        await port.detach_device(vm_id, disk)
        assert parse(await port.domain_xml(vm_id)).find("devices/disk/target[@dev='vdb']") is None
    await port.destroy(vm_id, graceful_attempts=0)
    await port.undefine(vm_id)


async def test_host_sysinfo_reads_as_hardware_info(port):
    info = hostinfo.hardware(await port.host_sysinfo())
    assert set(info) == {
        "systemManufacturer",
        "systemProductName",
        "systemVersion",
        "systemSerialNumber",
        "systemUUID",
        "systemFamily",
    }
