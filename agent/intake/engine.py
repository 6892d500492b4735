"""Engine XML passthrough (`vmParams.xml`, reference §2.2): the engine's finished domain XML,
parsed with the hardened parser, checked, and given hvagent's host-local adjustments:

- the VM id is `<uuid>` and must equal `vmID`; root must be `<domain>` with a `<name>`;
- `<on_reboot>` is stripped (libvirt's default, restart, keeps the guest in its process);
  `destroy` is remembered as `destroyOnReboot` in hvagent's metadata (reference §6.4);
- hvagent's `<metadata>` element replaces any the engine sent in hvagent's namespace (other
  metadata, e.g. `ovirt-vm`, is kept);
- the QEMU guest agent channel is added when missing; the serial console with its log file
  is added only when the engine defined neither `<serial>` nor `<console>` (its own win);
- domain type `kvm` becomes the host's configured type when that is `qemu` (no KVM here);
- display networks and unlocked VNC consoles as VDSM treats them (`engine_compat.py`).

Pure: no I/O. Errors name `vmParams.xml` (code -32602) with the reason.
"""

from __future__ import annotations

import uuid

from lxml import etree
from lxml.builder import E

from agent import wirevalues
from agent.domxml import XmlError, metadata, parse, to_string
from agent.domxml.devices import channel, serial
from agent.domxml.metadata import VmMetadata
from agent.errors import InvalidParams, MissingParameter
from agent.intake import engine_compat, enginefacts
from agent.intake.graphics import AddressOf, no_networks
from agent.spec import GUEST_AGENT_CHANNEL

PARAM = "vmParams.xml"


def bad(reason: str) -> InvalidParams:
    return InvalidParams(f"{PARAM}: {reason}", param=PARAM)


def prepare(
    vm_id: uuid.UUID,
    text: str,
    *,
    domain_type: str,
    console_log: str,
    launch_paused: bool,
    custom: dict[str, str],
    address_of: AddressOf = no_networks,
    vnc_sasl: bool = False,
    spice_tls: bool = True,
    warnings: list[dict[str, object]] | None = None,
) -> str:
    """The XML hvagent defines for an engine domain, with hvagent's metadata in it."""
    try:
        root = parse(text)
    except XmlError as exc:
        raise bad(f"not acceptable XML: {exc}") from None
    if root.tag != "domain":
        raise bad(f"root element must be <domain>, got <{root.tag}>")
    enginefacts.check(root, PARAM)  # hardening (issue 15): facts read later cannot fail
    uuid_text = root.findtext("uuid")
    if not uuid_text:
        raise MissingParameter(f"{PARAM}: <uuid> is required", param=PARAM)
    try:
        xml_id = uuid.UUID(uuid_text.strip())
    except ValueError:
        raise bad(f"<uuid> is not a UUID: {wirevalues.echo(uuid_text)}") from None
    if xml_id != vm_id:
        raise bad(f"<uuid> {xml_id} does not match vmID {vm_id}")
    name = root.findtext("name")
    if not name or "/" in name:
        raise bad("<name> is required and must not contain '/'")
    if root.get("type") not in ("kvm", "qemu"):
        raise bad(f"domain type must be kvm or qemu, got {root.get('type')!r}")
    if root.get("type") == "kvm" and domain_type == "qemu":
        root.set("type", "qemu")
    engine_compat.adjust(root, address_of, vnc_sasl, spice_tls, warnings)
    destroy_on_reboot = False
    for el in root.findall("on_reboot"):
        destroy_on_reboot = destroy_on_reboot or (el.text or "").strip() == "destroy"
        root.remove(el)
    meta = VmMetadata(
        launch_paused=launch_paused, destroy_on_reboot=destroy_on_reboot, custom=custom
    )
    _set_metadata(root, meta)
    devices = root.find("devices")
    if devices is None:
        devices = E.devices()
        root.append(devices)
    if devices.find("serial") is None and devices.find("console") is None:
        devices.extend(serial.build(console_log))
    names = {t.get("name") for t in devices.iterfind("channel/target")}
    if GUEST_AGENT_CHANNEL not in names:
        devices.append(channel.build_unix(GUEST_AGENT_CHANNEL))
    return to_string(root)


def _set_metadata(root: etree._Element, meta: VmMetadata) -> None:
    block = root.find("metadata")
    if block is None:
        block = E.metadata()
        uuid_el = root.find("uuid")
        assert uuid_el is not None
        uuid_el.addnext(block)
    old = metadata.find(root)
    if old is not None:
        old.getparent().remove(old)
    block.append(metadata.build(meta))
