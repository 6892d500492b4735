"""The daemon over HTTP on libvirt's test driver: verbs, errors, events, leftovers."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.client import EventStream
from tests.integration.conftest import libvirt_uuids

pytestmark = pytest.mark.asyncio(loop_scope="session")


def vm_params(vm_id: str, **kw):
    return {"vmId": vm_id, "vmName": f"it-{vm_id[:8]}", "memSize": 64, **kw}


async def create(rpc, **kw):
    vm_id = str(uuid.uuid4())
    result = await rpc.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, **kw))
    return vm_id, result


async def test_ping_and_health(rpc, session, daemon):
    assert await rpc.call("Host.ping2") is True
    async with session.get(f"{daemon.base}/healthz") as r:
        assert r.status == 200 and (await r.json()) == {"status": "ok"}
    async with session.get(f"{daemon.base}/readyz") as r:
        assert r.status == 200
        assert await r.json() == {"ready": True, "libvirt": True, "recovered": True}


async def test_create_stats_destroy_lifecycle_with_events(rpc, virconn):
    events = await EventStream.open(rpc)
    try:
        vm_id, result = await create(rpc, smp=2)
        assert result["vmId"] == vm_id and result["status"] == "WaitForLaunch"
        assert result["statusTime"].isdigit()
        up = await events.wait_status(vm_id, "Up", 10)
        assert up["vmName"] == f"it-{vm_id[:8]}" and up["vcpuCount"] == "2"
        stats = await rpc.call("VM.getStats", vmID=vm_id)
        assert len(stats) == 1 and stats[0]["status"] == "Up" and stats[0]["memSize"] == 64
        info = await rpc.call("VM.getInfo", vmID=vm_id)
        assert info["vmId"] == vm_id and info["smp"] == "2" and info["external"] is False
        listed = await rpc.call("Host.getVMList")
        assert {"vmId": vm_id, "status": "Up"} in [
            {k: v for k, v in e.items() if k != "statusTime"} for e in listed
        ]
        assert vm_id in [s["vmId"] for s in await rpc.call("Host.getAllVmStats")]
        host = await rpc.call("Host.getStats")
        assert host["vmCount"] >= 1 and host["vmActive"] >= 1

        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        down = await events.wait_status(vm_id, "Down", 10)
        assert (down["exitCode"], down["exitReason"]) == (0, 6)
        err = await rpc.error("VM.getStats", vmID=vm_id)
        assert err["code"] == 1 and err["data"]["vmId"] == vm_id
        assert vm_id not in libvirt_uuids(virconn)
        assert vm_id not in [e["vmId"] for e in await rpc.call("Host.getVMList")]
    finally:
        await events.close()


async def test_batch_runs_every_entry(rpc):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "VM.create",
            "params": {"vmID": a, "vmParams": vm_params(a)},
        },
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "VM.create",
            "params": {"vmID": b, "vmParams": vm_params(b)},
        },
        {"jsonrpc": "2.0", "id": 3, "method": "Host.ping2"},
        {"jsonrpc": "2.0", "method": "Host.ping2"},  # a notification: no answer
    ]
    status, body = await rpc.raw(json.dumps(batch))
    assert status == 200
    assert sorted(r["id"] for r in body) == [1, 2, 3]
    for vm in (a, b):
        await rpc.wait_status(vm, "Up", 10)
        assert await rpc.call("VM.destroy", vmID=vm) is True


async def test_notification_only_gets_no_body(rpc):
    status, body = await rpc.raw(json.dumps({"jsonrpc": "2.0", "method": "Host.ping2"}))
    assert (status, body) == (204, None)


async def test_capabilities_from_the_test_driver(rpc, virconn):
    caps = await rpc.call("Host.getCapabilities")
    _model, mem, cpus, _mhz, nodes, sockets, cores, _threads = virconn.getInfo()
    assert caps["cpuThreads"] == str(cpus) and caps["memSize"] == str(mem)
    assert caps["cpuSockets"] == str(nodes * sockets)
    assert caps["cpuCores"] == str(nodes * sockets * cores)
    assert caps["packages2"]["libvirt"]["version"].count(".") == 2
    assert caps["packages2"]["hvagent"]["version"] == caps["software_version"]
    for key in (
        "kvmEnabled",
        "cpuCores",
        "cpuModel",
        "vmTypes",
        "emulatedMachines",
        "uuid",
        "operatingSystem",
    ):
        assert key in caps


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"[]", -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "Host.ping2"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "Host.ping2", "params": 3}', -32600),
    ],
)
async def test_protocol_errors(rpc, body, code):
    status, answer = await rpc.raw(body)
    assert status == 200 and answer["error"]["code"] == code


async def test_unknown_method_names_it(rpc):
    err = await rpc.error("VM.frobnicate", vmID="x")
    assert err["code"] == -32601 and err["data"]["method"] == "VM.frobnicate"


@pytest.mark.parametrize(
    ("method", "params", "code", "param"),
    [
        ("VM.getStats", {}, -32602, "vmID"),
        ("VM.getStats", {"vmID": "x", "extra": 1}, -32602, "extra"),
        ("VM.getStats", {"vmID": "not-a-uuid"}, -32602, "vmID"),
        ("VM.getStats", {"vmID": 5}, -32602, "vmID"),
        ("VM.create", {"vmID": str(uuid.uuid4())}, -32602, "vmParams"),
        (
            "VM.destroy",
            {"vmID": str(uuid.uuid4()), "gracefulAttempts": "x"},
            -32602,
            "gracefulAttempts",
        ),
        ("Host.getVMList", {"vmList": "x"}, -32602, "vmList"),
    ],
)
async def test_bad_params_name_the_parameter(rpc, method, params, code, param):
    err = await rpc.error(method, **params)
    assert (err["code"], err["data"]["param"]) == (code, param)


async def test_unknown_vm_is_code_1(rpc):
    vm_id = str(uuid.uuid4())
    for method in ("VM.getStats", "VM.getInfo", "VM.destroy"):
        err = await rpc.error(method, vmID=vm_id)
        assert err["code"] == 1 and err["data"]["vmId"] == vm_id


@pytest.mark.parametrize(
    ("mutate", "code", "param"),
    [
        (lambda p: p.pop("memSize"), 11, "memSize"),
        (lambda p: p.pop("vmId"), 11, "vmId"),
        (lambda p: p.update(memSize="x"), -32602, "memSize"),
        (lambda p: p.update(devices=[{"type": "graphicz"}]), 75, "devices[0].type"),
    ],
)
async def test_bad_vm_params_leave_nothing_behind(rpc, virconn, mutate, code, param):
    vm_id = str(uuid.uuid4())
    params = vm_params(vm_id)
    mutate(params)
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=params)
    assert (err["code"], err["data"]["param"]) == (code, param)
    assert vm_id not in [e["vmId"] for e in await rpc.call("Host.getVMList")]
    assert vm_id not in libvirt_uuids(virconn)


async def test_existing_vm_is_code_4_and_unchanged(rpc):
    vm_id, _ = await create(rpc)
    await rpc.wait_status(vm_id, "Up", 10)
    before = await rpc.call("VM.getInfo", vmID=vm_id)
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, memSize=128))
    assert err["code"] == 4 and err["data"]["vmId"] == vm_id
    after = await rpc.call("VM.getInfo", vmID=vm_id)
    assert after == before
    other = str(uuid.uuid4())
    err = await rpc.error(
        "VM.create", vmID=other, vmParams={**vm_params(other), "vmName": before["vmName"]}
    )
    assert err["code"] == 4 and err["data"]["param"] == "vmName"
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_libvirt_refusal_goes_down_with_no_domain_left(rpc, virconn):
    # libvirt's schema (checked with VIR_DOMAIN_DEFINE_VALIDATE) refuses this machine name.
    vm_id, result = await create(rpc, emulatedMachine="no such machine")
    assert result["status"] == "WaitForLaunch"
    down = await rpc.wait_status(vm_id, "Down", 10)
    assert (down["exitCode"], down["exitReason"]) == (1, 3)
    assert "schema" in down["exitMessage"] or "machine" in down["exitMessage"]
    assert vm_id not in libvirt_uuids(virconn)
    assert await rpc.call("VM.destroy", vmID=vm_id) is True
    await asyncio.sleep(0)
    assert vm_id not in [e["vmId"] for e in await rpc.call("Host.getVMList")]


async def test_concurrent_duplicate_creates_one_wins(rpc):
    vm_id = str(uuid.uuid4())
    batch = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "VM.create",
            "params": {"vmID": vm_id, "vmParams": vm_params(vm_id)},
        }
        for i in range(5)
    ]
    _, body = await rpc.raw(json.dumps(batch))
    ok = [r for r in body if "result" in r]
    dup = [r for r in body if "error" in r]
    assert len(ok) == 1 and {r["error"]["code"] for r in dup} == {4}
    await rpc.wait_status(vm_id, "Up", 10)
    await rpc.call("VM.destroy", vmID=vm_id)
