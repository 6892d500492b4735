"""vmParams (VDSM's legacy VM.create dict) -> VmSpec: every field read, checked, defaulted.

`from_params(vm_id, params, virt)` is where request fields meet host policy (domain type,
machine type, console log location, console listen policy). Devices are read by
`intake/devices.py`, consoles resolved by `intake/graphics.py`, the CPU and memory layout by
`intake/cpu.py`. The XML builders in `agent/domxml/` render the VmSpec and decide nothing.
Pure: no libvirt, no asyncio, no I/O.
"""

from __future__ import annotations

import uuid

from agent.config import VirtConfig
from agent.intake import graphics
from agent.intake.cpu import check_memory_devices, read_cpu_memory
from agent.intake.devices import DeviceSet, read_devices
from agent.intake.fields import Fields
from agent.spec import VmSpec

_BOOT = {"a": "fd", "c": "hd", "d": "cdrom", "n": "network"}


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
    vcpus = f.int_("smp", 1, minimum=1, maximum=4096)
    max_vcpus = f.int_("maxVCpus", minimum=1, maximum=4096)
    if max_vcpus is not None and max_vcpus < vcpus:
        raise f.bad("maxVCpus", f"must be at least smp ({vcpus})")
    devices = read_devices(f, virt.console_socket_path(vm_id))
    consoles = graphics.consoles(f, devices.graphics, virt)
    top = read_cpu_memory(f, memory, vcpus, max_vcpus)
    check_memory_devices(f, devices.memory_devices, memory, top)
    boot = _boot(f, devices)
    return VmSpec(
        vm_id=vm_id,
        name=name,
        memory_mib=memory,
        vcpus=vcpus,
        max_vcpus=max_vcpus,
        domain_type=virt.domain_type if kvm else "qemu",
        machine=machine,
        cpu=top.cpu,
        max_memory_mib=top.max_memory_mib,
        max_memory_slots=top.max_memory_slots,
        memory_guaranteed_mib=top.memory_guaranteed_mib,
        cpu_pinning=top.cpu_pinning,
        numa_tune=top.numa_tune,
        hyperv=top.hyperv,
        time_offset=top.time_offset,
        boot_devices=boot,
        disks=tuple(devices.disks),
        interfaces=tuple(devices.interfaces),
        videos=tuple(devices.videos),
        controllers=tuple(devices.controllers),
        sounds=tuple(devices.sounds),
        watchdogs=tuple(devices.watchdogs),
        rngs=tuple(devices.rngs),
        balloon=devices.balloon,
        balloon_stats_period_s=virt.balloon_stats_period_s,
        graphics=consoles,
        consoles=tuple(devices.consoles),
        channels=tuple(devices.channels),
        smartcards=tuple(devices.smartcards),
        tpm=devices.tpm,
        memory_devices=tuple(devices.memory_devices),
        acpi=f.bool_("acpiEnable", True),
        console_log=virt.console_log_path(vm_id),
        kernel=_abs_path(f, "kernel"),
        initrd=_abs_path(f, "initrd"),
        kernel_args=f.str_("kernelArgs"),
        boot_menu=f.bool_("bootMenuEnable", False),
        tablet=f.bool_("tabletEnable", False),
        launch_paused=f.bool_("launchPaused", False),
        custom=f.str_map("custom"),
        destroy_on_reboot=f.bool_("destroyOnReboot", False),
        firmware=f.choice("firmware", ("bios", "efi")),
    )


def _boot(f: Fields, devices: DeviceSet) -> tuple[str, ...]:
    letters = f.str_("boot")
    if letters is None:
        return ()
    if not letters or any(c not in _BOOT for c in letters) or len(set(letters)) != len(letters):
        raise f.bad("boot", f"expected distinct letters from a, c, d, n, got {letters!r}")
    if any(d.boot_order is not None for d in (*devices.disks, *devices.interfaces)):
        raise f.bad("boot", "cannot be combined with devices' bootOrder")
    return tuple(_BOOT[c] for c in letters)


def _abs_path(f: Fields, key: str) -> str | None:
    value: str | None = f.str_(key)
    if value is not None and not value.startswith("/"):
        raise f.bad(key, "must be an absolute path")
    return value
