"""VmSpec: the typed description of a VM, made from validated vmParams plus host policy.

`from_params(vm_id, params, config)` is the only place where request fields are read, checked
and given defaults, and where host policy is applied (domain type, machine type, console log
location). The XML builders in `agent/domxml/` render a VmSpec and decide nothing.
Pure: no libvirt, no asyncio, no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from agent.config import VirtConfig
from agent.errors import InvalidParams, Unsupported
from agent.params import Fields

GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

_DISK_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd"}
_DISK_FORMATS = {"raw": "raw", "cow": "qcow2", "qcow2": "qcow2"}


@dataclass(frozen=True)
class DiskSpec:
    path: str
    target: str
    bus: str
    device: str = "disk"
    format: str = "raw"
    readonly: bool = False
    serial: str | None = None
    boot_order: int | None = None


@dataclass(frozen=True)
class VmSpec:
    vm_id: uuid.UUID
    name: str
    memory_mib: int
    vcpus: int
    domain_type: str
    machine: str | None
    acpi: bool
    console_log: str
    kernel: str | None = None
    initrd: str | None = None
    kernel_args: str | None = None
    disks: tuple[DiskSpec, ...] = ()
    launch_paused: bool = False
    custom: dict[str, str] = field(default_factory=dict)


def from_params(vm_id: uuid.UUID, params: object, virt: VirtConfig) -> VmSpec:
    """Validate `vmParams` and decide every default. Raises MissingParameter/InvalidParams."""
    f = Fields(params)
    params_id = f.uuid_("vmId")
    if params_id != vm_id:
        raise f.bad("vmId", f"does not match vmID {vm_id}")
    memory = f.int_("memSize", required=True, minimum=1)
    kvm = f.bool_("kvmEnable", True)
    machine = f.str_("emulatedMachine") or virt.default_machine or None
    name = f.str_("vmName", f"n{vm_id}")
    if "/" in name:
        raise f.bad("vmName", "must not contain '/'")
    return VmSpec(
        vm_id=vm_id,
        name=name,
        memory_mib=memory,
        vcpus=f.int_("smp", 1, minimum=1, maximum=4096),
        domain_type=virt.domain_type if kvm else "qemu",
        machine=machine,
        acpi=f.bool_("acpiEnable", True),
        console_log=str(PurePosixPath(virt.console_log_dir) / f"{vm_id}.log"),
        kernel=_abs_path(f, "kernel"),
        initrd=_abs_path(f, "initrd"),
        kernel_args=f.str_("kernelArgs"),
        disks=_disks(f),
        launch_paused=f.bool_("launchPaused", False),
        custom=f.str_map("custom"),
    )


def _abs_path(f: Fields, key: str) -> str | None:
    value: str | None = f.str_(key)
    if value is not None and not value.startswith("/"):
        raise f.bad(key, "must be an absolute path")
    return value


def _disks(f: Fields) -> tuple[DiskSpec, ...]:
    disks: list[DiskSpec] = []
    used: dict[str, str] = {}
    counters: dict[str, int] = {}
    for i, raw in enumerate(f.list_("devices")):
        dev = Fields(raw, f"devices[{i}]")
        kind = dev.str_("type", required=True)
        if kind != "disk":
            raise Unsupported(
                f"devices[{i}].type: device type {kind!r} is not supported",
                param=dev.name("type"),
            )
        disk = _disk(dev, counters)
        if disk.target in used:
            raise dev.bad("name", f"target {disk.target} already used by {used[disk.target]}")
        used[disk.target] = dev.name("name")
        disks.append(disk)
    return tuple(disks)


def _disk(dev: Fields, counters: dict[str, int]) -> DiskSpec:
    device = dev.choice("device", ("disk", "cdrom"), "disk")
    path = dev.str_("path", required=device == "disk")
    if path is not None and not path.startswith("/"):
        raise dev.bad("path", "must be an absolute path")
    default_bus = "ide" if device == "cdrom" else "virtio"
    bus = dev.choice("iface", tuple(_DISK_PREFIX), default_bus)
    fmt = dev.choice("format", tuple(_DISK_FORMATS), "raw")
    prefix = _DISK_PREFIX[bus]
    target = dev.str_("name")
    if target is None:
        index = dev.int_("index", counters.get(prefix, 0), minimum=0, maximum=25)
        target = prefix + chr(ord("a") + index)
        counters[prefix] = max(counters.get(prefix, 0), index + 1)
    elif not target.startswith(prefix):
        raise InvalidParams(
            f"{dev.name('name')}: {target!r} does not match bus {bus!r} (expected {prefix}*)",
            param=dev.name("name"),
        )
    return DiskSpec(
        path=path or "",
        target=target,
        bus=bus,
        device=device,
        format=_DISK_FORMATS[fmt],
        readonly=dev.bool_("readonly", device == "cdrom"),
        serial=dev.str_("serial"),
        boot_order=dev.int_("bootOrder", minimum=1),
    )
