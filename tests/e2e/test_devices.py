"""A VM with the common devices boots the test guest on real QEMU, and Host.dumpxmls shows
them: virtio qcow2 disk, cdrom (a small raw file as media: no ISO tool on these hosts), a
NIC on a libvirt network over a bridge this test creates, video, balloon, rng, watchdog."""

from __future__ import annotations

import contextlib
import subprocess
import uuid

import libvirt
import pytest

from agent import domxml
from tests.client import EventStream
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def isolated_network(virconn):
    """A host bridge (no uplink) made with `ip link`, exposed as a libvirt network in
    `forward mode='bridge'`; both removed after. An isolated libvirt-managed network is not
    possible here: libvirt applies firewall rules to it and these hosts have no iptables/nft.
    """
    tag = uuid.uuid4().hex[:8]
    name, bridge = f"hvagent-e2e-{tag}", f"hvbr{tag}"
    try:
        subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot create a test bridge (needs root / CAP_NET_ADMIN): {exc}")
    try:
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        net = virconn.networkDefineXML(
            f"<network><name>{name}</name><forward mode='bridge'/>"
            f"<bridge name='{bridge}'/></network>"
        )
        try:
            net.create()
            yield name
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                net.destroy()
            net.undefine()
    finally:
        subprocess.run(["ip", "link", "del", bridge], check=False)


async def test_vm_with_devices_boots_and_dumpxml_shows_them(
    rpc, agent, guest, tmp_path, isolated_network
):
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    media = tmp_path / "media.raw"
    media.write_bytes(b"\0" * 2048 * 16)
    mac = "52:54:00:4e:e2:01"
    vm_id, params = guest_params(
        guest,
        tabletEnable="false",
        devices=[
            {"type": "disk", "device": "disk", "path": str(disk), "format": "cow"},
            {"type": "disk", "device": "cdrom", "path": str(media), "iface": "ide"},
            {
                "type": "interface",
                "device": "network",
                "network": isolated_network,
                "nicModel": "virtio",
                "macAddr": mac,
            },
            {"type": "video", "device": "vga"},
            {"type": "balloon", "device": "memballoon", "specParams": {"model": "virtio"}},
            {"type": "rng", "device": "virtio", "specParams": {"source": "urandom"}},
            {"type": "watchdog", "specParams": {"model": "i6300esb", "action": "reset"}},
        ],
    )
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 120)
        console = await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
        assert "HVAGENT-GUEST-DISK vda" in console
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        devices = root.find("devices")
        disks = {d.find("target").get("dev"): d for d in devices.iterfind("disk")}
        assert disks["vda"].find("driver").get("type") == "qcow2"
        assert disks["hda"].get("device") == "cdrom"
        nic = devices.find("interface")
        assert nic.find("mac").get("address") == mac
        assert nic.find("source").get("network") == isolated_network
        assert nic.find("model").get("type") == "virtio"
        assert nic.find("target") is not None  # live XML: QEMU has a tap device for it
        assert devices.find("video/model").get("type") == "vga"
        assert devices.find("memballoon").get("model") == "virtio"
        assert devices.find("rng/backend").text == "/dev/urandom"
        assert devices.find("watchdog").get("action") == "reset"
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        await events.wait_status(vm_id, "Down", 60)
    finally:
        await events.close()
