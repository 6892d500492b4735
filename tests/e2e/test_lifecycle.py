"""The foundation on a real hypervisor: libvirtd, QEMU (TCG) and the tiny test guest."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.client import EventStream, RpcClient
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_create_up_stats_destroy(rpc, agent, guest, virconn, tmp_path):
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    vm_id, params = guest_params(
        guest,
        devices=[
            {
                "type": "disk",
                "device": "disk",
                "path": str(disk),
                "format": "cow",
                "iface": "virtio",
            }
        ],
    )
    events = await EventStream.open(rpc)
    try:
        result = await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        assert result["status"] == "WaitForLaunch"
        up = await events.wait_status(vm_id, "Up", 60)
        assert up["vmType"] == "qemu" and up["kvmEnable"] == "false"
        console = await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
        assert "HVAGENT-GUEST-DISK vda" in console
        dom = virconn.lookupByUUIDString(vm_id)
        assert dom.isActive() == 1 and dom.name() == params["vmName"]
        stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
        assert stats["status"] == "Up" and stats["memSize"] == 256
        host = await rpc.call("Host.getStats")
        assert host["vmActive"] >= 1

        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        down = await events.wait_status(vm_id, "Down", 30)
        assert down["exitReason"] == 6
        assert vm_id not in {d.UUIDString() for d in virconn.listAllDomains(0)}
        assert (await rpc.error("VM.getStats", vmID=vm_id))["code"] == 1
    finally:
        await events.close()


async def test_guest_powering_itself_off_is_user_shutdown(rpc, agent, guest, virconn):
    vm_id, params = guest_params(guest, "poweroff_after=2")
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        down = await events.wait_status(vm_id, "Down", 180)
        assert (down["exitCode"], down["exitReason"]) == (0, 7)
        assert "HVAGENT-GUEST-POWEROFF" in agent.console_log(vm_id)
        # Listed as Down with its exit info until destroyed; the domain is still defined.
        stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
        assert (stats["status"], stats["exitReason"]) == ("Down", 7)
        assert virconn.lookupByUUIDString(vm_id).isActive() == 0
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        assert vm_id not in {d.UUIDString() for d in virconn.listAllDomains(0)}
    finally:
        await events.close()


async def test_libvirt_refusal_leaves_no_domain(rpc, agent, guest, virconn):
    # A kernel the host-access policy allows (under the guest dir) that is not there:
    # hvagent accepts the request, libvirt refuses to start it.
    missing = str(Path(guest["kernel"]).with_name("nonexistent-vmlinuz"))
    vm_id, params = guest_params(guest, kernel=missing)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    down = await rpc.wait_status(vm_id, "Down", 60)
    assert (down["exitCode"], down["exitReason"]) == (1, 3)
    assert missing in down["exitMessage"]
    assert vm_id not in {d.UUIDString() for d in virconn.listAllDomains(0)}

    # Still Down with its reason after a restart (VDSM keeps it until VM.destroy), and
    # gone for good after the destroy, restart or not.
    assert agent.stop() == 0
    agent.start()
    again = RpcClient(agent.base, rpc.session)
    await again.wait_ready(120)
    kept = (await again.call("VM.getStats", vmID=vm_id))[0]
    assert {k: kept[k] for k in ("status", "exitCode", "exitReason", "exitMessage")} == {
        k: down[k] for k in ("status", "exitCode", "exitReason", "exitMessage")
    }
    assert await again.call("VM.destroy", vmID=vm_id) is True
    assert agent.stop() == 0
    agent.start()
    await again.wait_ready(120)
    assert (await again.error("VM.getStats", vmID=vm_id))["code"] == 1


async def test_kill9_and_restart_readopts_running_vm(rpc, agent, guest, virconn):
    vm_id, params = guest_params(guest)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 60)
    await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
    before = await rpc.call("VM.getInfo", vmID=vm_id)

    agent.kill9()
    assert virconn.lookupByUUIDString(vm_id).isActive() == 1
    agent.start()
    second = RpcClient(agent.base, rpc.session)
    await second.wait_ready(120)
    after = await second.call("VM.getInfo", vmID=vm_id)
    keys = ("status", "vmName", "memSize", "smp", "vmType", "external")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}
    assert after["status"] == "Up"

    # SIGTERM: an orderly stop that leaves the VM running, and a clean re-adoption.
    assert agent.stop() == 0
    assert virconn.lookupByUUIDString(vm_id).isActive() == 1
    agent.start()
    await second.wait_ready(120)
    assert (await second.call("VM.getInfo", vmID=vm_id))["status"] == "Up"
    # The re-adopted VM is fully manageable.
    assert await second.call("VM.destroy", vmID=vm_id) is True
    assert vm_id not in {d.UUIDString() for d in virconn.listAllDomains(0)}


async def test_capabilities_read_from_real_qemu(rpc, virconn):
    caps = await rpc.call("Host.getCapabilities")
    assert caps["packages2"]["qemu"]["version"].count(".") == 2
    assert caps["packages2"]["libvirt"]["version"].count(".") == 2
    assert "pc" in caps["emulatedMachines"] or "q35" in caps["emulatedMachines"]
    assert caps["uuid"] and caps["cpuModel"]
    assert int(caps["memSize"]) == virconn.getInfo()[1]
    assert caps["operatingSystem"]["name"]


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        (b"{oops", -32700, None),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600, None),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "VM.nope"}', -32601, ("method", "VM.nope")),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "VM.getStats"}', -32602, ("param", "vmID")),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "VM.getStats", "params": '
            b'{"vmID": "00000000-0000-0000-0000-000000000001"}}',
            1,
            None,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "VM.create", "params": {"vmID": '
            b'"00000000-0000-0000-0000-000000000002", "vmParams": '
            b'{"vmId": "00000000-0000-0000-0000-000000000002"}}}',
            11,
            ("param", "memSize"),
        ),
    ],
)
async def test_error_codes_from_the_real_daemon(rpc, virconn, body, code, where):
    before = {d.UUIDString() for d in virconn.listAllDomains(0)}
    status, answer = await rpc.raw(body)
    assert status == 200 and answer["error"]["code"] == code
    if where:
        assert answer["error"]["data"][where[0]] == where[1]
    assert {d.UUIDString() for d in virconn.listAllDomains(0)} == before


async def test_duplicate_create_is_code_4_and_changes_nothing(rpc, guest, virconn):
    vm_id, params = guest_params(guest)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 60)
    xml_before = virconn.lookupByUUIDString(vm_id).XMLDesc(0)
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={**params, "memSize": 512})
    assert err["code"] == 4
    assert virconn.lookupByUUIDString(vm_id).XMLDesc(0) == xml_before
    assert await rpc.call("VM.destroy", vmID=vm_id) is True


async def test_qemu_killed_outside_hvagent_is_lost_connection(rpc, agent, guest, virconn):
    """SIGKILL to QEMU (OOM killer, an operator): exitReason 2, as VDSM and this README say."""
    vm_id, params = guest_params(guest)
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 60)
        pid = int(Path(f"/run/libvirt/qemu/{params['vmName']}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        down = await events.wait_status(vm_id, "Down", 60)
        assert (down["exitCode"], down["exitReason"]) == (1, 2)
        assert down["exitMessage"] == "Lost connection with qemu process"
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
    finally:
        await events.close()
