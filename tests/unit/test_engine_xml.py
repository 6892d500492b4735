"""Engine XML passthrough: checks and hvagent's host-local adjustments."""

import uuid

import pytest

from agent import domxml
from agent.config import VirtConfig
from agent.domxml import live
from agent.errors import InvalidParams, MissingParameter
from agent.intake import launch

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
CFG = VirtConfig(domain_type="qemu", console_log_dir="/logs")
OVIRT = "http://ovirt.org/vm/1.0"


def engine_xml(uuid_text=str(VM), extra=""):
    return f"""<domain type='kvm' xmlns:ovirt-vm='{OVIRT}'>
  <name>eng</name><uuid>{uuid_text}</uuid>
  <metadata><ovirt-vm:vm><ovirt-vm:clusterVersion>4.2</ovirt-vm:clusterVersion></ovirt-vm:vm>
  </metadata>
  <memory unit='MiB'>128</memory><vcpu>2</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <on_reboot>destroy</on_reboot>
  <devices>{extra}</devices>
</domain>"""


def test_engine_xml_adjusted():
    plan = launch.plan(VM, {"xml": engine_xml(), "custom": {"a": "b"}}, CFG)
    root = domxml.parse(plan.xml)
    assert root.get("type") == "qemu"
    assert root.find("on_reboot") is None
    assert root.find(f"metadata/{{{OVIRT}}}vm") is not None
    facts = live.facts(plan.xml)
    assert facts.metadata.destroy_on_reboot and facts.metadata.custom == {"a": "b"}
    assert (plan.name, facts.vcpus, facts.memory_mib) == ("eng", 2, 128)
    assert root.find("devices/serial/log").get("file") == f"/logs/{VM}.log"
    names = [t.get("name") for t in root.iterfind("devices/channel/target")]
    assert names == ["org.qemu.guest_agent.0"]


def test_engine_console_and_channel_are_kept():
    extra = (
        "<console type='pty'><target type='virtio'/></console>"
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
    )
    root = domxml.parse(launch.plan(VM, {"xml": engine_xml(extra=extra)}, CFG).xml)
    assert root.find("devices/serial") is None
    assert len(root.findall("devices/channel")) == 1


@pytest.mark.parametrize(
    ("xml", "error"),
    [
        ("<domain", InvalidParams),
        ('<!DOCTYPE d [<!ENTITY e "x">]><domain>&e;</domain>', InvalidParams),
        ("<vm/>", InvalidParams),
        ("<domain type='kvm'><name>x</name></domain>", MissingParameter),
        (engine_xml(uuid_text="nope"), InvalidParams),
        (engine_xml(uuid_text=str(uuid.uuid4())), InvalidParams),
        (engine_xml().replace("<name>eng</name>", ""), InvalidParams),
        (engine_xml().replace("type='kvm'", "type='xen'"), InvalidParams),
        (7, InvalidParams),
    ],
)
def test_bad_engine_xml_refused(xml, error):
    with pytest.raises(error) as exc:
        launch.plan(VM, {"xml": xml}, CFG)
    assert exc.value.data["param"] == "vmParams.xml"
    assert exc.value.data["reason"].startswith("vmParams.xml: ")


def test_graphics_devices_win_over_legacy_display():
    from agent.intake import vmparams

    params = {
        "vmId": str(VM),
        "memSize": 64,
        "display": "vnc",
        "keyboardLayout": "de",
        "devices": [{"type": "graphics", "device": "spice", "specParams": {"keyMap": "en-us"}}],
    }
    s = vmparams.from_params(VM, params, CFG)
    assert [(g.type, g.keymap) for g in s.graphics] == [("spice", "en-us")]
    xml = launch.from_spec(s).xml
    assert xml.count("<graphics") == 1 and 'passwdValidTo="1970-01-01T00:00:01"' in xml


def test_legacy_display_synthesises_one_console():
    from agent.intake import vmparams

    params = {"vmId": str(VM), "memSize": 64, "display": "vnc", "keyboardLayout": "de"}
    s = vmparams.from_params(VM, params, CFG)
    assert [(g.type, g.keymap, g.source) for g in s.graphics] == [("vnc", "de", "display")]
