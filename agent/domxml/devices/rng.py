"""<rng>: a virtio RNG fed from a host random device, optionally rate limited."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(rng: SimpleDeviceSpec) -> etree._Element:
    extra = dict(rng.extra)
    el = E.rng(model=rng.model)
    if "period" in extra:
        el.append(E.rate(bytes=extra["bytes"], period=extra["period"]))
    el.append(E.backend(extra["source"], model="random"))
    address.append(el, rng.address)
    return el
