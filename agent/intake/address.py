"""A device's `address` (vmParams devices[] and hot-plug requests) -> AddressSpec: only the
attributes libvirt's device addresses have, each a short plain token. Pure."""

from __future__ import annotations

import re

from agent.intake.fields import Fields
from agent.spec import AddressSpec

_ADDRESS_KEYS = (
    "type",
    "domain",
    "bus",
    "slot",
    "function",
    "controller",
    "target",
    "unit",
    "port",
    "multifunction",
    "reg",
    "cssid",
    "ssid",
    "devno",
    "iobase",
    "irq",
)


def read_address(dev: Fields) -> AddressSpec | None:
    if not dev.has("address"):
        return None
    addr = Fields(dev.raw("address"), dev.name("address"))
    pairs = []
    for key in addr.field_names():
        if key not in _ADDRESS_KEYS:
            raise addr.bad(key, "unknown address attribute")
        value = addr.str_(key)
        if not re.fullmatch(r"[0-9A-Za-z_.x-]{1,32}", value):
            raise addr.bad(key, f"bad address value {value!r}")
        pairs.append((key, value))
    if "type" not in dict(pairs):
        raise addr.missing("type")
    pairs.sort(key=lambda kv: _ADDRESS_KEYS.index(kv[0]))
    return AddressSpec(tuple(pairs))
