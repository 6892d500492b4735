"""OVF and vm.conf intake: real oVirt samples and hand-written OVFs -> the domain hvagent
defines and the warnings it answers with; bad input -> a stable code naming the element."""

from __future__ import annotations

import base64
import dataclasses
import uuid

import pytest

from agent import intake
from agent.domxml import parse
from agent.errors import AgentError
from agent.intake import vmconf
from tests import golden, intake_golden
from tests.intake_golden import HE_FULL_ID, HOST, he_full

VM = uuid.UUID(HE_FULL_ID)


def convert(params, host=HOST, vm=VM):
    return intake.convert(vm, params, host)


def error(params, host=HOST, vm=VM) -> AgentError:
    with pytest.raises(AgentError) as exc:
        convert(params, host, vm)
    return exc.value


@pytest.mark.parametrize("case", intake_golden.cases())
def test_golden(case):
    xml, warnings = intake_golden.build(case)
    want_xml, want_warnings = intake_golden.expected(case)
    assert golden.canonical(xml) == golden.canonical(want_xml)
    assert warnings == want_warnings


def devices(case):
    return parse(intake_golden.build(case)[0]).find("devices")


def test_two_disks_get_distinct_targets_and_only_the_boot_disk_a_boot_order():
    disks = devices("he_full").findall("disk[@device='disk']")
    assert [(d.find("target").get("dev"), d.find("target").get("bus")) for d in disks] == [
        ("vda", "virtio"),
        ("sda", "scsi"),
    ]
    assert [d.find("driver").get("type") for d in disks] == ["qcow2", "raw"]
    assert [d.find("boot") is not None for d in disks] == [True, False]
    assert disks[1].find("source").get("file") == (
        "/images/c0ffee00-1111-4222-8333-444455556666/images/"
        "5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a02/9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d02"
    )


def test_vm_level_fields_and_hosted_engine_extras():
    root = parse(intake_golden.build("he_full")[0])
    assert root.findtext("memory") == str(256 * 1024)
    assert root.find("maxMemory").text == str(1024 * 1024)  # MaxMemorySizeMb
    assert root.find("vcpu").text == "4" and root.find("vcpu").get("current") == "2"
    assert root.find("cpu/topology").attrib == {"sockets": "2", "cores": "1", "threads": "2"}
    assert root.findtext("cpu/model") == "qemu64"
    assert root.find("os/type").get("machine") == "pc"
    assert root.findtext("on_poweroff") == "destroy" and root.findtext("on_crash") == "destroy"
    assert root.find(".//{https://hvagent.org/xmlns/vm/1.0}destroyOnReboot").text == "true"
    names = [t.get("name") for t in root.iterfind("devices/channel/target")]
    assert "org.ovirt.hosted-engine-setup.0" in names
    # MinAllocatedMem is the balloon floor (memGuaranteedSize)
    params = convert({"ovf": he_full()}).params
    assert params["memGuaranteedSize"] == "192"


def test_nics_models_link_state_and_generated_mac():
    nics = devices("he_full").findall("interface")
    assert [n.find("model").get("type") for n in nics] == ["virtio", "e1000e"]
    assert [n.find("source").get("bridge") for n in nics] == ["ovirtmgmt", "ovirtmgmt"]
    assert nics[1].find("link").get("state") == "down"
    mac = nics[1].find("mac").get("address")
    assert mac.startswith("00:16:3e:")
    _, warnings = intake_golden.build("he_full")
    assert any(w["data"].get("mac") == mac for w in warnings)
    assert intake_golden.build("he_full")[0].count(mac) == 1  # stable across conversions


def test_both_consoles_from_graphics_items_and_video_from_its_item():
    devs = devices("he_full")
    assert [g.get("type") for g in devs.findall("graphics")] == ["vnc", "spice"]
    assert devs.find("video/model").attrib["type"] == "qxl"
    assert devs.find("video/model").get("vram") == "8192"


def test_headless_means_no_console_and_video_none_and_bios_type_gives_q35_efi():
    root = parse(intake_golden.build("he_headless_q35_efi")[0])
    assert root.find("devices/graphics") is None
    assert root.find("devices/video/model").get("type") == "none"
    assert root.find("os").get("firmware") == "efi"
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("devices/disk[@device='cdrom']/target").get("bus") == "sata"


@pytest.mark.parametrize(
    "display,video,console",
    [("0", "cirrus", "vnc"), ("1", "qxl", "spice"), ("2", "vga", "vnc"), ("3", "bochs", "vnc")],
)
def test_default_display_type_without_items(display, video, console):
    import re

    text = re.sub(
        r"<Item>(?:(?!</Item>).)*<Type>(?:graphics|video)</Type>.*?</Item>",
        "",
        he_full(**{"DisplayType>1<": f"DisplayType>{display}<"}),
        flags=re.S,
    )
    c = convert({"ovf": text})
    types = [(d["type"], d["device"]) for d in c.params["devices"]]
    assert ("video", video) in types and ("graphics", console) in types
    assert any("no graphics Item" in w["data"]["reason"] for w in c.warnings)


def test_machine_type_the_host_lacks_falls_back_with_a_warning():
    host = dataclasses.replace(
        HOST, machines=frozenset({"pc-i440fx-8.2", "pc", "q35"}), default_machine="pc-i440fx-8.2"
    )
    c = convert(
        {"ovf": (intake_golden.DIR / "ha_ovf_test_v4.2.xml").read_text()},
        host,
        uuid.UUID("b4491372-8f8a-4e08-8524-f8fb986a548a"),
    )
    assert c.params["emulatedMachine"] == "pc-i440fx-8.2"
    (w,) = [w for w in c.warnings if w["data"]["param"] == "CustomEmulatedMachine"]
    assert w["code"] == 75 and "pc-i440fx-rhel7.3.0" in w["data"]["reason"]


def test_cpu_model_the_host_lacks_is_dropped_with_a_warning():
    host = dataclasses.replace(HOST, cpu_models=frozenset({"Nehalem"}))
    c = convert({"ovf": he_full()}, host)
    assert "cpuType" not in c.params
    assert any(w["data"]["param"] == "CustomCpuName" for w in c.warnings)


def test_usable_engine_xml_wins_and_host_placeholders_are_resolved():
    xml, warnings = intake_golden.build("he_engine_xml")
    assert warnings == []
    assert "HOST-SERIAL:" not in xml and HOST.host_uuid in xml
    assert "/rhev/" not in xml


def test_engine_xml_with_a_lease_falls_back_to_the_items_with_a_warning():
    xml, warnings = intake_golden.build("he_engine_xml_lease")
    assert "lease" in warnings[0]["data"]["reason"]
    assert warnings[0]["data"]["param"] == "EngineXml"
    assert len(parse(xml).findall("devices/disk[@device='disk']")) == 2


def test_ha_converter_bugs_are_fixed_on_its_own_samples():
    # ovf_test.xml: the disk and the SCSI controller share PCI slot 6 -> addresses dropped
    root = parse(intake_golden.build("ha_ovf_test")[0])
    assert root.find("devices/disk/address") is None
    assert [n.find("link") is not None for n in root.findall("devices/interface")] == [
        False,
        True,
    ]  # rasd:Linked false -> link down
    assert root.find("devices/disk[@device='disk']/target").get("bus") == "ide"


# ---- vm.conf parser rules -------------------------------------------------------------


def test_vmconf_rules():
    text = (
        "# header\nvmId = 7e1a5f0c-3b1d-4f7e-9a55-0c2d9e8b4a11  # trailing\n"
        "vmName=Hosted Engine\n\n"
        "devices={type:disk,address:{bus:0x00, slot:0x06},path:/a/b,x:1:2}\n"
        "devices={type:interface,macAddr:00:16:3e:00:00:01}\n"
        "custom_foo=bar\ncdrom=/iso/a.iso\nfloppy=a,domain:d,pool:p\nvt=true\nflag\n"
    )
    p = vmconf.parse(text)
    assert p["vmId"] == HE_FULL_ID
    assert p["vmName"] == "HostedEngine"
    assert p["devices"] == [
        {"type": "disk", "address": {"bus": "0x00", "slot": "0x06"}, "path": "/a/b", "x": "1:2"},
        {"type": "interface", "macAddr": "00:16:3e:00:00:01"},
    ]
    assert p["custom"] == {"foo": "bar"}
    assert p["cdrom"] == "/iso/a.iso"
    assert p["floppy"] == {"a": "", "domainID": "d", "poolID": "p"}
    assert p["kvmEnable"] == "true" and "vt" not in p
    assert p["flag"] == ""


@pytest.mark.parametrize("value,paused", [("true", True), ("false", True), ("", False)])
def test_vmconf_launch_paused_any_non_empty_value(value, paused):
    text = (intake_golden.DIR / "setup_vm_test.conf").read_text() + f"launchPaused={value}\n"
    host = HOST
    c = convert({"vmConf": text}, host, uuid.UUID("82a24281-8a25-4772-b9c9-45971e811cb3"))
    assert (c.params.get("launchPaused") == "true") is paused


def test_vmconf_xml_uuid_counts_and_the_difference_is_warned():
    c = convert(
        {"vmConf": (intake_golden.DIR / "setup_vm_test_xml.conf").read_text()},
        vm=uuid.UUID("dbc9d98d-4a5c-4e4e-bc9b-621b189709fd"),
    )
    (w,) = c.warnings
    assert w["data"]["vmConfId"] == "82a24281-8a25-4772-b9c9-45971e811cb3"
    err = error(
        {"vmConf": (intake_golden.DIR / "setup_vm_test_xml.conf").read_text()},
        vm=uuid.UUID("82a24281-8a25-4772-b9c9-45971e811cb3"),
    )
    assert err.code == -32602 and err.data["param"] == "vmParams.vmConf"


@pytest.mark.parametrize(
    "line,message",
    [
        ("devices={type:disk", "nested spec not terminated"),
        ("devices={type}", "missing name value separator"),
        ("devices={type:disk}x", "Trailing garbage after spec"),
    ],
)
def test_vmconf_parse_errors_name_the_line(line, message):
    err = error({"vmConf": f"vmId={HE_FULL_ID}\nmemSize=256\n{line}\n"})
    assert err.code == -32602
    assert err.data["line"] == 3 and message in err.data["reason"]
    assert err.data["param"] == "vmParams.vmConf"


def test_vmconf_bad_base64():
    err = error({"vmConf": f"vmId={HE_FULL_ID}\nxmlBase64=***\n"})
    assert err.data["line"] == 2


# ---- bad input ------------------------------------------------------------------------


BAD = [
    ({"ovf": "not xml at all"}, -32602, "vmParams.ovf", "not well-formed"),
    ({"ovf": "<a/>"}, -32602, "vmParams.ovf", "Envelope"),
    ({"ovf": ""}, -32602, "vmParams.ovf", "non-empty"),
    ({"ovf": 5}, -32602, "vmParams.ovf", "non-empty"),
    ({"ovf": "\ud800"}, -32602, "vmParams.ovf", "XML"),
    (
        {"ovf": he_full(**{'ovf:id="7e1a5f0c-3b1d-4f7e-9a55-0c2d9e8b4a11"': ""})},
        11,
        "vmParams.ovf",
        "VM id",
    ),
    (
        {"ovf": he_full(**{"<rasd:VirtualQuantity>256</rasd:VirtualQuantity>": ""})},
        11,
        "vmParams.ovf",
        "no memory",
    ),
    ({"ovf": he_full(**{"MegaBytes": "KiloBytes"})}, -32602, "vmParams.ovf", "memory unit"),
    (
        {"ovf": he_full(**{"<rasd:ResourceSubType>6<": "<rasd:ResourceSubType>4<"})},
        75,
        "vmParams.ovf",
        "NIC nic2",
    ),
    (
        {"ovf": he_full(**{"<rasd:ResourceSubType>6<": "<rasd:ResourceSubType>5<"})},
        75,
        "vmParams.ovf",
        "NIC nic2",
    ),
    (
        {"ovf": he_full(**{HE_FULL_ID: str(uuid.UUID(int=7))})},
        -32602,
        "vmParams.ovf",
        "does not match",
    ),
    ({"ovf": he_full(**{"c0ffee00-1111": "../../etc"})}, -32602, "vmParams.ovf", "bad domainID"),
    ({"vmConf": "memSize=1"}, -32602, "vmParams.vmConf", "vmId"),
    ({"ovf": "x" * (17 * 1024 * 1024)}, -32602, "vmParams.ovf", "16 MiB"),
    ({"vmConf": "a\x00"}, -32602, "vmParams.vmConf", "not allowed"),
    ({"ovf": he_full(), "vmConf": "x"}, -32602, "vmParams", "exactly one"),
    ({"ovf": he_full(), "memSize": 5}, -32602, "vmParams", "exactly one"),
]


@pytest.mark.parametrize("params,code,param,reason", BAD)
def test_bad_input(params, code, param, reason):
    err = error(params)
    assert (err.code, err.data["param"]) == (code, param)
    assert reason in err.data["reason"]


def test_missing_volume_names_the_disk_and_path():
    host = dataclasses.replace(HOST, exists=lambda p: not p.endswith("7d02"))
    err = error({"ovf": he_full()}, host)
    assert err.code == -32602
    assert err.data["disk"] == "he_data_disk"
    assert err.data["path"].endswith(
        "/images/5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a02/9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d02"
    )


def test_vmconf_missing_volume():
    host = dataclasses.replace(HOST, exists=lambda p: False)
    err = error(
        {"vmConf": (intake_golden.DIR / "setup_vm_test.conf").read_text()},
        host,
        uuid.UUID("82a24281-8a25-4772-b9c9-45971e811cb3"),
    )
    assert err.data["param"] == "vmParams.vmConf.devices[1]" and "does not exist" in err.reason


def test_plain_vmparams_pass_through():
    params = {"vmId": HE_FULL_ID, "memSize": 256}
    assert convert(params).params is params


def test_xmlbase64_roundtrip_is_decoded():
    xml = f"<domain type='kvm'><name>n</name><uuid>{HE_FULL_ID}</uuid><devices/></domain>"
    text = f"vmId={HE_FULL_ID}\nxmlBase64={base64.b64encode(xml.encode()).decode()}\n"
    c = convert({"vmConf": text})
    assert "org.ovirt.hosted-engine-setup.0" in c.params["xml"]


# ---- hostile values: always an AgentError with a stable code, never a crash ------------

HOSTILE = ["\ud800", "\x00", "9" * 400, "a" * 100_000, "-1", "{", "}", "=", "&#0;", "]]>"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "field",
    [
        "<Name>HostedEngine<",
        "<rasd:VirtualQuantity>256<",
        "<rasd:num_of_sockets>1<",
        "<MinAllocatedMem>192<",
        "<MaxMemorySizeMb>1024<",
        "<BiosType>0<",
        "<CustomCpuName>qemu64<",
        "<CustomEmulatedMachine>pc<",
        "<DefaultDisplayType>1<",
        "<rasd:MACAddress>00:16:3e:62:28:65<",
        "<rasd:ResourceSubType>3<",
        "<rasd:Connection>ovirtmgmt<",
        "<source>urandom<",
        "<rasd:StorageId>c0ffee00-1111-4222-8333-444455556666<",
        "<vram>8192<",
    ],
)
def test_hostile_ovf_values(field, value):
    tag = field[1 : field.index(">")]
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "]]&gt;")
    text = he_full(**{field: f"<{tag}>{escaped}<"})
    try:
        c = convert({"ovf": text})
        launch_plan(c.params)
    except AgentError as exc:
        assert exc.code in (-32602, 11, 75) and exc.data["param"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "key",
    ["vmName", "memSize", "smp", "emulatedMachine", "devices", "custom_x", "xmlBase64", "cpuType"],
)
def test_hostile_vmconf_values(key, value):
    text = f"vmId={HE_FULL_ID}\nmemSize=256\n{key}={value}\n"
    try:
        c = convert({"vmConf": text})
        launch_plan(c.params)
    except AgentError as exc:
        assert exc.code in (-32602, 11, 75) and exc.data["param"]


def launch_plan(params):
    from agent.intake import launch

    return launch.plan(VM, params, intake_golden.VIRT)


APPLIANCE = """<?xml version="1.0" encoding="UTF-8"?>
<ovf:Envelope
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" ovf:version="0.9">
<References><File ovf:href="IMG/VOL" ovf:id="VOL" ovf:size="3"/></References>
<Section xsi:type="ovf:NetworkSection_Type"><Info>List of Networks</Info></Section>
<Section xsi:type="ovf:DiskSection_Type"><Disk ovf:actual_size="1" ovf:boot="true"
 ovf:disk-interface="VirtIO" ovf:diskId="VOL" ovf:fileRef="IMG/VOL"
 ovf:format="http://www.gnome.org/~markmc/qcow-image-format.html" ovf:parentRef=""
 ovf:size="10" ovf:vm_snapshot_id="00000000-0000-0000-0000-000000000001"
 ovf:volume-format="COW" ovf:volume-type="Sparse"/></Section>
<Content ovf:id="out" xsi:type="ovf:VirtualSystem_Type"><Name>oVirt-Engine-Appliance</Name>
<TemplateId>TPL</TemplateId><Description>appliance</Description><Domain/>
<CreationDate>2016/01/01 00:00:00</CreationDate><TimeZone/><IsAutoSuspend>false</IsAutoSuspend>
<VmType>1</VmType><default_display_type>0</default_display_type>
<default_boot_sequence>1</default_boot_sequence>
<Section ovf:id="TPL" ovf:required="false" xsi:type="ovf:OperatingSystemSection_Type">
<Info>Guest OS</Info><Description>OtherLinux</Description></Section>
<Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>1 CPU, 4096 Memory</Info>
<Item><rasd:Caption>4 virtual CPU</rasd:Caption><rasd:InstanceId>1</rasd:InstanceId>
<rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>1</rasd:num_of_sockets>
<rasd:cpu_per_socket>4</rasd:cpu_per_socket></Item>
<Item><rasd:Caption>4096 MB of memory</rasd:Caption><rasd:InstanceId>2</rasd:InstanceId>
<rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>
<rasd:VirtualQuantity>4096</rasd:VirtualQuantity></Item>
<Item><rasd:Caption>Drive 1</rasd:Caption><rasd:InstanceId>VOL</rasd:InstanceId>
<rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>IMG/VOL</rasd:HostResource>
<rasd:Parent>00000000-0000-0000-0000-000000000000</rasd:Parent>
<rasd:Template>00000000-0000-0000-0000-000000000000</rasd:Template>
<rasd:StorageId>00000000-0000-0000-0000-000000000000</rasd:StorageId></Item>
<Item><rasd:Caption>Ethernet 0 rhevm</rasd:Caption><rasd:InstanceId>3</rasd:InstanceId>
<rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>3</rasd:ResourceSubType>
<rasd:Connection>rhevm</rasd:Connection><rasd:Name>eth0</rasd:Name></Item>
<Item><rasd:Caption>Graphics</rasd:Caption><rasd:InstanceId>5</rasd:InstanceId>
<rasd:ResourceType>20</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
</Section></Content></ovf:Envelope>
"""


def test_appliance_style_ovf():
    """The imagefactory appliance OVF (reference §1.8): template-style, no Type/Device in
    any Item, default_display_type, all-zero StorageId, a NIC without MAC."""
    tpl = "3f2d0a8e-1c5b-4b0e-9f6d-2a7c9e8b1d01"
    img, vol = "8e4e8b4a-5b2e-4f0c-8a7d-1c9e2b3a4f01", "8e4e8b4a-5b2e-4f0c-8a7d-1c9e2b3a4f02"
    text = APPLIANCE.replace("TPL", tpl).replace("IMG", img).replace("VOL", vol)
    c = convert({"ovf": text}, vm=uuid.UUID(tpl))
    root = parse(launch_plan_for(uuid.UUID(tpl), c.params))
    assert root.findtext("memory") == str(4096 * 1024)
    assert root.find("cpu/topology").attrib == {"sockets": "1", "cores": "4", "threads": "1"}
    disk = root.find("devices/disk")
    assert disk.find("source").get("file") == (
        f"/images/00000000-0000-0000-0000-000000000000/images/{img}/{vol}"
    )
    assert disk.find("driver").get("type") == "qcow2" and disk.find("boot") is not None
    nic = root.find("devices/interface")
    assert nic.find("source").get("bridge") == "rhevm"
    assert nic.find("mac").get("address").startswith("00:16:3e:")
    assert root.find("devices/video/model").get("type") == "cirrus"
    assert [g.get("type") for g in root.iterfind("devices/graphics")] == ["vnc"]
    reasons = " ".join(w["data"]["reason"] for w in c.warnings)
    assert "no MAC" in reasons and "no graphics Item" in reasons


def launch_plan_for(vm, params):
    from agent.intake import launch

    return launch.plan(vm, params, intake_golden.VIRT).xml
