"""The engine-XML form of the hot-plug verbs (engines 4.2 and later): `params: {vmId, xml}`.

`xml` is `<hotplug><devices><disk|interface>...</devices><metadata>...</metadata></hotplug>`,
as the engine's domain XML builder writes it for one device. The device element is checked
exactly as the same element inside VM.create's engine XML (after the same disk shape fixes,
intake/engine_compat.py): the element and attribute
allow-list (intake/xmlattrs.py) and the host-access policy (intake/hostaccess.py: a disk's
source under the image roots, a NIC without scripts, ...), with errors naming `params.xml`.
The `<metadata>` (storage ids VDSM would prepare a volume from) is not used: hvagent takes the
path the engine wrote, as it does at VM.create.

Plugging: the engine's disk target name is a hint (its builder always names index 0 of the
bus); when that name is in use the disk gets the bus's next free name, as VDSM renames it.
Unplugging finds the live device by the alias the engine gave it (`ua-<device id>`), else a
disk by its source path and a NIC by its MAC, and hands libvirt the live element.
Pure: no libvirt, no asyncio; only `os.path.realpath` in the path policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from lxml import etree

from agent import wirevalues
from agent.config import HostAccessConfig
from agent.domxml import XmlError, parse
from agent.domxml.builder import E
from agent.errors import AgentError, InvalidParams
from agent.intake import engine_compat, hostaccess, xmlattrs
from agent.intake.fields import Fields

PARAM = "params.xml"


def wanted(params: Any) -> bool:
    """The request is the engine-XML form (`xml` present wins, as in VDSM)."""
    return isinstance(params, Mapping) and "xml" in params


def _bad(reason: str) -> InvalidParams:
    return InvalidParams(f"{PARAM}: {reason}", param=PARAM)


def device(vm_id: uuid.UUID, params: Any, kind: str) -> etree._Element:
    """The one `<kind>` element of `params.xml`, parsed with the hardened parser (not yet
    checked against the policy: `checked` does that for what is plugged)."""
    f = Fields(params, "params")
    if f.uuid_("vmId") != vm_id:
        raise f.bad("vmId", f"does not match vmID {vm_id}")
    text = params["xml"]
    if not isinstance(text, str) or not text:
        raise _bad("expected the device XML as a non-empty string")
    wirevalues.check(text, PARAM, limit=wirevalues.MAX_XML, allow=wirevalues.XML_WHITESPACE)
    try:
        root = parse(text)
    except XmlError as exc:
        raise _bad(f"not acceptable XML: {exc}") from None
    if root.tag != "hotplug":
        raise _bad(f"root element must be <hotplug>, got <{wirevalues.echo(str(root.tag), 64)}>")
    devices = root.find("devices")
    children = [] if devices is None else list(devices.iterchildren(tag=etree.Element))
    if len(children) != 1 or children[0].tag != kind:
        raise _bad(f"<hotplug><devices> must hold exactly one <{kind}>")
    return children[0]


def checked(el: etree._Element, policy: HostAccessConfig) -> etree._Element:
    """`el` after the checks VM.create's engine XML gets, as the only device of a domain."""
    domain = E.domain(E.devices(el))  # moves el: its element path reads /domain/devices/...
    engine_compat.schema_shapes(domain)  # as at VM.create: what libvirt itself would store
    try:
        xmlattrs.check(domain, policy)
        hostaccess.check_domain(domain, policy, ())
    except InvalidParams as exc:
        raise _bad(exc.reason.removeprefix(f"{hostaccess.XML_PARAM}: ")) from None
    return el


def free_target(el: etree._Element, used: set[str], next_free: dict[str, int]) -> None:
    """Rename the disk's target to its bus's next free name when the engine's is in use."""
    target = el.find("target")
    if target is None:
        raise _bad("the <disk> has no <target>")
    dev = target.get("dev", "")
    if dev in used and len(dev) >= 2:
        prefix = dev[:2]
        index = next_free.get(prefix, 0)
        if index >= 26:
            raise _bad(f"no free target name left on the {prefix} bus")
        target.set("dev", f"{prefix}{chr(ord('a') + index)}")


def find_live(
    el: etree._Element, live: etree._Element, kind: str, failure: type[AgentError]
) -> etree._Element:
    """The live device `el` names: by alias, else a disk by source path, a NIC by MAC."""
    alias = el.find("alias")
    name = alias.get("name") if alias is not None else None
    candidates = list(live.iterfind(f"devices/{kind}"))
    for dev in candidates:
        live_alias = dev.find("alias")
        if name and live_alias is not None and live_alias.get("name") == name:
            return dev
    key = _key(el, kind)
    if key:
        for dev in candidates:
            if _key(dev, kind) == key:
                return dev
    shown = f"alias {wirevalues.echo(name, 80)}" if name else f"{kind} {wirevalues.echo(key, 200)}"
    raise failure(f"the VM has no {kind} matching {PARAM} ({shown})", param=PARAM)


def mac(el: etree._Element) -> str:
    """An <interface>'s MAC address, lower case ("" without one)."""
    found = el.find("mac")
    return (found.get("address", "") if found is not None else "").lower()


def _key(el: etree._Element, kind: str) -> str:
    if kind == "interface":
        return mac(el)
    source = el.find("source")
    if source is None:
        return ""
    return source.get("file") or source.get("dev") or ""
