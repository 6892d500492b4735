"""<memballoon>: always rendered (model none when the engine sent no balloon), as libvirt
would otherwise add a virtio balloon by itself."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(balloon: SimpleDeviceSpec | None) -> etree._Element:
    if balloon is None:
        return E.memballoon(model="none")
    el = E.memballoon(model=balloon.model)
    if balloon.model != "none":
        address.append(el, balloon.address)
    return el
