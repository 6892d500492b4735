"""Guest-initiated stop, exit info in metadata, and recovery after a daemon restart."""

from __future__ import annotations

import uuid

import pytest

from tests.client import EventStream, RpcClient
from tests.integration.conftest import SHARED_URI, Daemon, libvirt_uuids, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_guest_shutdown_is_reason_7_and_survives_restart(
    rpc, daemon, virconn, session, tmp_path
):
    vm_id = str(uuid.uuid4())
    running = str(uuid.uuid4())
    events = await EventStream.open(rpc)
    try:
        for v in (vm_id, running):
            await rpc.call(
                "VM.create", vmID=v, vmParams={"vmId": v, "vmName": f"rec-{v[:8]}", "memSize": 64}
            )
            await events.wait_status(v, "Up", 10)
        # The guest powers itself off: libvirt reports STOPPED/SHUTDOWN.
        virconn.lookupByUUIDString(vm_id).shutdown()
        down = await events.wait_status(vm_id, "Down", 10)
        assert (down["exitCode"], down["exitReason"]) == (0, 7)
        assert down["exitMessage"] == "User shut down from within the guest"
    finally:
        await events.close()
    # Stays listed as Down until destroyed; the domain is still defined.
    assert vm_id in libvirt_uuids(virconn)
    before_running = await rpc.call("VM.getInfo", vmID=running)

    assert await daemon.stop() == 0
    # Stopping hvagent leaves VMs alone.
    assert virconn.lookupByUUIDString(running).isActive() == 1

    second = Daemon(make_config(tmp_path, SHARED_URI))
    try:
        rpc2 = RpcClient(second.base, session)
        await rpc2.wait_ready(30)
        stats = (await rpc2.call("VM.getStats", vmID=vm_id))[0]
        assert (stats["status"], stats["exitCode"], stats["exitReason"]) == ("Down", 0, 7)
        info = await rpc2.call("VM.getInfo", vmID=running)
        assert info["status"] == "Up"
        assert {k: info[k] for k in ("vmName", "memSize", "smp", "external")} == {
            k: before_running[k] for k in ("vmName", "memSize", "smp", "external")
        }

        # The test driver's own "test" domain is foreign: reported, never touched.
        foreign = virconn.lookupByName("test").UUIDString()
        finfo = await rpc2.call("VM.getInfo", vmID=foreign)
        assert finfo["external"] is True and finfo["status"] == "Up"
        err = await rpc2.error("VM.destroy", vmID=foreign)
        assert err["code"] == 75
        err = await rpc2.error("VM.setTicket", vmID=foreign, password="pw", ttl=30)
        assert err["code"] == 75 and "foreign" in err["data"]["reason"]
        ticket = {"deviceType": "graphics", "graphicsType": "vnc", "password": "pw", "ttl": 30}
        err = await rpc2.error("VM.updateDevice", vmID=foreign, params=ticket)
        assert err["code"] == 75
        assert virconn.lookupByName("test").isActive() == 1

        for v in (vm_id, running):
            assert await rpc2.call("VM.destroy", vmID=v) is True
        assert not {vm_id, running} & libvirt_uuids(virconn)
    finally:
        assert await second.stop() == 0


async def test_domain_destroyed_outside_is_lost_connection(rpc, virconn):
    vm_id = str(uuid.uuid4())
    await rpc.call(
        "VM.create",
        vmID=vm_id,
        vmParams={"vmId": vm_id, "vmName": f"ext-{vm_id[:8]}", "memSize": 64},
    )
    await rpc.wait_status(vm_id, "Up", 10)
    virconn.lookupByUUIDString(vm_id).destroy()
    down = await rpc.wait_status(vm_id, "Down", 10)
    assert (down["exitCode"], down["exitReason"]) == (1, 2)
    await rpc.call("VM.destroy", vmID=vm_id)
    assert vm_id not in libvirt_uuids(virconn)


async def test_a_vm_whose_start_failed_is_still_down_after_restart(
    rpc, daemon, virconn, session, tmp_path
):
    """libvirt refused the domain, so no domain carries the exit info; hvagent keeps it in
    [state] dir and lists the VM Down with its reason until VM.destroy, restarts included."""
    vm_id = str(uuid.uuid4())
    params = {"vmId": vm_id, "vmName": f"fail-{vm_id[:8]}", "memSize": 64}
    await rpc.call("VM.create", vmID=vm_id, vmParams={**params, "emulatedMachine": "no such"})
    down = await rpc.wait_status(vm_id, "Down", 10)
    assert (down["exitCode"], down["exitReason"]) == (1, 3)
    assert vm_id not in libvirt_uuids(virconn)
    assert await daemon.stop() == 0

    keys = ("status", "exitCode", "exitReason", "exitMessage")
    second = Daemon(make_config(tmp_path, SHARED_URI))
    try:
        rpc2 = RpcClient(second.base, session)
        await rpc2.wait_ready(30)
        kept = (await rpc2.call("VM.getStats", vmID=vm_id))[0]
        assert {k: kept[k] for k in keys} == {k: down[k] for k in keys}
        assert vm_id in [e["vmId"] for e in await rpc2.call("Host.getVMList")]
        # the name stays taken while the VM is listed, as for any Down VM
        other = str(uuid.uuid4())
        err = await rpc2.error("VM.create", vmID=other, vmParams={**params, "vmId": other})
        assert err["code"] == 4 and err["data"]["param"] == "vmName"
        assert await rpc2.call("VM.destroy", vmID=vm_id) is True
    finally:
        assert await second.stop() == 0
    third = Daemon(make_config(tmp_path, SHARED_URI))
    try:
        rpc3 = RpcClient(third.base, session)
        await rpc3.wait_ready(30)
        assert (await rpc3.error("VM.getStats", vmID=vm_id))["code"] == 1
    finally:
        assert await third.stop() == 0
