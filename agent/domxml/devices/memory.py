"""<memory model='dimm'>: hotpluggable memory (needs <maxMemory>)."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import MemoryDeviceSpec


def build(dimm: MemoryDeviceSpec) -> etree._Element:
    el = E.memory(
        E.target(E.size(str(dimm.size_mib * 1024), unit="KiB"), E.node(str(dimm.node))),
        model="dimm",
    )
    address.append(el, dimm.address)
    return el
