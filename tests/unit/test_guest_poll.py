"""The guest-agent poller through a VM's owner (fake port): answers reach VM stats, a silent
agent is backed off and its last answer reported stale, and a hung agent never delays a
ticket or a shutdown (the poller is a subtask beside the owner's inbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

from agent import errors
from agent.config import GuestAgentConfig, PowerConfig, VirtConfig
from agent.logs import Secret
from agent.metrics.snapshot import Snapshot
from agent.runtime.bus import StatusBus
from agent.runtime.registry import VmRegistry
from agent.runtime.vm import PowerCommand, TicketCommand
from agent.status import VmStatus
from agent.virt.port import GuestAddress, GuestInfo, GuestInterface
from tests.fakes import FakeClock, FakeHypervisor, settle

VM = uuid.UUID("0c8a3f4e-5f60-4a7b-8c9d-0e1f2a3b4c5d")
FAST = GuestAgentConfig(poll_interval_s=0.05, timeout_s=1, backoff_max_s=0.4)
ANSWER = GuestInfo(
    info={"hostname": "g1", "timezone.name": "UTC", "timezone.offset": 0, "user.count": 0},
    interfaces=(
        GuestInterface("eth0", "52:54:00:00:00:01", (GuestAddress("ipv4", "10.1.2.3", 24),)),
    ),
    cpu_count=1,
)


@contextlib.asynccontextmanager
async def running_vm(
    port: FakeHypervisor, snapshots: list[Snapshot] | None = None, **params: object
) -> AsyncIterator[VmRegistry]:
    registry = VmRegistry(
        port,
        StatusBus(),
        virt=VirtConfig(),
        power_config=PowerConfig(agent_command_timeout_s=1),
        guest_agent=FAST,
        sampled=(lambda: snapshots[-1]) if snapshots else None,
    )
    task = asyncio.create_task(registry.run())
    await registry.wait_started()
    registry.recovered.set()
    try:
        await registry.create(VM, {"vmId": str(VM), "vmName": "ga", "memSize": 64, **params})
        await until(lambda: registry.get(VM).status is VmStatus.UP, "never Up")
        yield registry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def guest_calls(port: FakeHypervisor) -> int:
    return sum(1 for c in port.calls if c.name == "guest_info")


async def test_answers_reach_vm_stats_with_their_time():
    port = FakeHypervisor(FakeClock())
    async with running_vm(port) as registry:
        owner = registry.get(VM)
        port.guests[VM].agent_info = ANSWER
        owner.guest.wake()
        await until(lambda: owner.stats()["guestFQDN"] == "g1", "answer never reported")
        stats = owner.stats()
        assert stats["guestIPs"] == "10.1.2.3" and stats["guestCPUCount"] == 1
        assert stats["netIfaces"][0]["inet"] == ["10.1.2.3"]
        assert stats["guestTimezone"] == {"zone": "UTC", "offset": 0}
        assert stats["guestInfoStale"] is False and int(stats["guestInfoTime"]) > 0
        assert {c.arg for c in port.calls if c.name == "guest_info"} == {FAST.timeout_s}


async def test_silent_agent_backs_off_and_keeps_its_last_answer_marked_stale():
    port = FakeHypervisor(FakeClock())
    async with running_vm(port) as registry:
        owner = registry.get(VM)
        port.guests[VM].agent_info = ANSWER
        owner.guest.wake()
        await until(lambda: owner.stats()["guestFQDN"] == "g1", "never answered")
        answered_at = owner.stats()["guestInfoTime"]
        port.guests[VM].agent_fails = errors.GuestAgentUnresponsive("silent")
        await until(lambda: owner.stats()["guestInfoStale"] is True, "never stale")
        stale = owner.stats()
        assert stale["guestFQDN"] == "g1" and stale["guestInfoTime"] == answered_at
        await until(lambda: owner.guest.running.failures >= 4, "stopped asking")
        assert owner.guest.running.next_wait() == FAST.backoff_max_s  # 0.05 * 2**4 capped at 0.4
        # backed off: far fewer calls in 1 s than the 20 an unbacked 0.05 s poll would make
        before = guest_calls(port)
        await asyncio.sleep(1.0)
        assert guest_calls(port) - before <= 4
        port.guests[VM].agent_fails = None
        owner.guest.wake()  # what AGENT_CONNECTED does
        await until(lambda: owner.stats()["guestInfoStale"] is False, "never fresh again")
        assert owner.guest.running.failures == 0


async def test_hung_agent_never_delays_a_ticket_or_a_shutdown():
    port = FakeHypervisor(FakeClock())
    vnc = {"devices": [{"type": "graphics", "device": "vnc"}]}
    async with running_vm(port, **vnc) as registry:
        owner = registry.get(VM)
        port.guests[VM].info_hangs = True
        owner.guest.wake()
        await until(lambda: guest_calls(port) >= 2, "poller never asked the agent")
        assert "guest-agent" in owner.subtasks.names  # stuck in the hung call
        async with asyncio.timeout(5):
            await owner.submit(TicketCommand(Secret("pw"), 30))
            await owner.submit(PowerCommand(delay_s=0, timeout_s=30))
            await until(lambda: owner.status is VmStatus.DOWN, "never Down")
        assert "update_graphics" in port.names()
        assert any(n.startswith("shutdown:") for n in port.names())
        assert "guest-agent" not in owner.subtasks.names  # ended with the domain
        assert owner.stats()["status"] == "Down" and "guestIPs" not in owner.stats()


async def test_spliced_json_answer_equals_the_stats_dict():
    """Host.getAllVmStats' JSON (owner.stats_json: the round's fragment and the guest fields
    as serialized once) says what stats() says: unsampled, sampled, with a balloon target
    set, and Down."""
    port = FakeHypervisor(FakeClock())
    snapshots = [Snapshot(0.0)]
    async with running_vm(port, snapshots) as registry:
        owner = registry.get(VM)
        port.guests[VM].agent_info = ANSWER
        owner.guest.wake()
        await until(lambda: owner.stats()["guestFQDN"] == "g1", "answer never reported")

        def same() -> dict:
            spliced = json.loads(owner.stats_json())
            plain = owner.stats()
            spliced.pop("elapsedTime", None), plain.pop("elapsedTime", None)
            assert spliced == plain
            return spliced

        assert same()["cpuActual"] is False  # no round yet: VDSM's unsampled defaults
        frag = {"cpuUser": "1.50", "cpuActual": True, "vcpuCount": "3", "disks": {"vda": {}}}
        snapshots.append(
            Snapshot(1.0, vm_stats={VM: frag}, vm_stats_json={VM: json.dumps(frag)[1:-1]})
        )
        sampled = same()
        assert sampled["vcpuCount"] == "3" and sampled["guestIPs"] == "10.1.2.3"
        balloon = {"balloon_max": "65536", "balloon_target": "65536"}
        frag = {**frag, "balloonInfo": balloon}
        snapshots.append(
            Snapshot(2.0, vm_stats={VM: frag}, vm_stats_json={VM: json.dumps(frag)[1:-1]})
        )
        await owner.state.persist(balloon_target_kib=32768)  # VM.setBalloonTarget's, over it
        assert same()["balloonInfo"] == {"balloon_max": "65536", "balloon_target": "32768"}
        await owner.submit(PowerCommand(delay_s=0, timeout_s=30, force=True))
        await until(lambda: owner.status is VmStatus.DOWN, "never Down")
        assert same()["status"] == "Down"


async def test_a_foreign_domain_gets_no_poller():
    port = FakeHypervisor(FakeClock())
    foreign = uuid.uuid4()
    await port.define_and_start(
        f"<domain type='kvm'><name>foreign</name><uuid>{foreign}</uuid><devices/></domain>",
        paused=False,
    )
    async with running_vm(port) as registry:
        registry.adopt(await port.domain(foreign))
        await settle()  # the owner's loop started
        await until(lambda: registry.get(VM).guest.running.answered_at is not None, "never polled")
        owner = registry.get(foreign)
        assert owner.external and owner.status is VmStatus.UP
        assert owner.guest.running is None and "guest-agent" not in owner.subtasks.names
        assert all(c.vm_id != foreign for c in port.calls if c.name == "guest_info")
        assert "guestIPs" not in owner.stats()


async def test_an_unexpected_failure_is_a_failed_poll_not_the_pollers_end():
    port = FakeHypervisor(FakeClock())
    async with running_vm(port) as registry:
        owner = registry.get(VM)
        port.guests[VM].agent_fails = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")  # type: ignore[assignment]
        owner.guest.wake()
        await until(lambda: owner.guest.running.failures >= 2, "poller stopped after the error")
        assert owner.stats()["guestInfoStale"] is True
        port.guests[VM].agent_fails = None
        port.guests[VM].agent_info = ANSWER
        owner.guest.wake()
        await until(lambda: owner.stats()["guestFQDN"] == "g1", "never answered again")
        assert "guest-agent" in owner.subtasks.names


async def test_a_fresh_start_asks_only_once_the_agent_connects_or_an_interval_passed():
    # No agent answers while the guest boots: the create's own libvirt calls come first.
    port = FakeHypervisor(FakeClock())
    slow = GuestAgentConfig(poll_interval_s=3600, timeout_s=1, backoff_max_s=3600)
    registry = VmRegistry(port, StatusBus(), virt=VirtConfig(), guest_agent=slow)
    task = asyncio.create_task(registry.run())
    await registry.wait_started()
    registry.recovered.set()
    try:
        await registry.create(VM, {"vmId": str(VM), "vmName": "ga", "memSize": 64})
        owner = registry.get(VM)
        await until(lambda: owner.status is VmStatus.UP, "never Up")
        await settle()
        assert guest_calls(port) == 0 and owner.guest.running is not None
        port.guests[VM].agent_info = ANSWER
        owner.guest.wake()  # what AGENT_CONNECTED does
        await until(lambda: owner.stats()["guestFQDN"] == "g1", "never asked after the wake")
        assert guest_calls(port) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_adopted_running_vm_is_asked_at_once():
    port = FakeHypervisor(FakeClock())
    slow = GuestAgentConfig(poll_interval_s=3600, timeout_s=1, backoff_max_s=3600)
    async with running_vm(port) as registry:  # a first hvagent made the VM
        pass
    port.guests[VM].agent_info = ANSWER
    record = await port.domain(VM)
    registry = VmRegistry(port, StatusBus(), virt=VirtConfig(), guest_agent=slow)
    task = asyncio.create_task(registry.run())
    await registry.wait_started()
    try:
        owner = registry.adopt(record)
        await until(lambda: owner.stats().get("guestFQDN") == "g1", "adopted VM never asked")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
