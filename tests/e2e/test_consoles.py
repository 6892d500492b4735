"""Consoles on real QEMU: reported ports are the ones QEMU listens on; headless has none."""

from __future__ import annotations

import asyncio
import struct

import pytest

from agent import domxml
from tests.client import EventStream
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def vnc_banner(port: int) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    try:
        return await asyncio.wait_for(reader.readexactly(12), 10)
    finally:
        writer.close()


async def spice_link_reply(port: int) -> bytes:
    """Send a SPICE link message for the main channel; the server answers 'REDQ'..."""
    mess = struct.pack("<IBBII", 0, 1, 0, 0, 0) + struct.pack("<I", 18)  # id, main, caps
    header = b"REDQ" + struct.pack("<III", 2, 2, len(mess))
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    try:
        writer.write(header + mess)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(16), 10)
    finally:
        writer.close()


async def test_spice_and_vnc_ports_are_what_qemu_listens_on(rpc, guest, virconn):
    vm_id, params = guest_params(
        guest,
        devices=[
            {"type": "graphics", "device": "spice", "specParams": {"displayIp": "127.0.0.1"}},
            {
                "type": "graphics",
                "device": "vnc",
                "specParams": {"displayIp": "127.0.0.1", "keyMap": "en-us"},
            },
        ],
    )
    events = await EventStream.open(rpc)
    try:
        created = await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        assert created["status"] == "WaitForLaunch"
        up = await events.wait_status(vm_id, "Up", 60)
    finally:
        await events.close()
    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    ports = {g.get("type"): g.get("port") for g in live.iterfind("devices/graphics")}
    stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
    for report in (up, stats, await rpc.call("VM.getInfo", vmID=vm_id)):
        assert report["displayType"] == "qxl"
        assert report["displayPort"] == ports["spice"]
        assert report["additionalDisplayPort"] == ports["vnc"]
        assert report["displayIp"] == "127.0.0.1"
        assert [d["type"] for d in report["displayInfo"]] == ["spice", "vnc"]
    all_stats = {s["vmId"]: s for s in await rpc.call("Host.getAllVmStats")}
    assert all_stats[vm_id]["displayPort"] == ports["spice"]
    assert await vnc_banner(int(ports["vnc"])) == b"RFB 003.008\n"
    assert (await spice_link_reply(int(ports["spice"])))[:4] == b"REDQ"
    # Locked from the start: an expired ticket in the live secure XML.
    from libvirt import VIR_DOMAIN_XML_SECURE

    secure = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(VIR_DOMAIN_XML_SECURE))
    assert {g.get("passwdValidTo") for g in secure.iterfind("devices/graphics")} == {
        "1970-01-01T00:00:01"
    }
    assert await rpc.call("VM.destroy", vmID=vm_id) is True


@pytest.mark.parametrize(("display", "kind"), [("vnc", "vnc"), ("qxl", "spice")])
async def test_legacy_display_gets_one_console(rpc, guest, virconn, display, kind):
    vm_id, params = guest_params(guest, display=display)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    stats = await rpc.wait_status(vm_id, "Up", 60)
    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    assert [g.get("type") for g in live.iterfind("devices/graphics")] == [kind]
    assert stats["displayType"] == ("qxl" if kind == "spice" else "vnc")
    assert stats["displayPort"] == live.find("devices/graphics").get("port") != "-1"
    assert stats["additionalDisplayPort"] == ""
    assert await rpc.call("VM.destroy", vmID=vm_id) is True


async def test_headless_vm_has_no_graphics_and_no_video(rpc, agent, guest, virconn):
    vm_id, params = guest_params(guest)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    stats = await rpc.wait_status(vm_id, "Up", 60)
    assert stats["displayInfo"] == []
    assert "displayPort" not in stats and "displayType" not in stats
    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    assert live.find("devices/graphics") is None
    assert live.find("devices/video") is None  # libvirt added no default video card
    await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")  # the serial console works
    err = await rpc.error(
        "VM.updateDevice",
        vmID=vm_id,
        params={"deviceType": "graphics", "graphicsType": "vnc", "password": "pw", "ttl": 30},
    )
    assert err["code"] == 56 and "headless" in err["data"]["reason"]
    err = await rpc.error("VM.setTicket", vmID=vm_id, password="pw", ttl=30)
    assert err["code"] == 18 and "headless" in err["data"]["reason"]
    assert await rpc.call("VM.destroy", vmID=vm_id) is True
