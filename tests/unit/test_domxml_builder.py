"""agent/domxml/builder.py: the element factory gives what lxml.builder.E gives."""

import pytest
from lxml import etree
from lxml.builder import E as LXML_E

from agent.domxml.builder import E


@pytest.mark.parametrize(
    "build",
    [
        lambda e: e.disk(e.driver(name="qemu"), e.source({"file": "/a"}), type="file"),
        lambda e: e.a("text", e.b("in b"), "tail of b", e.c(), "tail", "+more", x="1"),
        lambda e: e("inbound", {"average": "10"}),
        lambda e: e.serial("x", "y"),
    ],
)
def test_same_xml_as_lxml_builder(build):
    assert etree.tostring(build(E)) == etree.tostring(build(LXML_E))


def test_anything_else_is_a_type_error():
    with pytest.raises(TypeError, match="<vcpu>: cannot add a int"):
        E.vcpu(2)
