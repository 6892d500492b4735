"""Verbs on a running VM on real QEMU, and the guest seeing them (issue 14): pause then cont,
a disk and a NIC hot-plugged and unplugged (a disk also in the engine-XML form), the vCPU
count raised, the balloon target set.

The test guest runs with `watchdev`: it prints `HVAGENT-GUEST-DEVICES block=.. net=..
cpus=..` on its serial console at READY and whenever its block devices, NICs or online CPUs
change (tests/guest/README.md).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid

import libvirt
import pytest

from agent import domxml
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

_DEVICES = re.compile(r"HVAGENT-GUEST-DEVICES block=(\S*) net=(\S*) cpus=(\d+)")


async def guest_devices(agent, vm_id, want, timeout=120.0) -> tuple[set, set, int]:
    """The guest's latest DEVICES line, once `want(block, net, cpus)` holds for it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        lines = _DEVICES.findall(agent.console_log(vm_id))
        if lines:
            block, net, cpus = lines[-1]
            last = ({b for b in block.split(",") if b}, {n for n in net.split(",") if n}, int(cpus))
            if want(*last):
                return last
        await asyncio.sleep(0.25)
    raise AssertionError(
        f"guest devices never matched; last {last}:\n{agent.console_log(vm_id)[-2000:]}"
    )


@pytest.fixture
def bridge():
    """A host bridge without uplink for the hot-plugged NIC (`device: bridge`)."""
    name = f"hvv{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["ip", "link", "add", "name", name, "type", "bridge"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot create a test bridge (needs root / CAP_NET_ADMIN): {exc}")
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


async def _vm(rpc, agent, guest, **extra) -> str:
    vm_id, params = guest_params(guest, "watchdev", **extra)
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 120)
    await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
    return vm_id


async def test_pause_then_cont(rpc, agent, guest, virconn):
    vm_id = await _vm(rpc, agent, guest)
    try:
        assert await rpc.call("VM.pause", vmID=vm_id) == {"vmList": {}}
        stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
        assert (stats["status"], stats["pauseCode"]) == ("Paused", "NOERR")
        assert virconn.lookupByUUIDString(vm_id).state()[0] == 3  # VIR_DOMAIN_PAUSED
        listed = await rpc.call("Host.getVMList", vmList=[vm_id])
        assert [v["status"] for v in listed] == ["Paused"]
        assert await rpc.call("VM.cont", vmID=vm_id) == {"vmList": {}}
        stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
        assert stats["status"] == "Up" and "pauseCode" not in stats
        assert virconn.lookupByUUIDString(vm_id).state()[0] == 1  # VIR_DOMAIN_RUNNING
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)


async def test_hotplug_and_unplug_a_disk_and_a_nic_the_guest_sees(
    rpc, agent, guest, tmp_path, bridge
):
    vm_id = await _vm(rpc, agent, guest)
    disk = tmp_path / "hot.img"
    disk.write_bytes(b"\0" * (8 << 20))
    mac = "52:54:00:14:e2:01"
    try:
        assert await guest_devices(agent, vm_id, lambda b, n, c: True) == (set(), set(), 1)
        hash0 = (await rpc.call("VM.getStats", vmID=vm_id))[0]["hash"]

        drive = {"vmId": vm_id, "drive": {"path": str(disk), "iface": "virtio", "format": "raw"}}
        info = await rpc.call("VM.hotplugDisk", vmID=vm_id, params=drive)
        assert info["vmId"] == vm_id
        await guest_devices(agent, vm_id, lambda b, n, c: b == {"vda"})
        hash1 = (await rpc.call("VM.getStats", vmID=vm_id))[0]["hash"]
        assert hash1 != hash0
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        assert root.find("devices/disk/source").get("file") == str(disk)

        nic = {"vmId": vm_id, "nic": {"device": "bridge", "network": bridge, "macAddr": mac}}
        await rpc.call("VM.hotplugNic", vmID=vm_id, params=nic)
        await guest_devices(agent, vm_id, lambda b, n, c: b == {"vda"} and len(n) == 1)
        hash2 = (await rpc.call("VM.getStats", vmID=vm_id))[0]["hash"]
        assert hash2 != hash1
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        assert root.find("devices/interface/mac").get("address") == mac

        # libvirt refusing (the same image a second time): 45 with libvirt's words
        again = {"vmId": vm_id, "drive": {"path": str(disk), "name": "vdb"}}
        err = await rpc.error("VM.hotplugDisk", vmID=vm_id, params=again)
        assert err["code"] == 45 and err["data"]["libvirt"]["message"], err

        unplug = {"vmId": vm_id, "nic": {"macAddr": mac}}
        await rpc.call("VM.hotunplugNic", vmID=vm_id, params=unplug)
        await guest_devices(agent, vm_id, lambda b, n, c: b == {"vda"} and not n)
        await rpc.call("VM.hotunplugDisk", vmID=vm_id, params=drive)
        await guest_devices(agent, vm_id, lambda b, n, c: not b and not n)
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        assert root.find("devices/disk") is None and root.find("devices/interface") is None
        assert (await rpc.call("VM.getStats", vmID=vm_id))[0]["hash"] not in (hash1, hash2)

        # The engine-XML form engines 4.2+ send: plugged, seen, found by alias, unplugged
        engine = {"vmId": vm_id, "xml": _engine_disk(disk)}
        await rpc.call("VM.hotplugDisk", vmID=vm_id, params=engine)
        await guest_devices(agent, vm_id, lambda b, n, c: b == {"vda"})
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        assert root.find("devices/disk/alias").get("name") == "ua-e2e0"
        await rpc.call("VM.hotunplugDisk", vmID=vm_id, params=engine)
        await guest_devices(agent, vm_id, lambda b, n, c: not b and not n)
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)


def _engine_disk(path) -> str:
    """A disk as an oVirt engine's domain XML builder writes it for VM.hotplugDisk."""
    return (
        '<hotplug><devices><disk type="file" device="disk" snapshot="no">'
        '<driver name="qemu" type="raw" cache="none" error_policy="stop" io="threads"/>'
        f'<source file="{path}"><seclabel model="dac" type="none" relabel="no"/></source>'
        '<target dev="vda" bus="virtio"/><serial>e2e0</serial><alias name="ua-e2e0"/>'
        '</disk></devices><metadata xmlns:ovirt-vm="http://ovirt.org/vm/1.0"><ovirt-vm:vm>'
        '<ovirt-vm:device devtype="disk" name="vda"/></ovirt-vm:vm></metadata></hotplug>'
    )


async def test_set_number_of_cpus_and_balloon_target(rpc, agent, guest):
    vm_id = await _vm(
        rpc,
        agent,
        guest,
        maxVCpus=2,
        devices=[{"type": "balloon", "device": "memballoon", "specParams": {"model": "virtio"}}],
    )
    try:
        await guest_devices(agent, vm_id, lambda b, n, c: c == 1)
        info = await rpc.call("VM.setNumberOfCpus", vmID=vm_id, numberOfCpus="2")
        assert info["smp"] == "2"
        await guest_devices(agent, vm_id, lambda b, n, c: c == 2)
        err = await rpc.error("VM.setNumberOfCpus", vmID=vm_id, numberOfCpus=3)
        assert err["code"] == 60 and err["data"]["libvirt"]["message"], err

        target = 192 * 1024
        assert await rpc.call("VM.setBalloonTarget", vmID=vm_id, target=target) is True
        deadline = time.monotonic() + 120
        while True:
            stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
            balloon = stats.get("balloonInfo") or {}
            if balloon.get("balloon_cur") == str(target) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert balloon["balloon_target"] == str(target), stats
        assert balloon["balloon_cur"] == str(target), stats  # the guest gave the memory back
        assert stats["vcpuCount"] == "2"

        # hvagent restarted: the target is read back from the domain's metadata
        assert agent.stop() == 0
        agent.start()
        await rpc.wait_ready(180)
        deadline = time.monotonic() + 60
        while True:  # until the first sampling round after the restart filled balloonInfo
            stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
            if stats.get("balloonInfo") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert stats["balloonInfo"]["balloon_target"] == str(target), stats
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)


async def test_host_hardware_info_agrees_with_libvirt(rpc, virconn):
    """The host's SMBIOS as libvirtd sees it: the six system entries, or 57 with libvirt's
    words where libvirtd has none (containers, some VMs: this CI host)."""
    try:
        sysinfo = virconn.getSysinfo(0)
    except libvirt.libvirtError as exc:
        err = await rpc.error("Host.getHardwareInfo")
        assert err["code"] == 57 and err["data"]["libvirt"]["code"] == exc.get_error_code()
        return
    info = await rpc.call("Host.getHardwareInfo")
    root = domxml.parse(sysinfo)
    entries = {e.get("name"): (e.text or "").strip() for e in root.iterfind("system/entry")}
    assert info["systemManufacturer"] == entries.get("manufacturer", "")
    assert info["systemUUID"] == entries.get("uuid", "")
    assert await rpc.call("Host.getHardwareInfo") == info
