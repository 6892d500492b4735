"""VmSpec: the typed description of a VM, made from validated vmParams plus host policy.

`from_params(vm_id, params, config)` is the only place where request fields are read, checked
and given defaults, and where host policy is applied (domain type, machine type, console log
location). The XML builders in `agent/domxml/` render a VmSpec and decide nothing.
Pure: no libvirt, no asyncio, no I/O.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from agent import wiretext
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
    listen_network: str | None = None  # libvirt network name
    keymap: str | None = None
    secure_channels: tuple[str, ...] = ()
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
# Legacy top-level keys copied into a synthesised device's specParams (reference §3.1).
_LEGACY_GRAPHICS_KEYS = {
    "keyboardLayout": "keyMap",
    "displayNetwork": "displayNetwork",
    "spiceSecureChannels": "spiceSecureChannels",
    "copyPasteEnable": "copyPasteEnable",
    "fileTransferEnable": "fileTransferEnable",
}


@dataclass(frozen=True)
class ConsoleSpec:
    """An extra virtio console (the serial console on a pty is always there)."""

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
    devices = _devices(f, str(PurePosixPath(virt.console_log_dir) / f"{vm_id}.sock"))
    _legacy_display(f, devices)
    legacy_network = f.str_("displayNetwork")
    devices["graphics"] = tuple(
        _resolve_graphics(g, virt, legacy_network)
        for g in devices["graphics"]  # type: ignore[attr-defined]
    )
    top = _topology_and_memory(f, memory, vcpus, max_vcpus)
    _check_memory_devices(f, devices, memory, top)
    return VmSpec(
        vm_id=vm_id,
        **top,
        boot_devices=_boot(f, devices),
        **devices,
        name=name,
        memory_mib=memory,
        vcpus=vcpus,
        max_vcpus=max_vcpus,
        domain_type=virt.domain_type if kvm else "qemu",
        machine=machine,
        acpi=f.bool_("acpiEnable", True),
        console_log=str(PurePosixPath(virt.console_log_dir) / f"{vm_id}.log"),
        kernel=_abs_path(f, "kernel"),
        initrd=_abs_path(f, "initrd"),
        kernel_args=f.str_("kernelArgs"),
        boot_menu=f.bool_("bootMenuEnable", False),
        tablet=f.bool_("tabletEnable", False),
        launch_paused=f.bool_("launchPaused", False),
        custom=f.str_map("custom"),
    )


_CPU_MODE = {"hostPassthrough": "host-passthrough", "hostModel": "host-model"}
_CPU_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CPUSET = re.compile(r"^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$")
_BOOT = {"a": "fd", "c": "hd", "d": "cdrom", "n": "network"}


def _cpu_type(f: Fields) -> tuple[str | None, str | None, tuple[tuple[str, str], ...]]:
    value = f.str_("cpuType")
    if value is None:
        return None, None, ()
    if value in _CPU_MODE:
        return _CPU_MODE[value], None, ()
    model, *flags = value.split(",")
    if not _CPU_NAME.match(model):
        raise f.bad("cpuType", f"bad CPU model {model!r}")
    features = []
    for flag in flags:
        if len(flag) < 2 or flag[0] not in "+-" or not _CPU_NAME.match(flag[1:]):
            raise f.bad("cpuType", f"bad CPU flag {flag!r} (expected +name or -name)")
        features.append(("require" if flag[0] == "+" else "disable", flag[1:]))
    return "custom", model, tuple(features)


def _cpuset(f: Fields, key: str, value: object) -> str:
    if not isinstance(value, str) or not _CPUSET.match(value):
        raise f.bad(key, f"expected a CPU set like '0-3,^2', got {value!r}")
    return value


def _topology_and_memory(
    f: Fields, memory: int, vcpus: int, max_vcpus: int | None
) -> dict[str, object]:
    total = max_vcpus or vcpus
    cores = f.int_("smpCoresPerSocket", minimum=1, maximum=4096)
    threads = f.int_("smpThreadsPerCore", minimum=1, maximum=64)
    topology = None
    if cores is not None or threads is not None:
        cores, threads = cores or 1, threads or 1
        if total % (cores * threads):
            raise f.bad(
                "smpCoresPerSocket",
                f"{total} vCPUs do not divide into {cores} cores x {threads} threads sockets",
            )
        topology = (total // (cores * threads), cores, threads)
    mode, model, features = _cpu_type(f)
    cells = []
    for i, raw in enumerate(f.list_("guestNumaNodes")):
        node = Fields(raw, f"guestNumaNodes[{i}]")
        cells.append(
            (
                node.int_("nodeIndex", i, minimum=0, maximum=255),
                _cpuset(node, "cpus", node.str_("cpus", required=True)),
                node.int_("memory", required=True, minimum=1),
            )
        )
    if cells and sum(c[2] for c in cells) != memory:
        raise f.bad("guestNumaNodes", f"node memory must add up to memSize ({memory})")
    max_mem = f.int_("maxMemSize", minimum=1)
    slots = f.int_("maxMemSlots", minimum=1, maximum=255)
    if max_mem is not None:
        if max_mem < memory:
            raise f.bad("maxMemSize", f"must be at least memSize ({memory})")
        slots = slots or 16
        if not cells:  # QEMU needs a guest NUMA node for memory hotplug
            cells = [(0, f"0-{total - 1}", memory)]
    elif slots is not None:
        raise f.missing("maxMemSize")
    guaranteed = f.int_("memGuaranteedSize", minimum=0)
    if guaranteed is not None and guaranteed > memory:
        raise f.bad("memGuaranteedSize", f"must be at most memSize ({memory})")
    cpu = None
    if mode or topology or cells:
        cpu = CpuSpec(mode, model, features, topology, tuple(cells))
    pinning = []
    for vcpu, cpuset in sorted(f.str_map("cpuPinning").items()):
        if not wiretext.is_decimal(vcpu) or int(vcpu) >= total:
            raise f.bad("cpuPinning", f"no vCPU {wiretext.echo(vcpu)} (the VM has {total})")
        pinning.append((int(vcpu), _cpuset(f, "cpuPinning", cpuset)))
    numa_tune = None
    nt = f.raw("numaTune")
    if nt is not None:
        tune = Fields(nt, "numaTune")
        numa_tune = (
            tune.choice("mode", ("strict", "interleave", "preferred"), "strict"),
            _cpuset(tune, "nodeset", tune.str_("nodeset", required=True)),
        )
    return {
        "cpu": cpu,
        "max_memory_mib": max_mem,
        "max_memory_slots": slots if max_mem is not None else None,
        "memory_guaranteed_mib": guaranteed,
        "cpu_pinning": tuple(sorted(pinning)),
        "numa_tune": numa_tune,
        "hyperv": f.bool_("hypervEnable", False),
        "time_offset": f.int_("timeOffset", minimum=-(10**9), maximum=10**9),
    }


def _boot(f: Fields, devices: dict[str, object]) -> tuple[str, ...]:
    letters = f.str_("boot")
    if letters is None:
        return ()
    if not letters or any(c not in _BOOT for c in letters) or len(set(letters)) != len(letters):
        raise f.bad("boot", f"expected distinct letters from a, c, d, n, got {letters!r}")
    ordered = [
        d
        for kind in ("disks", "interfaces")
        for d in devices.get(kind, ())  # type: ignore[attr-defined]
        if d.boot_order is not None
    ]
    if ordered:
        raise f.bad("boot", "cannot be combined with devices' bootOrder")
    return tuple(_BOOT[c] for c in letters)


def _abs_path(f: Fields, key: str) -> str | None:
    value: str | None = f.str_(key)
    if value is not None and not value.startswith("/"):
        raise f.bad(key, "must be an absolute path")
    return value


def _devices(f: Fields, console_socket: str) -> dict[str, object]:
    out: dict[str, list[object]] = {
        "graphics": [],
        "consoles": [],
        "channels": [],
        "smartcards": [],
        "memory_devices": [],
        "disks": [],
        "interfaces": [],
        "videos": [],
        "controllers": [],
        "sounds": [],
        "watchdogs": [],
        "rngs": [],
    }
    balloon: SimpleDeviceSpec | None = None
    tpm: TpmSpec | None = None
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
            graphics = _graphics(dev)
            if any(g.type == graphics.type for g in out["graphics"]):  # type: ignore[attr-defined]
                raise dev.bad("device", f"only one {graphics.type} graphics device is allowed")
            out["graphics"].append(graphics)
        elif kind == "console":
            console = _console(dev, console_socket)
            if console is not None:
                if out["consoles"]:
                    raise dev.bad("type", "only one console device is allowed")
                out["consoles"].append(console)
        elif kind == "channel":
            out["channels"].append(_channel(dev, out["channels"]))
        elif kind == "smartcard":
            out["smartcards"].append(_smartcard(dev))
        elif kind == "tpm":
            if tpm is not None:
                raise dev.bad("type", "only one tpm device is allowed")
            tpm = _tpm(dev)
        elif kind == "memory":
            out["memory_devices"].append(_memory_device(dev))
        else:
            raise Unsupported(
                f"devices[{i}].type: device type {kind!r} is not supported",
                param=dev.name("type"),
            )
    result: dict[str, object] = {k: tuple(v) for k, v in out.items()}
    if balloon is not None:
        result["balloon"] = balloon
    if tpm is not None:
        result["tpm"] = tpm
    return result


_LEGACY_DISPLAY = {"vnc": "vnc", "qxl": "spice"}


def _legacy_display(f: Fields, devices: dict[str, object]) -> None:
    """Legacy top-level `display` (vnc|qxl) means one graphics device of that kind."""
    display = f.choice("display", tuple(_LEGACY_DISPLAY))
    if display is None:
        return
    kind = _LEGACY_DISPLAY[display]
    current: list[GraphicsSpec] = list(devices["graphics"])  # type: ignore[call-overload]
    if current:
        return  # graphics devices win over the legacy keys (reference §3.1)
    pairs = []
    for legacy, key in sorted(_LEGACY_GRAPHICS_KEYS.items(), key=lambda kv: kv[1]):
        value = f.raw(legacy) if f.has(legacy) else None
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise f.bad(legacy, "expected a string")
        pairs.append((key, wiretext.check(value, f.name(legacy))))
    devices["graphics"] = (GraphicsSpec(kind, tuple(pairs), source="display"),)


def _resolve_graphics(
    g: GraphicsSpec, virt: VirtConfig, legacy_network: str | None
) -> GraphicsSpec:
    """Host policy for one console: listen address, keymap, channels, TLS."""
    sp = dict(g.spec_params)
    legacy_names = {v: k for k, v in _LEGACY_GRAPHICS_KEYS.items()}

    def bad(key: str, reason: str) -> InvalidParams:
        # A synthesised console's fields came from top-level legacy keys: name those.
        name = legacy_names[key] if g.source == "display" else f"{g.source}.specParams.{key}"
        return InvalidParams(f"{name}: {reason}", param=name)

    def flag(key: str) -> bool:
        value = sp.get(key, "true").lower()
        if value not in ("true", "false"):
            raise bad(key, f"expected true or false, got {value!r}")
        return value == "true"

    channels: list[str] = []
    for name in filter(None, (c.strip() for c in sp.get("spiceSecureChannels", "").split(","))):
        plain = name[1:] if name.startswith("s") and name[1:] in SPICE_CHANNELS else name
        if plain not in SPICE_CHANNELS:
            raise bad("spiceSecureChannels", f"unknown SPICE channel {name!r}")
        channels.append(plain)
    if g.type == "vnc":
        channels = []
    elif channels and not virt.spice_tls:
        raise bad(
            "spiceSecureChannels",
            "secure channels need SPICE TLS, which this host does not have ([virt] spice_tls)",
        )
    network = sp.get("displayNetwork") or legacy_network
    keymap = sp.get("keyMap") or None
    if keymap is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", keymap):
        raise bad("keyMap", f"not a keymap name: {keymap!r}")
    return replace(
        g,
        listen_address=None if network else (sp.get("displayIp") or virt.graphics_listen),
        listen_network=f"vdsm-{network}" if network else None,
        keymap=keymap,
        secure_channels=tuple(channels),
        copy_paste=flag("copyPasteEnable"),
        file_transfer=flag("fileTransferEnable"),
        tls=g.type == "spice" and virt.spice_tls,
    )


def _graphics(dev: Fields) -> GraphicsSpec:
    kind = dev.choice("device", ("spice", "vnc"), required=True)
    sp = _spec_params(dev)
    pairs = []
    for key in sorted(sp.field_names()):
        value = sp.raw(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int):
            raise sp.bad(key, "expected a string")
        pairs.append((key, wiretext.check(str(value), sp.name(key))))
    return GraphicsSpec(kind, tuple(pairs), source=dev.name("specParams").rsplit(".", 1)[0])


def _console(dev: Fields, socket_path: str) -> ConsoleSpec | None:
    dev.choice("device", ("console",), "console")
    sp = _spec_params(dev)
    kind = sp.choice("consoleType", ("serial", "virtio"), "serial")
    socket = sp.bool_("enableSocket", False)
    if kind == "serial":
        if socket:
            raise sp.bad("enableSocket", "the serial console is always a pty with a log file")
        return None  # the serial console is always there
    return ConsoleSpec(socket_path if socket else None)


_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _channel(dev: Fields, existing: list[object]) -> ChannelSpec:
    kind = dev.choice("device", ("unix", "spicevmc"), "unix")
    default = "com.redhat.spice.0" if kind == "spicevmc" else None
    name = dev.str_("name", default, required=default is None)
    if not _CHANNEL_NAME.match(name):
        raise dev.bad("name", f"bad channel name {name!r}")
    taken = {c.name for c in existing}  # type: ignore[attr-defined]
    if name == GUEST_AGENT_CHANNEL or name in taken:
        raise dev.bad("name", f"channel {name} is already present")
    return ChannelSpec(kind, name)


def _smartcard(dev: Fields) -> SimpleDeviceSpec:
    dev.choice("device", ("smartcard",), "smartcard")
    sp = _spec_params(dev)
    mode = sp.choice("mode", ("passthrough",), "passthrough")
    kind = sp.choice("type", ("spicevmc",), "spicevmc")
    return SimpleDeviceSpec("smartcard", mode, (("type", kind),), _address(dev))


def _tpm(dev: Fields) -> TpmSpec:
    dev.choice("device", ("tpm",), "tpm")
    sp = _spec_params(dev)
    model = sp.choice("model", ("tpm-tis", "tpm-crb"), "tpm-crb")
    mode = sp.choice("mode", ("emulator", "passthrough"), "emulator")
    path = None
    if mode == "passthrough":
        path = sp.str_("path", "/dev/tpm0")
        if not path.startswith("/dev/"):
            raise sp.bad("path", "must be a /dev/ path")
    return TpmSpec(model, mode, path)


def _memory_device(dev: Fields) -> MemoryDeviceSpec:
    dev.choice("device", ("memory",), "memory")
    return MemoryDeviceSpec(
        size_mib=dev.int_("size", required=True, minimum=1),
        node=dev.int_("node", 0, minimum=0, maximum=255),
        address=_address(dev),
    )


def _check_memory_devices(
    f: Fields, devices: dict[str, object], memory: int, top: dict[str, object]
) -> None:
    dimms: tuple[MemoryDeviceSpec, ...] = devices["memory_devices"]  # type: ignore[assignment]
    if not dimms:
        return
    max_mem = top["max_memory_mib"]
    if max_mem is None:
        raise f.missing("maxMemSize")
    slots = top["max_memory_slots"]
    if len(dimms) > slots:  # type: ignore[operator]
        raise f.bad("devices", f"{len(dimms)} memory devices exceed maxMemSlots ({slots})")
    if memory + sum(d.size_mib for d in dimms) > max_mem:  # type: ignore[operator]
        raise f.bad("devices", "memSize plus memory devices exceeds maxMemSize")


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
        filter=_filter_name(dev),
        address=_address(dev),
        bandwidth=_bandwidth(sp),
    )


def _filter_name(dev: Fields) -> str | None:
    name = dev.str_("filter")
    if name is not None and not _CPU_NAME.match(name):
        raise dev.bad("filter", f"bad network filter name {name!r}")
    return name


def _bandwidth(sp: Fields) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    out = []
    for direction in ("inbound", "outbound"):
        if not sp.has(direction):
            continue
        q = Fields(sp.raw(direction), sp.name(direction))
        attrs = []
        for key in ("average", "peak", "burst"):
            value = q.int_(key, required=key == "average", minimum=1)
            if value is not None:
                attrs.append((key, str(value)))
        unknown = set(q.field_names()) - {"average", "peak", "burst"}
        if unknown:
            raise q.bad(sorted(unknown)[0], "unknown bandwidth attribute")
        out.append((direction, tuple(attrs)))
    return tuple(out)


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
