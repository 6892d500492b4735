"""Values as they come over the wire: the one text check, the one boolean parser, VM ids,
and the text that may not pass into XML, logs or replies unchanged.

`check(value, param)` is the check every text from the wire passes before hvagent uses it.
It accepts a str that:
- holds only characters XML 1.0 can carry (no lone surrogates, no U+FFFE/U+FFFF), so it can
  reach lxml and libvirt;
- has no control characters (C0, DEL, C1). Where a field documents it, `allow` names the few
  permitted (engine XML takes tab, newline and carriage return);
- is at most `limit` characters (MAX_TEXT unless the field says otherwise).
A failure is -32602 naming `param`; the message says what is wrong and where, never the value.
`is_decimal` is the strict ASCII digit test (str.isdigit() accepts '²').

`echo(value)` is a wire value as it may appear in an error message or a log field: repr'd
(so a newline cannot start a forged log line) and cut to ECHO_LIMIT characters; `loggable`
keeps printable ASCII as is (cut) and echoes the rest; `cut` only shortens.

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

MAX_TEXT = 4096  # PATH_MAX; longer than any name, path or argument hvagent passes on
MAX_XML = 16 * 1024 * 1024  # engine domain XML: as long as a request body may be
ECHO_LIMIT = 200
XML_WHITESPACE = "\t\n\r"

# Controls (C0, DEL, C1), surrogates, and the two non-characters XML 1.0 excludes.
_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def check(value: Any, param: str, *, limit: int = MAX_TEXT, allow: str = "") -> str:
    """`value` if it is an acceptable wire text; else InvalidParams naming `param`."""
    if not isinstance(value, str):
        raise InvalidParams(f"{param} must be a string", param=param)
    if len(value) > limit:
        raise InvalidParams(
            f"{param} is too long ({len(value)} characters, at most {limit})", param=param
        )
    for match in _BAD.finditer(value):
        char = match.group()
        if char not in allow:
            raise InvalidParams(
                f"{param} contains a character not allowed here "
                f"(U+{ord(char):04X} at position {match.start()})",
                param=param,
            )
    return value


CHANNEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def is_channel_name(value: Any) -> bool:
    """A virtio-serial port name hvagent accepts: printable ASCII letters, digits, `_`, `.`
    and `-`, not starting with `.` or `-`, at most 100 characters (so `.`, `..` and path
    separators never reach a file name)."""
    return isinstance(value, str) and CHANNEL_NAME.fullmatch(value) is not None


def is_clean(value: str, limit: int = MAX_TEXT) -> bool:
    """`check`'s fast path: True when `value` (a str) passes `check` with no `allow`."""
    return len(value) <= limit and _BAD.search(value) is None


def is_decimal(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()


def cut(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` at most `limit` characters (for a value returned as is, e.g. data.method)."""
    return text if len(text) <= limit else text[:limit] + "..."


def loggable(value: Any, limit: int = ECHO_LIMIT) -> str:
    """A wire value as a log field: printable ASCII as is (cut to `limit`), anything else
    `echo`ed, so no value can start a forged log line or flood the log."""
    if isinstance(value, str) and value.isascii() and value.isprintable():
        return cut(value, limit)
    return echo(value, limit)


def echo(value: Any, limit: int = ECHO_LIMIT) -> str:
    """A wire value fit for an error message or a log line: a str or number repr'd and cut to
    `limit` characters; anything else (lists, objects) by its type only."""
    if isinstance(value, str):
        if len(value) > limit:
            return repr(value[:limit]) + f"... ({len(value)} characters)"
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        try:
            text = repr(value)
        except ValueError:  # an int past Python's digit limit
            return "<a very long number>"
        return text if len(text) <= limit else text[:limit] + "..."
    return f"<{type(value).__name__}>"


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
    raise InvalidParams(f"{param}: expected a boolean, got {echo(value)}", param=param)


def parse_uuid(value: Any, param: str) -> uuid.UUID:
    """A VM id on the wire: a UUID string in any of Python's accepted spellings."""
    if not isinstance(value, str):
        raise InvalidParams(f"{param} must be a UUID string", param=param)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidParams(
            f"{param} must be a valid UUID, got {echo(value)}", param=param
        ) from None
