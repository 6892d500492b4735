"""Host.dumpxmls on the test driver: the live XML shows what VM.create asked for."""

from __future__ import annotations

import uuid

import pytest

from agent import domxml
from agent.domxml import live

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_engine_xml_passthrough_runs_and_reads_back(rpc, virconn):
    vm_id = str(uuid.uuid4())
    xml = f"""<domain type='kvm'><name>eng-{vm_id[:8]}</name><uuid>{vm_id}</uuid>
      <memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>
      <on_reboot>destroy</on_reboot>
      <devices><interface type='network'><source network='default'/></interface></devices>
    </domain>"""
    await rpc.call("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    try:
        await rpc.wait_status(vm_id, "Up", 10)
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        assert root.find("devices/interface/source").get("network") == "default"
        assert root.find("metadata/{https://hvagent.org/xmlns/vm/1.0}vm") is not None
        meta = live.facts(domxml.to_string(root)).metadata
        assert meta.destroy_on_reboot
        info = await rpc.call("VM.getInfo", vmID=vm_id)
        assert info["vmName"] == f"eng-{vm_id[:8]}"
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)


async def test_dumpxmls_shows_devices_and_unknown_is_code_1(rpc):
    vm_id = str(uuid.uuid4())
    params = {
        "vmId": vm_id,
        "vmName": f"dump-{vm_id[:8]}",
        "memSize": 64,
        "devices": [
            {"type": "disk", "path": "/var/lib/x.qcow2", "format": "cow"},
            {
                "type": "interface",
                "device": "bridge",
                "network": "br0",
                "macAddr": "52:54:00:1:2:3",
            },
            {"type": "video", "device": "vga"},
            {"type": "watchdog", "specParams": {"action": "reset"}},
            {"type": "rng", "specParams": {"source": "urandom"}},
            {"type": "balloon", "specParams": {"model": "virtio"}},
        ],
    }
    params["devices"][1]["macAddr"] = "52:54:00:01:02:03"
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    try:
        await rpc.wait_status(vm_id, "Up", 10)
        dumped = await rpc.call("Host.dumpxmls", vmList=[vm_id])
        root = domxml.parse(dumped[vm_id])
        assert root.findtext("uuid") == vm_id
        assert root.find("devices/interface/mac").get("address") == "52:54:00:01:02:03"
        assert root.find("devices/video/model").get("type") == "vga"
        assert root.find("devices/watchdog").get("action") == "reset"
        assert root.find("devices/memballoon").get("model") == "virtio"
        assert root.find("devices/rng/backend").text == "/dev/urandom"
        err = await rpc.error("Host.dumpxmls", vmList=[str(uuid.uuid4())])
        assert err["code"] == 1
        err = await rpc.error("Host.dumpxmls")
        assert (err["code"], err["data"]["param"]) == (-32602, "vmList")
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)


async def test_one_down_vm_does_not_fail_the_list(rpc, virconn):
    """A VM whose domain is gone (Down) and an unknown id are left out; the rest is answered
    (issue 15, found item 7)."""
    up, down = str(uuid.uuid4()), str(uuid.uuid4())
    for vm_id in (up, down):
        params = {"vmId": vm_id, "vmName": f"dx-{vm_id[:8]}", "memSize": 64}
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await rpc.wait_status(vm_id, "Up", 10)
    dom = virconn.lookupByUUIDString(down)
    dom.destroy()
    dom.undefine()
    await rpc.wait_status(down, "Down", 30)
    unknown = str(uuid.uuid4())
    try:
        dumped = await rpc.call("Host.dumpxmls", vmList=[down, up, unknown])
        assert list(dumped) == [up]
        assert domxml.parse(dumped[up]).findtext("uuid") == up
        err = await rpc.error("Host.dumpxmls", vmList=[down, unknown])
        assert err["code"] == 1 and err["data"]["vmIds"] == [down, unknown]
    finally:
        await rpc.call("VM.destroy", vmID=up)
        await rpc.call("VM.destroy", vmID=down)
