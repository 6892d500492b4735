"""VM.shutdown / reboot ladder, VM.reset, exit reasons and persistent deadlines on real QEMU."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from agent.clock import parse_iso
from agent.domxml import metadata, parse
from tests.client import EventStream, RpcClient
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def boot(rpc, agent, guest, *flags) -> tuple[str, EventStream]:
    vm_id, params = guest_params(guest, *flags)
    events = await EventStream.open(rpc)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await events.wait_status(vm_id, "Up", 120)
    await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
    return vm_id, events


async def wait_event(events: EventStream, vm_id: str, status: str, after: int, timeout=120):
    """The first `status` event of `vm_id` after its `after`-th event, with its arrival time."""
    async with asyncio.timeout(timeout):
        while True:
            seen = events.statuses(vm_id)
            for details in seen[after:]:
                if details["status"] == status:
                    return details, time.time()
            events._changed.clear()
            await events._changed.wait()


async def wait_agent(rpc, vm_id: str, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await rpc.call("VM.getStats", vmID=vm_id))[0].get("guestAgentConnected"):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the guest agent never connected")


def operation(virconn, vm_id: str) -> dict[str, str] | None:
    # The full XML: virDomainGetMetadata returns the element without its namespace.
    root = metadata.find(parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0)))
    assert root is not None
    return metadata.read(root).operation


async def test_agent_shutdown_is_exit_6(rpc, agent, guest):
    vm_id, events = await boot(rpc, agent, guest)
    try:
        await wait_agent(rpc, vm_id)
        assert await rpc.call("VM.shutdown", vmID=vm_id, delay=0, timeout=60, message="bye")
        down, _ = await wait_event(events, vm_id, "Down", 0)
        assert down["exitReason"] == 6
        assert "HVAGENT-GUEST-AGENT-SHUTDOWN" in agent.console_log(vm_id)
        assert "Powering down" in [s["status"] for s in events.statuses(vm_id)]
    finally:
        await events.close()


async def test_acpi_powers_off_a_guest_without_agent(rpc, agent, guest):
    vm_id, events = await boot(rpc, agent, guest, "noqga")
    try:
        assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=60)
        down, _ = await wait_event(events, vm_id, "Down", 0)
        assert down["exitReason"] == 6
        assert "HVAGENT-GUEST-ACPI-POWEROFF" in agent.console_log(vm_id)
    finally:
        await events.close()


async def test_force_destroys_at_the_deadline(rpc, agent, guest, virconn):
    vm_id, events = await boot(rpc, agent, guest, "noqga", "noacpid")
    try:
        n = len(events.statuses(vm_id))
        assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=5, force=True)
        await wait_event(events, vm_id, "Powering down", n)
        op = operation(virconn, vm_id)
        assert op is not None and op["stage"] == "acpi"
        started, deadline = parse_iso(op["stageStarted"]), parse_iso(op["stageDeadline"])
        down, t_down = await wait_event(events, vm_id, "Down", n, 60)
        assert down["exitReason"] == 6
        assert t_down >= deadline - 0.002, "destroyed before the deadline"
        assert 4 <= t_down - started <= 15
        assert "HVAGENT-GUEST-ACPI-POWEROFF" not in agent.console_log(vm_id)
    finally:
        await events.close()


async def test_without_force_it_gives_up_and_stays_up(rpc, agent, guest):
    vm_id, events = await boot(rpc, agent, guest, "noqga", "noacpid")
    try:
        n = len(events.statuses(vm_id))
        assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=3)
        await wait_event(events, vm_id, "Powering down", n)
        up, _ = await wait_event(events, vm_id, "Up", n, 60)
        assert up["powerOperation"]["outcome"] == "gave-up"
        stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
        assert stats["status"] == "Up"
        assert "no stage left" in agent.log.read_text()
    finally:
        await events.close()


async def test_reboot_of_a_cooperating_guest(rpc, agent, guest, virconn):
    vm_id, events = await boot(rpc, agent, guest)
    try:
        await wait_agent(rpc, vm_id)
        dom_id = virconn.lookupByUUIDString(vm_id).ID()
        n = len(events.statuses(vm_id))
        assert await rpc.call("VM.shutdown", vmID=vm_id, reboot=True, delay=0, timeout=60)
        await wait_event(events, vm_id, "RebootInProgress", n)
        await wait_event(events, vm_id, "Up", n, 120)
        await agent.wait_console(vm_id, "HVAGENT-GUEST-BOOT", count=2)
        assert virconn.lookupByUUIDString(vm_id).ID() == dom_id  # same QEMU process
    finally:
        await events.close()


async def test_forced_reboot_resets_an_uncooperative_guest(rpc, agent, guest):
    vm_id, events = await boot(rpc, agent, guest, "noqga", "noacpid")
    try:
        n = len(events.statuses(vm_id))
        assert await rpc.call("VM.shutdown", vmID=vm_id, reboot=True, timeout=3, force=True)
        await wait_event(events, vm_id, "RebootInProgress", n)
        up, _ = await wait_event(events, vm_id, "Up", n, 60)
        assert up["powerOperation"]["outcome"] == "forced"
        await agent.wait_console(vm_id, "HVAGENT-GUEST-BOOT", count=2)
    finally:
        await events.close()


async def test_reset_and_destroy_on_reboot(rpc, agent, guest):
    vm_id, events = await boot(rpc, agent, guest, "noqga")
    try:
        assert await rpc.call("VM.reset", vmID=vm_id) is True
        await agent.wait_console(vm_id, "HVAGENT-GUEST-READY", count=2)
        assert await rpc.call("VM.setDestroyOnReboot", vmID=vm_id) is True
        assert await rpc.call("VM.shutdown", vmID=vm_id, reboot=True, timeout=60)
        down, _ = await wait_event(events, vm_id, "Down", 0)
        assert down["exitReason"] == 13
        assert (await rpc.error("VM.reset", vmID=vm_id))["code"] == 6
    finally:
        await events.close()


async def test_kill9_during_forced_shutdown_destroys_at_the_original_deadline(
    rpc, agent, guest, virconn
):
    vm_id, events = await boot(rpc, agent, guest, "noqga", "noacpid")
    await events.close()
    assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=20, force=True)
    await rpc.wait_status(vm_id, "Powering down", 30)
    op = operation(virconn, vm_id)
    assert op is not None and op["stage"] == "acpi"
    deadline = parse_iso(op["stageDeadline"])
    agent.kill9()
    assert time.time() < deadline - 5, "the test machine is too slow for this test"
    agent.start()
    second = RpcClient(agent.base, rpc.session)
    await second.wait_ready(120)
    assert (await second.call("VM.getStats", vmID=vm_id))[0]["status"] == "Powering down"
    dom = virconn.lookupByUUIDString(vm_id)
    limit = time.monotonic() + 60
    while dom.isActive() and time.monotonic() < limit:
        await asyncio.sleep(0.02)
    t_off = time.time()
    assert not dom.isActive()
    # hvagent's log stamps the moment the force stage began, i.e. the destroy was issued;
    # libvirt then needs a while (SIGTERM, QEMU exit, cleanup: ~2 s on a loaded TCG host).
    t_issued = log_time(agent.log.read_text(), vm_id, "acpi stage timed out")
    assert abs(t_issued - deadline) <= 1.0, f"destroy issued {t_issued - deadline:+.3f} s off"
    assert t_issued <= t_off <= t_issued + 10
    down = await second.wait_status(vm_id, "Down", 30)
    assert down["exitReason"] == 6


def log_time(log: str, vm_id: str, text: str) -> float:
    """Epoch time of the first hvagent log line about `vm_id` containing `text`."""
    for line in log.splitlines():
        if vm_id in line and text in line:
            stamp = line[:23]  # "2026-11-21 02:05:36,726", local time
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise AssertionError(f"no log line with {text!r} for {vm_id}")
