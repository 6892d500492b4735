"""Commands on a running VM's hardware through its owner: pause/cont, disk and NIC hot-plug
and unplug, vCPU count, balloon target. Fake port, fake clock; the test driver and QEMU sides
are tests/integration/test_running_verbs_testdriver.py and tests/e2e/test_running_verbs.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest

from agent import errors, hostinfo
from agent.config import HostAccessConfig, VirtConfig
from agent.domxml import parse
from agent.domxml.live import facts
from agent.intake.launch import plan
from agent.runtime.bus import StatusBus
from agent.runtime.vm import (
    BalloonCommand,
    ContCommand,
    HotplugDiskCommand,
    HotplugNicCommand,
    HotunplugDiskCommand,
    HotunplugNicCommand,
    PauseCommand,
    SetCpusCommand,
    VmOwner,
)
from agent.status import VmStatus
from agent.virt.port import DomainState
from tests.fakes import SYSINFO, FakeClock, FakeHypervisor, settle

VM = uuid.UUID("7a1f3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6")
MAC = "52:54:00:aa:bb:01"


class Rig:
    def __init__(self, images: Path, *, balloon: bool = True) -> None:
        self.clock = FakeClock()
        self.port = FakeHypervisor(self.clock)
        (images / "root.img").write_bytes(b"")
        devices = [
            {"type": "disk", "device": "disk", "path": str(images / "root.img")},
            {"type": "interface", "device": "bridge", "network": "br0", "macAddr": MAC},
        ]
        model = "virtio" if balloon else "none"
        devices.append({"type": "balloon", "specParams": {"model": model}})
        params = {"vmId": str(VM), "memSize": 256, "smp": 1, "maxVCpus": 4, "devices": devices}
        virt = VirtConfig(domain_type="qemu", console_log_dir="/tmp/hvagent-unit")
        self.policy = HostAccessConfig(image_roots=(str(images),))
        xml = plan(VM, params, virt, self.policy).xml
        self.bus = StatusBus()
        self.events = self.bus.subscribe()
        self.images = images
        self._xml = xml

    async def start(self) -> Rig:
        live = await self.port.define_and_start(self._xml, paused=False)
        self.owner = VmOwner.adopt(
            self.port, self.bus, facts(live), DomainState.RUNNING, None, clock=self.clock
        )
        self.owner.state.read_live(live)
        self.port.sink = self.owner.post_event
        self.task = asyncio.create_task(self.owner.run())
        await settle()
        return self

    async def run(self, cmd) -> None:
        async with asyncio.timeout(5):
            await self.owner.submit(cmd)
        await settle()

    def live(self):
        return parse(self.port.xml[VM])

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def rig(tmp_path):
    r = await Rig(tmp_path).start()
    yield r
    await r.stop()


def _drive(**drive) -> dict:
    return {"vmId": str(VM), "drive": drive}


def _nic(**nic) -> dict:
    return {"vmId": str(VM), "nic": nic}


async def test_pause_then_cont_reports_paused_then_up_once_each(rig):
    await rig.run(PauseCommand())
    stats = rig.owner.stats()
    assert stats["status"] == "Paused" and stats["pauseCode"] == "NOERR"
    await rig.run(PauseCommand())  # already paused: nothing more
    await rig.run(ContCommand())
    stats = rig.owner.stats()
    assert stats["status"] == "Up" and "pauseCode" not in stats
    await rig.run(ContCommand())  # already running: nothing more
    assert rig.port.names().count("suspend") == 1 and rig.port.names().count("resume") == 1
    published = []
    while not rig.events.empty():
        published.append(rig.events.get_nowait()["params"][str(VM)]["status"])
    assert published == ["Paused", "Up"]  # libvirt's SUSPENDED/RESUMED add no second report


async def test_pause_on_a_down_vm_is_wrong_state(rig):
    rig.owner.set_status(VmStatus.DOWN)
    for cmd in (PauseCommand(), ContCommand(), SetCpusCommand(2), BalloonCommand(1024)):
        with pytest.raises(errors.WrongState):
            await rig.run(cmd)
    with pytest.raises(errors.WrongState):
        await rig.run(HotplugDiskCommand(_drive(path="/x"), policy=rig.policy))


async def test_hotplug_disk_takes_the_next_free_target_and_changes_the_hash(rig):
    (rig.images / "data.img").write_bytes(b"")
    before = rig.owner.stats()["hash"]
    await rig.run(HotplugDiskCommand(_drive(path=str(rig.images / "data.img")), policy=rig.policy))
    disk = rig.live().find("devices/disk/target[@dev='vdb']/..")
    assert disk.find("source").get("file") == str(rig.images / "data.img")
    assert rig.owner.stats()["hash"] != before
    assert {d.dev for d in rig.owner.facts.devices.disks} == {"vda", "vdb"}
    await rig.run(HotunplugDiskCommand(_drive(path=str(rig.images / "data.img"))))
    assert rig.live().find("devices/disk/target[@dev='vdb']") is None
    assert rig.owner.stats()["hash"] == before
    assert {d.dev for d in rig.owner.facts.devices.disks} == {"vda"}


async def test_engine_xml_disk_and_nic_plug_and_unplug(rig):
    """The engine-XML form (engines 4.2+): a `<hotplug>` document per device."""
    img = rig.images / "eng.qcow2"
    img.write_bytes(b"")
    disk = (
        f'<hotplug><devices><disk type="file" device="disk"><source file="{img}"/>'
        '<target dev="vda" bus="virtio"/><alias name="ua-d1"/></disk></devices></hotplug>'
    )
    nic = (
        '<hotplug><devices><interface type="bridge"><source bridge="br2"/>'
        '<mac address="52:54:00:aa:bb:09"/><alias name="ua-n1"/></interface></devices></hotplug>'
    )
    before = rig.owner.stats()["hash"]
    await rig.run(HotplugDiskCommand({"vmId": str(VM), "xml": disk}, policy=rig.policy))
    await rig.run(HotplugNicCommand({"vmId": str(VM), "xml": nic}, policy=rig.policy))
    assert {d.dev for d in rig.owner.facts.devices.disks} == {"vda", "vdb"}  # renamed
    assert {n.mac for n in rig.owner.facts.devices.nics} == {MAC, "52:54:00:aa:bb:09"}
    await rig.run(HotunplugDiskCommand({"vmId": str(VM), "xml": disk}))  # by its path
    await rig.run(HotunplugNicCommand({"vmId": str(VM), "xml": nic}))  # by its MAC
    assert {d.dev for d in rig.owner.facts.devices.disks} == {"vda"}
    assert {n.mac for n in rig.owner.facts.devices.nics} == {MAC}
    assert rig.owner.stats()["hash"] == before


async def test_hotplug_disk_outside_the_image_roots_never_reaches_libvirt(rig, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.img"
    outside.write_bytes(b"")
    with pytest.raises(errors.InvalidParams) as err:
        await rig.run(HotplugDiskCommand(_drive(path=str(outside)), policy=rig.policy))
    assert err.value.data["param"] == "params.drive.path"
    assert "outside the allowed roots" in err.value.reason
    assert "attach_device" not in rig.port.names()


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        (_drive(), 11, "params.drive.path"),
        ({"drive": {"path": "/x"}}, 11, "params.vmId"),
        ({"vmId": str(uuid.uuid4()), "drive": {"path": "/x"}}, -32602, "params.vmId"),
        ({"vmId": str(VM)}, 11, "params.drive"),
        ("nope", -32602, "params"),
        (_drive(path="relative.img"), -32602, "params.drive.path"),
        (_drive(path="/a\x00b"), -32602, "params.drive.path"),
        (_drive(path="/x", iface="usb"), -32602, "params.drive.iface"),
        (_drive(path="/x", name="vda"), -32602, "params.drive.name"),
        (_drive(path="/x", device="cdrom"), -32602, "params.drive.device"),
    ],
)
async def test_hotplug_disk_bad_params(rig, params, code, param):
    with pytest.raises(errors.AgentError) as err:
        await rig.run(HotplugDiskCommand(params, policy=rig.policy))
    assert (err.value.code, err.value.data.get("param")) == (code, param)
    assert "attach_device" not in rig.port.names()


async def test_libvirt_refusing_is_the_hotplug_code_with_libvirts_detail(rig):
    (rig.images / "data.img").write_bytes(b"")
    rig.port.guests[VM].refuses_devices = True
    with pytest.raises(errors.HotplugDiskFailed) as err:
        await rig.run(
            HotplugDiskCommand(_drive(path=str(rig.images / "data.img")), policy=rig.policy)
        )
    assert err.value.code == 45 and "device_add" in err.value.data["libvirt"]["message"]
    with pytest.raises(errors.HotunplugDiskFailed) as err:
        await rig.run(HotunplugDiskCommand(_drive(name="vda")))
    assert err.value.code == 46 and err.value.data["libvirt"]
    with pytest.raises(errors.HotplugNicFailed) as err:
        await rig.run(HotplugNicCommand(_nic(network="br0")))
    assert err.value.code == 49 and err.value.data["libvirt"]
    with pytest.raises(errors.HotunplugNicFailed) as err:
        await rig.run(HotunplugNicCommand(_nic(macAddr=MAC)))
    assert err.value.code == 50 and err.value.data["libvirt"]


async def test_unplugging_what_the_vm_lacks_is_the_unplug_code(rig):
    with pytest.raises(errors.HotunplugDiskFailed) as err:
        await rig.run(HotunplugDiskCommand(_drive(path="/nowhere.img")))
    assert err.value.data["param"] == "params.drive.path"
    with pytest.raises(errors.HotunplugNicFailed) as err:
        await rig.run(HotunplugNicCommand(_nic(macAddr="52:54:00:00:00:99")))
    assert err.value.data["param"] == "params.nic.macAddr"
    assert "detach_device" not in rig.port.names()


async def test_an_unplug_the_guest_never_completes_times_out(rig):
    rig.port.guests[VM].keeps_unplugged = True
    unplug = HotunplugNicCommand(_nic(macAddr=MAC), timeout_s=7)  # [virt] hotunplug_timeout_s
    task = asyncio.ensure_future(rig.owner.submit(unplug))
    await settle()
    await rig.clock.advance(6)
    assert not task.done()  # still waiting for the guest
    await rig.clock.advance(2)
    with pytest.raises(errors.HotunplugNicFailed, match=r"did not release .* within 7 s"):
        await task


async def test_hotplug_and_unplug_a_nic(rig):
    before = rig.owner.stats()["hash"]
    await rig.run(HotplugNicCommand(_nic(network="br1", macAddr="52:54:00:AA:BB:02")))
    macs = {n.mac for n in rig.owner.facts.devices.nics}
    assert macs == {MAC, "52:54:00:aa:bb:02"} and rig.owner.stats()["hash"] != before
    with pytest.raises(errors.InvalidParams) as err:  # the same MAC twice
        await rig.run(HotplugNicCommand(_nic(network="br1", macAddr=MAC)))
    assert err.value.data["param"] == "params.nic.macAddr"
    await rig.run(HotunplugNicCommand(_nic(macAddr="52:54:00:aa:bb:02")))
    assert {n.mac for n in rig.owner.facts.devices.nics} == {MAC}
    with pytest.raises(errors.InvalidParams):
        await rig.run(HotunplugNicCommand(_nic(macAddr="not-a-mac")))


async def test_set_number_of_cpus_up_to_the_maximum(rig):
    await rig.run(SetCpusCommand(3))
    assert rig.live().find("vcpu").get("current") == "3"
    assert rig.owner.info()["smp"] == "3"
    with pytest.raises(errors.SetNumberOfCpusFailed) as err:
        await rig.run(SetCpusCommand(5))
    assert err.value.code == 60 and "max" in err.value.data["libvirt"]["message"]


async def test_balloon_target_shows_in_balloon_info(rig):
    await rig.run(BalloonCommand(200 * 1024))
    assert rig.port.guests[VM].balloon_kib == 200 * 1024
    sampled = {"balloonInfo": {"balloon_target": "262144", "balloon_cur": "262144"}}
    rig.owner._sampled = lambda: type("S", (), {"vm_stats": {VM: sampled}})()
    assert rig.owner.stats()["balloonInfo"]["balloon_target"] == str(200 * 1024)
    with pytest.raises(errors.BalloonFailed) as err:
        await rig.run(BalloonCommand(10**9))
    assert err.value.code == 53 and err.value.data["libvirt"]


async def test_balloon_without_a_balloon_device_is_53(tmp_path):
    rig = await Rig(tmp_path, balloon=False).start()
    try:
        with pytest.raises(errors.BalloonFailed, match="no balloon device"):
            await rig.run(BalloonCommand(1024))
        assert "set_balloon" not in rig.port.names()
    finally:
        await rig.stop()


def test_hardware_info_from_sysinfo():
    assert hostinfo.hardware(SYSINFO) == {
        "systemManufacturer": "Fake Iron",
        "systemProductName": "FI-2000",
        "systemVersion": "1.2",
        "systemSerialNumber": "SN-0042",
        "systemUUID": "4c4c4544-0042-3010-8054-b4c04f4e3232",
        "systemFamily": "Rack",
    }
    bios_only = "<sysinfo type='smbios'><bios><entry name='vendor'>X</entry></bios></sysinfo>"
    assert set(hostinfo.hardware(bios_only).values()) == {""}
