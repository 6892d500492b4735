"""Engine XML (`vmParams.xml`) adjustments where an engine counts on VDSM's host side:

- a console `<listen type="network" network="vdsm-X"/>` names VDSM's libvirt network for the
  engine network X, which this host does not define: it becomes `<listen type="address">`
  with the host's address on the network (bridge/interface) X, or the create is refused
  (code 9) naming the network;
- a VNC console without `passwdValidTo` is unlocked: refused (code 9) unless libvirt has
  VNC SASL (`[virt] vnc_sasl`), as VDSM's `is_vnc_secure`.

Pure: the host's addresses come through `address_of` (agent/hostnet.py on a real host).
"""

from __future__ import annotations

from lxml import etree

from agent import wirevalues
from agent.errors import CreateFailed
from agent.intake.graphics import AddressOf

PARAM = "vmParams.xml"
_PREFIX = "vdsm-"


def adjust(root: etree._Element, address_of: AddressOf, vnc_sasl: bool) -> None:
    for graphics in root.iterfind("devices/graphics"):
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
                raise CreateFailed(
                    f"{PARAM}: display network {wirevalues.echo(name)} has no address on "
                    "this host (no host network or bridge of that name with an IP address)",
                    param=PARAM,
                    network=wirevalues.cut(name),
                )
            listen.attrib.clear()
            listen.set("type", "address")
            listen.set("address", address)
            graphics.attrib.pop("listen", None)  # libvirt wants it equal to the first listen
