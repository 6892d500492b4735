"""Hostile wire text (issue 15, found items 1 and 2): NULs, control characters, U+FFFE, lone
surrogates, non-ASCII digits, huge numbers and digit strings in every text field are answered
-32602 naming the field, over JSON-RPC on the test driver; nothing is left behind and the
daemon goes on answering."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.conftest import libvirt_uuids

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOSTILE = ["a\x00b", "a\x07b", "a\nb", "a\ufffeb", "a\ud800b", "x" * 5000]
ALT = {"a\nb": "ab\u0085"}  # a C1 control too
FIELDS = ["vmName", "kernel", "initrd", "kernelArgs", "emulatedMachine"]


def wire(body) -> str:
    """JSON as a client would send it: lone surrogates as \\ud800 escapes."""
    return json.dumps(body, ensure_ascii=True)


async def create_error(rpc, vm_id, params):
    body = {"jsonrpc": "2.0", "id": 1, "method": "VM.create"}
    body["params"] = {"vmID": vm_id, "vmParams": params}
    status, reply = await rpc.raw(wire(body))
    assert status == 200 and "error" in reply, reply
    return reply["error"]


def base(vm_id):
    return {"vmId": vm_id, "vmName": f"ht-{vm_id[:8]}", "memSize": 64}


def cases():
    out = []
    for text in HOSTILE:
        for key in FIELDS:
            value = "/" + text if key in ("kernel", "initrd") else text
            out.append(({key: value}, key))
        out.append(({"custom": {"k": text}}, "custom.k"))
        gfx = {"type": "graphics", "device": "vnc", "specParams": {"displayIp": text}}
        out.append(({"devices": [gfx]}, "devices[0].specParams.displayIp"))
        disk = {"type": "disk", "path": "/img" + text}
        out.append(({"devices": [disk]}, "devices[0].path"))
        disk = {"type": "disk", "path": "/img", "serial": text}
        out.append(({"devices": [disk]}, "devices[0].serial"))
        nic = {"type": "interface", "device": "bridge", "network": text}
        out.append(({"devices": [nic]}, "devices[0].network"))
    out.append(({"custom": {"a\x00": "v"}}, "custom"))
    out.append(({"cpuPinning": {"²": "0"}}, "cpuPinning"))
    out.append(({"cpuPinning": {"\u0661": "0"}}, "cpuPinning"))
    return out


CASES = cases()


@pytest.mark.parametrize(("change", "param"), CASES, ids=[str(i) for i in range(len(CASES))])
async def test_hostile_text_in_vm_params_is_32602(rpc, virconn, change, param):
    vm_id = str(uuid.uuid4())
    err = await create_error(rpc, vm_id, {**base(vm_id), **change})
    assert (err["code"], err["data"].get("param")) == (-32602, param), err
    assert len(json.dumps(err)) < 2000  # the value is never echoed whole
    assert vm_id not in libvirt_uuids(virconn)


def engine_xml(vm_id, body="<memory>65536</memory>", uuid_text=None):
    return (
        f"<domain type='kvm'><name>ex-{vm_id[:8]}</name><uuid>{uuid_text or vm_id}</uuid>"
        f"{body}<os><type>hvm</type></os></domain>"
    )


@pytest.mark.parametrize(
    "body",
    [
        "<vcpu>abc</vcpu><memory>65536</memory>",
        "<vcpu>0</vcpu><memory>65536</memory>",
        "<vcpu>\u00b2</vcpu><memory>65536</memory>",
        "<memory>abc</memory>",
        "<memory></memory>",
        "<memory>1e3</memory>",
        "<memory>" + "9" * 5000 + "</memory>",
        "<memory unit='furlong'>1</memory>",
        "<memory>65536</memory><currentMemory>x</currentMemory>",
        "<memory>65536</memory><description>\ud800</description>",
    ],
)
async def test_engine_xml_facts_are_checked_at_validation(rpc, virconn, body):
    vm_id = str(uuid.uuid4())
    err = await create_error(rpc, vm_id, {"vmId": vm_id, "xml": engine_xml(vm_id, body)})
    assert (err["code"], err["data"].get("param")) == (-32602, "vmParams.xml"), err
    assert vm_id not in libvirt_uuids(virconn)


async def test_engine_xml_uuid_with_spaces_is_accepted_as_the_vm_id(rpc, virconn):
    vm_id = str(uuid.uuid4())
    xml = engine_xml(vm_id, uuid_text=f"  {vm_id.upper()} ")
    await rpc.call("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    await rpc.wait_status(vm_id, "Up", 10)
    assert vm_id in libvirt_uuids(virconn)
    await rpc.call("VM.destroy", vmID=vm_id)


async def make_vnc_vm(rpc):
    vm_id = str(uuid.uuid4())
    await rpc.call("VM.create", vmID=vm_id, vmParams={**base(vm_id), "display": "vnc"})
    await rpc.wait_status(vm_id, "Up", 10)
    return vm_id


TICKETS = [
    ({"password": "pw", "ttl": 1000000000000}, "ttl"),
    ({"password": "pw", "ttl": -1000000000000}, "ttl"),
    ({"password": "pw", "ttl": "9" * 5000}, "ttl"),
    ({"password": "pw", "ttl": "\u0661"}, "ttl"),
    ({"password": "p\x00w", "ttl": 30}, "password"),
    ({"password": "p\ud800", "ttl": 30}, "password"),
    ({"password": "p\ufffe", "ttl": 30}, "password"),
    ({"password": "p\x1bw", "ttl": 30}, "password"),
]


@pytest.mark.parametrize(("params", "param"), TICKETS, ids=[t[1] for t in TICKETS])
async def test_hostile_tickets_are_32602_and_the_daemon_lives(rpc, params, param):
    vm_id = await make_vnc_vm(rpc)
    body = {"jsonrpc": "2.0", "id": 1, "method": "VM.setTicket", "params": {"vmID": vm_id}}
    body["params"].update(params)
    status, reply = await rpc.raw(wire(body))
    assert status == 200 and reply["error"]["code"] == -32602, reply
    assert reply["error"]["data"]["param"] == param
    update = {"deviceType": "graphics", "graphicsType": "vnc", **params}
    body = {"jsonrpc": "2.0", "id": 2, "method": "VM.updateDevice"}
    body["params"] = {"vmID": vm_id, "params": update}
    status, reply = await rpc.raw(wire(body))
    assert status == 200 and reply["error"]["code"] == -32602, reply
    assert reply["error"]["data"]["param"] == f"params.{param}"
    # The VM's owner is alive and answers; so does VM.create.
    assert (await rpc.call("VM.getStats", vmID=vm_id))[0]["status"] == "Up"
    other = await make_vnc_vm(rpc)
    await rpc.call("VM.destroy", vmID=other)
    await rpc.call("VM.destroy", vmID=vm_id)


@pytest.mark.parametrize("delay", ["9" * 5000, "\u00b2", 10**30, -1, "1.5"])
async def test_disconnect_delay_is_bounded(rpc, delay):
    vm_id = await make_vnc_vm(rpc)
    update = {
        "deviceType": "graphics",
        "graphicsType": "vnc",
        "password": "pw",
        "ttl": 30,
        "consoleDisconnectActionDelay": delay,
    }
    err = await rpc.error("VM.updateDevice", vmID=vm_id, params=update)
    assert (err["code"], err["data"]["param"]) == (-32602, "params.consoleDisconnectActionDelay")
    await rpc.call("VM.destroy", vmID=vm_id)
