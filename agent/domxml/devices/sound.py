"""<sound>: an emulated sound card."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(snd: SimpleDeviceSpec) -> etree._Element:
    el = E.sound(model=snd.model)
    address.append(el, snd.address)
    return el
