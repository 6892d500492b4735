"""<interface>: a NIC on a host bridge or a libvirt network."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import InterfaceSpec


def build(nic: InterfaceSpec) -> etree._Element:
    el = E.interface(type=nic.kind)
    if nic.mac:
        el.append(E.mac(address=nic.mac))
    el.append(E.source({"bridge" if nic.kind == "bridge" else "network": nic.source}))
    el.append(E.model(type=nic.model))
    if nic.bandwidth:
        el.append(E.bandwidth(*(E(direction, dict(a)) for direction, a in nic.bandwidth)))
    if nic.filter:
        el.append(E.filterref(filter=nic.filter))
    if not nic.link_up:
        el.append(E.link(state="down"))
    if nic.mtu is not None:
        el.append(E.mtu(size=str(nic.mtu)))
    if nic.boot_order is not None:
        el.append(E.boot(order=str(nic.boot_order)))
    address.append(el, nic.address)
    return el
