"""<tpm>: an emulated (swtpm, TPM 2.0) or host passthrough TPM."""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E
from agent.spec import TpmSpec


def build(tpm: TpmSpec) -> etree._Element:
    if tpm.backend == "emulator":
        backend = E.backend(type="emulator", version="2.0")
    else:
        backend = E.backend(E.device(path=tpm.path or "/dev/tpm0"), type="passthrough")
    return E.tpm(backend, model=tpm.model)
