"""<controller>: virtio-serial, usb, scsi (incl. virtio-scsi), ide, sata, pci."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(ctl: SimpleDeviceSpec) -> etree._Element:
    el = E.controller(dict(ctl.extra))
    address.append(el, ctl.address)
    return el
