"""Payload disks over JSON-RPC on libvirt's test driver: the defined domain's cdrom/floppy
points at an image in [payload] dir holding the request's files; the image goes when the VM
is destroyed or goes down; a create that fails, or bad payload input, leaves no file."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import os
import uuid

import pycdlib
import pytest
import pytest_asyncio
from lxml import etree

from agent import config
from tests.client import RpcClient
from tests.integration.conftest import SHARED_URI, Daemon, libvirt_uuids, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

USER_DATA = b"#cloud-config\nruncmd: [echo hi]\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def vm_params(vm_id: str, *devices, **kw):
    return {
        "vmId": vm_id,
        "vmName": f"pl-{vm_id[:8]}",
        "memSize": 64,
        "devices": list(devices),
        **kw,
    }


def payload_dev(files, device="cdrom", vol_id="config-2"):
    return {
        "type": "disk",
        "device": device,
        "specParams": {"vmPayload": {"volId": vol_id, "file": files}},
    }


def payload_dir(daemon) -> str:
    return daemon.cfg.payload.dir


def listing(daemon) -> list[str]:
    try:
        return os.listdir(payload_dir(daemon))
    except FileNotFoundError:
        return []


def disk_sources(virconn, vm_id: str) -> dict[str, tuple[str, str]]:
    """target dev -> (device, source file) of the defined domain's disks."""
    root = etree.fromstring(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    return {
        d.find("target").get("dev"): (d.get("device"), d.find("source").get("file"))
        for d in root.iterfind("devices/disk")
        if d.find("source") is not None
    }


def iso_file(path: str, name: str) -> tuple[bytes, str]:
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=name)
        return out.getvalue(), iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()


async def test_vm_payload_cdrom_is_built_attached_and_removed_on_destroy(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    dev = payload_dev({"openstack/latest/user_data": b64(USER_DATA)})
    await rpc.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, dev))
    await rpc.wait_status(vm_id, "Up", 30)
    (device, path) = disk_sources(virconn, vm_id)["hda"]  # the first IDE index
    assert device == "cdrom"
    assert os.path.dirname(path) == payload_dir(daemon)
    assert os.path.basename(path).startswith(vm_id) and path.endswith(".iso")
    assert iso_file(path, "/openstack/latest/user_data") == (USER_DATA, "config-2")
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"

    await rpc.call("VM.destroy", vmID=vm_id)
    assert not os.path.exists(path)
    assert not [n for n in listing(daemon) if n.startswith(vm_id)]


async def test_cloud_init_builds_a_cidata_cdrom_removed_when_the_vm_goes_down(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    cloud = {"userData": USER_DATA.decode(), "metaData": f"instance-id: {vm_id}\n"}
    await rpc.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, cloudInit=cloud))
    await rpc.wait_status(vm_id, "Up", 30)
    (device, path) = disk_sources(virconn, vm_id)["hdc"]
    assert device == "cdrom"
    assert iso_file(path, "/user-data") == (USER_DATA, "cidata")
    assert iso_file(path, "/meta-data")[0] == f"instance-id: {vm_id}\n".encode()

    virconn.lookupByUUIDString(vm_id).destroy()  # stopped outside hvagent
    await rpc.wait_status(vm_id, "Down", 30)
    assert not os.path.exists(path)
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_floppy_payload_on_fdc(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    dev = payload_dev({"Unattend.xml": b64(b"<unattend/>")}, "floppy", "sysprep")
    await rpc.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, dev))
    await rpc.wait_status(vm_id, "Up", 30)
    (device, path) = disk_sources(virconn, vm_id)["fda"]
    assert device == "floppy" and os.path.getsize(path) == 1474560
    await rpc.call("VM.destroy", vmID=vm_id)
    assert not os.path.exists(path)


ENGINE_XML = """<domain type="kvm" xmlns:ovirt-vm="http://ovirt.org/vm/1.0">
  <name>pl-{short}</name><uuid>{vm}</uuid><memory unit="MiB">64</memory><vcpu>1</vcpu>
  <os><type arch="x86_64">hvm</type></os>
  <metadata><ovirt-vm:vm>
    <ovirt-vm:device devtype="disk" name="hdc"><ovirt-vm:payload>
      <ovirt-vm:volId>config-2</ovirt-vm:volId>
      <ovirt-vm:file path="openstack/latest/user_data">{data}</ovirt-vm:file>
    </ovirt-vm:payload></ovirt-vm:device>
  </ovirt-vm:vm></metadata>
  <devices>
    <disk type="file" device="cdrom"><source file="PAYLOAD:" startupPolicy="optional"/>
      <target dev="hdc" bus="ide"/><readonly/></disk>
  </devices>
</domain>"""


async def test_engine_xml_payload_placeholder_becomes_the_image(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    xml = ENGINE_XML.format(short=vm_id[:8], vm=vm_id, data=b64(USER_DATA))
    await rpc.call("VM.create", vmID=vm_id, vmParams={"xml": xml})
    await rpc.wait_status(vm_id, "Up", 30)
    (_, path) = disk_sources(virconn, vm_id)["hdc"]
    assert os.path.dirname(path) == payload_dir(daemon)
    assert iso_file(path, "/openstack/latest/user_data") == (USER_DATA, "config-2")
    await rpc.call("VM.destroy", vmID=vm_id)
    assert not os.path.exists(path)


async def test_a_create_refused_after_the_image_was_written_leaves_no_file(rpc, daemon, virconn):
    """The name is taken (VMExists after the payload step): the image is removed again."""
    first = str(uuid.uuid4())
    await rpc.call("VM.create", vmID=first, vmParams=vm_params(first))
    second = str(uuid.uuid4())
    params = {**vm_params(second, payload_dev({"a": b64(b"1")})), "vmName": f"pl-{first[:8]}"}
    err = await rpc.error("VM.create", vmID=second, vmParams=params)
    assert err["code"] == 4
    assert not [n for n in listing(daemon) if second in n]
    await rpc.call("VM.destroy", vmID=first)


async def test_a_start_libvirt_refuses_removes_the_image(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    params = vm_params(vm_id, payload_dev({"a": b64(b"1")}), emulatedMachine="no such")
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    down = await rpc.wait_status(vm_id, "Down", 30)
    assert (down["exitCode"], down["exitReason"]) == (1, 3)
    assert not [n for n in listing(daemon) if vm_id in n]
    await rpc.call("VM.destroy", vmID=vm_id)


BAD = [
    (payload_dev(None), 11, "devices[0].specParams.vmPayload.file"),
    (payload_dev({"../x": b64(b"1")}), -32602, 'devices[0].specParams.vmPayload.file["../x"]'),
    (payload_dev({"/etc/x": b64(b"1")}), -32602, 'devices[0].specParams.vmPayload.file["/etc/x"]'),
    (payload_dev({"": b64(b"1")}), -32602, 'devices[0].specParams.vmPayload.file[""]'),
    (payload_dev({"a": "%%%"}), -32602, 'devices[0].specParams.vmPayload.file["a"]'),
    ({**payload_dev({"a": ""}), "device": "disk"}, -32602, "devices[0].device"),
]


@pytest.mark.parametrize(("dev", "code", "param"), BAD, ids=[b[2] for b in BAD])
async def test_bad_payloads_are_refused_before_any_file(rpc, daemon, virconn, dev, code, param):
    vm_id = str(uuid.uuid4())
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, dev))
    assert (err["code"], err["data"]["param"]) == (code, param)
    assert listing(daemon) == []
    assert vm_id not in libvirt_uuids(virconn)


@pytest_asyncio.fixture(loop_scope="session")
async def small_daemon(tmp_path, virconn):
    cfg = make_config(tmp_path, SHARED_URI)
    cfg = dataclasses.replace(cfg, payload=dataclasses.replace(cfg.payload, max_bytes=1000))
    d = Daemon(cfg)
    yield d
    if not d.task.done():
        assert await d.stop() == 0


async def test_payloads_above_max_bytes_are_refused(small_daemon, session, virconn):
    rpc = RpcClient(small_daemon.base, session)
    await rpc.wait_ready(30)
    vm_id = str(uuid.uuid4())
    devs = [payload_dev({"a": b64(b"x" * 600)}), payload_dev({"b": b64(b"y" * 600)})]
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, *devs))
    assert err["code"] == -32602
    assert err["data"]["param"] == 'devices[1].specParams.vmPayload.file["b"]'
    assert "max_bytes" in err["data"]["reason"]
    assert listing(small_daemon) == []


async def test_client_cloud_init_option(rpc, daemon, virconn, tmp_path):
    from tests.integration.test_cli_socket import cli

    vm_id = str(uuid.uuid4())
    user = tmp_path / "user-data"
    user.write_bytes(USER_DATA)
    params = tmp_path / "create.json"
    params.write_text(json.dumps({"vmParams": vm_params(vm_id)}))
    sock = daemon.cfg.rpc.socket
    code, out, err = await cli(
        "--socket", sock, "VM", "create", f"vmID={vm_id}", "-f", str(params), "--cloud-init",
        str(user),
    )  # fmt: skip
    assert code == 0 and json.loads(out)["vmId"] == vm_id, err
    await rpc.wait_status(vm_id, "Up", 30)
    (_, path) = next(v for v in disk_sources(virconn, vm_id).values() if v[0] == "cdrom")
    assert iso_file(path, "/user-data") == (USER_DATA, "cidata")
    assert iso_file(path, "/meta-data")[0] == f"instance-id: {vm_id}\n".encode()
    await rpc.call("VM.destroy", vmID=vm_id)
    code, _, err = await cli("--socket", sock, "VM", "getStats", "--meta-data", str(user))
    assert code == 2 and "--cloud-init" in err


async def test_images_of_a_vm_that_went_down_while_hvagent_was_away_are_removed(
    rpc, daemon, virconn, session, tmp_path
):
    vm_id = str(uuid.uuid4())
    await rpc.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, payload_dev({"a": ""})))
    await rpc.wait_status(vm_id, "Up", 30)
    (_, path) = disk_sources(virconn, vm_id)["hda"]
    assert await daemon.stop() == 0
    virconn.lookupByUUIDString(vm_id).destroy()  # stops while nobody watches
    assert os.path.exists(path)
    second = Daemon(daemon.cfg)
    try:
        rpc2 = RpcClient(second.base, session)
        await rpc2.wait_ready(30)
        await rpc2.wait_status(vm_id, "Down", 30)
        deadline = asyncio.get_running_loop().time() + 30
        while os.path.exists(path) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # the owner removes it as it starts (condition wait)
        assert not os.path.exists(path)
        await rpc2.call("VM.destroy", vmID=vm_id)
    finally:
        assert await second.stop() == 0


@pytest_asyncio.fixture(loop_scope="session")
async def strict_daemon(tmp_path, virconn):
    """[host_access] at its defaults: the payload dir is no image root."""
    cfg = make_config(tmp_path, SHARED_URI)
    cfg = dataclasses.replace(cfg, host_access=config.HostAccessConfig())
    d = Daemon(cfg)
    yield d
    if not d.task.done():
        assert await d.stop() == 0


async def test_host_access_allows_exactly_the_images_of_this_create(
    strict_daemon, session, virconn
):
    rpc = RpcClient(strict_daemon.base, session)
    await rpc.wait_ready(30)
    first = str(uuid.uuid4())
    await rpc.call("VM.create", vmID=first, vmParams=vm_params(first, payload_dev({"a": ""})))
    await rpc.wait_status(first, "Up", 30)
    (_, theirs) = disk_sources(virconn, first)["hda"]
    # Another create naming the first VM's image as a cdrom is refused, nothing written.
    second = str(uuid.uuid4())
    steal = {"type": "disk", "device": "cdrom", "path": theirs, "index": 1}
    params = vm_params(second, payload_dev({"b": ""}), steal)
    err = await rpc.error("VM.create", vmID=second, vmParams=params)
    assert (err["code"], err["data"]["param"]) == (-32602, "devices[1].path")
    assert [n for n in listing(strict_daemon) if n.startswith(second)] == []
    await rpc.call("VM.destroy", vmID=first)


def _leave_behind(root: str) -> list[str]:
    """What an hvagent killed in a floppy write leaves, plus two files that must stay."""
    os.makedirs(root)
    vm = uuid.uuid4()
    partial = f".{vm}.0123456789abcdef.img.tmp"
    with open(os.path.join(root, partial), "wb") as f:
        f.truncate(1474560)
    os.mkdir(os.path.join(root, f"{partial}.files-k2j4h5"))
    with open(os.path.join(root, f"{partial}.files-k2j4h5", "0"), "wb") as f:
        f.write(b"user data")
    kept = [f"{vm}.0123456789abcdef.iso", ".not-ours.tmp"]  # a live image, a stranger
    for name in kept:
        with open(os.path.join(root, name), "wb") as f:
            f.write(b"x")
    return kept


async def test_startup_removes_half_written_images_a_killed_hvagent_left(tmp_path, session):
    cfg = make_config(tmp_path, SHARED_URI)
    kept = _leave_behind(cfg.payload.dir)
    d = Daemon(cfg)
    await RpcClient(d.base, session).wait_ready(30)
    try:
        assert sorted(os.listdir(cfg.payload.dir)) == sorted(kept)
    finally:
        assert await d.stop() == 0
