"""vmParams (VDSM's legacy VM.create dict) -> VmSpec: every field read, checked, defaulted.

`from_params(vm_id, params, virt)` is where request fields meet host policy (domain type,
machine type, console log location, console listen policy). Devices are read by
`intake/devices.py`, consoles resolved by `intake/graphics.py`, the CPU and memory layout by
`intake/cpu.py`. The XML builders in `agent/domxml/` render the VmSpec and decide nothing.
Pure: no libvirt, no asyncio, no I/O.
"""

from __future__ import annotations

import uuid

from agent import wirevalues
from agent.config import VirtConfig
from agent.errors import InvalidParams, MissingParameter
from agent.intake import graphics
from agent.intake.cpu import check_memory_devices, read_cpu_memory
from agent.intake.devices import DeviceSet, read_devices
from agent.intake.fields import Fields
from agent.spec import VmSpec

_BOOT = {"a": "fd", "c": "hd", "d": "cdrom", "n": "network"}


def from_params(
    vm_id: uuid.UUID,
    params: object,
    virt: VirtConfig,
    address_of: graphics.AddressOf = graphics.no_networks,
) -> VmSpec:
    """Validate `vmParams` and decide every default. Raises MissingParameter/InvalidParams.
    `address_of` resolves a display network to this host's address on it."""
    f = Fields(params)
    params_id = _vm_id(f)
    if params_id != vm_id:
        raise f.bad("vmId", f"does not match vmID {vm_id}")
    if f.has("memSize") and f.int_("memSize") == 0:  # VDSM: MissParam (11)
        raise MissingParameter("memSize: must specify nonzero memSize", param="memSize")
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
    devices = read_devices(f, virt.console_socket_path(vm_id), virt.image_root)
    consoles = graphics.consoles(f, devices.graphics, virt, address_of)
    top = read_cpu_memory(f, memory, vcpus, max_vcpus)
    check_memory_devices(f, devices.memory_devices, memory, top)
    boot = _boot(f, devices)
    kernel, initrd, kernel_args = _kernel(f)
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
        serial_socket=devices.serial_socket,
        sysinfo=_sysinfo(f, vm_id, virt),
        kernel=kernel,
        initrd=initrd,
        kernel_args=kernel_args,
        boot_menu=f.bool_("bootMenuEnable", False),
        tablet=f.bool_("tabletEnable", False),
        launch_paused=f.bool_("launchPaused", False),
        custom=f.str_map("custom"),
        destroy_on_reboot=f.bool_("destroyOnReboot", False),
        firmware=f.choice("firmware", ("bios", "efi")),
    )


def _vm_id(f: Fields) -> uuid.UUID:
    """`vmId`: a string that is not a UUID is VDSM's MissParam (11); hostile text or
    another JSON type stays -32602."""
    value = f.str_("vmId", required=True)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise MissingParameter(
            "vmId: must be a valid UUID", param="vmId", value=wirevalues.echo(value)
        ) from None


def _sysinfo(f: Fields, vm_id: uuid.UUID, virt: VirtConfig) -> tuple[tuple[str, str], ...]:
    """SMBIOS system entries as VDSM writes them; `serial` may override the serial."""
    serial = f.str_("serial") or str(vm_id)
    entries = (
        ("manufacturer", virt.smbios_manufacturer),
        ("product", virt.smbios_product),
        ("version", virt.smbios_version),
        ("serial", serial),
        ("uuid", str(vm_id)),
        ("family", virt.smbios_family),
    )
    return tuple((k, v) for k, v in entries if v)


def _kernel(f: Fields) -> tuple[str | None, str | None, str | None]:
    """`kernel`, `initrd`, `kernelArgs`: a command line only with a kernel (it is the
    kernel's; VDSM writes `<cmdline>` only after a `<kernel>`, so the engine's would be lost)."""
    kernel = _abs_path(f, "kernel")
    initrd = _abs_path(f, "initrd")
    args = f.str_("kernelArgs")
    if kernel is None and args is not None:
        raise InvalidParams(
            "kernelArgs: needs a kernel (vmParams.kernel), none was given", param="kernelArgs"
        )
    return kernel, initrd, args


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
