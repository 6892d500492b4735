"""vmParams `devices[]` -> device specs: one reader per device type, every field checked.

`read_devices(f, console_socket, image_root)` walks the list once and returns a `DeviceSet`.
Graphics entries are only collected here (their host policy is `intake/graphics.py`). A disk
is given by `path`, or by storage ids as engines send them (`storage_path`). Errors name the
field by its path (`devices[2].path`): missing is code 11, bad is -32602, an unknown device
type 75. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent import wirevalues
from agent.errors import Unsupported
from agent.intake.address import read_address
from agent.intake.disks import read_disk
from agent.intake.fields import Fields
from agent.intake.graphics import read_graphics
from agent.spec import (
    GUEST_AGENT_CHANNEL,
    SPICE_AGENT_CHANNEL,
    ChannelSpec,
    ConsoleSpec,
    DiskSpec,
    GraphicsSpec,
    InterfaceSpec,
    MemoryDeviceSpec,
    SimpleDeviceSpec,
    TpmSpec,
    VideoSpec,
)

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class DeviceSet:
    """The devices of one request, in request order per kind."""

    disks: list[DiskSpec] = field(default_factory=list)
    interfaces: list[InterfaceSpec] = field(default_factory=list)
    videos: list[VideoSpec] = field(default_factory=list)
    controllers: list[SimpleDeviceSpec] = field(default_factory=list)
    sounds: list[SimpleDeviceSpec] = field(default_factory=list)
    watchdogs: list[SimpleDeviceSpec] = field(default_factory=list)
    rngs: list[SimpleDeviceSpec] = field(default_factory=list)
    graphics: list[GraphicsSpec] = field(default_factory=list)
    consoles: list[ConsoleSpec] = field(default_factory=list)
    channels: list[ChannelSpec] = field(default_factory=list)
    smartcards: list[SimpleDeviceSpec] = field(default_factory=list)
    memory_devices: list[MemoryDeviceSpec] = field(default_factory=list)
    balloon: SimpleDeviceSpec | None = None
    tpm: TpmSpec | None = None
    serial_socket: str | None = None


def read_devices(f: Fields, console_socket: str, image_root: str = "") -> DeviceSet:
    out = DeviceSet()
    used: dict[str, str] = {}
    counters: dict[str, int] = {}
    seen_console = False
    for i, raw in enumerate(f.list_("devices")):
        dev = Fields(raw, f"devices[{i}]")
        kind = dev.str_("type", required=True)
        if kind == "disk":
            disk = read_disk(dev, counters, image_root)
            if disk.target in used:
                raise dev.bad("name", f"target {disk.target} already used by {used[disk.target]}")
            used[disk.target] = dev.name("name")
            out.disks.append(disk)
        elif kind == "interface":
            out.interfaces.append(read_interface(dev))
        elif kind == "video":
            out.videos.append(_video(dev))
        elif kind == "controller":
            out.controllers.append(_controller(dev))
        elif kind == "sound":
            out.sounds.append(_sound(dev))
        elif kind == "watchdog":
            out.watchdogs.append(_watchdog(dev))
        elif kind == "rng":
            out.rngs.append(_rng(dev))
        elif kind == "balloon":
            if out.balloon is not None:
                raise dev.bad("type", "only one balloon device is allowed")
            out.balloon = _balloon(dev)
        elif kind == "graphics":
            graphics = read_graphics(dev)
            if any(g.type == graphics.type for g in out.graphics):
                raise dev.bad("device", f"only one {graphics.type} graphics device is allowed")
            out.graphics.append(graphics)
        elif kind == "console":
            if seen_console:
                raise dev.bad("type", "only one console device is allowed")
            seen_console = True
            console = _console(dev, console_socket)
            if isinstance(console, ConsoleSpec):
                out.consoles.append(console)
            else:
                out.serial_socket = console
        elif kind == "channel":
            out.channels.append(_channel(dev, out.channels))
        elif kind == "smartcard":
            out.smartcards.append(_smartcard(dev))
        elif kind == "tpm":
            if out.tpm is not None:
                raise dev.bad("type", "only one tpm device is allowed")
            out.tpm = _tpm(dev)
        elif kind == "memory":
            out.memory_devices.append(_memory_device(dev))
        else:
            raise Unsupported(
                f"devices[{i}].type: device type {kind!r} is not supported",
                param=dev.name("type"),
            )
    return out


def _console(dev: Fields, socket_path: str) -> ConsoleSpec | str | None:
    """VDSM's console device: `consoleType` virtio (the default) is a virtio console;
    serial is the serial console hvagent always has. `enableSocket` puts either on the unix
    socket ovirt-vmconsole expects; for serial the socket path is returned (a str)."""
    dev.choice("device", ("console",), "console")
    sp = dev.obj("specParams")
    kind = sp.choice("consoleType", ("serial", "virtio"), "virtio")
    socket = sp.bool_("enableSocket", False)
    if kind == "serial":
        return socket_path if socket else None
    return ConsoleSpec(socket_path if socket else None)


def _channel(dev: Fields, existing: list[ChannelSpec]) -> ChannelSpec:
    kind = dev.choice("device", ("unix", "spicevmc"), "unix")
    default = SPICE_AGENT_CHANNEL if kind == "spicevmc" else None
    name = dev.str_("name", default, required=default is None)
    if not wirevalues.is_channel_name(name):
        raise dev.bad(
            "name",
            f"bad channel name {wirevalues.echo(name)}: letters, digits, _ . - (not first), "
            "at most 100",
        )
    taken = {c.name for c in existing}
    if name == GUEST_AGENT_CHANNEL or name in taken:
        raise dev.bad("name", f"channel {name} is already present")
    return ChannelSpec(kind, name)


def _smartcard(dev: Fields) -> SimpleDeviceSpec:
    dev.choice("device", ("smartcard",), "smartcard")
    sp = dev.obj("specParams")
    mode = sp.choice("mode", ("passthrough",), "passthrough")
    kind = sp.choice("type", ("spicevmc",), "spicevmc")
    return SimpleDeviceSpec("smartcard", mode, (("type", kind),), read_address(dev))


def _tpm(dev: Fields) -> TpmSpec:
    dev.choice("device", ("tpm",), "tpm")
    sp = dev.obj("specParams")
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
        address=read_address(dev),
    )


_NIC_MODELS = {
    "virtio": "virtio",
    "pv": "virtio",
    "e1000": "e1000",
    "e1000e": "e1000e",
    "rtl8139": "rtl8139",
}
_VIDEO_MODELS = ("qxl", "vga", "cirrus", "virtio", "bochs", "none")
_SOUND_MODELS = ("ich6", "ich9", "ac97", "es1370", "sb16", "usb")
_CONTROLLER_TYPES = ("virtio-serial", "usb", "scsi", "ide", "sata", "pci")
_WATCHDOG_MODELS = ("i6300esb", "ib700", "diag288", "itco")
_WATCHDOG_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")
_RNG_SOURCES = {"random": "/dev/random", "urandom": "/dev/urandom", "hwrng": "/dev/hwrng"}
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def read_interface(dev: Fields) -> InterfaceSpec:
    kind = dev.choice("device", ("bridge", "network"), "bridge")
    source = dev.str_("network", required=True)
    mac = dev.str_("macAddr")
    if mac is not None and not _MAC.match(mac):
        raise dev.bad("macAddr", f"not a MAC address: {mac!r}")
    sp = dev.obj("specParams")
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
        address=read_address(dev),
        bandwidth=_bandwidth(sp),
    )


def _filter_name(dev: Fields) -> str | None:
    name = dev.str_("filter")
    if name is not None and not _NAME.match(name):
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
    sp = dev.obj("specParams")
    return VideoSpec(
        model=model,
        vram=sp.int_("vram", minimum=1),
        ram=sp.int_("ram", minimum=1),
        vgamem=sp.int_("vgamem", minimum=1),
        heads=sp.int_("heads", minimum=1, maximum=16),
        address=read_address(dev),
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
    return SimpleDeviceSpec("controller", "", tuple(extra), read_address(dev))


def _watchdog(dev: Fields) -> SimpleDeviceSpec:
    sp = dev.obj("specParams")
    model = sp.choice("model", _WATCHDOG_MODELS, "i6300esb")
    action = sp.choice("action", _WATCHDOG_ACTIONS, "none")
    return SimpleDeviceSpec("watchdog", model, (("action", action),), read_address(dev))


def _rng(dev: Fields) -> SimpleDeviceSpec:
    sp = dev.obj("specParams")
    source = sp.choice("source", tuple(_RNG_SOURCES), "urandom")
    extra = [("source", _RNG_SOURCES[source])]
    period = sp.int_("period", minimum=1)
    nbytes = sp.int_("bytes", minimum=1)
    if (period is None) != (nbytes is None):
        raise sp.bad("period" if period is None else "bytes", "period and bytes go together")
    if period is not None:
        extra += [("period", str(period)), ("bytes", str(nbytes))]
    return SimpleDeviceSpec("rng", "virtio", tuple(extra), read_address(dev))


def _sound(dev: Fields) -> SimpleDeviceSpec:
    model = dev.choice("device", _SOUND_MODELS, required=True)
    return SimpleDeviceSpec("sound", model, (), read_address(dev))


def _balloon(dev: Fields) -> SimpleDeviceSpec:
    dev.choice("device", ("memballoon",), "memballoon")
    sp = dev.obj("specParams")
    model = sp.choice("model", ("virtio", "none"), "virtio")
    return SimpleDeviceSpec("memballoon", model, (), read_address(dev))
