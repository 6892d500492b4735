"""<sound>: an emulated sound card."""

from __future__ import annotations

from lxml import etree
from lxml.builder import E

from agent.domxml import address
from agent.spec import SimpleDeviceSpec


def build(snd: SimpleDeviceSpec) -> etree._Element:
    el = E.sound(model=snd.model)
    address.append(el, snd.address)
    return el
