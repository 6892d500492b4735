"""Values as they come over the wire: the one boolean parser, VM ids, and the text that may
not pass into XML, logs or replies unchanged.

`CONTROL` matches the characters XML 1.0 cannot carry and that forge log lines: C0 controls
other than tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF. `scrub`
replaces them with a space, for free text hvagent keeps (a shutdown message, libvirt's
error text in exit messages). Pure.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from agent.errors import InvalidParams

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def scrub(text: str) -> str:
    return CONTROL.sub(" ", text)


def parse_bool(value: Any, param: str) -> bool:
    """A wire boolean: JSON true/false or the strings "true"/"false" in any case, as VDSM's
    engines send them (VDSM's own conversion accepts the same). Anything else is -32602."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParams(f"{param}: expected a boolean, got {value!r}", param=param)


def parse_uuid(value: Any, param: str) -> uuid.UUID:
    """A VM id on the wire: a UUID string in any of Python's accepted spellings."""
    if not isinstance(value, str):
        raise InvalidParams(f"{param} must be a UUID string", param=param)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidParams(f"{param} must be a valid UUID, got {value!r}", param=param) from None
