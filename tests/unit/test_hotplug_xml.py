"""VM.hotplugDisk/hotplugNic and the unplug verbs in their engine-XML form (`params.xml`, what
engines 4.2+ send): the device checked as at VM.create, the target renamed when in use, the
live device found by alias, path or MAC. Pure (intake/hotplug.py, intake/hotplug_xml.py); the
owner round trip is in test_owner_devices.py, QEMU in tests/e2e/test_running_verbs.py."""

from __future__ import annotations

import uuid

import pytest

from agent import errors
from agent.config import HostAccessConfig, VirtConfig
from agent.domxml import parse, to_string
from agent.intake import hotplug
from agent.intake.launch import plan

VM = uuid.UUID("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
POLICY = HostAccessConfig(image_roots=("/img",))
META = (
    '<metadata xmlns:ovirt-vm="http://ovirt.org/vm/1.0"><ovirt-vm:vm>'
    '<ovirt-vm:device devtype="disk" name="sda"><ovirt-vm:imageID>i1</ovirt-vm:imageID>'
    "</ovirt-vm:device></ovirt-vm:vm></metadata>"
)


def disk_xml(source: str = "/img/hot.qcow2", target: str = "vda", extra: str = "") -> str:
    """A disk as the engine's builder writes it for hot-plug (target: index 0 of its bus)."""
    return (
        '<hotplug><devices>\n  <disk type="file" device="disk" snapshot="no">'
        '<driver name="qemu" type="qcow2" cache="none" error_policy="stop" io="threads"/>'
        f'<source file="{source}"><seclabel model="dac" type="none" relabel="no"/></source>'
        f'<target dev="{target}" bus="virtio"/><serial>5f1e</serial>'
        f'<alias name="ua-5f1e"/>{extra}</disk>\n</devices>{META}</hotplug>'
    )


NIC_XML = (
    '<hotplug><devices><interface type="bridge"><model type="virtio"/><link state="up"/>'
    '<source bridge="br1"/><alias name="ua-77aa"/><mac address="52:54:00:AA:00:02"/>'
    "</interface></devices></hotplug>"
)


@pytest.fixture
def live() -> str:
    """A running VM's XML: one virtio disk (vda) and a NIC."""
    params = {
        "vmId": str(VM),
        "memSize": 64,
        "devices": [
            {"type": "disk", "device": "disk", "path": "/img/root.img", "iface": "virtio"},
            {
                "type": "interface",
                "device": "bridge",
                "network": "br0",
                "macAddr": "52:54:00:aa:00:01",
            },
        ],
    }
    return plan(VM, params, VirtConfig(domain_type="qemu"), POLICY).xml


def req(xml: str) -> dict:
    return {"vmId": str(VM), "xml": xml}


def test_disk_is_plugged_on_a_free_target_as_vdsm_renames_it(live):
    el = hotplug.plug_disk(VM, req(disk_xml()), live, POLICY)
    assert el.tag == "disk" and el.find("target").get("dev") == "vdb"  # vda is in use
    assert el.find("source").get("file") == "/img/hot.qcow2"
    assert el.find("alias").get("name") == "ua-5f1e"
    # the source's seclabel as libvirt stores it (engine_compat, as at VM.create)
    assert el.find("source/seclabel").get("type") is None
    assert parse(to_string(el)).tag == "disk"  # serialises alone


def test_a_free_engine_target_is_kept(live):
    el = hotplug.plug_disk(VM, req(disk_xml(target="vdc")), live, POLICY)
    assert el.find("target").get("dev") == "vdc"


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (disk_xml(source="/etc/shadow"), "outside the allowed roots"),
        (disk_xml(extra="<mirror/>"), "mirror"),
        (disk_xml().replace('snapshot="no"', 'rawio="yes"'), "rawio"),
        ("<domain/>", "root element must be <hotplug>"),
        ("<hotplug><devices/></hotplug>", "exactly one <disk>"),
        (NIC_XML, "exactly one <disk>"),
        ("<hotplug><devices><disk/><disk/></devices></hotplug>", "exactly one <disk>"),
        ('<!DOCTYPE x [<!ENTITY e "x">]><hotplug>&e;</hotplug>', "not acceptable XML"),
        ("<hotplug", "not acceptable XML"),
        ("a\x00b", "params.xml"),
        ("<hotplug>\ud800</hotplug>", "params.xml"),
        ("<hotplug>" + "a" * (1 << 20) + "</hotplug>", "exactly one <disk>"),
        ("a" * (1 << 20), "not acceptable XML"),
    ],
)
def test_bad_disk_xml_is_32602_naming_params_xml(live, xml, reason):
    with pytest.raises(errors.InvalidParams) as err:
        hotplug.plug_disk(VM, req(xml), live, POLICY)
    assert err.value.data["param"] == "params.xml"
    assert reason in err.value.reason


def test_the_vm_id_must_match_and_xml_must_be_text(live):
    with pytest.raises(errors.InvalidParams) as err:
        hotplug.plug_disk(VM, {"vmId": str(uuid.uuid4()), "xml": disk_xml()}, live, POLICY)
    assert err.value.data["param"] == "params.vmId"
    with pytest.raises(errors.InvalidParams) as err:
        hotplug.plug_disk(VM, {"vmId": str(VM), "xml": 7}, live, POLICY)
    assert err.value.data["param"] == "params.xml"


def test_nic_is_checked_and_its_mac_must_be_free(live):
    el = hotplug.plug_nic(VM, req(NIC_XML), live, POLICY)
    assert el.tag == "interface" and el.find("source").get("bridge") == "br1"
    taken = NIC_XML.replace("52:54:00:AA:00:02", "52:54:00:aa:00:01")
    with pytest.raises(errors.InvalidParams, match="already used"):
        hotplug.plug_nic(VM, req(taken), live, POLICY)
    script = NIC_XML.replace("<model", '<script path="/bin/sh"/><model')
    with pytest.raises(errors.InvalidParams) as err:
        hotplug.plug_nic(VM, req(script), live, POLICY)
    assert err.value.data["param"] == "params.xml"


def test_unplug_finds_the_live_device_by_alias_then_path_or_mac(live):
    dom = parse(live)
    vda = dom.find("devices/disk")
    vda.append(parse('<alias name="ua-5f1e"/>'))  # as the engine named it at plug
    with_alias = to_string(dom)
    found = hotplug.unplug_disk(VM, req(disk_xml(source="/img/other.img")), with_alias)
    assert found.find("target").get("dev") == "vda"  # by alias, whatever the source says
    by_path = disk_xml(source="/img/root.img").replace("ua-5f1e", "ua-none")
    assert hotplug.unplug_disk(VM, req(by_path), live).find("target").get("dev") == "vda"
    nic = NIC_XML.replace("52:54:00:AA:00:02", "52:54:00:AA:00:01").replace("ua-77aa", "x")
    assert hotplug.unplug_nic(VM, req(nic), live).find("mac").get("address") == "52:54:00:aa:00:01"
    with pytest.raises(errors.HotunplugDiskFailed) as err:
        hotplug.unplug_disk(VM, req(disk_xml(source="/img/none.img")), live)
    assert err.value.code == 46 and err.value.data["param"] == "params.xml"
    with pytest.raises(errors.HotunplugNicFailed) as err:
        hotplug.unplug_nic(VM, req(NIC_XML), live)
    assert err.value.code == 50
