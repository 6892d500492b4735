"""<input>: the USB tablet (tabletEnable), for absolute pointer positioning."""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E


def build_tablet() -> etree._Element:
    return E.input(type="tablet", bus="usb")
