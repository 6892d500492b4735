"""Payload disks of a VM.create request (reference hosted-engine.md §4): what to put on which
image, checked before anything is written, and the request with the image paths filled in.

Three forms, all ending as `Image`s (kind, label, files):
- legacy vmParams: a `cdrom`/`floppy` disk device with `specParams.vmPayload` =
  `{volId?, file: {relative/path: base64}}`; its `path` becomes the image's;
- engine domain XML: a cdrom/floppy `<source file="PAYLOAD:"/>` whose target has an
  `<ovirt-vm:device devtype="disk" name=TARGET><ovirt-vm:payload>` in the metadata;
- hvagent's `vmParams.cloudInit: {userData, metaData, networkConfig?, vendorData?}` (text):
  a NoCloud `cidata` ISO on a new cdrom.

`find(params, max_bytes)` validates and decodes (every error -32602, or 11 for a missing
`file`, naming the key); `Found.apply(paths)` returns the request to plan. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from agent import wirevalues
from agent.domxml import XmlError, parse, to_string
from agent.errors import InvalidParams, MissingParameter

OVIRT_VM_NS = "http://ovirt.org/vm/1.0"
PLACEHOLDER = "PAYLOAD:"
CLOUD_INIT_FILES = (
    ("userData", "user-data", True),
    ("metaData", "meta-data", True),
    ("networkConfig", "network-config", False),
    ("vendorData", "vendor-data", False),
)
# Joliet names hold 64 characters; ISO 9660 directories nest 8 deep (Rock Ridge keeps more,
# but readers without it would not see the file).
MAX_COMPONENT = 64
MAX_DEPTH = 7
MAX_LABEL = {"iso": 32, "floppy": 11}
# A 1.44 MB FAT12 floppy: 2847 data clusters of 512 bytes.
FLOPPY_CLUSTERS = 2847
_FAT_BAD = set('"*:<>?\\|')


@dataclass(frozen=True)
class Image:
    kind: str  # "iso" | "floppy"
    label: str | None
    files: tuple[tuple[str, bytes], ...]  # (relative path, content), in request order
    param: str  # the request key that asked for it, for errors and logs


@dataclass
class Found:
    images: list[Image] = field(default_factory=list)
    _apply: Callable[[list[str]], Any] | None = None
    params: Any = None

    def apply(self, paths: list[str]) -> Any:
        """The request with image i's path in place of payload i (same order as images)."""
        if self._apply is None:
            return self.params
        return self._apply(paths)


def bad(param: str, reason: str) -> InvalidParams:
    return InvalidParams(f"{param}: {reason}", param=param)


def wanted(params: Any) -> bool:
    """Cheap: may the request carry payloads? (`find` says which.)"""
    if not isinstance(params, Mapping):
        return False
    if "cloudInit" in params:
        return True
    if isinstance(params.get("xml"), str):
        return PLACEHOLDER in params["xml"]
    devices = params.get("devices")
    return isinstance(devices, list) and any(
        isinstance(d, Mapping)
        and isinstance(d.get("specParams"), Mapping)
        and "vmPayload" in d["specParams"]
        for d in devices
    )


def find(params: Any, max_bytes: int) -> Found:
    """The payload images a request asks for, validated; Found(params) when there are none."""
    if not isinstance(params, Mapping):
        return Found(params=params)
    budget = _Budget(max_bytes)
    if "xml" in params:
        if "cloudInit" in params:
            raise bad("vmParams.cloudInit", "not with vmParams.xml: use a PAYLOAD: cdrom")
        return _from_xml(params, budget)
    return _from_vmparams(params, budget)


class _Budget:
    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes
        self.max_bytes = max_bytes

    def take(self, param: str, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise bad(param, f"payloads exceed [payload] max_bytes ({self.max_bytes} bytes)")


# -- legacy vmParams ----------------------------------------------------------------------


def _from_vmparams(params: Mapping[str, Any], budget: _Budget) -> Found:
    devices = params.get("devices")
    slots: list[int] = []
    images: list[Image] = []
    if isinstance(devices, list):
        for i, dev in enumerate(devices):
            if not isinstance(dev, Mapping) or dev.get("type") != "disk":
                continue
            sp = dev.get("specParams")
            if not isinstance(sp, Mapping) or "vmPayload" not in sp:
                continue
            where = f"devices[{i}]"
            device = dev.get("device", "disk")
            if device not in ("cdrom", "floppy"):
                raise bad(f"{where}.device", f"a payload needs a cdrom or floppy, not {device!r}")
            kind = "iso" if device == "cdrom" else "floppy"
            images.append(
                _vm_payload(sp["vmPayload"], f"{where}.specParams.vmPayload", kind, budget)
            )
            slots.append(i)
    cloud = "cloudInit" in params
    if cloud:
        images.append(_cloud_init(params["cloudInit"], budget))
    if not images:
        return Found(params=params)

    def apply(paths: list[str]) -> Any:
        out = dict(params)
        out_devices = copy.deepcopy(list(devices)) if isinstance(devices, list) else []
        for i, path in zip(slots, paths, strict=False):
            out_devices[i]["path"] = path
            out_devices[i].setdefault("readonly", "true")
        if cloud:
            del out["cloudInit"]
            out_devices.append(_cloud_init_cdrom(params, out_devices, paths[-1]))
        out["devices"] = out_devices
        return out

    return Found(images, apply, params)


def _vm_payload(raw: Any, where: str, kind: str, budget: _Budget) -> Image:
    if not isinstance(raw, Mapping):
        raise bad(where, "must be an object {volId?, file}")
    if raw.get("file") is None:
        raise MissingParameter(f"{where}.file is required", param=f"{where}.file")
    files = raw["file"]
    if not isinstance(files, Mapping):
        raise bad(f"{where}.file", "must be an object {relative path: base64}")
    label = _label(raw.get("volId"), f"{where}.volId", kind)
    out: list[tuple[str, bytes]] = []
    for key, value in files.items():
        param = f"{where}.file[{_quote(key)}]"
        path = _rel_path(key, param, kind)
        if not isinstance(value, str):
            raise bad(param, "content must be a base64 string")
        if len(value) > budget.max_bytes * 4 // 3 + 4:
            budget.take(param, len(value))  # too big, even before decoding
        try:
            data = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise bad(param, "content is not base64") from None
        budget.take(param, len(data))
        out.append((path, data))
    return _checked(Image(kind, label, tuple(out), where), f"{where}.file")


def _quote(key: Any) -> str:
    """The key as it appears in `data.param`: JSON-quoted ASCII, cut to 80 characters."""
    return json.dumps(key[:80] if isinstance(key, str) else str(key)[:80], ensure_ascii=True)


def _rel_path(key: Any, param: str, kind: str) -> str:
    if not isinstance(key, str) or not key:
        raise bad(param, "the file name must be a non-empty relative path")
    wirevalues.check(key, param)  # controls, surrogates, non-characters, length
    if key.startswith("/"):
        raise bad(param, "the file name must be relative, not absolute")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise bad(param, "the file name has an empty, '.' or '..' component")
    if len(parts) > MAX_DEPTH:
        raise bad(param, f"the file name nests deeper than {MAX_DEPTH} directories")
    if any(len(p) > MAX_COMPONENT for p in parts):
        raise bad(param, f"a file name component is longer than {MAX_COMPONENT} characters")
    if kind == "floppy" and any(c in _FAT_BAD for c in key):
        raise bad(param, 'a floppy file name cannot hold any of " * : < > ? \\ |')
    return key


def _label(raw: Any, param: str, kind: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_.\- ]+", raw):
        raise bad(param, "the label takes letters, digits, '_', '-', '.' and spaces")
    if len(raw) > MAX_LABEL[kind]:
        raise bad(param, f"a {kind} label holds at most {MAX_LABEL[kind]} characters")
    return raw


def _checked(image: Image, param: str) -> Image:
    """No file is also a directory (and, with case folding on a floppy, no duplicates);
    a floppy's files fit on it."""
    fold = (lambda s: s.casefold()) if image.kind == "floppy" else (lambda s: s)
    names = {fold(p) for p, _ in image.files}
    dirs = {
        fold("/".join(p.split("/")[:n])) for p, _ in image.files for n in range(1, p.count("/") + 1)
    }
    if len(names) != len(image.files) or names & dirs:
        raise bad(param, "two files share a name, or a file is also a directory")
    if image.kind == "floppy":
        clusters = sum(-(-len(d) // 512) for _, d in image.files) + len(dirs)
        if clusters > FLOPPY_CLUSTERS:
            raise bad(param, "the files do not fit on a 1.44 MB floppy")
    return image


# -- hvagent's cloudInit ------------------------------------------------------------------


def _cloud_init(raw: Any, budget: _Budget) -> Image:
    where = "vmParams.cloudInit"
    if not isinstance(raw, Mapping):
        raise bad(where, "must be an object {userData, metaData, networkConfig?, vendorData?}")
    unknown = set(raw) - {k for k, _, _ in CLOUD_INIT_FILES}
    if unknown:
        raise bad(f"{where}.{sorted(map(str, unknown))[0]}", "unknown key")
    files: list[tuple[str, bytes]] = []
    for key, name, required in CLOUD_INIT_FILES:
        param = f"{where}.{key}"
        value = raw.get(key)
        if value is None:
            if required:
                raise MissingParameter(f"{param} is required", param=param)
            continue
        if not isinstance(value, str):
            raise bad(param, "must be a string")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad(param, "is not valid Unicode") from None
        budget.take(param, len(data))
        files.append((name, data))
    return Image("iso", "cidata", tuple(files), where)


def _cloud_init_cdrom(params: Mapping[str, Any], devices: list[Any], path: str) -> dict[str, Any]:
    """The cdrom carrying the cidata ISO: IDE (SATA on q35), the first free index."""
    q35 = "q35" in str(params.get("emulatedMachine", ""))
    bus, prefix = ("sata", "sd") if q35 else ("ide", "hd")
    used = {
        d.get("name") for d in devices if isinstance(d, Mapping) and isinstance(d.get("name"), str)
    }
    used |= {
        f"{prefix}{chr(ord('a') + int(d['index']))}"
        for d in devices
        if isinstance(d, Mapping)
        and d.get("iface", bus) == bus
        and str(d.get("index", "")).isdigit()
        and int(d["index"]) < 26
    }
    free = next(c for c in "cdefghijklmnopqrstuvwxyz" if f"{prefix}{c}" not in used)
    return {
        "type": "disk",
        "device": "cdrom",
        "iface": bus,
        "name": f"{prefix}{free}",
        "path": path,
        "readonly": "true",
    }


# -- engine domain XML --------------------------------------------------------------------


def _from_xml(params: Mapping[str, Any], budget: _Budget) -> Found:
    text = params["xml"]
    if not isinstance(text, str) or PLACEHOLDER not in text:
        return Found(params=params)
    try:
        root = parse(text)
    except XmlError:
        return Found(params=params)  # the intake names the XML error
    where = "vmParams.xml"
    meta = {
        d.get("name"): d.find(f"{{{OVIRT_VM_NS}}}payload")
        for d in root.iterfind(f"metadata/{{{OVIRT_VM_NS}}}vm/{{{OVIRT_VM_NS}}}device")
        if d.get("devtype") == "disk"
    }
    sources: list[etree._Element] = []
    images: list[Image] = []
    for disk in root.iterfind("devices/disk"):
        source = disk.find("source")
        if source is None or source.get("file") != PLACEHOLDER:
            continue
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        param = f"{where}: <disk> {dev or '?'}"
        if disk.get("device") not in ("cdrom", "floppy"):
            raise bad(where, f"{param}: a payload needs a cdrom or floppy")
        payload = meta.get(dev)
        if payload is None:
            raise MissingParameter(
                f"{param}: no <ovirt-vm:device name={dev!r}> payload metadata", param=where
            )
        kind = "iso" if disk.get("device") == "cdrom" else "floppy"
        images.append(_vm_payload(_payload_dict(payload), param, kind, budget))
        sources.append(source)

    def apply(paths: list[str]) -> Any:
        for source, path in zip(sources, paths, strict=True):
            source.set("file", path)
        return {**params, "xml": to_string(root)}

    return Found(images, apply, params)


def _payload_dict(el: etree._Element) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for f in el.iterfind(f"{{{OVIRT_VM_NS}}}file"):
        files[f.get("path", "")] = (f.text or "").strip()
    out: dict[str, Any] = {"file": files if el.find(f"{{{OVIRT_VM_NS}}}file") is not None else None}
    vol = el.findtext(f"{{{OVIRT_VM_NS}}}volId")
    if vol:
        out["volId"] = vol.strip()
    return out
