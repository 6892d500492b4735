"""VmSpec: the typed description of a VM, made from validated vmParams plus host policy.

`from_params(vm_id, params, config)` is the only place where request fields are read, checked
and given defaults, and where host policy is applied (domain type, machine type, console log
location). The XML builders in `agent/domxml/` render a VmSpec and decide nothing.
Pure: no libvirt, no asyncio, no I/O.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from agent.config import VirtConfig
from agent.errors import InvalidParams, Unsupported
from agent.params import Fields

GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

_DISK_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd", "fdc": "fd"}
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
    interfaces: tuple[InterfaceSpec, ...] = ()
    videos: tuple[VideoSpec, ...] = ()
    controllers: tuple[SimpleDeviceSpec, ...] = ()
    sounds: tuple[SimpleDeviceSpec, ...] = ()
    watchdogs: tuple[SimpleDeviceSpec, ...] = ()
    rngs: tuple[SimpleDeviceSpec, ...] = ()
    balloon: SimpleDeviceSpec | None = None
    boot_menu: bool = False
    tablet: bool = False
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
        boot_menu=f.bool_("bootMenuEnable", False),
        tablet=f.bool_("tabletEnable", False),
        **_devices(f),
        launch_paused=f.bool_("launchPaused", False),
        custom=f.str_map("custom"),
    )


def _abs_path(f: Fields, key: str) -> str | None:
    value: str | None = f.str_(key)
    if value is not None and not value.startswith("/"):
        raise f.bad(key, "must be an absolute path")
    return value


def _devices(f: Fields) -> dict[str, object]:
    out: dict[str, list[object]] = {
        "disks": [],
        "interfaces": [],
        "videos": [],
        "controllers": [],
        "sounds": [],
        "watchdogs": [],
        "rngs": [],
    }
    balloon: SimpleDeviceSpec | None = None
    used: dict[str, str] = {}
    counters: dict[str, int] = {}
    for i, raw in enumerate(f.list_("devices")):
        dev = Fields(raw, f"devices[{i}]")
        kind = dev.str_("type", required=True)
        if kind == "disk":
            disk = _disk(dev, counters)
            if disk.target in used:
                raise dev.bad("name", f"target {disk.target} already used by {used[disk.target]}")
            used[disk.target] = dev.name("name")
            out["disks"].append(disk)
        elif kind == "interface":
            out["interfaces"].append(_interface(dev))
        elif kind == "video":
            out["videos"].append(_video(dev))
        elif kind == "controller":
            out["controllers"].append(_controller(dev))
        elif kind == "sound":
            out["sounds"].append(_sound(dev))
        elif kind == "watchdog":
            out["watchdogs"].append(_watchdog(dev))
        elif kind == "rng":
            out["rngs"].append(_rng(dev))
        elif kind == "balloon":
            if balloon is not None:
                raise dev.bad("type", "only one balloon device is allowed")
            balloon = _balloon(dev)
        elif kind == "graphics":
            # Parsed and checked here; rendering is the consoles issue (issue 4).
            dev.choice("device", ("spice", "vnc"), required=True)
        else:
            raise Unsupported(
                f"devices[{i}].type: device type {kind!r} is not supported",
                param=dev.name("type"),
            )
    result: dict[str, object] = {k: tuple(v) for k, v in out.items()}
    if balloon is not None:
        result["balloon"] = balloon
    return result


_NIC_MODELS = {"virtio": "virtio", "pv": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}
_VIDEO_MODELS = ("qxl", "vga", "cirrus", "virtio", "bochs", "none")
_SOUND_MODELS = ("ich6", "ich9", "ac97", "es1370", "sb16", "usb")
_CONTROLLER_TYPES = ("virtio-serial", "usb", "scsi", "ide", "sata", "pci")
_WATCHDOG_MODELS = ("i6300esb", "ib700", "diag288", "itco")
_WATCHDOG_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")
_RNG_SOURCES = {"random": "/dev/random", "urandom": "/dev/urandom", "hwrng": "/dev/hwrng"}
_ADDRESS_KEYS = (
    "type",
    "domain",
    "bus",
    "slot",
    "function",
    "controller",
    "target",
    "unit",
    "port",
    "multifunction",
    "reg",
    "cssid",
    "ssid",
    "devno",
    "iobase",
    "irq",
)
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def _spec_params(dev: Fields) -> Fields:
    raw = dev.raw("specParams")
    return Fields({} if raw is None else raw, dev.name("specParams"))


def _address(dev: Fields) -> AddressSpec | None:
    if not dev.has("address"):
        return None
    addr = Fields(dev.raw("address"), dev.name("address"))
    pairs = []
    for key in addr.field_names():
        if key not in _ADDRESS_KEYS:
            raise addr.bad(key, "unknown address attribute")
        value = addr.str_(key)
        if not re.fullmatch(r"[0-9A-Za-z_.x-]{1,32}", value):
            raise addr.bad(key, f"bad address value {value!r}")
        pairs.append((key, value))
    if "type" not in dict(pairs):
        raise addr.missing("type")
    pairs.sort(key=lambda kv: _ADDRESS_KEYS.index(kv[0]))
    return AddressSpec(tuple(pairs))


def _interface(dev: Fields) -> InterfaceSpec:
    kind = dev.choice("device", ("bridge", "network"), "bridge")
    source = dev.str_("network", required=True)
    mac = dev.str_("macAddr")
    if mac is not None and not _MAC.match(mac):
        raise dev.bad("macAddr", f"not a MAC address: {mac!r}")
    sp = _spec_params(dev)
    model = dev.choice("nicModel", tuple(_NIC_MODELS), "virtio")
    link = dev.choice("linkActive", ("true", "false"), None) if dev.has("linkActive") else None
    return InterfaceSpec(
        kind=kind,
        source=source,
        model=_NIC_MODELS[model],
        mac=mac.lower() if mac else None,
        mtu=sp.int_("mtu", minimum=68, maximum=65535),
        link_up=link != "false",
        boot_order=dev.int_("bootOrder", minimum=1),
        filter=dev.str_("filter"),
        address=_address(dev),
    )


def _video(dev: Fields) -> VideoSpec:
    model = dev.choice("device", _VIDEO_MODELS, required=True)
    sp = _spec_params(dev)
    return VideoSpec(
        model=model,
        vram=sp.int_("vram", minimum=1),
        ram=sp.int_("ram", minimum=1),
        vgamem=sp.int_("vgamem", minimum=1),
        heads=sp.int_("heads", minimum=1, maximum=16),
        address=_address(dev),
    )


def _controller(dev: Fields) -> SimpleDeviceSpec:
    kind = dev.choice("device", _CONTROLLER_TYPES, required=True)
    extra: list[tuple[str, str]] = [("type", kind)]
    index = dev.int_("index", minimum=0, maximum=255)
    if index is not None:
        extra.append(("index", str(index)))
    model = dev.str_("model")
    if model is not None:
        allowed = {
            "scsi": ("virtio-scsi", "lsilogic", "lsisas1068"),
            "usb": ("piix3-uhci", "ich9-ehci1", "nec-xhci", "qemu-xhci", "none"),
            "pci": ("pci-root", "pcie-root", "pci-bridge", "pcie-root-port"),
        }.get(kind, ())
        if model not in allowed:
            raise dev.bad("model", f"model {model!r} is not valid for a {kind} controller")
        extra.append(("model", model))
    return SimpleDeviceSpec("controller", "", tuple(extra), _address(dev))


def _watchdog(dev: Fields) -> SimpleDeviceSpec:
    sp = _spec_params(dev)
    model = sp.choice("model", _WATCHDOG_MODELS, "i6300esb")
    action = sp.choice("action", _WATCHDOG_ACTIONS, "none")
    return SimpleDeviceSpec("watchdog", model, (("action", action),), _address(dev))


def _rng(dev: Fields) -> SimpleDeviceSpec:
    sp = _spec_params(dev)
    source = sp.choice("source", tuple(_RNG_SOURCES), "urandom")
    extra = [("source", _RNG_SOURCES[source])]
    period = sp.int_("period", minimum=1)
    nbytes = sp.int_("bytes", minimum=1)
    if (period is None) != (nbytes is None):
        raise sp.bad("period" if period is None else "bytes", "period and bytes go together")
    if period is not None:
        extra += [("period", str(period)), ("bytes", str(nbytes))]
    return SimpleDeviceSpec("rng", "virtio", tuple(extra), _address(dev))


def _sound(dev: Fields) -> SimpleDeviceSpec:
    model = dev.choice("device", _SOUND_MODELS, required=True)
    return SimpleDeviceSpec("sound", model, (), _address(dev))


def _balloon(dev: Fields) -> SimpleDeviceSpec:
    dev.choice("device", ("memballoon",), "memballoon")
    sp = _spec_params(dev)
    model = sp.choice("model", ("virtio", "none"), "virtio")
    return SimpleDeviceSpec("memballoon", model, (), _address(dev))


def _shared(dev: Fields) -> bool:
    if isinstance(dev.raw("shared"), bool):
        return bool(dev.raw("shared"))
    value = dev.choice("shared", ("false", "none", "true", "shared", "exclusive"), "false")
    return value in ("true", "shared")


def _disk(dev: Fields, counters: dict[str, int]) -> DiskSpec:
    device = dev.choice("device", ("disk", "cdrom", "floppy"), "disk")
    path = dev.str_("path", required=device == "disk")
    if path is not None and not path.startswith("/"):
        raise dev.bad("path", "must be an absolute path")
    default_type = "block" if path and path.startswith("/dev/") else "file"
    disk_type = dev.choice("diskType", ("file", "block"), default_type)
    default_bus = {"cdrom": "ide", "floppy": "fdc"}.get(device, "virtio")
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
        block=disk_type == "block",
        shared=_shared(dev),
        cache=dev.choice("cache", ("none", "writethrough", "writeback", "directsync", "unsafe")),
        io=dev.choice("io", ("threads", "native")),
        error_policy={"on": "enospace", "off": None, None: None}[
            dev.choice("propagateErrors", ("on", "off"))
        ],
        address=_address(dev),
    )
