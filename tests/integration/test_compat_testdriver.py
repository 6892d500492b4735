"""Where an unmodified engine would misbehave (issue 14): VDSM's answers over JSON-RPC on
libvirt's test driver. Its shutdown refuses the ACPI flag, so a graceful ladder keeps
re-sending ACPI until its stage times out (shared/design/ANCHORS.md A.8)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from agent.domxml import metadata, parse
from tests.client import EventStream
from tests.integration.test_rpc_testdriver import create

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _operation(virconn, vm_id: str) -> dict[str, str] | None:
    root = metadata.find(parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0)))
    assert root is not None
    return metadata.read(root).operation


async def _wait_operation(virconn, vm_id: str, check, timeout: float = 10) -> dict[str, str]:
    async with asyncio.timeout(timeout):
        while True:
            op = _operation(virconn, vm_id)
            if op is not None and check(op):
                return op
            await asyncio.sleep(0.05)


async def test_zero_means_default_and_a_second_shutdown_shortens(rpc, virconn):
    events = await EventStream.open(rpc)
    try:
        vm_id, _ = await create(rpc)
        await events.wait_status(vm_id, "Up", 10)
        # Engines send zeros: they mean the configured defaults, not "force at once".
        assert await rpc.call("VM.shutdown", vmID=vm_id, delay=0, timeout=0, force=True)
        await events.wait_status(vm_id, "Powering down", 10)
        op = await _wait_operation(virconn, vm_id, lambda o: o["stage"] == "acpi")
        assert float(op["timeout"]) == 120.0 and float(op["delay"]) == 30.0
        assert op["force"] == "true"
        assert (await rpc.call("VM.getStats", vmID=vm_id))[0]["status"] == "Powering down"
        # A second request shortens: force within 1 s instead of 120 s.
        assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=1, force=True)
        down = await events.wait_status(vm_id, "Down", 15)
        assert down["exitReason"] == 6
        # VDSM answers noVM (1) for a shutdown of a Down VM; reset stays 6 (wrong state).
        err = await rpc.error("VM.shutdown", vmID=vm_id)
        assert err["code"] == 1 and err["data"]["vmId"] == vm_id
        assert (await rpc.error("VM.reset", vmID=vm_id))["code"] == 6
        await rpc.call("VM.destroy", vmID=vm_id)
    finally:
        await events.close()


async def test_a_later_slower_shutdown_never_lengthens_nor_removes_force(rpc, virconn):
    vm_id, _ = await create(rpc)
    await rpc.wait_status(vm_id, "Up", 10)
    assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=30, force=True)
    first = await _wait_operation(virconn, vm_id, lambda o: o["stage"] == "acpi")
    assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=600, force=False, message="later")
    second = await _wait_operation(virconn, vm_id, lambda o: o["message"] == "later")
    assert second["stageDeadline"] == first["stageDeadline"]
    assert second["force"] == "true" and float(second["timeout"]) == 30.0
    await rpc.call("VM.destroy", vmID=vm_id)
