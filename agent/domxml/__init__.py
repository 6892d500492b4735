"""Domain XML: build from a VmSpec, serialise once, parse untrusted text safely.

Pure lxml; no libvirt, no asyncio. `domain.py` assembles the `<domain>`, one module per
libvirt element under `devices/` renders a device, `metadata.py` owns hvagent's `<metadata>`
block and `live.py` reads what the agent needs back from live XML.
"""

from __future__ import annotations

from lxml import etree

from agent.domxml.domain import build_domain

__all__ = ["XmlError", "build_domain", "parse", "to_string"]


class XmlError(ValueError):
    """Text that is not well-formed XML, or XML the hardened parser refuses."""


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD loading, no network: engine or libvirt XML is data.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=True,
    )


def parse(text: str) -> etree._Element:
    """Parse XML text with the hardened parser; DOCTYPE declarations are refused outright."""
    try:
        tree = etree.fromstring(text.encode(), _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(str(exc)) from exc
    if tree.getroottree().docinfo.doctype:
        raise XmlError("DOCTYPE declarations are not accepted")
    return tree


def to_string(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode", pretty_print=True)
