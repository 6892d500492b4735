"""<graphics>: SPICE and VNC consoles, locked until VM.setTicket (reference §3.2).

Ports are never chosen here: autoport lets libvirt pick them; hvagent reads them back from
the live XML. SPICE also gets the `com.redhat.spice.0` spicevmc channel (see `build_agent`).
"""

from __future__ import annotations

from lxml import etree

from agent.consoles import EXPIRED, LOCKED_PASSWORD
from agent.domxml.attrs import attrs
from agent.domxml.builder import E
from agent.spec import SPICE_AGENT_CHANNEL, GraphicsSpec


def build(g: GraphicsSpec) -> etree._Element:
    el = E.graphics(
        **attrs(
            type=g.type,
            autoport="yes",
            defaultMode="secure" if g.tls else None,
            keymap=g.keymap,
            passwd=LOCKED_PASSWORD,
            passwdValidTo=EXPIRED,
        )
    )
    el.append(E.listen(type="address", address=g.listen_address or "0.0.0.0"))
    for name in g.secure_channels:
        el.append(E.channel(name=name, mode="secure"))
    if g.type == "spice":
        if not g.copy_paste:
            el.append(E.clipboard(copypaste="no"))
        if not g.file_transfer:
            el.append(E.filetransfer(enable="no"))
    return el


def build_agent() -> etree._Element:
    return E.channel(E.target(type="virtio", name=SPICE_AGENT_CHANNEL), type="spicevmc")
