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


def _engine_xml(vm_id: str, graphics: str) -> str:
    return (
        f"<domain type='kvm'><name>ce-{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        f"<devices>{graphics}</devices></domain>"
    )


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"display": "sdl"}, 9, "display"),
        ({"devices": [{"type": "graphics", "device": "rdp"}]}, 9, "devices[0].device"),
        ({"memSize": 0}, 11, "memSize"),
        ({"memSize": "0"}, 11, "memSize"),
        ({"vmId": "not-a-uuid"}, 11, "vmId"),
        ({"hiberVolHandle": "d,p,i,v,ci,cv"}, 9, "hiberVolHandle"),
        ({"kernelArgs": "console=ttyS0"}, -32602, "kernelArgs"),
        ({"display": "vnc", "displayNetwork": "nosuchnet0"}, 9, "displayNetwork"),
    ],
)
async def test_vdsm_codes_on_create(rpc, virconn, params, code, param):
    vm_id = str(uuid.uuid4())
    vm_params = {"vmId": vm_id, "vmName": f"cc-{vm_id[:8]}", "memSize": 64, **params}
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=vm_params)
    assert (err["code"], err["data"]["param"]) == (code, param)
    assert param in err["data"]["reason"]
    assert vm_id not in {d.UUIDString() for d in virconn.listAllDomains()}  # nothing half-made
    assert (await rpc.error("VM.getStats", vmID=vm_id))["code"] == 1


async def test_unknown_method_is_named_in_message_and_data(rpc):
    err = await rpc.error("VM.hibernate", vmID=str(uuid.uuid4()))
    assert err["code"] == -32601
    assert err["message"] == (
        "The method does not exist or is not available: {'method': 'VM.hibernate'}"
    )
    assert err["data"]["method"] == "VM.hibernate"


async def test_display_network_listens_on_the_hosts_address(rpc, virconn):
    # The host network "lo" (the loopback interface) has 127.0.0.1 on every host.
    vm_id, _ = await create(rpc, display="vnc", displayNetwork="lo")
    await rpc.wait_status(vm_id, "Up", 10)
    xml = parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    (listen,) = xml.iterfind("devices/graphics/listen")
    assert (listen.get("type"), listen.get("address")) == ("address", "127.0.0.1")
    (stats,) = await rpc.call("VM.getStats", vmID=vm_id)
    assert [d["ipAddress"] for d in stats["displayInfo"]] == ["127.0.0.1"]
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_engine_xml_display_network_and_unlocked_vnc(rpc, virconn):
    vm_id = str(uuid.uuid4())
    locked = "passwd='*****' passwdValidTo='1970-01-01T00:00:01'"
    net = (
        f"<graphics type='vnc' autoport='yes' {locked}>"
        "<listen type='network' network='vdsm-lo'/></graphics>"
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams={"xml": _engine_xml(vm_id, net)})
    await rpc.wait_status(vm_id, "Up", 10)
    (listen,) = parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0)).iterfind(
        "devices/graphics/listen"
    )
    assert (listen.get("type"), listen.get("address")) == ("address", "127.0.0.1")
    await rpc.call("VM.destroy", vmID=vm_id)

    vm_id = str(uuid.uuid4())
    missing = net.replace("vdsm-lo", "vdsm-nosuchnet0")
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={"xml": _engine_xml(vm_id, missing)})
    assert err["code"] == 9 and err["data"]["network"] == "nosuchnet0"
    unlocked = (
        "<graphics type='vnc' autoport='yes'>"
        "<listen type='address' address='127.0.0.1'/></graphics>"
    )
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={"xml": _engine_xml(vm_id, unlocked)})
    assert err["code"] == 9 and "passwdValidTo" in err["data"]["reason"]
    hiber = {"xml": _engine_xml(vm_id, net), "hiberVolHandle": "d,p,i,v,ci,cv"}
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=hiber)
    assert err["code"] == 9 and err["data"]["param"] == "hiberVolHandle"


async def test_spice_secure_channels_without_tls_start_with_a_warning(rpc, virconn):
    vm_id, reply = await create(rpc, display="qxl", spiceSecureChannels="smain,sinputs")
    (warning,) = reply["warnings"]
    assert warning["code"] == 75 and warning["data"]["param"] == "spiceSecureChannels"
    await rpc.wait_status(vm_id, "Up", 10)
    graphics = parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0)).find("devices/graphics")
    assert graphics.get("type") == "spice" and graphics.find("channel") is None
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_engine_xml_spice_channels_without_tls_start_with_a_warning(rpc, virconn):
    vm_id = str(uuid.uuid4())
    spice = (
        "<graphics type='spice' autoport='yes' tlsPort='-1' "
        "passwd='*****' passwdValidTo='1970-01-01T00:00:01'>"
        "<channel name='main' mode='secure'/></graphics>"
    )
    reply = await rpc.call("VM.create", vmID=vm_id, vmParams={"xml": _engine_xml(vm_id, spice)})
    (warning,) = reply["warnings"]
    assert warning["code"] == 75 and "main" in warning["data"]["reason"]
    await rpc.wait_status(vm_id, "Up", 10)
    graphics = parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0)).find("devices/graphics")
    assert graphics.find("channel") is None and graphics.get("tlsPort") is None
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_vdsm_domain_details_are_defined(rpc, virconn, daemon):
    devices = [{"type": "console", "specParams": {"consoleType": "serial", "enableSocket": True}}]
    vm_id, _ = await create(rpc, cpuType="qemu64,+sse4_1,+sse4_2", devices=devices)
    await rpc.wait_status(vm_id, "Up", 10)
    xml = parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    assert [f.get("name") for f in xml.iterfind("cpu/feature")] == ["sse4.1", "sse4.2"]
    timers = {t.get("name"): t.attrib for t in xml.iterfind("clock/timer")}
    assert timers["rtc"]["tickpolicy"] == "catchup" and timers["hpet"]["present"] == "no"
    assert xml.find("os/smbios").get("mode") == "sysinfo"
    entries = {e.get("name"): e.text for e in xml.iterfind("sysinfo/system/entry")}
    assert entries["uuid"] == vm_id and entries["manufacturer"] == "oVirt"
    serial = xml.find("devices/serial")
    sock = f"{daemon.cfg.virt.console_socket_dir}/{vm_id}.sock"
    assert serial.get("type") == "unix" and serial.find("source").get("path") == sock
    await rpc.call("VM.destroy", vmID=vm_id)

    vm_id, _ = await create(rpc, devices=[{"type": "console", "device": "console"}])
    await rpc.wait_status(vm_id, "Up", 10)
    xml = parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    targets = [c.find("target").get("type") for c in xml.iterfind("devices/console")]
    assert "virtio" in targets  # a plain console device is a virtio console, as VDSM
    await rpc.call("VM.destroy", vmID=vm_id)
