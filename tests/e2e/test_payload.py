"""Payload disks on real QEMU: a floppy payload is attached on fdc and a cloudInit cdrom
beside it; the images hold the label and files asked for (mtools, pycdlib); they are removed
when the guest powers itself off; the engine XML `PAYLOAD:` form gives its ISO too. Reading
them inside the guest is issue 13 part B."""

from __future__ import annotations

import base64
import io
import os
import subprocess

import pycdlib
import pytest

from agent import domxml
from tests.client import EventStream
from tests.e2e.conftest import PREFIX, guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

UNATTEND = b"<?xml version='1.0'?><unattend/>\n"
USER_DATA = "#cloud-config\nruncmd: [echo payload]\n"


def mtools(*argv: str) -> bytes:
    env = {"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, env=env, capture_output=True, check=True).stdout


async def test_floppy_and_cloud_init_payloads_on_qemu(rpc, agent, guest):
    vm_id, params = guest_params(
        guest,
        "poweroff_after=25",
        devices=[
            {
                "type": "disk",
                "device": "floppy",
                "specParams": {
                    "vmPayload": {
                        "volId": "sysprep",
                        "file": {"Unattend.xml": base64.b64encode(UNATTEND).decode()},
                    }
                },
            }
        ],
        cloudInit={"userData": USER_DATA, "metaData": "instance-id: e2e-payload\n"},
    )
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 120)
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        disks = {d.get("device"): d for d in root.iterfind("devices/disk")}
        floppy, cdrom = disks["floppy"], disks["cdrom"]
        assert floppy.find("target").get("bus") == "fdc"
        assert floppy.find("target").get("dev") == "fda"
        fpath, cpath = floppy.find("source").get("file"), cdrom.find("source").get("file")
        payload_dir = str(agent.tmp / "payload")
        assert os.path.dirname(fpath) == payload_dir == os.path.dirname(cpath)
        assert os.path.getsize(fpath) == 1474560
        assert b"SYSPREP" in mtools("mlabel", "-i", fpath, "-s", "::")
        assert mtools("mtype", "-i", fpath, "::/Unattend.xml") == UNATTEND
        iso = pycdlib.PyCdlib()
        iso.open(cpath)
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/user-data")
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        iso.close()
        assert out.getvalue() == USER_DATA.encode()

        # The guest powers itself off: both images go before Down is reported.
        down = await events.wait_status(vm_id, "Down", 180)
        assert down["exitReason"] == 7
        assert not os.path.exists(fpath) and not os.path.exists(cpath)
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        assert os.listdir(payload_dir) == []
    finally:
        await events.close()


async def test_engine_xml_payload_on_qemu(rpc, agent, guest):
    """The engine's form: `<source file="PAYLOAD:"/>` plus ovirt-vm payload metadata gives
    the same kind of image, attached where the placeholder was."""
    vm_id, _ = guest_params(guest)
    data = base64.b64encode(USER_DATA.encode()).decode()
    xml = f"""<domain type="qemu" xmlns:ovirt-vm="http://ovirt.org/vm/1.0">
  <name>{PREFIX}{vm_id[:8]}</name><uuid>{vm_id}</uuid>
  <memory unit="MiB">256</memory><vcpu>1</vcpu>
  <metadata><ovirt-vm:vm>
    <ovirt-vm:device devtype="disk" name="hdc"><ovirt-vm:payload>
      <ovirt-vm:volId>config-2</ovirt-vm:volId>
      <ovirt-vm:file path="openstack/latest/user_data">{data}</ovirt-vm:file>
    </ovirt-vm:payload></ovirt-vm:device>
  </ovirt-vm:vm></metadata>
  <os><type arch="x86_64">hvm</type><kernel>{guest["kernel"]}</kernel>
    <initrd>{guest["initrd"]}</initrd><cmdline>console=ttyS0 panic=-1</cmdline></os>
  <devices>
    <disk type="file" device="cdrom"><driver name="qemu" type="raw"/>
      <source file="PAYLOAD:" startupPolicy="optional"/>
      <target dev="hdc" bus="ide"/><readonly/></disk>
  </devices>
</domain>"""
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
        await events.wait_status(vm_id, "Up", 120)
        root = domxml.parse((await rpc.call("Host.dumpxmls", vmList=[vm_id]))[vm_id])
        (cdrom,) = [d for d in root.iterfind("devices/disk") if d.get("device") == "cdrom"]
        path = cdrom.find("source").get("file")
        assert os.path.dirname(path) == str(agent.tmp / "payload")
        iso = pycdlib.PyCdlib()
        iso.open(path)
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, joliet_path="/openstack/latest/user_data")
        assert iso.pvd.volume_identifier.decode().strip() == "config-2"
        iso.close()
        assert out.getvalue() == USER_DATA.encode()
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        assert not os.path.exists(path)
    finally:
        await events.close()
