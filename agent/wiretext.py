"""The one check every text from the wire passes before hvagent uses it, and the one way a
wire value is echoed back (in an error) or written to a log.

`check(value, param)` accepts a str that:
- holds only characters XML 1.0 can carry (no lone surrogates, no U+FFFE/U+FFFF), so it can
  reach lxml and libvirt;
- has no control characters (C0, DEL, C1). Where a field documents it, `allow` names the few
  permitted (engine XML takes tab, newline and carriage return);
- is at most `limit` characters (MAX_TEXT unless the field says otherwise).
A failure is -32602 naming `param`; the message says what is wrong and where, never the value.

`echo(value)` is a wire value as it may appear in an error message or a log field: repr'd (so
a newline cannot start a forged log line) and cut to ECHO_LIMIT characters.
Pure: no I/O.
"""

from __future__ import annotations

import re
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
