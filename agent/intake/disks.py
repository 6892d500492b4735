"""A vmParams devices[] disk (also VM.hotplugDisk's `drive`) -> DiskSpec.

A disk is given by `path`, or, as engines send it, by storage ids: `domainID`/`imageID`/
`volumeID` name a volume in VDSM's file-domain layout under `[virt] image_root`, a direct
LUN's `GUID` its multipath device. Errors name the field (`devices[2].path`): missing is code
11, bad is -32602. Pure: the host-access policy checks the path afterwards.
"""

from __future__ import annotations

from agent.errors import InvalidParams
from agent.intake.address import read_address
from agent.intake.fields import Fields
from agent.intake.host import lun_path, volume_path
from agent.spec import DiskSpec

_DISK_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd", "fdc": "fd"}
_DISK_FORMATS = {"raw": "raw", "cow": "qcow2", "qcow2": "qcow2"}


def _shared(dev: Fields) -> bool:
    if isinstance(dev.raw("shared"), bool):
        return bool(dev.raw("shared"))
    value = dev.choice("shared", ("false", "none", "true", "shared", "exclusive"), "false")
    return value in ("true", "shared")


def storage_path(dev: Fields, image_root: str) -> str | None:
    """A disk the engine names by storage ids instead of a path, as VDSM's prepared volume
    would be: `domainID`/`imageID`/`volumeID` -> `<image_root>/<domainID>/images/<imageID>/
    <volumeID>` (VDSM's file-domain layout), a direct LUN's `GUID` -> `/dev/mapper/<GUID>`."""
    if dev.has("GUID"):
        return lun_path(dev.raw("GUID"), dev.name("GUID"))
    if image_root and dev.has("volumeID"):
        ids = (dev.raw("domainID"), dev.raw("imageID"), dev.raw("volumeID"))
        return volume_path(image_root, *ids, dev.name("volumeID"))
    return None


def read_disk(dev: Fields, counters: dict[str, int], image_root: str = "") -> DiskSpec:
    """A devices[] disk (also VM.hotplugDisk's `drive`): by `path`, or by storage ids under
    `image_root` ([virt] image_root) or a LUN `GUID` when it has no path."""
    device = dev.choice("device", ("disk", "cdrom", "floppy"), "disk")
    path = dev.str_("path")
    if path is None:
        path = storage_path(dev, image_root)
    if path is None and device == "disk":
        raise dev.missing("path")
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
        address=read_address(dev),
    )
