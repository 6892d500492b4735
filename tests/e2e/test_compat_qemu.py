"""VDSM-compatible consoles on real QEMU (issue 14): what only a running QEMU shows.

One guest: SPICE on the display network "lo" (the host's loopback, 127.0.0.1) with the
secure channels every engine sends but no SPICE TLS on the host, the serial console on the
socket ovirt-vmconsole reads, VDSM's clock timers and SMBIOS, CPU flags in VDSM spelling.
"""

from __future__ import annotations

import asyncio
import grp
import os

import pytest

from agent import domxml
from tests.e2e.conftest import guest_params
from tests.e2e.test_consoles import spice_link_reply

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def _read_until(path: str, text: bytes, timeout: float) -> bytes:
    """Connect to the serial console's unix socket (once it exists) and read until `text`."""
    async with asyncio.timeout(timeout):
        while not os.path.exists(path):
            await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            seen = b""
            while text not in seen:
                chunk = await reader.read(4096)
                if not chunk:
                    raise AssertionError(f"console socket closed; got {seen[-500:]!r}")
                seen += chunk
            return seen
        finally:
            writer.close()


# "daemon" stands in for ovirt-vmconsole: a group this host has and QEMU does not run as.
@pytest.mark.hvagent_set("virt.console_socket_group=daemon")
async def test_engine_console_settings_on_real_qemu(rpc, agent, guest, virconn):
    # reboot_after: the guest boots again every few seconds, so the socket sees a boot
    # whenever the test connects.
    vm_id, params = guest_params(
        guest,
        "reboot_after=3",
        display="qxl",
        displayNetwork="lo",
        spiceSecureChannels="smain,sinputs,scursor,splayback,srecord,sdisplay",
        cpuType="qemu64,+ssse3,+sse4_1,+sse4_2,+popcnt,+cx16,+lahf_lm",
        devices=[
            {"type": "console", "specParams": {"consoleType": "serial", "enableSocket": True}}
        ],
    )
    created = await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    (warning,) = created["warnings"]
    assert warning["code"] == 75 and warning["data"]["param"] == "spiceSecureChannels"
    await rpc.wait_status(vm_id, "Up", 60)
    sock = str(agent.socket_dir / f"{vm_id}.sock")
    st = os.stat(sock)  # handed to ovirt-vmconsole's group once Up (VDSM's prepareVmChannel)
    assert st.st_gid == grp.getgrnam("daemon").gr_gid and st.st_mode & 0o060 == 0o060
    seen = await _read_until(sock, b"HVAGENT-GUEST-BOOT", 180)
    assert b"HVAGENT-GUEST-BOOT" in seen
    await agent.wait_console(vm_id, "HVAGENT-GUEST-READY", 180)  # the log is kept too

    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    graphics = live.find("devices/graphics")
    assert graphics.find("listen").get("address") == "127.0.0.1"
    assert graphics.find("channel") is None  # plain channels: QEMU has no TLS for them
    (stats,) = await rpc.call("VM.getStats", vmID=vm_id)
    (display,) = stats["displayInfo"]
    assert display["ipAddress"] == "127.0.0.1" and display["port"] == graphics.get("port")
    assert (await spice_link_reply(int(display["port"])))[:4] == b"REDQ"
    assert {t.get("name") for t in live.iterfind("clock/timer")} >= {"rtc", "pit", "hpet"}
    assert live.find("sysinfo/system/entry[@name='uuid']").text == vm_id
    assert {"sse4.1", "sse4.2", "lahf_lm"} <= {f.get("name") for f in live.iterfind("cpu/feature")}
    assert await rpc.call("VM.destroy", vmID=vm_id) is True
