"""VmSpec: the typed description of a VM that the domain XML builders render.

The model only: frozen dataclasses and the names both sides share (channel names, SPICE's
channel list). Turning a request into a VmSpec (validation, defaults, host policy) is
`agent/intake/`; rendering it is `agent/domxml/`. Pure: no libvirt, no asyncio, no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
SPICE_AGENT_CHANNEL = "com.redhat.spice.0"  # spicevmc: copy/paste, resolution, file transfer


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
    block: bool = False
    shared: bool = False
    cache: str | None = None
    io: str | None = None
    error_policy: str | None = None
    address: AddressSpec | None = None


@dataclass(frozen=True)
class AddressSpec:
    """A device `address` dict, rendered as <address> attributes (type first)."""

    attrs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class InterfaceSpec:
    kind: str  # "bridge" | "network"
    source: str
    model: str
    mac: str | None = None
    mtu: int | None = None
    link_up: bool = True
    boot_order: int | None = None
    filter: str | None = None
    address: AddressSpec | None = None
    # <bandwidth>: ("inbound"|"outbound", ((attr, value), ...)) from specParams
    bandwidth: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()


@dataclass(frozen=True)
class VideoSpec:
    model: str
    vram: int | None = None
    ram: int | None = None
    vgamem: int | None = None
    heads: int | None = None
    address: AddressSpec | None = None


@dataclass(frozen=True)
class SimpleDeviceSpec:
    """sound, controller, memballoon, watchdog, rng: a model plus a few attributes."""

    element: str
    model: str
    extra: tuple[tuple[str, str], ...] = ()
    address: AddressSpec | None = None


@dataclass(frozen=True)
class GraphicsSpec:
    """A console (SPICE or VNC). `spec_params` is what the engine sent; the other fields are
    what hvagent renders, decided by `_resolve_graphics` from them and host policy."""

    type: str  # "spice" | "vnc"
    spec_params: tuple[tuple[str, str], ...] = ()
    source: str = "devices"  # where it came from, for error messages: devices[i] or display
    listen_address: str | None = None
    keymap: str | None = None
    secure_channels: tuple[str, ...] = ()
    # Asked-for secure channels not honoured (no SPICE TLS on this host): a reply warning.
    insecure_channels: tuple[str, ...] = ()
    insecure_param: str | None = None
    copy_paste: bool = True
    file_transfer: bool = True
    tls: bool = False


SPICE_CHANNELS = (
    "main",
    "display",
    "inputs",
    "cursor",
    "playback",
    "record",
    "smartcard",
    "usbredir",
)


@dataclass(frozen=True)
class ConsoleSpec:
    """A virtio console (the serial console is always there; `VmSpec.serial_socket` moves
    it from a pty to a unix socket)."""

    socket: str | None = None  # a unix socket path, else a pty


@dataclass(frozen=True)
class ChannelSpec:
    kind: str  # "unix" | "spicevmc"
    name: str


@dataclass(frozen=True)
class TpmSpec:
    model: str
    backend: str  # "emulator" | "passthrough"
    path: str | None = None


@dataclass(frozen=True)
class MemoryDeviceSpec:
    size_mib: int
    node: int
    address: AddressSpec | None = None


@dataclass(frozen=True)
class CpuSpec:
    """<cpu>: mode (custom/host-passthrough/host-model), model + features, topology, NUMA."""

    mode: str | None = None
    model: str | None = None
    features: tuple[tuple[str, str], ...] = ()  # (policy, name)
    topology: tuple[int, int, int] | None = None  # sockets, cores, threads
    numa_cells: tuple[tuple[int, str, int], ...] = ()  # (id, cpus, memory MiB)


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
    serial_socket: str | None = None  # the serial console on this unix socket, not a pty
    # <sysinfo type="smbios"> system entries (name, value), with <smbios mode="sysinfo"/>.
    sysinfo: tuple[tuple[str, str], ...] = ()
    kernel: str | None = None
    initrd: str | None = None
    kernel_args: str | None = None
    disks: tuple[DiskSpec, ...] = ()
    interfaces: tuple[InterfaceSpec, ...] = ()
    videos: tuple[VideoSpec, ...] = ()
    controllers: tuple[SimpleDeviceSpec, ...] = ()
    sounds: tuple[SimpleDeviceSpec, ...] = ()
    watchdogs: tuple[SimpleDeviceSpec, ...] = ()
    rngs: tuple[SimpleDeviceSpec, ...] = ()
    balloon: SimpleDeviceSpec | None = None
    graphics: tuple[GraphicsSpec, ...] = ()
    consoles: tuple[ConsoleSpec, ...] = ()
    channels: tuple[ChannelSpec, ...] = ()
    smartcards: tuple[SimpleDeviceSpec, ...] = ()
    tpm: TpmSpec | None = None
    memory_devices: tuple[MemoryDeviceSpec, ...] = ()
    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    max_memory_slots: int | None = None
    memory_guaranteed_mib: int | None = None
    cpu: CpuSpec | None = None
    cpu_pinning: tuple[tuple[int, str], ...] = ()
    numa_tune: tuple[str, str] | None = None  # mode, nodeset
    hyperv: bool = False
    boot_devices: tuple[str, ...] = ()
    time_offset: int | None = None
    boot_menu: bool = False
    tablet: bool = False
    launch_paused: bool = False
    custom: dict[str, str] = field(default_factory=dict)
    destroy_on_reboot: bool = False  # hvagent metadata destroyOnReboot (hosted-engine VM)
    firmware: str | None = None  # <os firmware=...>: "efi" (libvirt picks the image)
