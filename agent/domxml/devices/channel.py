"""<channel>: virtio-serial channels; the QEMU guest agent's is always present."""

from __future__ import annotations

from lxml import etree
from lxml.builder import E


def build_unix(name: str) -> etree._Element:
    # No <source path>: libvirt picks a per-domain socket under its own channel directory.
    return E.channel(E.target(type="virtio", name=name), type="unix")
