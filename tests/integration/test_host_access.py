"""The host-access policy over JSON-RPC on the test driver, with the default [host_access]
plus one image root (issue 15, "Host access"): every refusal is -32602 naming the field and
the element or path; nothing is defined."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from agent import config, domxml
from tests.client import RpcClient
from tests.integration.conftest import SHARED_URI, Daemon, libvirt_uuids, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")
ENGINE_SAMPLE = Path(__file__).parents[1] / "data/engine/ovirt44_vm.xml"


@pytest_asyncio.fixture(loop_scope="session")
async def images(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "ok.img").write_bytes(b"")
    os.symlink("/etc/shadow", root / "shadow-link")
    return root


@pytest_asyncio.fixture(loop_scope="session")
async def strict(tmp_path, virconn, session, images):
    cfg = make_config(tmp_path, SHARED_URI)
    policy = config.HostAccessConfig(
        image_roots=(*config.HostAccessConfig().image_roots, str(images))
    )
    d = Daemon(dataclasses.replace(cfg, host_access=policy))
    client = RpcClient(d.base, session)
    await client.wait_ready(30)
    yield client
    assert await d.stop() == 0


def base(vm_id, **kw):
    return {"vmId": vm_id, "vmName": f"ha-{vm_id[:8]}", "memSize": 64, **kw}


def disk(path, **kw):
    return {"devices": [{"type": "disk", "path": path, **kw}]}


PARAMS = [
    (disk("/etc/shadow"), "devices[0].path", "outside the allowed roots"),
    (disk("/etc/passwd", readonly="false"), "devices[0].path", "outside"),
    (disk("/var/lib/libvirt/images/../../../etc/shadow"), "devices[0].path", "'..'"),
    (disk("/dev/vda"), "devices[0].path", "block device"),
    (disk("/dev/sda", device="cdrom"), "devices[0].path", "block device"),
    (disk("/etc/shadow", device="floppy", iface="fdc"), "devices[0].path", "outside"),
    ({"kernel": "/etc/shadow"}, "kernel", "outside"),
    ({"initrd": "/root/.ssh/id_rsa"}, "initrd", "outside"),
    (
        {"devices": [{"type": "tpm", "specParams": {"mode": "passthrough"}}]},
        "devices[0].specParams.mode",
        "allow_hostdev",
    ),
]


@pytest.mark.parametrize(("change", "param", "reason"), PARAMS, ids=[p[1] for p in PARAMS])
async def test_host_paths_in_vm_params_are_refused(strict, virconn, change, param, reason):
    vm_id = str(uuid.uuid4())
    err = await strict.error("VM.create", vmID=vm_id, vmParams=base(vm_id, **change))
    assert (err["code"], err["data"]["param"]) == (-32602, param), err
    assert reason in err["data"]["reason"]
    assert vm_id not in libvirt_uuids(virconn)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/shadow", "outside the allowed roots"),
        ("/usr/share/ovirt-engine-appliance/../../../etc/shadow", "'..'"),
        ("appliance.ova", "absolute"),
    ],
)
async def test_an_ova_outside_the_appliance_and_image_roots_is_refused(
    strict, virconn, tmp_path, path, reason
):
    vm_id = str(uuid.uuid4())
    err = await strict.error("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "ova": path})
    assert (err["code"], err["data"]["param"]) == (-32602, "vmParams.ova"), err
    assert reason in err["data"]["reason"]
    assert vm_id not in libvirt_uuids(virconn)


async def test_a_symlink_out_of_the_roots_is_refused(strict, images):
    vm_id = str(uuid.uuid4())
    err = await strict.error(
        "VM.create", vmID=vm_id, vmParams=base(vm_id, **disk(str(images / "shadow-link")))
    )
    assert err["data"]["param"] == "devices[0].path" and "/etc/shadow" in err["data"]["reason"]


async def test_allowed_paths_start(strict, images):
    vm_id = str(uuid.uuid4())
    params = base(vm_id, kernel=str(images / "ok.img"))
    params["devices"] = [
        {"type": "disk", "path": str(images / "ok.img")},
        {"type": "disk", "path": "/dev/disk/by-id/ata-made-up", "diskType": "block"},
        {"type": "disk", "device": "cdrom", "path": "/var/lib/libvirt/images/x.iso"},
    ]
    await strict.call("VM.create", vmID=vm_id, vmParams=params)
    await strict.wait_status(vm_id, "Up", 10)
    await strict.call("VM.destroy", vmID=vm_id)


async def test_disks_by_storage_ids_start_from_the_image_root(strict, virconn):
    """As engines send them: a volume by domainID/imageID/volumeID lands under [virt]
    image_root (VDSM's file-domain layout), a direct LUN at /dev/mapper/<GUID>."""
    vm_id = str(uuid.uuid4())
    ids = {"domainID": "sd1", "poolID": "sp1", "imageID": "img1", "volumeID": "vol1"}
    params = base(vm_id)
    params["devices"] = [
        {"type": "disk", "device": "disk", "format": "cow", **ids},
        {"type": "disk", "device": "disk", "iface": "scsi", "GUID": "360014051234"},
    ]
    await strict.call("VM.create", vmID=vm_id, vmParams=params)
    await strict.wait_status(vm_id, "Up", 10)
    root = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    image_root = config.VirtConfig().image_root
    got = [
        (d.find("source").get("file"), d.find("source").get("dev"))
        for d in root.iterfind("devices/disk")
    ]
    assert got == [(f"{image_root}/sd1/images/img1/vol1", None), (None, "/dev/mapper/360014051234")]
    await strict.call("VM.destroy", vmID=vm_id)
    bad = base(vm_id, devices=[{"type": "disk", **ids, "imageID": "../../etc"}])
    err = await strict.error("VM.create", vmID=vm_id, vmParams=bad)
    assert err["code"] == -32602 and err["data"]["param"] == "devices[0].volumeID"
    assert vm_id not in libvirt_uuids(virconn)


def domain(vm_id, devices="", os_extra="", extra="", ns=""):
    return (
        f"<domain type='kvm'{ns}><name>hx-{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        f"<memory>65536</memory><os><type>hvm</type>{os_extra}</os>{extra}"
        f"<devices>{devices}</devices></domain>"
    )


QEMU_NS = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
XML = [
    (
        {
            "extra": "<qemu:commandline><qemu:arg value='-fw_cfg'/>"
            "<qemu:arg value='name=opt/x,file=/etc/shadow'/></qemu:commandline>",
            "ns": QEMU_NS,
        },
        "qemu:commandline",
    ),
    ({"devices": "<emulator>/tmp/evil.sh</emulator>"}, "<emulator>"),
    (
        {
            "devices": "<hostdev mode='subsystem' type='pci'><source><address domain='0' "
            "bus='0' slot='1' function='0'/></source></hostdev>"
        },
        "<hostdev>",
    ),
    (
        {"devices": "<filesystem type='mount'><source dir='/'/><target dir='host'/></filesystem>"},
        "<filesystem>",
    ),
    (
        {"devices": "<serial type='file'><source path='/etc/cron.d/x'/></serial>"},
        "<serial type='file'>",
    ),
    ({"devices": "<serial type='pty'><log file='/etc/profile'/></serial>"}, "<log file>"),
    (
        {"devices": "<interface type='ethernet'><script path='/tmp/x.sh'/></interface>"},
        "<script>",
    ),
    ({"extra": "<seclabel type='none'/>"}, "seclabel"),
    (
        {
            "devices": "<disk type='file' device='disk'><source file='/etc/shadow'/>"
            "<target dev='vda'/></disk>"
        },
        "<source file>",
    ),
    (
        {
            "devices": "<disk type='block' device='disk'><source dev='/dev/vda'/>"
            "<target dev='vda'/></disk>"
        },
        "block device",
    ),
    ({"devices": "<tpm><backend type='passthrough'/></tpm>"}, "<tpm> passthrough"),
    ({"devices": "<input type='evdev'><source dev='/dev/input/event0'/></input>"}, "evdev"),
    ({"devices": "<smartcard mode='host'/>"}, "<smartcard mode='host'>"),
    (
        {"devices": "<rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>"},
        "<rng>",
    ),
    (
        {"devices": "<graphics type='vnc' socket='/etc/x.sock' passwdValidTo='2000-01-01'/>"},
        "<graphics> socket",
    ),
    ({"os_extra": "<acpi><table type='slic'>/etc/shadow</table></acpi>"}, "<acpi>"),
    ({"os_extra": "<kernel>/etc/shadow</kernel>"}, "<os><kernel>"),
    ({"os_extra": "<loader>/etc/passwd</loader>"}, "<os><loader>"),
    # Only reviewed elements: a host program, a sanlock lease, anything not known.
    ({"extra": "<bootloader>/usr/bin/pygrub</bootloader>"}, "<bootloader> in <domain>"),
    (
        {"devices": "<lease><lockspace>s</lockspace><key>k</key><target path='/etc/x'/></lease>"},
        "<lease> in <devices>",
    ),
    ({"extra": "<frobnicate/>"}, "<frobnicate> in <domain>"),
    # Attributes (and deeper elements) outside libvirt's schema, or reaching the host.
    (
        {"devices": "<disk type='file' device='disk' onerror='x'><target dev='vda'/></disk>"},
        "/domain/devices/disk: attribute 'onerror' is not allowed on <disk>",
    ),
    (
        {"devices": "<disk type='file' device='disk'><frob/><target dev='vda'/></disk>"},
        "/domain/devices/disk/frob: element 'frob' is not allowed",
    ),
    (
        {"devices": "<disk type='block' device='lun' rawio='yes'><target dev='sda'/></disk>"},
        "CAP_SYS_RAWIO",
    ),
    (
        {
            "devices": "<disk type='network' device='disk'><source protocol='nbd'><host "
            "transport='unix' socket='/run/x.sock'/></source><target dev='vda'/></disk>"
        },
        "/domain/devices/disk/source/host: attribute socket",
    ),
    (
        {
            "devices": "<interface type='vhostuser'><source type='unix' path='/etc/x.sock' "
            "mode='client'/><model type='virtio'/></interface>"
        },
        "/domain/devices/interface/source: attribute path",
    ),
    (
        {"devices": "<audio id='1' type='file' path='/etc/cron.d/x'/>"},
        "/domain/devices/audio: attribute path",
    ),
    (
        {
            "devices": "<memory model='nvdimm'><source><path>/etc/shadow</path></source>"
            "<target><size unit='KiB'>1024</size></target></memory>"
        },
        "/domain/devices/memory/source/path: text",
    ),
]


@pytest.mark.parametrize(("parts", "reason"), XML, ids=[x[1] for x in XML])
async def test_engine_xml_reaching_the_host_is_refused(strict, virconn, parts, reason):
    vm_id = str(uuid.uuid4())
    params = {"vmId": vm_id, "xml": domain(vm_id, **parts)}
    err = await strict.error("VM.create", vmID=vm_id, vmParams=params)
    assert (err["code"], err["data"]["param"]) == (-32602, "vmParams.xml"), err
    assert reason in err["data"]["reason"], err
    assert vm_id not in libvirt_uuids(virconn)


async def test_the_hosts_own_emulator_is_accepted(strict):
    vm_id = str(uuid.uuid4())
    xml = domain(vm_id, devices="<emulator>/usr/bin/test-hv</emulator>")
    await strict.call("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    await strict.wait_status(vm_id, "Up", 10)
    await strict.call("VM.destroy", vmID=vm_id)


async def test_engine_shaped_xml_starts(strict, virconn):
    """An oVirt-4.4-shaped engine domain (ovirt-vm/ovirt-tune metadata, spice, numa, disk
    seclabels, filterref) passes the element and attribute allow-list and starts. Its SPICE
    listens on an address: a display network needs a host bridge this machine lacks."""
    vm_id = str(uuid.uuid4())
    xml = (ENGINE_SAMPLE.read_text()).replace("@VMID@", vm_id)
    await strict.call("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    await strict.wait_status(vm_id, "Up", 10)
    assert vm_id in libvirt_uuids(virconn)
    await strict.call("VM.destroy", vmID=vm_id)
