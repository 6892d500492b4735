"""<video>: the guest's display adapter (only what the engine asked for)."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.attrs import attrs
from agent.domxml.builder import E
from agent.spec import VideoSpec


def build(video: VideoSpec) -> etree._Element:
    model = E.model(
        **attrs(
            type=video.model,
            ram=video.ram,
            vram=video.vram,
            vgamem=video.vgamem,
            heads=video.heads,
        )
    )
    el = E.video(model)
    address.append(el, video.address)
    return el
