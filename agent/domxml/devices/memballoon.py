"""<memballoon>: always rendered (model none when the engine sent no balloon), as libvirt
would otherwise add a virtio balloon by itself. A balloon gets `<stats period>` when
configured ([virt] balloon_stats_period_s): without it the guest's driver never reports the
memory figures VM stats' memoryStats show."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.builder import E
from agent.spec import SimpleDeviceSpec


def build(balloon: SimpleDeviceSpec | None, stats_period_s: int = 0) -> etree._Element:
    if balloon is None:
        return E.memballoon(model="none")
    el = E.memballoon(model=balloon.model)
    if balloon.model != "none":
        if stats_period_s > 0:
            el.append(E.stats(period=str(stats_period_s)))
        address.append(el, balloon.address)
    return el


def add_stats_period(devices: etree._Element, stats_period_s: int) -> None:
    """Engine XML: give each balloon that has none the configured stats period."""
    if stats_period_s <= 0:
        return
    for el in devices.iterfind("memballoon"):
        if el.get("model", "none") != "none" and el.find("stats") is None:
            el.insert(0, E.stats(period=str(stats_period_s)))
