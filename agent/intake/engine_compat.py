"""Engine XML (`vmParams.xml`) adjustments where an engine counts on VDSM's host side:

- a console `<listen type="network" network="vdsm-X"/>` names VDSM's libvirt network for the
  engine network X, which this host does not define: it becomes `<listen type="address">`
  with the host's address on the network (bridge/interface) X, or the create is refused
  (code 9) naming the network;
- a VNC console without `passwdValidTo` is unlocked: refused (code 9) unless libvirt has
  VNC SASL (`[virt] vnc_sasl`), as VDSM's `is_vnc_secure`;
- on a host without SPICE TLS (`[virt] spice_tls = false`) a SPICE console's secure
  channels, `defaultMode="secure"` and `tlsPort` (which QEMU would refuse to start with)
  are dropped, and the reply gets a warning (code 75) saying so;
- shapes oVirt engines write that libvirt reads loosely but its schema (hvagent defines with
  validation) refuses: an empty cdrom/floppy `<source file="">` loses its `file` (libvirt
  reads "" as no medium), and a device `<seclabel type=...>` (inside a disk `<source>`)
  loses its `type` (libvirt ignores it there; `model`/`relabel` carry the meaning). The
  result is what libvirt itself would store.

Pure: the host's addresses come through `address_of` (agent/hostnet.py on a real host).
"""

from __future__ import annotations

from lxml import etree

from agent.errors import CreateFailed
from agent.intake.graphics import AddressOf, no_address
from agent.intake.host import warning

PARAM = "vmParams.xml"
_PREFIX = "vdsm-"


def adjust(
    root: etree._Element,
    address_of: AddressOf,
    vnc_sasl: bool,
    spice_tls: bool = True,
    warnings: list[dict[str, object]] | None = None,
) -> None:
    schema_shapes(root)
    for graphics in root.iterfind("devices/graphics"):
        if graphics.get("type") == "spice" and not spice_tls:
            _plain_spice(graphics, warnings if warnings is not None else [])
        if graphics.get("type") == "vnc" and not graphics.get("passwdValidTo") and not vnc_sasl:
            raise CreateFailed(
                f"{PARAM}: the VNC console has no passwdValidTo (it would be unlocked) and "
                "VNC SASL is not configured ([virt] vnc_sasl)",
                param=PARAM,
            )
        for listen in graphics.iterfind("listen"):
            network = listen.get("network") or ""
            if listen.get("type") != "network" or not network.startswith(_PREFIX):
                continue
            name = network[len(_PREFIX) :]
            address = address_of(name) if name else None
            if address is None:
                raise no_address(PARAM, name)
            listen.attrib.clear()
            listen.set("type", "address")
            listen.set("address", address)
            graphics.attrib.pop("listen", None)  # libvirt wants it equal to the first listen


def schema_shapes(root: etree._Element) -> None:
    """The disk shapes oVirt engines write that libvirt's schema refuses, as libvirt stores them
    (also for hot-plugged engine XML, intake/hotplug_xml.py)."""
    for source in root.iterfind("devices/disk/source"):
        if source.get("file") == "":
            del source.attrib["file"]
        for label in source.iterfind("seclabel"):
            label.attrib.pop("type", None)


def _plain_spice(graphics: etree._Element, warnings: list[dict[str, object]]) -> None:
    secure = [c for c in graphics.iterfind("channel") if c.get("mode") == "secure"]
    names = [c.get("name") or "?" for c in secure]
    for channel in secure:
        graphics.remove(channel)
    dropped = [a for a in ("defaultMode", "tlsPort") if graphics.attrib.pop(a, None) is not None]
    if secure or dropped:
        what = f"secure channels {', '.join(names)}" if names else "its TLS port"
        warnings.append(
            warning(
                f"SPICE console: {what} dropped, the console is not secure: this host has "
                "no SPICE TLS ([virt] spice_tls = false)",
                PARAM,
            )
        )
