"""VDSM's host-side behaviour an unmodified engine counts on (issue 14), in the pure intake
and the host-facts seam: display networks, CPU flag spelling, unlocked VNC, restore from
hibernation, consoles, kernel arguments, SPICE channels without TLS."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from lxml import etree

from agent import domxml, hostnet
from agent.config import VirtConfig
from agent.errors import CreateFailed, InvalidParams
from agent.intake import launch, vmparams
from tests.unit.test_engine_xml import engine_xml

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
CFG = VirtConfig(domain_type="qemu", console_log_dir="/logs", console_socket_dir="/vmcons")
NETWORKS = {"ovirtmgmt": "192.0.2.1"}
CPU_MAP = Path("/usr/share/libvirt/cpu_map/x86_features.xml")


def legacy(**params):
    return {"vmId": str(VM), "memSize": 64, **params}


# -- the host-facts seam (real interfaces of this host) -----------------------------------


def test_hostnet_loopback_and_refusals():
    assert hostnet.address_of("lo") == "127.0.0.1"
    assert hostnet.address_of("nosuchif0") is None
    for name in ("", "..", "a/b", "x" * 16, "-o", "lo\x00", "lo "):
        assert hostnet.address_of(name) is None, name


def test_hostnet_ipv6_takes_the_first_global_address():
    table = (
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe800000000000000000000000000001 02 40 20 80     br0\n"
        "fd000000000000000000000000000005 02 40 00 80     br0\n"
    )
    assert hostnet._ipv6("br0", table) == "fd00::5"
    assert hostnet._ipv6("lo", table) is None  # scope host


# -- CPU flags ----------------------------------------------------------------------------


def test_vdsm_cpu_flags_are_written_in_libvirt_spelling():
    flags = "+sse4_1,+sse4_2,-pclmulqdq,+tsc_deadline_timer,+lahf_lm,+vmx"
    spec = vmparams.from_params(VM, legacy(cpuType=f"Westmere,{flags}"), CFG)
    assert spec.cpu is not None
    assert [n for _, n in spec.cpu.features] == [
        "sse4.1", "sse4.2", "pclmuldq", "tsc-deadline", "lahf_lm", "vmx",
    ]  # fmt: skip
    assert ("disable", "pclmuldq") in spec.cpu.features


@pytest.mark.skipif(not CPU_MAP.exists(), reason="libvirt's cpu_map is not installed")
def test_every_translated_flag_is_a_libvirt_cpu_map_name():
    from agent.intake.cpu import _LIBVIRT_FLAG

    names = {f.get("name") for f in etree.parse(str(CPU_MAP)).iter("feature")}
    assert set(_LIBVIRT_FLAG.values()) <= names, set(_LIBVIRT_FLAG.values()) - names
    assert not set(_LIBVIRT_FLAG) & names  # the VDSM spellings are not libvirt's


# -- engine XML: display networks and unlocked VNC ---------------------------------------

VNC_NET = (
    "<graphics type='vnc' port='-1' autoport='yes' passwd='*****' "
    "passwdValidTo='1970-01-01T00:00:01'><listen type='network' network='vdsm-{}'/></graphics>"
)


def test_engine_display_network_becomes_the_hosts_address():
    plan = launch.plan(
        VM, {"xml": engine_xml(extra=VNC_NET.format("ovirtmgmt"))}, CFG, address_of=NETWORKS.get
    )
    (listen,) = domxml.parse(plan.xml).iterfind("devices/graphics/listen")
    assert dict(listen.attrib) == {"type": "address", "address": "192.0.2.1"}


def test_engine_display_network_unknown_here_is_refused_naming_it():
    with pytest.raises(CreateFailed) as exc:
        launch.plan(VM, {"xml": engine_xml(extra=VNC_NET.format("blue"))}, CFG)
    assert exc.value.code == 9 and exc.value.data["network"] == "blue"
    assert exc.value.data["param"] == "vmParams.xml" and "'blue'" in exc.value.reason


@pytest.mark.parametrize("valid_to", [None, ""])
def test_unlocked_engine_vnc_is_refused_unless_sasl(valid_to):
    attr = "" if valid_to is None else f" passwdValidTo='{valid_to}'"
    vnc = f"<graphics type='vnc' autoport='yes' passwd='x'{attr}/>"
    with pytest.raises(CreateFailed) as exc:
        launch.plan(VM, {"xml": engine_xml(extra=vnc)}, CFG)
    assert exc.value.code == 9 and "passwdValidTo" in exc.value.reason
    sasl = VirtConfig(domain_type="qemu", console_log_dir="/logs", vnc_sasl=True)
    assert "<graphics" in launch.plan(VM, {"xml": engine_xml(extra=vnc)}, sasl).xml
    # SPICE without passwdValidTo is not VDSM's concern (is_vnc_secure checks VNC only)
    spice = "<graphics type='spice' autoport='yes'/>"
    assert "<graphics" in launch.plan(VM, {"xml": engine_xml(extra=spice)}, CFG).xml


# -- restore from hibernation -------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["hiberVolHandle", "memoryDumpVolume", "memoryConfVolume", "restoreFromSnapshot"]
)
def test_restore_from_hibernation_is_refused_naming_the_key(key):
    value = True if key == "restoreFromSnapshot" else "a,b,c,d,e,f"
    for params in (legacy(**{key: value}), {"xml": engine_xml(), key: value}):
        with pytest.raises(CreateFailed) as exc:
            launch.plan(VM, params, CFG)
        assert exc.value.data["param"] == key and key in exc.value.reason
    with pytest.raises(InvalidParams) as exc:
        launch.plan(VM, legacy(**{key: "a\x00b"}), CFG)
    assert exc.value.data["param"] == key


# -- consoles, kernel, SPICE ----------------------------------------------------------------


def test_consoles_as_vdsm_writes_them():
    def spec(**sp):
        return vmparams.from_params(
            VM, legacy(devices=[{"type": "console", "specParams": sp}]), CFG
        )

    plain = spec()  # consoleType defaults to virtio
    assert [c.socket for c in plain.consoles] == [None] and plain.serial_socket is None
    sock = f"/vmcons/{VM}.sock"
    assert [c.socket for c in spec(enableSocket=True).consoles] == [sock]
    serial = spec(consoleType="serial", enableSocket="true")
    assert serial.consoles == () and serial.serial_socket == sock
    assert spec(consoleType="serial").serial_socket is None
    xml = domxml.parse(launch.from_spec(serial).xml)
    assert xml.find("devices/serial").get("type") == "unix"
    assert xml.find("devices/serial/source").get("path") == sock
    assert xml.find("devices/serial/log").get("file") == f"/logs/{VM}.log"
    with pytest.raises(InvalidParams) as exc:
        vmparams.from_params(VM, legacy(devices=[{"type": "console"}] * 2), CFG)
    assert exc.value.data["param"] == "devices[1].type"


def test_clock_and_smbios_as_vdsm_writes_them():
    root = domxml.parse(launch.from_spec(vmparams.from_params(VM, legacy(), CFG)).xml)
    timers = {t.get("name"): dict(t.attrib) for t in root.iterfind("clock/timer")}
    assert timers["rtc"]["tickpolicy"] == "catchup" and timers["pit"]["tickpolicy"] == "delay"
    assert timers["hpet"]["present"] == "no"
    assert root.find("os/smbios").get("mode") == "sysinfo"
    entries = {e.get("name"): e.text for e in root.iterfind("sysinfo/system/entry")}
    assert entries == {
        "manufacturer": "oVirt", "product": "oVirt Node", "serial": str(VM),
        "uuid": str(VM), "family": "oVirt",
    }  # fmt: skip


def test_kernel_args_without_a_kernel_are_refused():
    with pytest.raises(InvalidParams) as exc:
        vmparams.from_params(VM, legacy(kernelArgs="console=ttyS0"), CFG)
    assert exc.value.data["param"] == "kernelArgs" and "kernel" in exc.value.reason
    spec = vmparams.from_params(VM, legacy(kernel="/k", kernelArgs="quiet"), CFG)
    assert spec.kernel_args == "quiet"


def test_spice_secure_channels_without_tls_start_with_a_warning():
    params = legacy(display="qxl", spiceSecureChannels="smain,sinputs")
    plan = launch.plan(VM, params, CFG)
    assert 'mode="secure"' not in plan.xml
    (warning,) = plan.warnings
    assert warning["code"] == 75 and warning["data"]["param"] == "spiceSecureChannels"
    assert "main, inputs" in warning["data"]["reason"]
    tls = VirtConfig(domain_type="qemu", console_log_dir="/logs", spice_tls=True)
    plan = launch.plan(VM, params, tls)
    assert plan.warnings == () and plan.xml.count('mode="secure"') == 2


def test_engine_spice_secure_channels_without_tls_are_dropped_with_a_warning():
    spice = (
        "<graphics type='spice' autoport='yes' tlsPort='-1' defaultMode='secure' "
        "passwd='*****' passwdValidTo='1970-01-01T00:00:01'>"
        "<channel name='main' mode='secure'/><channel name='inputs' mode='secure'/>"
        "<channel name='cursor' mode='insecure'/></graphics>"
    )
    plan = launch.plan(VM, {"xml": engine_xml(extra=spice)}, CFG)
    graphics = domxml.parse(plan.xml).find("devices/graphics")
    assert graphics.get("tlsPort") is None and graphics.get("defaultMode") is None
    assert [c.get("name") for c in graphics.iterfind("channel")] == ["cursor"]
    (warning,) = plan.warnings
    assert warning["code"] == 75 and warning["data"]["param"] == "vmParams.xml"
    assert "main, inputs" in warning["data"]["reason"]
    tls = VirtConfig(domain_type="qemu", console_log_dir="/logs", spice_tls=True)
    plan = launch.plan(VM, {"xml": engine_xml(extra=spice)}, tls)
    assert plan.warnings == () and plan.xml.count('mode="secure"') == 2


EMPTY_CDROM = """<disk type="file" device="cdrom" snapshot="no">
  <driver name="qemu" type="raw" error_policy="report"/>
  <source file="" startupPolicy="optional">
    <seclabel model="dac" type="none" relabel="no"/>
  </source>
  <target dev="sdc" bus="sata"/><readonly/>
</disk>"""


def test_engine_empty_cdrom_is_written_as_libvirt_stores_it():
    # oVirt's empty cdrom: libvirt reads file="" as no medium and ignores a device
    # seclabel's type, but its schema (hvagent defines with validation) refuses both.
    plan = launch.plan(VM, {"xml": engine_xml(extra=EMPTY_CDROM)}, CFG)
    (disk,) = domxml.parse(plan.xml).iterfind("devices/disk[@device='cdrom']")
    source = disk.find("source")
    assert dict(source.attrib) == {"startupPolicy": "optional"}
    assert dict(source.find("seclabel").attrib) == {"model": "dac", "relabel": "no"}
