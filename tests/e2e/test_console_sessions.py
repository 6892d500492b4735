"""Console sessions on real QEMU: a real VNC client's connect/disconnect reaches stats and
metrics through libvirt's graphics events, and its departure runs the disconnect action.
Also SPICE with TLS, as libvirt's qemu.conf on the rig has it (scripts/host-setup.sh)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import domxml
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

PASSWORD = "Vn3-pw7"


async def metric(agent, name: str, **labels: str) -> float | None:
    async with aiohttp.ClientSession() as s, s.get(f"{agent.base}/metrics") as r:
        text = await r.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.25)


async def test_vnc_session_is_followed_and_its_end_shuts_the_vm_down(rpc, agent, guest):
    vm_id, params = guest_params(
        guest,
        devices=[{"type": "graphics", "device": "vnc", "specParams": {"displayIp": "127.0.0.1"}}],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    stats = await rpc.wait_status(vm_id, "Up", 60)
    port = stats["displayPort"]
    assert await metric(agent, "hvagent_console_sessions", vm=vm_id, console="vnc") == 0
    await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")

    graphics = {"deviceType": "graphics", "graphicsType": "vnc", "password": PASSWORD}
    # LOCK_SCREEN needs an oVirt guest agent: the ticket is set, the action reported as 75.
    result = await rpc.call(
        "VM.updateDevice",
        vmID=vm_id,
        params={**graphics, "ttl": 60, "disconnectAction": "LOCK_SCREEN"},
    )
    (warning,) = result["warnings"]
    assert warning["code"] == 75 and warning["data"]["param"] == "params.disconnectAction"
    set_at = time.time()
    result = await rpc.call(
        "VM.updateDevice",
        vmID=vm_id,
        params={**graphics, "ttl": 300, "disconnectAction": "SHUTDOWN"},
    )
    assert result == {}
    expiry = await metric(
        agent, "hvagent_console_ticket_expiry_timestamp_seconds", vm=vm_id, console="vnc"
    )
    assert set_at + 290 < expiry < time.time() + 310

    viewer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.e2e.vnc_hold", port,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        viewer.stdin.write(f"{PASSWORD}\n".encode())
        await viewer.stdin.drain()
        line = await asyncio.wait_for(viewer.stdout.readline(), 60)
        assert line == b"READY\n", line

        async def connected():
            (s,) = await rpc.call("VM.getStats", vmID=vm_id)
            return s if s["clientIp"] == "127.0.0.1" else None

        s = await until(connected, 30, "clientIp after the viewer authenticated")
        assert s["displayInfo"][0]["sessions"] == 1
        assert await metric(agent, "hvagent_console_sessions", vm=vm_id, console="vnc") == 1
        assert s["status"] == "Up"  # nothing happens while the client stays
    finally:
        viewer.stdin.close()
        assert await asyncio.wait_for(viewer.wait(), 60) == 0

    # The last client left: after the grace period the power ladder shuts the guest down.
    down = await rpc.wait_status(vm_id, "Down", 180)
    assert down["exitReason"] == 6
    assert down["powerOperation"]["message"] == "Scheduled shutdown on console disconnect"
    # the guest powered itself off (through its agent, or ACPI if the agent was not up yet)
    console = agent.console_log(vm_id)
    assert "HVAGENT-GUEST-AGENT-SHUTDOWN" in console or "HVAGENT-GUEST-ACPI-POWEROFF" in console
    assert await metric(agent, "hvagent_console_sessions", vm=vm_id, console="vnc") is None
    log = agent.log.read_text()
    assert "client 127.0.0.1 connected" in log and "disconnect action" in log
    assert PASSWORD not in log
    assert await rpc.call("VM.destroy", vmID=vm_id) is True


def tls_handshake(port: int) -> str:
    ctx = ssl.create_default_context(cafile="/etc/pki/libvirt-spice/ca-cert.pem")
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), 10) as raw, ctx.wrap_socket(raw) as tls:
        return tls.version() or ""


@pytest.mark.hvagent_set("virt.spice_tls=true")
async def test_spice_tls_port_is_reported_and_speaks_tls(rpc, agent, guest, virconn):
    vm_id, params = guest_params(
        guest,
        devices=[
            {
                "type": "graphics",
                "device": "spice",
                "specParams": {"displayIp": "127.0.0.1", "spiceSecureChannels": "smain,sinputs"},
            },
            {"type": "graphics", "device": "vnc", "specParams": {"displayIp": "127.0.0.1"}},
        ],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    stats = await rpc.wait_status(vm_id, "Up", 60)
    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    spice = live.find("devices/graphics[@type='spice']")
    assert spice.get("defaultMode") == "secure"
    assert {c.get("name"): c.get("mode") for c in spice.iterfind("channel")} == {
        "main": "secure",
        "inputs": "secure",
    }
    tls_port = spice.get("tlsPort")
    assert tls_port and int(tls_port) > 0
    assert stats["displaySecurePort"] == tls_port
    assert stats["displayInfo"][0]["tlsPort"] == tls_port
    assert stats["additionalDisplayPort"] == live.find("devices/graphics[@type='vnc']").get("port")
    # QEMU serves TLS on it with the rig's CA-signed certificate.
    assert (await asyncio.to_thread(tls_handshake, int(tls_port))).startswith("TLS")
    assert await rpc.call("VM.destroy", vmID=vm_id) is True


async def wait_log(agent, text: str, timeout: float, count: int = 1) -> None:
    async def seen():
        return agent.log.read_text().count(text) >= count

    await until(seen, timeout, f"{text!r} x{count} in hvagent's log")


@pytest.mark.hvagent_set("power.console_disconnect_grace_s=120")
async def test_a_client_coming_back_cancels_the_disconnect_action(rpc, agent, guest):
    vm_id, params = guest_params(
        guest,
        devices=[{"type": "graphics", "device": "vnc", "specParams": {"displayIp": "127.0.0.1"}}],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    port = (await rpc.wait_status(vm_id, "Up", 60))["displayPort"]
    ticket = {"deviceType": "graphics", "graphicsType": "vnc", "password": PASSWORD, "ttl": 300}
    await rpc.call("VM.updateDevice", vmID=vm_id, params={**ticket, "disconnectAction": "SHUTDOWN"})

    async def session() -> None:
        viewer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.e2e.vnc_hold", port,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        viewer.stdin.write(f"{PASSWORD}\n".encode())
        await viewer.stdin.drain()
        assert await asyncio.wait_for(viewer.stdout.readline(), 60) == b"READY\n"
        viewer.stdin.close()
        assert await asyncio.wait_for(viewer.wait(), 60) == 0

    await session()
    await wait_log(agent, "the last console client left: SHUTDOWN in 120 s", 30)
    await session()  # back well within the 120 s grace
    await wait_log(agent, "disconnect action SHUTDOWN cancelled: a client connected", 30)
    await wait_log(agent, "the last console client left: SHUTDOWN", 30, count=2)
    (stats,) = await rpc.call("VM.getStats", vmID=vm_id)
    assert stats["status"] == "Up" and "powerOperation" not in stats
    assert await rpc.call("VM.destroy", vmID=vm_id) is True
