"""Hot-plug requests -> the one device element to attach or detach, checked before libvirt.

VDSM's `VM.hotplugDisk`/`VM.hotunplugDisk` take `params: {vmId, drive: {...}}`, the NIC verbs
`params: {vmId, nic: {...}}`; `drive` and `nic` are read by the same readers as VM.create's
`devices[]` entries (intake/devices.py), and a disk's path passes the host-access policy
(intake/hostaccess.py) exactly as at create. Errors name the field (`params.drive.path`).

Plugging needs the VM's live XML (the targets and MACs in use); unplugging finds the device in
it (a disk by `path` or target `name`, a NIC by `macAddr`) and hands libvirt that live element,
alias and address included. Pure: no libvirt, no asyncio; only `os.path.realpath` in the path
policy.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from lxml import etree

from agent.config import HostAccessConfig
from agent.domxml import parse
from agent.domxml.devices import disk as disk_xml
from agent.domxml.devices import interface as interface_xml
from agent.errors import HotunplugDiskFailed, HotunplugNicFailed, InvalidParams
from agent.intake import hostaccess, hotplug_xml
from agent.intake.devices import read_interface
from agent.intake.disks import read_disk, storage_path
from agent.intake.fields import Fields

MAC_PATTERN = r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}"


def _device(vm_id: uuid.UUID, params: Any, key: str) -> Fields:
    """`params.<key>` after checking `params.vmId` names this VM."""
    f = Fields(params, "params")
    if f.uuid_("vmId") != vm_id:
        raise f.bad("vmId", f"does not match vmID {vm_id}")
    if not f.has(key):
        raise f.missing(key)
    return Fields(f.raw(key), f.name(key))


def _targets(dom: etree._Element) -> set[str]:
    return {t.get("dev", "") for t in dom.iterfind("devices/disk/target")}


def _next_free(used: set[str]) -> dict[str, int]:
    """Per target prefix (vd, sd, hd), the index after the highest one in use."""
    counters: dict[str, int] = {}
    for dev in used:
        if len(dev) == 3 and "a" <= dev[2] <= "z":
            counters[dev[:2]] = max(counters.get(dev[:2], 0), ord(dev[2]) - ord("a") + 1)
    return counters


def plug_disk(
    vm_id: uuid.UUID,
    params: Any,
    live_xml: str,
    policy: HostAccessConfig,
    image_root: str = "",
) -> etree._Element:
    """The <disk> to attach: a file or block disk with a `path` under the allowed roots (or
    storage ids under `image_root`, a LUN `GUID`, as the engine sends them), on a free target
    (`name`, `index`, or the next free one on its bus). The engine-XML form:
    intake/hotplug_xml.py."""
    if hotplug_xml.wanted(params):
        el = hotplug_xml.device(vm_id, params, "disk")
        used = _targets(parse(live_xml))
        hotplug_xml.free_target(el, used, _next_free(used))
        return hotplug_xml.checked(el, policy)
    drive = _device(vm_id, params, "drive")
    drive.choice("device", ("disk",), "disk")
    used = _targets(parse(live_xml))
    spec = read_disk(drive, _next_free(used), image_root)
    if spec.target in used:
        raise drive.bad("name", f"target {spec.target} is already used by another disk")
    named = next((k for k in ("path", "GUID") if drive.has(k)), "volumeID")
    hostaccess.check_path(spec.path, drive.name(named), policy.image_roots, policy)
    return disk_xml.build(spec)


def unplug_disk(
    vm_id: uuid.UUID, params: Any, live_xml: str, image_root: str = ""
) -> etree._Element:
    """The live <disk> whose source is `path` (or the storage ids' path, as at plug), or
    whose target is `name`."""
    if hotplug_xml.wanted(params):
        el = hotplug_xml.device(vm_id, params, "disk")
        return hotplug_xml.find_live(el, parse(live_xml), "disk", HotunplugDiskFailed)
    drive = _device(vm_id, params, "drive")
    path, name = drive.str_("path"), drive.str_("name")
    if path is None:
        path = storage_path(drive, image_root)
    if path is None and name is None:
        raise drive.missing("path")
    for el in parse(live_xml).iterfind("devices/disk"):
        source = el.find("source")
        target = el.find("target")
        sources = {source.get("file"), source.get("dev")} if source is not None else set()
        dev = target.get("dev") if target is not None else None
        if (path is not None and path in sources) or (name is not None and name == dev):
            return el
    what = f"path {path}" if path is not None else f"target {name}"
    raise HotunplugDiskFailed(
        f"the VM has no disk with {what}", param=drive.name("path" if path else "name")
    )


def _macs(dom: etree._Element) -> dict[str, etree._Element]:
    return {
        hotplug_xml.mac(el): el
        for el in dom.iterfind("devices/interface")
        if el.find("mac") is not None
    }


def plug_nic(
    vm_id: uuid.UUID, params: Any, live_xml: str, policy: HostAccessConfig
) -> etree._Element:
    """The <interface> to attach; its MAC (when given) must not be in use in the VM."""
    if hotplug_xml.wanted(params):
        el = hotplug_xml.checked(hotplug_xml.device(vm_id, params, "interface"), policy)
        mac = hotplug_xml.mac(el)
        if mac and mac in _macs(parse(live_xml)):
            raise InvalidParams(
                f"{hotplug_xml.PARAM}: MAC {mac} is already used by a NIC of this VM",
                param=hotplug_xml.PARAM,
            )
        return el
    nic = _device(vm_id, params, "nic")
    nic.choice("type", ("interface",), "interface")
    spec = read_interface(nic)
    if spec.mac is not None and spec.mac in _macs(parse(live_xml)):
        raise nic.bad("macAddr", f"MAC {spec.mac} is already used by a NIC of this VM")
    return interface_xml.build(spec)


def unplug_nic(vm_id: uuid.UUID, params: Any, live_xml: str) -> etree._Element:
    """The live <interface> with MAC `macAddr`."""
    if hotplug_xml.wanted(params):
        el = hotplug_xml.device(vm_id, params, "interface")
        return hotplug_xml.find_live(el, parse(live_xml), "interface", HotunplugNicFailed)
    nic = _device(vm_id, params, "nic")
    mac = nic.str_("macAddr", required=True)
    if not isinstance(mac, str) or not _is_mac(mac):
        raise nic.bad("macAddr", "not a MAC address")
    found = _macs(parse(live_xml)).get(mac.lower())
    if found is None:
        raise HotunplugNicFailed(
            f"the VM has no NIC with MAC {mac.lower()}", param=nic.name("macAddr")
        )
    return found


def _is_mac(text: str) -> bool:
    return re.fullmatch(MAC_PATTERN, text) is not None
