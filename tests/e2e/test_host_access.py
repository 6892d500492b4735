"""The host-access policy on real libvirtd + QEMU (issue 15): what was accepted and run
before is refused before libvirt sees it."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.e2e.conftest import PREFIX, guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_emulator_script_is_refused_and_never_runs(rpc, virconn, tmp_path):
    marker = tmp_path / "emulator-ran"
    script = tmp_path / "evil.sh"
    script.write_text(f'#!/bin/sh\ntouch {marker}\nexec /usr/bin/qemu-system-x86_64 "$@"\n')
    script.chmod(0o755)
    vm_id = str(uuid.uuid4())
    xml = (
        f"<domain type='qemu'><name>{PREFIX}{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        "<memory unit='MiB'>64</memory><os><type>hvm</type></os>"
        f"<devices><emulator>{script}</emulator></devices></domain>"
    )
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    assert (err["code"], err["data"]["param"]) == (-32602, "vmParams.xml")
    assert "<emulator>" in err["data"]["reason"]
    assert vm_id not in [d.UUIDString() for d in virconn.listAllDomains(0)]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"devices": [{"type": "disk", "path": "/etc/shadow"}]}, "devices[0].path"),
        (
            {"devices": [{"type": "disk", "device": "cdrom", "path": "/etc/shadow"}]},
            "devices[0].path",
        ),
        (
            {"devices": [{"type": "disk", "path": "/dev/vda", "diskType": "block"}]},
            "devices[0].path",
        ),
        ({"kernel": "/etc/shadow"}, "kernel"),
        ({"initrd": "/root/.ssh/id_rsa"}, "initrd"),
    ],
)
async def test_host_files_are_refused(rpc, guest, virconn, change, param):
    vm_id, params = guest_params(guest, **change)
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=params)
    assert (err["code"], err["data"]["param"]) == (-32602, param), err
    assert vm_id not in [d.UUIDString() for d in virconn.listAllDomains(0)]


async def test_engine_attribute_writing_a_host_file_is_refused(rpc, virconn):
    """The file audio backend would have QEMU write where the engine says: the attribute is
    checked against the chardev roots, and the refusal names the element and attribute."""
    vm_id = str(uuid.uuid4())
    target = f"/var/tmp/hvagent-e2e-audio-{vm_id}.wav"
    xml = (
        f"<domain type='qemu'><name>{PREFIX}{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        "<memory unit='MiB'>64</memory><os><type>hvm</type></os><devices>"
        f"<sound model='ich6'><audio id='1'/></sound><audio id='1' type='file' path='{target}'/>"
        "</devices></domain>"
    )
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    assert (err["code"], err["data"]["param"]) == (-32602, "vmParams.xml"), err
    assert "/domain/devices/audio: attribute path" in err["data"]["reason"], err
    assert vm_id not in [d.UUIDString() for d in virconn.listAllDomains(0)]
    assert not os.path.exists(target)


async def test_rawio_engine_attribute_is_refused(rpc, virconn):
    vm_id = str(uuid.uuid4())
    xml = (
        f"<domain type='qemu'><name>{PREFIX}{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        "<memory unit='MiB'>64</memory><os><type>hvm</type></os><devices>"
        "<disk type='file' device='disk' rawio='yes'><target dev='vda'/></disk>"
        "</devices></domain>"
    )
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, "xml": xml})
    assert (err["code"], err["data"]["param"]) == (-32602, "vmParams.xml"), err
    assert "/domain/devices/disk: attribute rawio" in err["data"]["reason"], err
    assert vm_id not in [d.UUIDString() for d in virconn.listAllDomains(0)]
