"""<watchdog>: an emulated watchdog and what it does when it fires."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(wd: SimpleDeviceSpec) -> etree._Element:
    el = E.watchdog(model=wd.model, **dict(wd.extra))
    address.append(el, wd.address)
    return el
