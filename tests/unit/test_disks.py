"""Disks an engine names by storage ids instead of a path (intake/disks.py): VM.create's
devices[] and VM.hotplugDisk/hotunplugDisk's `drive`. The volume is looked up in VDSM's
file-domain layout under [virt] image_root, a direct LUN at /dev/mapper/<GUID>; the policy
then checks the path as any other."""

from __future__ import annotations

import uuid

import pytest

from agent import errors
from agent.config import HostAccessConfig, VirtConfig
from agent.domxml import parse, to_string
from agent.intake import hotplug
from agent.intake.hostaccess import for_host
from agent.intake.launch import plan

VM = uuid.UUID("2d3e4f5a-6b7c-4d8e-9fa0-1b2c3d4e5f60")
ROOT = "/srv/images"
VIRT = VirtConfig(domain_type="qemu", image_root=ROOT)
POLICY = for_host(HostAccessConfig(image_roots=("/img",)), VIRT)  # as the registry's
IDS = {"domainID": "sd1", "poolID": "sp1", "imageID": "img1", "volumeID": "vol1"}
VOLUME = f"{ROOT}/sd1/images/img1/vol1"


def create(*disks: dict) -> str:
    params = {"vmId": str(VM), "memSize": 64, "devices": list(disks)}
    return plan(VM, params, VIRT, HostAccessConfig(image_roots=("/img",))).xml


def sources(xml: str) -> list[tuple[str, str | None]]:
    return [
        (d.get("type"), d.find("source").get("file") or d.find("source").get("dev"))
        for d in parse(xml).iterfind("devices/disk")
    ]


def test_create_takes_a_volume_by_ids_and_a_lun_by_guid():
    xml = create(
        {"type": "disk", "device": "disk", "iface": "virtio", **IDS},
        {"type": "disk", "device": "disk", "iface": "scsi", "GUID": "36001405abcdef"},
        {"type": "disk", "device": "disk", "path": "/img/plain.img"},  # a path still wins
    )
    assert sources(xml) == [
        ("file", VOLUME),
        ("block", "/dev/mapper/36001405abcdef"),
        ("file", "/img/plain.img"),
    ]


@pytest.mark.parametrize(
    ("disk", "code", "param"),
    [
        ({**IDS, "volumeID": "../../etc/shadow"}, -32602, "devices[0].volumeID"),
        ({**IDS, "imageID": None}, -32602, "devices[0].volumeID"),
        ({**IDS, "domainID": 5}, -32602, "devices[0].volumeID"),
        ({"GUID": "a/b"}, -32602, "devices[0].GUID"),
        ({"GUID": "x\x00"}, -32602, "devices[0].GUID"),
        ({}, 11, "devices[0].path"),
    ],
)
def test_bad_ids_are_refused_naming_the_field(disk, code, param):
    with pytest.raises(errors.AgentError) as err:
        create({"type": "disk", "device": "disk", **disk})
    assert (err.value.code, err.value.data.get("param")) == (code, param)


def test_hotplug_and_unplug_by_ids():
    live = create({"type": "disk", "device": "disk", "path": "/img/root.img"})
    drive = {"vmId": str(VM), "drive": {"iface": "virtio", "format": "cow", **IDS}}
    el = hotplug.plug_disk(VM, drive, live, POLICY, ROOT)
    assert el.find("source").get("file") == VOLUME and el.find("target").get("dev") == "vdb"
    dom = parse(live)
    dom.find("devices").append(el)
    found = hotplug.unplug_disk(VM, {"vmId": str(VM), "drive": IDS}, to_string(dom), ROOT)
    assert found.find("target").get("dev") == "vdb"
    # the image root is a policy root like any: a volume elsewhere is refused
    with pytest.raises(errors.InvalidParams) as err:
        hotplug.plug_disk(VM, drive, live, HostAccessConfig(image_roots=("/img",)), ROOT)
    assert err.value.data["param"] == "params.drive.volumeID"
