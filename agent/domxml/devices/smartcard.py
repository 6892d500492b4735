"""<smartcard>: a smartcard passed through from the SPICE client."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(card: SimpleDeviceSpec) -> etree._Element:
    el = E.smartcard(mode=card.model, **dict(card.extra))
    address.append(el, card.address)
    return el
