"""Text that came over the wire: what may not pass into XML, logs or replies unchanged.

`CONTROL` matches the characters XML 1.0 cannot carry and that forge log lines: C0 controls
other than tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF. `scrub`
replaces them with a space, for free text hvagent keeps (a shutdown message, libvirt's
error text in exit messages). Pure.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def scrub(text: str) -> str:
    return CONTROL.sub(" ", text)
