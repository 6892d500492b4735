"""An OVF's `<EngineXml>` (engine 4.2+, reference hosted-engine.md §1.7, §2.4) or a vm.conf's
`xmlBase64`: the engine's own domain XML, made usable on this host or declared unusable.

Usable means: well-formed `<domain>`, no `<lease>` (hvagent holds no sanlock leases), every
disk on a `/rhev/data-center/<pool>/<domain>/images/<image>/<volume>` path (mapped to the image
root, and the volume must exist) or an empty cdrom, and no host placeholder other than the
sysinfo ones (`HOST-SERIAL:`, `OS-NAME:`, `OS-VERSION:`), which get this host's values.
The hosted-engine extras (destroy on poweroff/reboot/crash, the setup channel) are added.
Pure apart from `HostView.exists`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from lxml import etree
from lxml.builder import E

from agent.domxml import XmlError, parse, to_string
from agent.errors import InvalidParams
from agent.intake.host import HostView, Warnings, refuse

HE_CHANNEL = "org.ovirt.hosted-engine-setup.0"
_RHEV = re.compile(r"^/rhev/data-center/[^/]+/([^/]+)/images/([^/]+)/([^/]+)$")
_SYSINFO = {"HOST-SERIAL:": "host_uuid", "OS-NAME:": "os_name", "OS-VERSION:": "os_version"}
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z-]+:")


class Unusable(Exception):
    """The XML cannot run here; the caller falls back to the OVF Items."""


def use(
    text: str, vm_id: uuid.UUID, host: HostView, warnings: Warnings, param: str = "EngineXml"
) -> dict[str, Any] | None:
    """vmParams {vmId, xml} for a usable XML; None (plus a warning) when it is not."""
    try:
        return {"vmId": str(vm_id), "xml": prepare(text, vm_id, host, param)}
    except Unusable as exc:
        warnings.add(
            f"the engine's domain XML is not usable here ({exc}); "
            "the VM is built from the OVF hardware Items",
            param,
        )
        return None


def prepare(text: str, vm_id: uuid.UUID | None, host: HostView, param: str) -> str:
    try:
        root = parse(text)
    except (XmlError, ValueError) as exc:
        raise Unusable(f"not well-formed XML: {exc}") from None
    if root.tag != "domain":
        raise Unusable(f"root element is <{root.tag}>, not <domain>")
    if vm_id is not None and (root.findtext("uuid") or "").strip() != str(vm_id):
        raise Unusable(f"its <uuid> is not {vm_id}")
    devices = root.find("devices")
    if devices is None:
        raise Unusable("it has no <devices>")
    if devices.find("lease") is not None:
        raise Unusable("it holds a VM lease, and hvagent has no sanlock")
    for disk in devices.iterfind("disk"):
        _disk(disk, host, param)
    for entry in root.iterfind("sysinfo/system/entry"):
        value = (entry.text or "").strip()
        if value in _SYSINFO:
            entry.text = getattr(host, _SYSINFO[value]) or "unknown"
    for el in root.iter():
        for value in [el.text or "", *el.attrib.values()]:
            if _PLACEHOLDER.match(value.strip()) and not value.startswith(("http:", "https:")):
                raise Unusable(f"host placeholder {value.strip()[:40]!r} cannot be resolved")
    for tag in ("on_poweroff", "on_reboot", "on_crash"):
        for el in root.findall(tag):
            root.remove(el)
    anchor = root.find("devices")
    assert anchor is not None
    for tag in ("on_poweroff", "on_reboot", "on_crash"):
        anchor.addprevious(etree.Element(tag))
        anchor.getprevious().text = "destroy"
    names = {t.get("name") for t in devices.iterfind("channel/target")}
    if HE_CHANNEL not in names:
        devices.append(E.channel(E.target(type="virtio", name=HE_CHANNEL), type="unix"))
    return to_string(root)


def _disk(disk: etree._Element, host: HostView, param: str) -> None:
    source = disk.find("source")
    path = source.get("file") if source is not None else None
    if disk.get("device") in ("cdrom", "floppy") and not path:
        if source is not None:  # the engine writes file="" for an empty drive; libvirt's
            disk.remove(source)  # schema wants no <source> then
        return
    if source is None or disk.get("type") != "file" or not path:
        raise Unusable(f"disk {_target(disk)} is not a file on a storage domain")
    m = _RHEV.match(path)
    if m is None:
        raise Unusable(f"disk {_target(disk)} path {path!r} is not a storage-domain volume")
    local = host.volume_path(*m.groups(), param)
    if not host.exists(local):
        raise refuse(
            InvalidParams,
            f"disk {_target(disk)}: volume {local} does not exist",
            param,
            disk=_target(disk),
            path=local,
        )
    source.set("file", local)


def _target(disk: etree._Element) -> str:
    target = disk.find("target")
    return (target.get("dev") if target is not None else None) or "?"
