"""Host.dumpxmls on the test driver: the live XML shows what VM.create asked for."""

from __future__ import annotations

import uuid

import pytest

from agent import domxml

pytestmark = pytest.mark.asyncio(loop_scope="session")


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
