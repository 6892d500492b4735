"""Every intake golden (tests/intake_golden.py) is accepted by libvirt's test driver with
schema validation on."""

import libvirt
import pytest

from tests import intake_golden


@pytest.mark.parametrize("case", intake_golden.cases())
def test_intake_golden_defines_with_validation(case, virconn):
    xml, _ = intake_golden.build(case)
    dom = virconn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    try:
        assert dom.UUIDString() == intake_golden.CASES[case][0]
    finally:
        dom.undefine()
