"""Domain XML goldens: every case renders to its expected XML (semantic comparison)."""

from pathlib import Path

import pytest

from tests import golden

DEVICES = Path(golden.__file__).parents[1] / "agent" / "domxml" / "devices"


@pytest.mark.parametrize("case", golden.cases())
def test_golden(case, request):
    xml = golden.build(case)
    path = golden.DIR / f"{case}.xml"
    if request.config.getoption("--regen-golden"):
        path.write_text(xml)
    assert path.exists(), f"no golden for {case}: run pytest --regen-golden"
    assert golden.canonical(xml) == golden.canonical(path.read_text())


def test_every_device_module_has_a_golden():
    modules = {p.stem for p in DEVICES.glob("*.py") if p.stem != "__init__"}
    covered = {d for case in golden.cases() for d in golden.load(case).get("devices", [])}
    assert modules <= covered, f"device modules without a golden: {sorted(modules - covered)}"


def test_build_is_deterministic():
    for case in golden.cases():
        assert golden.build(case) == golden.build(case)


def test_blank_passwords():
    from agent.domxml import redact

    xml = "<domain><devices><graphics type='vnc' passwd='s3cret'/></devices></domain>"
    out = redact.blank_passwords(xml)
    assert "s3cret" not in out and 'passwd=""' in out
    assert redact.blank_passwords("<domain/>") == "<domain/>"
