"""The hosted-engine VM on real QEMU from an oVirt OVF (through `hvagent-client he-start`),
from the equivalent vm.conf and from an OVA the test builds: two disks (qcow2 + raw in the
file-domain layout under a temporary image root), a NIC on a test bridge, VNC + SPICE, rng.
Each reaches Up, and the live XML and displayInfo show what the file said. he-start refuses a
VM that is Up and recreates one that is Down."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from agent import domxml
from tests.client import RpcClient
from tests.e2e.conftest import PREFIX, Agent, _cleanup
from tests.intake_golden import HE_FULL_ID, he_full

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CLIENT = str(Path(sys.executable).with_name("hvagent-client"))
SD = "c0ffee00-1111-4222-8333-444455556666"
DISKS = (
    ("5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a01", "9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d01", "qcow2"),
    ("5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a02", "9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d02", "raw"),
)


@pytest.fixture
def bridge():
    name = f"hvhe{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["ip", "link", "add", "name", name, "type", "bridge"], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.fail(f"cannot create a test bridge (needs root / CAP_NET_ADMIN): {exc}")
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


@pytest_asyncio.fixture(loop_scope="session")
async def he(tmp_path, virconn):
    root = tmp_path / "images"
    root.mkdir()
    a = Agent(tmp_path, (f'virt.image_root="{root}"',))
    a.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = RpcClient(a.base, session)
            await client.wait_ready(180)
            yield a, client, root
    finally:
        code = a.stop()
        _cleanup()
        assert code == 0, f"hvagent exited {code}; log:\n{a.log.read_text()[-3000:]}"


def make_volumes(root: Path) -> list[Path]:
    out = []
    for img, vol, fmt in DISKS:
        path = root / SD / "images" / img / vol
        path.parent.mkdir(parents=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "1G"], check=True)
        out.append(path)
    return out


def ovf_text(vm_id: str, bridge: str) -> str:
    return he_full(
        **{
            HE_FULL_ID: vm_id,
            "<rasd:Connection>ovirtmgmt<": f"<rasd:Connection>{bridge}<",
            "<Name>HostedEngine<": f"<Name>{PREFIX}he-{vm_id[:8]}<",
        }
    )


def vm_conf(vm_id: str, bridge: str, volumes: list[Path]) -> str:
    """The vm.conf hosted-engine-setup would write for he_full.ovf's VM."""
    (img1, vol1, _), (img2, vol2, _) = DISKS
    return f"""# vm.conf for the e2e test
vmId={vm_id}
vmName={PREFIX}he-{vm_id[:8]}
memSize=256
smp=2
maxVCpus=4
cpuType=qemu64
emulatedMachine=pc
display=qxl
devices={{index:0,iface:virtio,format:cow,poolID:00000000-0000-0000-0000-000000000000,\
volumeID:{vol1},imageID:{img1},domainID:{SD},device:disk,type:disk,bootOrder:1}}
devices={{index:0,iface:scsi,format:raw,volumeID:{vol2},imageID:{img2},domainID:{SD},\
device:disk,type:disk}}
devices={{device:scsi,model:virtio-scsi,type:controller}}
devices={{nicModel:pv,macAddr:00:16:3e:62:28:65,linkActive:true,network:{bridge},\
device:bridge,type:interface}}
devices={{device:qxl,type:video,specParams:{{vram:8192,ram:65536,vgamem:16384,heads:1}}}}
devices={{device:vnc,type:graphics}}
devices={{device:spice,type:graphics}}
devices={{device:virtio,specParams:{{source:urandom}},model:virtio,type:rng}}
"""


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CLIENT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def check_live(client: RpcClient, virconn, vm_id: str, bridge: str, root: Path) -> None:
    stats = await client.wait_status(vm_id, "Up", 120)
    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    disks = {d.find("target").get("dev"): d for d in live.iterfind("devices/disk")}
    assert disks["vda"].find("driver").get("type") == "qcow2"
    assert disks["sda"].find("driver").get("type") == "raw"
    assert disks["vda"].find("boot").get("order") == "1" and disks["sda"].find("boot") is None
    for dev, (img, vol, _) in zip(("vda", "sda"), DISKS, strict=True):
        assert disks[dev].find("source").get("file") == str(root / SD / "images" / img / vol)
    nic = live.find("devices/interface")
    assert nic.find("source").get("bridge") == bridge
    assert nic.find("mac").get("address") == "00:16:3e:62:28:65"
    assert nic.find("target") is not None  # QEMU has its tap on the bridge
    assert [g.get("type") for g in live.iterfind("devices/graphics")] == ["vnc", "spice"]
    assert live.find("devices/rng/backend").text == "/dev/urandom"
    assert live.find("devices/video/model").get("type") == "qxl"
    names = [t.get("name") for t in live.iterfind("devices/channel/target")]
    assert "org.ovirt.hosted-engine-setup.0" in names
    assert live.findtext("on_poweroff") == "destroy" and live.findtext("on_crash") == "destroy"
    assert sorted(d["type"] for d in stats["displayInfo"]) == ["spice", "vnc"]
    ports = {g.get("type"): g.get("port") for g in live.iterfind("devices/graphics")}
    assert {d["type"]: str(d["port"]) for d in stats["displayInfo"]} == ports


async def test_he_start_from_ovf_then_up_refused_then_down_recreated(he, virconn, bridge):
    agent, client, root = he
    make_volumes(root)
    vm_id = str(uuid.uuid4())
    path = agent.tmp / "he.ovf"
    path.write_text(ovf_text(vm_id, bridge))
    sock = str(agent.tmp / "hvagent.sock")
    code, out, err = await cli("--socket", sock, "he-start", "--ovf", str(path))
    assert code == 0, err
    reply = json.loads(out)
    assert reply["vmId"] == vm_id and reply["status"] == "WaitForLaunch"
    assert any("no MAC" in w["data"]["reason"] for w in reply["warnings"])
    await check_live(client, virconn, vm_id, bridge, root)
    code, _, err = await cli("--socket", sock, "he-start", "--ovf", str(path))
    assert code == 1 and "VM exists and its status is Up" in err
    virconn.lookupByUUIDString(vm_id).destroy()  # QEMU gone behind hvagent's back
    await client.wait_status(vm_id, "Down", 60)
    code, out, err = await cli("--socket", sock, "he-start", "--ovf", str(path))
    assert code == 0, err
    await check_live(client, virconn, vm_id, bridge, root)
    assert await client.call("VM.destroy", vmID=vm_id) is True


async def test_from_equivalent_vm_conf(he, virconn, bridge):
    _, client, root = he
    volumes = make_volumes(root)
    vm_id = str(uuid.uuid4())
    result = await client.call(
        "VM.create", vmID=vm_id, vmParams={"vmConf": vm_conf(vm_id, bridge, volumes)}
    )
    assert result.get("warnings", []) == []
    await check_live(client, virconn, vm_id, bridge, root)
    assert await client.call("VM.destroy", vmID=vm_id) is True


async def test_from_an_ova(he, virconn, bridge, tmp_path):
    from tests.unit import test_intake_ova

    _, client, root = he
    vm_id = str(uuid.uuid4())
    ova_dir = tmp_path / "ova"
    ova_dir.mkdir()
    path = test_intake_ova.build_ova(ova_dir, ovf_text(vm_id, bridge))
    result = await client.call("VM.create", vmID=vm_id, vmParams={"ova": str(path)})
    assert result["vmId"] == vm_id
    await check_live(client, virconn, vm_id, bridge, root)
    assert await client.call("VM.destroy", vmID=vm_id) is True


async def test_a_cpu_model_this_qemu_lacks_falls_back_with_a_warning(he, virconn, bridge):
    """The host's CPU models come from libvirt's domain capabilities: a vm.conf naming a
    model this QEMU does not know starts on the default model, and the reply says so."""
    _, client, root = he
    volumes = make_volumes(root)
    vm_id = str(uuid.uuid4())
    conf = vm_conf(vm_id, bridge, volumes).replace("cpuType=qemu64", "cpuType=NoSuchCpu9000")
    result = await client.call("VM.create", vmID=vm_id, vmParams={"vmConf": conf})
    [warning] = [w for w in result["warnings"] if w["data"]["param"] == "cpuType"]
    assert "NoSuchCpu9000" in warning["data"]["reason"] and warning["code"] == 75
    await check_live(client, virconn, vm_id, bridge, root)
    live = domxml.parse(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    assert live.findtext("cpu/model") != "NoSuchCpu9000"
    assert await client.call("VM.destroy", vmID=vm_id) is True
