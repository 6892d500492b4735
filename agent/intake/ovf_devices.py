"""OVF hardware Items -> vmParams devices (reference hosted-engine.md §1.4), fixing what the HA
converter gets wrong (§2.3): distinct disk targets, only the boot disk gets a boot order,
VirtIO_SCSI means bus scsi, e1000e works, a NIC without a MAC gets one, every console Item is
kept. Device ids, aliases and Java-map addresses are read; PCI addresses are kept only while
they are all distinct. Pure apart from `HostView.exists` for disk volumes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from lxml import etree

from agent.errors import InvalidParams, Unsupported
from agent.intake import ovf
from agent.intake.host import HostView, Warnings, refuse

_BUS = {"ide": "ide", "virtio": "virtio", "virtio_scsi": "scsi", "sata": "sata"}
_FORMAT = {"raw": "raw", "cow": "qcow2"}
# VmInterfaceType (reference §1.4): subtype -> libvirt model; None = not runnable on x86.
_NIC = {0: "rtl8139", 1: "rtl8139", 2: "e1000", 3: "virtio", 4: None, 5: None, 6: "e1000e"}
_NIC_NAMES = {4: "spaprVlan (POWER only)", 5: "pciPassthrough (SR-IOV, needs a host VF)"}
_DROPPED = (
    "channel",
    "console",
    "smartcard",
    "watchdog",
    "redir",
    "hostdev",
    "memory",
    "tpm",
    "mdev",
)
_ADDR = re.compile(r"^\{(.*)\}$")


def convert(
    items: list[etree._Element],
    disks: dict[str | None, etree._Element],
    display: int | None,
    machine: str,
    host: HostView,
    warnings: Warnings,
) -> list[dict[str, Any]]:
    q35 = "q35" in machine
    devices: list[dict[str, Any]] = []
    disk_items = [i for i in items if _kind(i) == ("disk", "disk") or ovf.rtype(i) == 17]
    boot = _boot_disk(disk_items, disks)
    for item in disk_items:
        devices.append(_disk(item, disks, item is boot, q35, host, warnings))
    counters: dict[str, int] = {}
    for dev in devices:  # distinct targets per bus, in Item order
        prefix = {"virtio": "vd", "ide": "hd", "scsi": "sd", "sata": "sd"}[dev["iface"]]
        dev["index"] = str(counters.get(prefix, 0))
        counters[prefix] = counters.get(prefix, 0) + 1
    videos, consoles = [], []
    for item in items:
        kind, device = _kind(item)
        where = f"Item[{text_or(item, 'InstanceId')}]"
        if item in disk_items:
            continue
        if ovf.rtype(item) == 10 or kind == "interface":
            nic = _nic(item, where, warnings)
            if nic is not None:
                devices.append(nic)
        elif (kind == "disk" and device == "cdrom") or ovf.rtype(item) == 15:
            if any(d.get("device") == "cdrom" for d in devices):
                warnings.add("only the first cdrom is kept", where)
                continue
            path = _spec(item).get("path") or ""
            cdrom = {
                "type": "disk",
                "device": "cdrom",
                "iface": "sata" if q35 else "ide",
                "index": str(counters.get("sd" if q35 else "hd", 0)),
                "readonly": "true",
            }
            counters["sd" if q35 else "hd"] = counters.get("sd" if q35 else "hd", 0) + 1
            if path:
                cdrom["path"] = path
            devices.append(cdrom)
        elif kind == "video":
            videos.append(item)
        elif kind == "graphics":
            if device not in ("spice", "vnc"):
                warnings.add(f"graphics {device!r} is not supported; dropped", where)
            elif device in consoles:
                warnings.add(f"a second {device} console is dropped", where)
            else:
                consoles.append(device)
        elif kind == "controller":
            ctl = _controller(item, device, q35, where, warnings)
            if ctl is not None:
                devices.append(ctl)
        elif kind == "rng":
            source = _spec(item).get("source", "urandom")
            devices.append(
                _with_address(
                    {"type": "rng", "device": "virtio", "specParams": {"source": source}}, item
                )
            )
        elif kind == "balloon":
            model = _spec(item).get("model", "virtio")
            devices.append(
                {"type": "balloon", "device": "memballoon", "specParams": {"model": model}}
            )
        elif kind == "sound":
            if _plugged(item):
                devices.append(_with_address({"type": "sound", "device": device}, item))
        elif kind in _DROPPED:
            if kind not in ("channel", "console"):  # agent channels and the serial console
                warnings.add(f"device {kind}/{device} is not honoured", where)  # are always there
        elif kind is not None:
            warnings.add(f"device {kind}/{device} is not supported; dropped", where)
    devices += _display(videos, consoles, display, warnings)
    if not any(d["type"] == "rng" for d in devices):
        devices.append({"type": "rng", "device": "virtio", "specParams": {"source": "urandom"}})
    _dedupe_addresses(devices, q35, warnings)
    return devices


def text_or(item: etree._Element, name: str) -> str:
    return ovf.text(item, name) or "?"


def _kind(item: etree._Element) -> tuple[str | None, str | None]:
    return ovf.text(item, "Type"), ovf.text(item, "Device")


def _plugged(item: etree._Element) -> bool:
    return (ovf.text(item, "IsPlugged") or "true").lower() != "false"


def _spec(item: etree._Element) -> dict[str, str]:
    sp = ovf.child(item, "SpecParams")
    if sp is None:
        return {}
    return {ovf.local(c): c.text.strip() for c in sp if c.text and c.text.strip()}


def address(raw: str | None) -> dict[str, str] | None:
    """`{type=pci, slot=0x06, ...}` (Java map text) -> dict; None when empty or malformed."""
    m = _ADDR.match((raw or "").strip())
    if not m:
        return None
    out = {}
    for pair in m.group(1).split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            return None
        out[key.strip()] = value.strip()
    return out if "type" in out else None


def _with_address(dev: dict[str, Any], item: etree._Element) -> dict[str, Any]:
    addr = address(ovf.text(item, "Address"))
    if addr is not None and addr["type"] == "pci":
        dev["address"] = addr
    return dev


def _boot_disk(
    disk_items: list[etree._Element], disks: dict[str | None, etree._Element]
) -> etree._Element | None:
    def order(item: etree._Element) -> int:
        value = ovf.text(item, "BootOrder") or "0"
        return int(value) if value.isdigit() and len(value) < 6 else 0

    ordered = sorted((order(i), n, i) for n, i in enumerate(disk_items) if order(i) > 0)
    if ordered:
        return ordered[0][2]
    flagged = [
        i for i in disk_items if ovf.attr(disks.get(ovf.text(i, "InstanceId"), i), "boot") == "true"
    ]
    if flagged:
        return flagged[0]
    return disk_items[0] if disk_items else None


def _disk(
    item: etree._Element,
    disks: dict[str | None, etree._Element],
    boot: bool,
    q35: bool,
    host: HostView,
    warnings: Warnings,
) -> dict[str, Any]:
    instance = ovf.text(item, "InstanceId")
    where = f"Item[{instance or '?'}]"
    disk = disks.get(instance)
    if disk is None:
        raise refuse(
            InvalidParams,
            f"disk {instance} has no <Disk> in the DiskSection",
            ovf.PARAM,
            element=where,
        )
    alias = ovf.attr(disk, "disk-alias") or instance
    file_ref = ovf.attr(disk, "fileRef") or ovf.text(item, "HostResource") or ""
    image, _, volume = file_ref.partition("/")
    domain = ovf.text(item, "StorageId")
    if not image or not volume or not domain:
        raise refuse(
            InvalidParams,
            f"disk {alias}: no storage domain/image/volume ids",
            ovf.PARAM,
            element=where,
        )
    path = host.volume_path(domain, image, volume, ovf.PARAM)
    if not host.exists(path):
        raise refuse(
            InvalidParams,
            f"disk {alias}: volume {path} does not exist",
            ovf.PARAM,
            element=where,
            disk=alias,
            path=path,
        )
    iface = (ovf.attr(disk, "disk-interface") or "VirtIO").lower()
    if iface not in _BUS:
        raise refuse(
            Unsupported,
            f"disk {alias}: interface {iface!r} is not supported",
            ovf.PARAM,
            element=where,
        )
    bus = _BUS[iface]
    if bus == "ide" and q35:
        warnings.add(f"disk {alias}: IDE does not exist on q35; SATA is used", where)
        bus = "sata"
    fmt = (ovf.attr(disk, "volume-format") or "RAW").lower()
    if fmt not in _FORMAT:
        raise refuse(
            InvalidParams, f"disk {alias}: unknown volume-format {fmt!r}", ovf.PARAM, element=where
        )
    readonly = "true" in (
        (ovf.attr(disk, "read-only") or "").lower(),
        (ovf.text(item, "IsReadOnly") or "").lower(),
    )
    dev: dict[str, Any] = {
        "type": "disk",
        "device": "disk",
        "path": path,
        "iface": bus,
        "format": _FORMAT[fmt],
        "readonly": "true" if readonly else "false",
        "serial": image,
        "shared": "shared" if ovf.attr(disk, "shareable") == "true" else "false",
        "propagateErrors": "off",
    }
    if boot:
        dev["bootOrder"] = "1"
    return _with_address(dev, item)


def _nic(item: etree._Element, where: str, warnings: Warnings) -> dict[str, Any] | None:
    name = ovf.text(item, "Name") or ovf.text(item, "ElementName") or where
    raw = ovf.text(item, "ResourceSubType") or "3"
    subtype = int(raw) if raw.isdigit() and len(raw) < 4 else -1
    if subtype not in _NIC:
        raise refuse(
            Unsupported,
            f"NIC {name}: unknown interface type {raw!r}",
            ovf.PARAM,
            element=where,
            nic=name,
        )
    model = _NIC[subtype]
    if model is None:
        raise refuse(
            Unsupported,
            f"NIC {name}: {_NIC_NAMES[subtype]} cannot run on x86",
            ovf.PARAM,
            element=where,
            nic=name,
        )
    network = ovf.text(item, "Connection")
    if not network:
        warnings.add(f"NIC {name} is on no network (empty vNIC profile); skipped", where)
        return None
    if not _plugged(item):
        warnings.add(f"NIC {name} is unplugged in the OVF; skipped", where)
        return None
    mac = ovf.text(item, "MACAddress")
    if not mac or mac == "None":
        digest = hashlib.sha256(f"{where}/{name}".encode()).digest()
        mac = "00:16:3e:" + ":".join(f"{b:02x}" for b in digest[:3])
        warnings.add(f"NIC {name} has no MAC address; {mac} is used", where, mac=mac)
    linked = (ovf.text(item, "Linked") or "true").lower()
    return _with_address(
        {
            "type": "interface",
            "device": "bridge",
            "network": network,
            "macAddr": mac,
            "nicModel": model,
            "linkActive": "false" if linked == "false" else "true",
        },
        item,
    )


def _controller(
    item: etree._Element, device: str | None, q35: bool, where: str, warnings: Warnings
) -> dict[str, Any] | None:
    sp = _spec(item)
    if device in ("scsi", "virtio-scsi"):
        ctl = {"type": "controller", "device": "scsi", "model": "virtio-scsi"}
    elif device == "ide" and q35:
        return None  # q35 has no IDE controller; its SATA one is built in
    elif device in ("usb", "ide", "virtio-serial", "sata"):
        ctl = {"type": "controller", "device": device}
        if device == "usb" and sp.get("model"):
            ctl["model"] = sp["model"]
    else:
        warnings.add(f"controller {device!r} is not supported; dropped", where)
        return None
    if sp.get("index", "").isdigit():
        ctl["index"] = sp["index"]
    return _with_address(ctl, item)


def _display(
    videos: list[etree._Element], consoles: list[str], display: int | None, warnings: Warnings
) -> list[dict[str, Any]]:
    if display == 4:  # headless: no console, video none
        if consoles:
            warnings.add(
                "DefaultDisplayType 4 (headless): graphics Items dropped", "DefaultDisplayType"
            )
        return [{"type": "video", "device": "none"}]
    out: list[dict[str, Any]] = []
    for item in videos[:1]:
        model = ovf.text(item, "Device") or ovf.DISPLAY_VIDEO.get(
            2 if display is None else display, "vga"
        )
        dev: dict[str, Any] = {"type": "video", "device": model}
        sp = {k: v for k, v in _spec(item).items() if k in ("vram", "ram", "vgamem", "heads")}
        if model == "qxl" and sp:
            dev["specParams"] = sp
        elif "heads" in sp:
            dev["specParams"] = {"heads": sp["heads"]}
        out.append(_with_address(dev, item))
    if len(videos) > 1:
        warnings.add(f"{len(videos) - 1} more video device(s) dropped", "Item[video]")
    if not out:
        out.append(
            {
                "type": "video",
                "device": ovf.DISPLAY_VIDEO.get(2 if display is None else display, "vga"),
            }
        )
    if not consoles:
        consoles = ["spice" if display == 1 else "vnc"]
        warnings.add(
            f"the OVF has no graphics Item; a {consoles[0]} console is added", "Item[graphics]"
        )
    out += [{"type": "graphics", "device": c} for c in consoles]
    return out


def _dedupe_addresses(devices: list[dict[str, Any]], q35: bool, warnings: Warnings) -> None:
    seen: set[tuple[str, ...]] = set()
    clash = False
    if q35:  # the engine's slots are i440fx ones; a q35 machine gets libvirt's
        for dev in devices:
            dev.pop("address", None)
        return
    for dev in devices:
        addr = dev.get("address")
        if addr is None:
            continue
        key = tuple(addr.get(k, "") for k in ("domain", "bus", "slot", "function"))
        clash = clash or key in seen
        seen.add(key)
    if clash:
        for dev in devices:
            dev.pop("address", None)
        warnings.add(
            "the OVF gives two devices the same PCI address; libvirt assigns them all",
            "rasd:Address",
        )
