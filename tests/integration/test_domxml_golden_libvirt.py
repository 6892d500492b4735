"""Every golden domain is accepted by libvirt's test driver with schema validation on, so
XML libvirt would silently drop or refuse fails the build."""

import libvirt
import pytest

from tests import golden


@pytest.mark.parametrize("case", golden.cases())
def test_golden_defines_with_validation(case, virconn):
    dom = virconn.defineXMLFlags(golden.build(case), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    try:
        assert dom.UUIDString() == str(golden.VM)
    finally:
        dom.undefine()
