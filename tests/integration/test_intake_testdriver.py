"""Intake on libvirt's test driver: VM.create over JSON-RPC from an OVF and a vm.conf
answers WaitForLaunch plus warnings; bad OVF / vm.conf / OVA input gets its code and param,
and nothing reaches libvirt or the image root."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
import pytest_asyncio

from agent import config
from tests import intake_golden
from tests.client import RpcClient
from tests.intake_golden import HE_FULL_ID, he_full
from tests.integration.conftest import Daemon, libvirt_uuids, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _volumes(root):
    """The two volumes of he_full.ovf in the file-domain layout under `root`."""
    sd = root / "c0ffee00-1111-4222-8333-444455556666" / "images"
    for img, vol in (
        ("5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a01", "9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d01"),
        ("5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a02", "9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d02"),
    ):
        (sd / img).mkdir(parents=True)
        (sd / img / vol).write_bytes(b"")


@pytest_asyncio.fixture(loop_scope="session")
async def daemon_with_images(tmp_path, virconn):
    cfg = make_config(tmp_path, "test:///default")
    cfg = dataclasses.replace(
        cfg, virt=dataclasses.replace(cfg.virt, image_root=str(tmp_path / "images"))
    )
    assert isinstance(cfg, config.Config)
    (tmp_path / "images").mkdir()
    d = Daemon(cfg)
    yield d, tmp_path / "images"
    if not d.task.done():
        assert await d.stop() == 0


async def test_create_from_ovf_answers_with_warnings(daemon_with_images, session, virconn):
    d, root = daemon_with_images
    _volumes(root)
    client = RpcClient(d.base, session)
    await client.wait_ready()
    result = await client.call("VM.create", vmID=HE_FULL_ID, vmParams={"ovf": he_full()})
    assert result["vmId"] == HE_FULL_ID
    reasons = [w["data"]["reason"] for w in result["warnings"]]
    assert any("nic2 has no MAC" in r for r in reasons)
    assert all(w["code"] == 75 for w in result["warnings"])
    await client.wait_status(HE_FULL_ID, "Up")
    xml = virconn.lookupByUUIDString(HE_FULL_ID).XMLDesc(0)
    assert "org.ovirt.hosted-engine-setup.0" in xml and str(root) in xml
    await client.call("VM.destroy", vmID=HE_FULL_ID)


async def test_create_from_vmconf(daemon_with_images, session, virconn):
    d, root = daemon_with_images
    vm = "82a24281-8a25-4772-b9c9-45971e811cb3"
    vol = root / "2164faa8-b18b-4036-b686-5a6eec95081b/images/f270b541-a113-4815-b72e-b0ec3e1ed6b6"
    vol.mkdir(parents=True)
    (vol / "19cc3c17-5c81-4750-b807-09db88a67ad5").write_bytes(b"")
    client = RpcClient(d.base, session)
    await client.wait_ready()
    text = (intake_golden.DIR / "setup_vm_test.conf").read_text()
    result = await client.call("VM.create", vmID=vm, vmParams={"vmConf": text})
    assert result.get("warnings", []) == []
    await client.wait_status(vm, "Up")
    xml = virconn.lookupByUUIDString(vm).XMLDesc(0)
    assert str(vol) in xml and "org.ovirt.hosted-engine-setup.0" in xml
    await client.call("VM.destroy", vmID=vm)


BAD = [
    ({"ovf": "not xml"}, -32602, "vmParams.ovf"),
    ({"ovf": he_full(**{"MegaBytes": "KiloBytes"})}, -32602, "vmParams.ovf"),
    ({"ovf": he_full(**{'ovf:id="7e1a5f0c-3b1d-4f7e-9a55-0c2d9e8b4a11"': ""})}, 11, "vmParams.ovf"),
    (
        {"ovf": he_full(**{"<rasd:VirtualQuantity>256</rasd:VirtualQuantity>": ""})},
        11,
        "vmParams.ovf",
    ),
    ({"ovf": he_full()}, -32602, "vmParams.ovf"),  # volumes missing under the image root
    ({"vmConf": f"vmId={HE_FULL_ID}\ndevices={{type:disk\n"}, -32602, "vmParams.vmConf"),
    ({"ova": "/nonexistent.ova"}, -32602, "vmParams.ova"),
    ({"ovf": "<a>\x00</a>"}, -32602, "vmParams.ovf"),
]


@pytest.mark.parametrize("params,code,param", BAD)
async def test_bad_intake_leaves_nothing(params, code, param, daemon_with_images, session, virconn):
    d, root = daemon_with_images
    client = RpcClient(d.base, session)
    await client.wait_ready()
    before = libvirt_uuids(virconn)
    err = await client.error("VM.create", vmID=HE_FULL_ID, vmParams=params)
    assert (err["code"], err["data"]["param"]) == (code, param)
    assert err["data"]["reason"]
    assert libvirt_uuids(virconn) == before
    assert await client.call("Host.getVMList") == [] or HE_FULL_ID not in str(
        await client.call("Host.getVMList")
    )
    assert list(root.rglob("*")) == []
    assert uuid.UUID(HE_FULL_ID)


async def test_create_from_ova_extracts_then_rolls_back_on_refusal(
    daemon_with_images, session, virconn, tmp_path
):
    from tests.unit.test_intake_ova import build_ova

    d, root = daemon_with_images
    client = RpcClient(d.base, session)
    await client.wait_ready()
    path = build_ova(tmp_path)
    result = await client.call("VM.create", vmID=HE_FULL_ID, vmParams={"ova": str(path)})
    assert result["vmId"] == HE_FULL_ID
    await client.wait_status(HE_FULL_ID, "Up")
    vols = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(vols) == 2
    # A second create of the running VM is refused (VMExists); the kept volumes stay.
    err = await client.error("VM.create", vmID=HE_FULL_ID, vmParams={"ova": str(path)})
    assert err["code"] == 4
    assert sorted(p for p in root.rglob("*") if p.is_file()) == vols
    await client.call("VM.destroy", vmID=HE_FULL_ID)


async def test_cli_create_and_he_start_against_absent_up_and_down(
    daemon_with_images, session, virconn, tmp_path
):
    from tests.integration.test_cli_socket import cli

    d, root = daemon_with_images
    _volumes(root)
    client = RpcClient(d.base, session)
    await client.wait_ready()
    ovf_file = tmp_path / "he.ovf"
    ovf_file.write_text(he_full())
    sock = d.cfg.rpc.socket
    # absent -> created (the VM id comes from the OVF)
    code, out, err = await cli("--socket", sock, "he-start", "--ovf", str(ovf_file))
    assert code == 0, err
    assert json.loads(out)["vmId"] == HE_FULL_ID
    await client.wait_status(HE_FULL_ID, "Up")
    # Up -> refused, exit 1, the VM untouched
    code, out, err = await cli("--socket", sock, "he-start", "--ovf", str(ovf_file))
    assert code == 1 and "VM exists and its status is Up" in err
    assert (await client.call("VM.getStats", vmID=HE_FULL_ID))[0]["status"] == "Up"
    # Down (stopped behind hvagent's back) -> destroyed, then created again
    virconn.lookupByUUIDString(HE_FULL_ID).destroy()
    await client.wait_status(HE_FULL_ID, "Down")
    code, out, err = await cli("--socket", sock, "he-start", "--ovf", str(ovf_file))
    assert code == 0, err
    await client.wait_status(HE_FULL_ID, "Up")
    await client.call("VM.destroy", vmID=HE_FULL_ID)
    # VM create --vm-conf FILE sends the text; the warnings come back in the result
    conf = tmp_path / "vm.conf"
    conf.write_text((intake_golden.DIR / "setup_vm_test_xml.conf").read_text())
    code, out, err = await cli("--socket", sock, "VM", "create", "--vm-conf", str(conf))
    assert code == 1 and "does not exist" in err  # its XML's volume is not under the root
    code, out, err = await cli("--socket", sock, "VM", "create", "--ovf", str(conf))
    assert code == 2 and "give --vm-id" in err
