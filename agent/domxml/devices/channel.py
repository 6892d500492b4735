"""<channel>: virtio-serial channels; the QEMU guest agent's is always present."""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E
from agent.spec import ChannelSpec


def build_unix(name: str) -> etree._Element:
    # No <source path>: libvirt picks a per-domain socket under its own channel directory.
    return E.channel(E.target(type="virtio", name=name), type="unix")


def build(channel: ChannelSpec) -> etree._Element:
    if channel.kind == "unix":
        return build_unix(channel.name)
    return E.channel(E.target(type="virtio", name=channel.name), type=channel.kind)
