"""<address>: a device's bus address from the engine's `address` dict."""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E
from agent.spec import AddressSpec


def append(parent: etree._Element, address: AddressSpec | None) -> None:
    if address is not None:
        parent.append(E.address(dict(address.attrs)))
