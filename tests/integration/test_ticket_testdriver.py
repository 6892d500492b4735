"""VM.setTicket and VM.updateDevice errors on the test driver (it cannot update devices
live; the QEMU e2e suite does)."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "s3cr3t-pw-77"


async def make_vm(rpc, **kw):
    vm_id = str(uuid.uuid4())
    params = {"vmId": vm_id, "vmName": f"tk-{vm_id[:8]}", "memSize": 64, **kw}
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 10)
    return vm_id


async def test_headless_vm_refuses_tickets_with_18(rpc):
    vm_id = await make_vm(rpc)
    err = await rpc.error("VM.setTicket", vmID=vm_id, password=SECRET, ttl=30)
    assert err["code"] == 18 and "headless" in err["data"]["reason"]
    assert SECRET not in json.dumps(err)
    await rpc.call("VM.destroy", vmID=vm_id)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"password": 5, "ttl": 30}, "password"),
        ({"password": SECRET, "ttl": "soon"}, "ttl"),
        ({"password": SECRET, "ttl": 30, "existingConnAction": "bogus"}, "existingConnAction"),
        ({"password": SECRET, "ttl": 30, "graphicsType": "rdp"}, "graphicsType"),
        ({"password": "123456789", "ttl": 30}, "password"),  # VNC: 8 characters at most
        ({"ttl": 30}, "password"),
    ],
)
async def test_bad_ticket_params_name_the_param(rpc, params, param):
    vm_id = await make_vm(rpc, display="vnc")
    err = await rpc.error("VM.setTicket", vmID=vm_id, **params)
    assert (err["code"], err["data"]["param"]) == (-32602, param)
    assert SECRET not in json.dumps(err) and "123456789" not in json.dumps(err)
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_missing_console_type_is_18(rpc):
    vm_id = await make_vm(rpc, display="vnc")
    err = await rpc.error("VM.setTicket", vmID=vm_id, password="pw", ttl=30, graphicsType="spice")
    assert err["code"] == 18 and err["data"]["param"] == "graphicsType"
    # The test driver has no live device update: libvirt's refusal comes back as 18.
    err = await rpc.error("VM.setTicket", vmID=vm_id, password="pw", ttl=30)
    assert err["code"] == 18 and err["data"]["libvirt"]["code"] == 3
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_update_device_on_a_headless_vm_is_56_saying_so(rpc):
    vm_id = await make_vm(rpc)
    err = await rpc.error(
        "VM.updateDevice",
        vmID=vm_id,
        params={"deviceType": "graphics", "graphicsType": "spice", "password": SECRET, "ttl": 30},
    )
    assert err["code"] == 56 and "headless" in err["data"]["reason"]
    assert SECRET not in json.dumps(err)
    await rpc.call("VM.destroy", vmID=vm_id)


GOOD = {"deviceType": "graphics", "graphicsType": "vnc", "password": "pw", "ttl": 30}


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        (None, 11, "params"),
        ("graphics", -32602, "params"),
        ({k: v for k, v in GOOD.items() if k != "deviceType"}, 11, "params.deviceType"),
        ({**GOOD, "deviceType": "interface"}, 75, "params.deviceType"),
        ({**GOOD, "xml": "<graphics/>"}, 44, "params.xml"),  # VDSM: noimpl
        ({k: v for k, v in GOOD.items() if k != "graphicsType"}, 11, "params.graphicsType"),
        ({k: v for k, v in GOOD.items() if k != "password"}, 11, "params.password"),
        ({k: v for k, v in GOOD.items() if k != "ttl"}, 11, "params.ttl"),
        ({**GOOD, "graphicsType": "rdp"}, -32602, "params.graphicsType"),
        ({**GOOD, "password": SECRET + "x"}, -32602, "params.password"),  # VNC: 8 at most
        ({**GOOD, "ttl": "later"}, -32602, "params.ttl"),
        ({**GOOD, "existingConnAction": "kick"}, -32602, "params.existingConnAction"),
        ({**GOOD, "disconnectAction": "shutdown"}, -32602, "params.disconnectAction"),
        (
            {**GOOD, "disconnectAction": "SHUTDOWN", "consoleDisconnectActionDelay": -1},
            -32602,
            "params.consoleDisconnectActionDelay",
        ),
        (
            {**GOOD, "consoleDisconnectActionDelay": "5m"},
            -32602,
            "params.consoleDisconnectActionDelay",
        ),
        ({**GOOD, "params": ["x"]}, -32602, "params.params"),
        ({**GOOD, "graphicsType": "spice"}, 56, "graphicsType"),  # the VM has VNC only
    ],
)
async def test_bad_update_device_params_name_the_field(rpc, params, code, param):
    vm_id = await make_vm(rpc, display="vnc")
    kw = {} if params is None else {"params": params}
    err = await rpc.error("VM.updateDevice", vmID=vm_id, **kw)
    assert (err["code"], err["data"]["param"]) == (code, param)
    assert SECRET not in json.dumps(err)
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_update_device_refused_by_libvirt_is_18_like_set_ticket(rpc):
    """VDSM answers ticketErr (18) when libvirt refuses either verb's update."""
    vm_id = await make_vm(rpc, display="vnc")
    err = await rpc.error(
        "VM.updateDevice",
        vmID=vm_id,
        params={**GOOD, "disconnectAction": "LOCK_SCREEN"},
    )
    assert err["code"] == 18 and err["data"]["libvirt"]["code"] == 3
    await rpc.call("VM.destroy", vmID=vm_id)
