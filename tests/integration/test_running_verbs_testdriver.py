"""Verbs on running VMs over JSON-RPC on libvirt's test driver (issue 14): VM.pause/cont,
VM.hotplugDisk/hotunplugDisk, VM.hotplugNic/hotunplugNic, VM.setNumberOfCpus,
VM.setBalloonTarget, Host.getHardwareInfo; every error code and hostile params.

The test driver has no device hot-plug: libvirt refuses it, which is exactly the "libvirt
refused" path (45/46/49/50 with libvirt's words in `data.libvirt`). Hot-plug that works, and
the guest seeing it, is tests/e2e/test_running_verbs.py on QEMU.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
import pytest_asyncio

from agent import config, domxml
from tests.client import RpcClient
from tests.integration.conftest import SHARED_URI, Daemon, libvirt_uuids, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAC = "52:54:00:14:00:01"


@pytest_asyncio.fixture(loop_scope="session")
async def images(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for name in ("root.img", "data.img"):
        (root / name).write_bytes(b"")
    return root


@pytest_asyncio.fixture(loop_scope="session")
async def rpc(tmp_path, virconn, session, images):
    """A daemon with the default [host_access] plus `images` as an image root."""
    cfg = make_config(tmp_path, SHARED_URI)
    policy = config.HostAccessConfig(
        image_roots=(*config.HostAccessConfig().image_roots, str(images))
    )
    d = Daemon(dataclasses.replace(cfg, host_access=policy))
    client = RpcClient(d.base, session)
    await client.wait_ready(30)
    yield client
    assert await d.stop() == 0


@pytest_asyncio.fixture(loop_scope="session")
async def vm(rpc, images):
    vm_id = str(uuid.uuid4())
    params = {
        "vmId": vm_id,
        "vmName": f"rv-{vm_id[:8]}",
        "memSize": 64,
        "smp": 1,
        "maxVCpus": 2,
        "devices": [
            {"type": "disk", "path": str(images / "root.img")},
            {"type": "interface", "device": "bridge", "network": "br0", "macAddr": MAC},
            {"type": "balloon", "specParams": {"model": "virtio"}},
        ],
    }
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 10)
    yield vm_id
    await rpc.call("VM.destroy", vmID=vm_id)


def drive(vm_id, **kw):
    return {"vmId": vm_id, "drive": kw}


def nic(vm_id, **kw):
    return {"vmId": vm_id, "nic": kw}


async def test_pause_and_cont(rpc, vm, virconn):
    assert await rpc.call("VM.pause", vmID=vm) == {"vmList": {}}
    stats = (await rpc.call("VM.getStats", vmID=vm))[0]
    assert (stats["status"], stats["pauseCode"]) == ("Paused", "NOERR")
    assert virconn.lookupByUUIDString(vm).state()[0] == 3  # VIR_DOMAIN_PAUSED
    assert await rpc.call("VM.pause", vmID=vm) == {"vmList": {}}  # paused stays paused
    assert await rpc.call("VM.cont", vmID=vm) == {"vmList": {}}
    stats = (await rpc.call("VM.getStats", vmID=vm))[0]
    assert stats["status"] == "Up" and "pauseCode" not in stats
    assert virconn.lookupByUUIDString(vm).state()[0] == 1  # VIR_DOMAIN_RUNNING


async def test_libvirt_refusing_device_changes_gives_the_hotplug_codes(rpc, vm, images):
    cases = [
        ("VM.hotplugDisk", drive(vm, path=str(images / "data.img")), 45),
        ("VM.hotunplugDisk", drive(vm, path=str(images / "root.img")), 46),
        ("VM.hotplugNic", nic(vm, network="br0", macAddr="52:54:00:14:00:02"), 49),
        ("VM.hotunplugNic", nic(vm, macAddr=MAC), 50),
    ]
    before = (await rpc.call("VM.getStats", vmID=vm))[0]["hash"]
    for verb, params, code in cases:
        err = await rpc.error(verb, vmID=vm, params=params)
        assert err["code"] == code, err
        assert err["data"]["libvirt"]["code"] == 3, err  # VIR_ERR_NO_SUPPORT, libvirt's word
        assert "virDomain" in err["data"]["libvirt"]["message"]
    assert (await rpc.call("VM.getStats", vmID=vm))[0]["hash"] == before


async def test_unplugging_what_the_vm_lacks(rpc, vm):
    err = await rpc.error("VM.hotunplugDisk", vmID=vm, params=drive(vm, path="/nowhere.img"))
    assert (err["code"], err["data"]["param"]) == (46, "params.drive.path")
    err = await rpc.error("VM.hotunplugNic", vmID=vm, params=nic(vm, macAddr="52:54:00:99:99:99"))
    assert (err["code"], err["data"]["param"]) == (50, "params.nic.macAddr")


async def test_a_disk_outside_the_image_roots_is_refused_before_libvirt(rpc, vm, tmp_path):
    outside = tmp_path / "outside.img"
    outside.write_bytes(b"")
    err = await rpc.error("VM.hotplugDisk", vmID=vm, params=drive(vm, path=str(outside)))
    assert (err["code"], err["data"]["param"]) == (-32602, "params.drive.path")
    assert "outside the allowed roots" in err["data"]["reason"] and "libvirt" not in err["data"]
    err = await rpc.error("VM.hotplugDisk", vmID=vm, params=drive(vm, path="/etc/shadow"))
    assert (err["code"], err["data"]["param"]) == (-32602, "params.drive.path")


async def test_set_number_of_cpus(rpc, vm):
    info = await rpc.call("VM.setNumberOfCpus", vmID=vm, numberOfCpus="2")
    assert info["vmId"] == vm and info["smp"] == "2"
    root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm]))[vm])
    assert root.find("vcpu").get("current", root.findtext("vcpu")) == "2"
    err = await rpc.error("VM.setNumberOfCpus", vmID=vm, numberOfCpus=3)
    assert err["code"] == 60 and err["data"]["libvirt"]["message"], err
    assert (await rpc.call("VM.getInfo", vmID=vm))["smp"] == "2"


async def test_set_balloon_target(rpc, vm, virconn):
    assert await rpc.call("VM.setBalloonTarget", vmID=vm, target=48 * 1024) is True
    assert virconn.lookupByUUIDString(vm).info()[2] == 48 * 1024  # libvirt's current memory
    err = await rpc.error("VM.setBalloonTarget", vmID=vm, target=str(1 << 30))
    assert err["code"] == 53 and "max memory" in err["data"]["libvirt"]["message"], err


async def test_host_hardware_info(rpc):
    info = await rpc.call("Host.getHardwareInfo")
    assert set(info) == {
        "systemManufacturer",
        "systemProductName",
        "systemVersion",
        "systemSerialNumber",
        "systemUUID",
        "systemFamily",
    }
    assert all(isinstance(v, str) for v in info.values())
    assert await rpc.call("Host.getHardwareInfo") == info


VERBS = [
    ("VM.pause", {}),
    ("VM.cont", {}),
    ("VM.hotplugDisk", {"params": "drive"}),
    ("VM.hotunplugDisk", {"params": "drive"}),
    ("VM.hotplugNic", {"params": "nic"}),
    ("VM.hotunplugNic", {"params": "nic"}),
    ("VM.setNumberOfCpus", {"numberOfCpus": 1}),
    ("VM.setBalloonTarget", {"target": 1024}),
]


def _args(vm_id: str, extra: dict, images) -> dict:
    out = dict(extra)
    if out.get("params") == "drive":
        out["params"] = drive(vm_id, path=str(images / "data.img"))
    elif out.get("params") == "nic":
        out["params"] = nic(vm_id, network="br0", macAddr=MAC)
    return out


@pytest.mark.parametrize(("verb", "extra"), VERBS, ids=[v for v, _ in VERBS])
async def test_unknown_vm_is_1(rpc, images, verb, extra):
    vm_id = str(uuid.uuid4())
    err = await rpc.error(verb, vmID=vm_id, **_args(vm_id, extra, images))
    assert err["code"] == 1, err


@pytest.mark.parametrize(("verb", "extra"), VERBS, ids=[v for v, _ in VERBS])
async def test_foreign_domain_is_left_alone(rpc, images, virconn, verb, extra):
    foreign = virconn.lookupByName("test").UUIDString()
    err = await rpc.error(verb, vmID=foreign, **_args(foreign, extra, images))
    assert err["code"] == 75, err
    assert virconn.lookupByName("test").state()[0] == 1


async def test_a_down_vm_is_wrong_state(rpc, images, virconn):
    vm_id = str(uuid.uuid4())
    params = {"vmId": vm_id, "vmName": f"rd-{vm_id[:8]}", "memSize": 64}
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 10)
    virconn.lookupByUUIDString(vm_id).destroy()  # stopped outside hvagent: Down
    try:
        await rpc.wait_status(vm_id, "Down", 10)
        for verb, extra in VERBS:
            err = await rpc.error(verb, vmID=vm_id, **_args(vm_id, extra, images))
            assert err["code"] == 6, (verb, err)
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)
    assert vm_id not in libvirt_uuids(virconn)


HOSTILE = ["a\x00b", "a\ud800b", "x" * 5000]


def _hostile_cases(vm_id: str) -> list[tuple[str, dict, str]]:
    out: list[tuple[str, dict, str]] = []
    for text in HOSTILE:
        out += [
            ("VM.hotplugDisk", {"params": drive(vm_id, path="/" + text)}, "params.drive.path"),
            (
                "VM.hotplugDisk",
                {"params": drive(vm_id, path="/x", serial=text)},
                "params.drive.serial",
            ),
            ("VM.hotunplugDisk", {"params": drive(vm_id, path="/" + text)}, "params.drive.path"),
            ("VM.hotplugNic", {"params": nic(vm_id, network=text)}, "params.nic.network"),
            ("VM.hotunplugNic", {"params": nic(vm_id, macAddr=text)}, "params.nic.macAddr"),
            ("VM.setNumberOfCpus", {"numberOfCpus": text}, "numberOfCpus"),
            ("VM.setBalloonTarget", {"target": text}, "target"),
        ]
    out += [
        ("VM.setNumberOfCpus", {"numberOfCpus": 10**400}, "numberOfCpus"),
        ("VM.setNumberOfCpus", {"numberOfCpus": "9" * 10000}, "numberOfCpus"),
        ("VM.setNumberOfCpus", {"numberOfCpus": 0}, "numberOfCpus"),
        ("VM.setNumberOfCpus", {"numberOfCpus": 1.5}, "numberOfCpus"),
        ("VM.setNumberOfCpus", {"numberOfCpus": True}, "numberOfCpus"),
        ("VM.setNumberOfCpus", {"numberOfCpus": "\u0661"}, "numberOfCpus"),
        ("VM.setBalloonTarget", {"target": -1}, "target"),
        ("VM.setBalloonTarget", {"target": 10**400}, "target"),
        ("VM.setBalloonTarget", {"target": [1]}, "target"),
        ("VM.hotplugDisk", {"params": []}, "params"),
        ("VM.hotplugDisk", {"params": {"vmId": vm_id, "drive": "x"}}, "params.drive"),
        ("VM.hotplugDisk", {"params": {"vmId": "nope", "drive": {}}}, "params.vmId"),
        (
            "VM.hotplugNic",
            {"params": nic(vm_id, network="br0", macAddr="zz")},
            "params.nic.macAddr",
        ),
        (
            "VM.hotplugNic",
            {"params": nic(vm_id, network="br0", nicModel="e9")},
            "params.nic.nicModel",
        ),
    ]
    return out


async def test_hostile_params_are_32602_naming_the_param(rpc, vm):
    for verb, params, param in _hostile_cases(vm):
        body = {"jsonrpc": "2.0", "id": 1, "method": verb, "params": {"vmID": vm, **params}}
        status, reply = await rpc.raw(json.dumps(body, ensure_ascii=True))
        assert status == 200 and "error" in reply, (verb, params, reply)
        err = reply["error"]
        assert (err["code"], err["data"].get("param")) == (-32602, param), (verb, param, err)
        assert len(json.dumps(err)) < 2000  # the value is never echoed whole
    assert (await rpc.call("VM.getStats", vmID=vm))[0]["status"] == "Up"


@pytest.mark.parametrize(
    ("verb", "missing"),
    [
        ("VM.hotplugDisk", "params"),
        ("VM.hotunplugNic", "params"),
        ("VM.setNumberOfCpus", "numberOfCpus"),
        ("VM.setBalloonTarget", "target"),
    ],
)
async def test_missing_params_are_11(rpc, vm, verb, missing):
    err = await rpc.error(verb, vmID=vm)
    assert (err["code"], err["data"]["param"]) == (11, missing)
