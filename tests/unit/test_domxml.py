import uuid

from hypothesis import given
from hypothesis import strategies as st

from agent import domxml
from agent.config import VirtConfig
from agent.domxml import live, metadata
from agent.domxml.metadata import VmMetadata
from agent.intake import vmparams
from agent.status import ExitInfo, ExitReason

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")


def build(**kw):
    p = {"vmId": str(VM), "memSize": 128, "vmName": "t", **kw}
    s = vmparams.from_params(VM, p, VirtConfig(domain_type="qemu", console_log_dir="/logs"))
    return domxml.to_string(domxml.build_domain(s, VmMetadata(custom={"k": "v"})))


def test_core_domain_xml():
    xml = build(
        kernel="/k",
        initrd="/i",
        kernelArgs="console=ttyS0",
        smp=2,
        devices=[{"type": "disk", "device": "disk", "path": "/d.qcow2", "format": "cow"}],
    )
    root = domxml.parse(xml)
    assert root.get("type") == "qemu"
    assert [c.tag for c in root][:4] == ["name", "uuid", "metadata", "memory"]
    assert root.findtext("memory") == str(128 * 1024)
    assert root.findtext("vcpu") == "2"
    assert root.findtext("os/kernel") == "/k"
    assert root.findtext("os/cmdline") == "console=ttyS0"
    assert root.find("features/acpi") is not None
    disk = root.find("devices/disk")
    assert disk.find("source").get("file") == "/d.qcow2"
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert root.find("devices/serial/log").get("file") == f"/logs/{VM}.log"
    names = [c.get("name") for c in root.iterfind("devices/channel/target")]
    assert names == ["org.qemu.guest_agent.0"]


def test_build_is_deterministic():
    assert build() == build()


def test_no_acpi_means_no_features():
    assert domxml.parse(build(acpiEnable="false")).find("features") is None


def test_live_facts_read_back():
    f = live.facts(build(smp=3))
    assert (f.vm_id, f.name, f.domain_type, f.vcpus, f.memory_mib, f.acpi) == (
        VM,
        "t",
        "qemu",
        3,
        128,
        True,
    )
    assert f.metadata == VmMetadata(custom={"k": "v"})


def test_foreign_domain_has_no_metadata():
    xml = (
        f"<domain type='kvm'><name>x</name><uuid>{VM}</uuid><memory unit='MiB'>64</memory></domain>"
    )
    f = live.facts(xml)
    assert f.metadata is None and f.memory_mib == 64 and f.vcpus == 1


def test_hardened_parser_refuses_entities():
    evil = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>'
    try:
        domxml.parse(evil)
    except domxml.XmlError as exc:
        assert "DOCTYPE" in str(exc)
    else:
        raise AssertionError("entity document accepted")


# What the wire check (agent/wirevalues.py) lets through: no surrogates, no control
# characters, no U+FFFE/U+FFFF (not XML characters).
_text = st.text(
    st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
    ),
    max_size=40,
)


@given(
    exit_reason=st.none() | st.sampled_from(list(ExitReason)),
    message=_text,
    launch_paused=st.booleans(),
    destroy_on_reboot=st.booleans(),
    custom=st.dictionaries(_text, _text, max_size=4),
    operation=st.none() | st.dictionaries(_text, _text, max_size=12),
    time_offset=st.none() | st.integers(-(10**12), 10**12),
    balloon=st.none() | st.integers(0, 2**53),
)
def test_metadata_round_trips(
    exit_reason, message, launch_paused, destroy_on_reboot, custom, operation, time_offset, balloon
):
    meta = VmMetadata(
        exit=ExitInfo.of(exit_reason, message or None) if exit_reason is not None else None,
        launch_paused=launch_paused,
        destroy_on_reboot=destroy_on_reboot,
        custom=custom,
        operation=operation,
        time_offset=time_offset,
        balloon_target_kib=balloon,
    )
    text = domxml.to_string(metadata.build(meta))
    assert metadata.read(domxml.parse(text)) == meta


def test_exit_messages_are_made_xml_safe():
    info = ExitInfo.of(ExitReason.LIBVIRT_START_FAILED, "bad\x00thing\x1b")
    assert info.message == "bad thing "
    assert info.code == 1
