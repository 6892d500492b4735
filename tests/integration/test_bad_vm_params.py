"""Bad vmParams over JSON-RPC: each is answered with its code and the offending field, and
nothing is left behind, neither in hvagent nor in libvirt."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import libvirt_uuids

pytestmark = pytest.mark.asyncio(loop_scope="session")

DROP = object()
PCI = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x07", "function": "0x0"}


def dev(**kw):
    return {"devices": [kw]}


BAD = [
    ({"memSize": DROP}, 11, "memSize"),
    ({"vmId": DROP}, 11, "vmId"),
    ({"memSize": "x"}, -32602, "memSize"),
    ({"memSize": 0}, 11, "memSize"),  # VDSM: "Must specify nonzero memSize" (11)
    ({"memSize": -5}, -32602, "memSize"),
    ({"memSize": True}, -32602, "memSize"),
    ({"smp": "0"}, -32602, "smp"),
    ({"smp": 1.5}, -32602, "smp"),
    ({"vmId": "not-a-uuid"}, 11, "vmId"),  # VDSM: "vmId must be a valid UUID" (11)
    ({"vmId": 7}, -32602, "vmId"),
    ({"vmId": str(uuid.UUID(int=1))}, -32602, "vmId"),
    ({"vmName": "a/b"}, -32602, "vmName"),
    ({"vmName": 7}, -32602, "vmName"),
    ({"kvmEnable": "maybe"}, -32602, "kvmEnable"),
    ({"acpiEnable": 3}, -32602, "acpiEnable"),
    ({"tabletEnable": "sometimes"}, -32602, "tabletEnable"),
    ({"bootMenuEnable": []}, -32602, "bootMenuEnable"),
    ({"kernel": "vmlinuz"}, -32602, "kernel"),
    ({"custom": {"a": 1}}, -32602, "custom"),
    ({"devices": {"type": "disk"}}, -32602, "devices"),
    ({"devices": ["disk"]}, -32602, "devices[0]"),
    (dev(device="disk"), 11, "devices[0].type"),
    (dev(type="graphicz"), 75, "devices[0].type"),
    ({"smp": 4, "maxVCpus": 2}, -32602, "maxVCpus"),
    ({"smp": 3, "smpCoresPerSocket": 2}, -32602, "smpCoresPerSocket"),
    ({"cpuType": "Westmere,vmx"}, -32602, "cpuType"),
    ({"cpuType": "bad model"}, -32602, "cpuType"),
    ({"cpuPinning": {"5": "0"}}, -32602, "cpuPinning"),
    ({"cpuPinning": {"0": "zero"}}, -32602, "cpuPinning"),
    ({"numaTune": {"mode": "strict"}}, 11, "numaTune.nodeset"),
    ({"numaTune": {"mode": "loose", "nodeset": "0"}}, -32602, "numaTune.mode"),
    ({"guestNumaNodes": [{"cpus": "0", "memory": 32}]}, -32602, "guestNumaNodes"),
    ({"guestNumaNodes": [{"memory": 64}]}, 11, "guestNumaNodes[0].cpus"),
    ({"maxMemSize": 32}, -32602, "maxMemSize"),
    ({"maxMemSlots": 4}, 11, "maxMemSize"),
    ({"memGuaranteedSize": 128}, -32602, "memGuaranteedSize"),
    ({"boot": "cx"}, -32602, "boot"),
    (
        {"boot": "c", "devices": [{"type": "disk", "path": "/a", "bootOrder": 1}]},
        -32602,
        "boot",
    ),
    ({"timeOffset": "soon"}, -32602, "timeOffset"),
    ({"hypervEnable": "perhaps"}, -32602, "hypervEnable"),
    ({"xml": "<domain"}, -32602, "vmParams.xml"),
    (
        {"xml": '<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>'},
        -32602,
        "vmParams.xml",
    ),
    ({"xml": "<vm/>"}, -32602, "vmParams.xml"),
    ({"xml": "<domain type='kvm'><name>n</name></domain>"}, 11, "vmParams.xml"),
    (
        {
            "xml": "<domain type='kvm'><name>n</name><uuid>"
            + str(uuid.UUID(int=2))
            + "</uuid></domain>"
        },
        -32602,
        "vmParams.xml",
    ),
    ({"xml": 5}, -32602, "vmParams.xml"),
    ({"display": "rdp"}, 9, "display"),  # VDSM: createErr
    (
        dev(type="console", specParams={"consoleType": "parallel"}),
        -32602,
        "devices[0].specParams.consoleType",
    ),
    (dev(type="channel", device="unix"), 11, "devices[0].name"),
    (
        dev(type="channel", device="unix", name="org.qemu.guest_agent.0"),
        -32602,
        "devices[0].name",
    ),
    (dev(type="smartcard", specParams={"mode": "host"}), -32602, "devices[0].specParams.mode"),
    (dev(type="tpm", specParams={"model": "tpm-spapr"}), -32602, "devices[0].specParams.model"),
    ({"devices": [{"type": "tpm"}, {"type": "tpm"}]}, -32602, "devices[1].type"),
    (dev(type="memory", size="512"), 11, "maxMemSize"),
    (dev(type="memory"), 11, "devices[0].size"),
    ({"maxMemSize": 128, **dev(type="memory", size="512")}, -32602, "devices"),
    (
        {"devices": [{"type": "graphics", "device": "vnc"}, {"type": "graphics", "device": "vnc"}]},
        -32602,
        "devices[1].device",
    ),
    (dev(type="disk", device="disk"), 11, "devices[0].path"),
    (dev(type="disk", device="tape", path="/x"), -32602, "devices[0].device"),
    (dev(type="disk", path="rel.img"), -32602, "devices[0].path"),
    (dev(type="disk", path="/x", format="vmdk"), -32602, "devices[0].format"),
    (dev(type="disk", path="/x", iface="usb"), -32602, "devices[0].iface"),
    (dev(type="disk", path="/x", iface="virtio", name="sda"), -32602, "devices[0].name"),
    (dev(type="disk", path="/x", index="26"), -32602, "devices[0].index"),
    (dev(type="disk", path="/x", bootOrder="0"), -32602, "devices[0].bootOrder"),
    (dev(type="disk", path="/x", cache="fast"), -32602, "devices[0].cache"),
    (dev(type="disk", path="/x", shared="maybe"), -32602, "devices[0].shared"),
    (dev(type="disk", path="/x", address={"slot": "0x07"}), 11, "devices[0].address.type"),
    (
        dev(type="disk", path="/x", address={**PCI, "color": "red"}),
        -32602,
        "devices[0].address.color",
    ),
    (
        dev(type="disk", path="/x", address={**PCI, "slot": "0x07'/><x"}),
        -32602,
        "devices[0].address.slot",
    ),
    (dev(type="interface", device="bridge"), 11, "devices[0].network"),
    (dev(type="interface", device="ovs", network="br0"), -32602, "devices[0].device"),
    (dev(type="interface", network="br0", nicModel="ne2k"), -32602, "devices[0].nicModel"),
    (dev(type="interface", network="br0", macAddr="00:11:22"), -32602, "devices[0].macAddr"),
    (
        dev(type="interface", network="br0", specParams={"mtu": "10"}),
        -32602,
        "devices[0].specParams.mtu",
    ),
    (dev(type="interface", network="br0", specParams=[]), -32602, "devices[0].specParams"),
    (
        dev(type="interface", network="br0", specParams={"inbound": {"peak": "5"}}),
        11,
        "devices[0].specParams.inbound.average",
    ),
    (dev(type="interface", network="br0", filter="x y"), -32602, "devices[0].filter"),
    (dev(type="video"), 11, "devices[0].device"),
    (dev(type="video", device="matrox"), -32602, "devices[0].device"),
    (
        dev(type="video", device="qxl", specParams={"heads": "99"}),
        -32602,
        "devices[0].specParams.heads",
    ),
    (dev(type="sound", device="gus"), -32602, "devices[0].device"),
    (dev(type="controller", device="fibre"), -32602, "devices[0].device"),
    (dev(type="controller", device="scsi", model="megasas"), -32602, "devices[0].model"),
    (
        dev(type="watchdog", specParams={"action": "explode"}),
        -32602,
        "devices[0].specParams.action",
    ),
    (dev(type="rng", specParams={"source": "/dev/zero"}), -32602, "devices[0].specParams.source"),
    (dev(type="rng", specParams={"period": "10"}), -32602, "devices[0].specParams.bytes"),
    (
        dev(type="balloon", specParams={"model": "xen"}),
        -32602,
        "devices[0].specParams.model",
    ),
    ({"devices": [{"type": "balloon"}, {"type": "balloon"}]}, -32602, "devices[1].type"),
    (dev(type="graphics", device="rdp"), 9, "devices[0].device"),  # VDSM: createErr
    (
        {"devices": [{"type": "disk", "path": "/a"}, {"type": "disk", "path": "/b", "index": 0}]},
        -32602,
        "devices[1].name",
    ),
]


@pytest.mark.parametrize(("change", "code", "param"), BAD, ids=[b[2] for b in BAD])
async def test_bad_vm_params_answered_and_nothing_left(rpc, virconn, change, code, param):
    vm_id = str(uuid.uuid4())
    params = {"vmId": vm_id, "vmName": f"bad-{vm_id[:8]}", "memSize": 64}
    for key, value in change.items():
        if value is DROP:
            params.pop(key)
        else:
            params[key] = value
    err = await rpc.error("VM.create", vmID=vm_id, vmParams=params)
    assert (err["code"], err["data"].get("param")) == (code, param), err
    assert err["data"]["reason"]
    assert vm_id not in [e["vmId"] for e in await rpc.call("Host.getVMList")]
    assert vm_id not in libvirt_uuids(virconn)


async def test_table_is_big_enough():
    assert len(BAD) >= 30
