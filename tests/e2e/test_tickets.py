"""Console tickets on real QEMU, checked with a real VNC client (vncdotool)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from agent import domxml
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def vnc_login(port: int, password: str) -> bool:
    """True when a VNC client authenticates and captures a frame with `password`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vncdotool.command", "-s", f"127.0.0.1::{port}", "-p", password,
        "-t", "20", "capture", "/tmp/hvagent-vnc-test.png",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(proc.wait(), 60) == 0


async def test_vnc_ticket_lifecycle_with_a_real_client(rpc, agent, guest, virconn):
    vm_id, params = guest_params(
        guest,
        devices=[{"type": "graphics", "device": "vnc", "specParams": {"displayIp": "127.0.0.1"}}],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    stats = await rpc.wait_status(vm_id, "Up", 60)
    port = int(stats["displayPort"])
    # Locked at start: the placeholder password has already expired.
    assert not await vnc_login(port, "*****")

    ttl = 8
    assert (
        await rpc.call(
            "VM.setTicket", vmID=vm_id, password="letmein", ttl=ttl, existingConnAction="keep"
        )
        is True
    )
    set_at = time.monotonic()
    assert await vnc_login(port, "letmein")
    assert not await vnc_login(port, "wrong")
    while time.monotonic() < set_at + ttl + 1:
        await asyncio.sleep(0.5)  # waiting out the ticket's lifetime is the point here
    assert not await vnc_login(port, "letmein")
    assert "letmein" not in agent.log.read_text()
    assert await rpc.call("VM.destroy", vmID=vm_id) is True


async def test_spice_ticket_with_disconnect_shows_in_secure_xml(rpc, agent, guest, virconn):
    from libvirt import VIR_DOMAIN_XML_SECURE

    vm_id, params = guest_params(
        guest,
        devices=[
            {"type": "graphics", "device": "spice", "specParams": {"displayIp": "127.0.0.1"}},
            {"type": "graphics", "device": "vnc", "specParams": {"displayIp": "127.0.0.1"}},
        ],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 60)
    assert (
        await rpc.call(
            "VM.setTicket",
            vmID=vm_id,
            password="spice-pass-1234",
            ttl=120,
            existingConnAction="disconnect",
            graphicsType="spice",
        )
        is True
    )
    secure = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(VIR_DOMAIN_XML_SECURE))
    spice = secure.find("devices/graphics[@type='spice']")
    assert spice.get("passwd") == "spice-pass-1234"
    assert spice.get("connected") == "disconnect"
    assert spice.get("passwdValidTo", "").startswith("20")
    # the VNC console is untouched, still locked
    vnc = secure.find("devices/graphics[@type='vnc']")
    assert vnc.get("passwdValidTo") == "1970-01-01T00:00:01"
    # ttl <= 0: no expiry at all
    await rpc.call("VM.setTicket", vmID=vm_id, password="forever1", ttl=0, graphicsType="vnc")
    secure = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(VIR_DOMAIN_XML_SECURE))
    assert "passwdValidTo" not in secure.find("devices/graphics[@type='vnc']").attrib
    log = agent.log.read_text()
    assert "spice-pass-1234" not in log and "forever1" not in log
    assert await rpc.call("VM.destroy", vmID=vm_id) is True
