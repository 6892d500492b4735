"""`E`, the element factory the builders use: `E.disk(E.target(dev="vda"), type="file")`.

It keeps the part of `lxml.builder.E` the builders need (children that are elements, text
strings, attribute dicts; keyword attributes) without its generic dispatch, which cost about
a third of building a domain (every VM.create builds one). Anything else is a TypeError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

_Element = etree._Element
_new = etree.Element


class _Maker:
    def __call__(self, tag: str, *children: Any, **attrib: str) -> etree._Element:
        """`E("name", ...)`, for a tag known only at run time."""
        return getattr(self, tag)(*children, **attrib)

    def __getattr__(self, tag: str) -> Callable[..., etree._Element]:
        def make(*children: Any, **attrib: str) -> etree._Element:
            el = _new(tag, attrib) if attrib else _new(tag)
            for child in children:
                if isinstance(child, _Element):
                    el.append(child)
                elif isinstance(child, str):
                    if len(el):
                        last = el[-1]
                        last.tail = (last.tail or "") + child
                    else:
                        el.text = (el.text or "") + child
                elif isinstance(child, dict):
                    for key, value in child.items():
                        el.set(key, value)
                else:
                    raise TypeError(f"<{tag}>: cannot add a {type(child).__name__}")
            return el

        make.__name__ = tag
        setattr(self, tag, make)  # built once per tag
        return make


E = _Maker()
