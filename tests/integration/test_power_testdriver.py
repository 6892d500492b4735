"""Power verbs over HTTP on libvirt's test driver (its shutdown refuses ACPI/agent flags,
shared/design/ANCHORS.md A.8: the ladder's request fails and it moves on, as designed)."""

from __future__ import annotations

import uuid

import pytest

from agent.domxml import metadata, parse
from tests.client import EventStream
from tests.integration.test_rpc_testdriver import create

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"timeout": -1}, "timeout"),
        ({"delay": "soon"}, "delay"),
        ({"force": "yes"}, "force"),
        ({"reboot": 1}, "reboot"),
        ({"message": 5}, "message"),
    ],
)
async def test_bad_shutdown_params_name_the_parameter(rpc, params, param):
    vm_id = str(uuid.uuid4())
    err = await rpc.error("VM.shutdown", vmID=vm_id, **params)
    assert err["code"] == -32602 and err["data"]["param"] == param


async def test_power_verbs_on_unknown_vm_are_code_1(rpc):
    vm_id = str(uuid.uuid4())
    for verb in ("VM.shutdown", "VM.reset", "VM.setDestroyOnReboot"):
        assert (await rpc.error(verb, vmID=vm_id))["code"] == 1


async def test_forced_short_timeout_shutdown_is_down_6(rpc):
    events = await EventStream.open(rpc)
    try:
        vm_id, _ = await create(rpc)
        await events.wait_status(vm_id, "Up", 10)
        assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=0.2, delay=0.2, force=True)
        down = await events.wait_status(vm_id, "Down", 10)
        assert down["exitReason"] == 6
        statuses = [s["status"] for s in events.statuses(vm_id)]
        assert statuses[-2:] == ["Powering down", "Down"]
        assert (await rpc.error("VM.shutdown", vmID=vm_id))["code"] == 1  # VDSM: noVM
        assert (await rpc.error("VM.reset", vmID=vm_id))["code"] == 6
        await rpc.call("VM.destroy", vmID=vm_id)
    finally:
        await events.close()


async def test_set_destroy_on_reboot_is_persisted(rpc, virconn):
    vm_id, _ = await create(rpc)
    await rpc.wait_status(vm_id, "Up", 10)
    assert await rpc.call("VM.setDestroyOnReboot", vmID=vm_id) is True
    root = metadata.find(parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0)))
    assert root is not None and metadata.read(root).destroy_on_reboot
    await rpc.call("VM.destroy", vmID=vm_id)
