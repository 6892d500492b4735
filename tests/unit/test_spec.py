import uuid

import pytest

from agent import errors
from agent.config import VirtConfig
from agent.intake import vmparams

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
VIRT = VirtConfig(domain_type="kvm", console_log_dir="/var/log/hvagent/console")


def params(**kw):
    base = {"vmId": str(VM), "memSize": 256}
    base.update(kw)
    return base


def test_defaults_and_policy():
    s = vmparams.from_params(VM, params(), VIRT)
    assert s.name == f"n{VM}"
    assert (s.memory_mib, s.vcpus, s.domain_type, s.acpi) == (256, 1, "kvm", True)
    assert s.console_log == f"/var/log/hvagent/console/{VM}.log"
    assert s.machine is None


def test_vdsm_string_spellings_and_kvm_disable():
    s = vmparams.from_params(
        VM, params(memSize="512", smp="2", kvmEnable="false", acpiEnable="false"), VIRT
    )
    assert (s.memory_mib, s.vcpus, s.domain_type, s.acpi) == (512, 2, "qemu", False)


def test_disks_get_targets_per_bus():
    devices = [
        {"type": "disk", "device": "disk", "path": "/a.qcow2", "format": "cow", "iface": "virtio"},
        {"type": "disk", "device": "disk", "path": "/b.img", "iface": "virtio"},
        {"type": "disk", "device": "cdrom", "path": "/c.iso"},
    ]
    s = vmparams.from_params(VM, params(devices=devices), VIRT)
    assert [(d.target, d.bus, d.format, d.readonly) for d in s.disks] == [
        ("vda", "virtio", "qcow2", False),
        ("vdb", "virtio", "raw", False),
        ("hda", "ide", "raw", True),
    ]


@pytest.mark.parametrize(
    ("bad", "error", "param"),
    [
        ({"memSize": None}, errors.MissingParameter, "memSize"),
        ({"vmId": None}, errors.MissingParameter, "vmId"),
        ({"vmId": "not-a-uuid"}, errors.MissingParameter, "vmId"),  # VDSM: 11
        ({"vmId": 5}, errors.InvalidParams, "vmId"),
        ({"vmId": str(uuid.uuid4())}, errors.InvalidParams, "vmId"),
        ({"memSize": 0}, errors.MissingParameter, "memSize"),  # VDSM: nonzero memSize, 11
        ({"memSize": "0"}, errors.MissingParameter, "memSize"),
        ({"memSize": -1}, errors.InvalidParams, "memSize"),
        ({"kernelArgs": "console=ttyS0"}, errors.InvalidParams, "kernelArgs"),
        ({"display": "sdl"}, errors.CreateFailed, "display"),  # VDSM: 9
        (
            {"devices": [{"type": "graphics", "device": "rdp"}]},
            errors.CreateFailed,
            "devices[0].device",
        ),
        ({"displayNetwork": "nowhere", "display": "vnc"}, errors.CreateFailed, "displayNetwork"),
        ({"memSize": "lots"}, errors.InvalidParams, "memSize"),
        ({"memSize": True}, errors.InvalidParams, "memSize"),
        ({"smp": 0}, errors.InvalidParams, "smp"),
        ({"kvmEnable": "maybe"}, errors.InvalidParams, "kvmEnable"),
        ({"vmName": 7}, errors.InvalidParams, "vmName"),
        ({"vmName": "a/b"}, errors.InvalidParams, "vmName"),
        ({"kernel": "relative/vmlinuz"}, errors.InvalidParams, "kernel"),
        ({"devices": {}}, errors.InvalidParams, "devices"),
        ({"devices": ["x"]}, errors.InvalidParams, "devices[0]"),
        ({"devices": [{"device": "disk"}]}, errors.MissingParameter, "devices[0].type"),
        ({"devices": [{"type": "disk"}]}, errors.MissingParameter, "devices[0].path"),
        (
            {"devices": [{"type": "disk", "path": "/a", "iface": "floppy"}]},
            errors.InvalidParams,
            "devices[0].iface",
        ),
        (
            {"devices": [{"type": "disk", "path": "/a", "format": "vmdk"}]},
            errors.InvalidParams,
            "devices[0].format",
        ),
        (
            {"devices": [{"type": "disk", "path": "/a", "name": "sda"}]},
            errors.InvalidParams,
            "devices[0].name",
        ),
        (
            {
                "devices": [
                    {"type": "disk", "path": "/a"},
                    {"type": "disk", "path": "/b", "name": "vda"},
                ]
            },
            errors.InvalidParams,
            "devices[1].name",
        ),
        ({"devices": [{"type": "hostdev"}]}, errors.Unsupported, "devices[0].type"),
        ({"custom": {"a": 1}}, errors.InvalidParams, "custom"),
    ],
)
def test_bad_params_name_the_field(bad, error, param):
    with pytest.raises(error) as exc:
        vmparams.from_params(VM, params(**bad), VIRT)
    assert type(exc.value) is error
    assert exc.value.data["param"] == param


def test_params_must_be_an_object():
    with pytest.raises(errors.InvalidParams):
        vmparams.from_params(VM, ["x"], VIRT)
