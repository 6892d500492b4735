"""The facts hvagent reads from engine domain XML, checked when the XML is validated so that
reading them later (`agent.domxml.live.facts`) cannot fail: `<uuid>` is written back in its
canonical spelling, `<vcpu>` is a whole number of vCPUs, `<memory>`/`<currentMemory>` whole
numbers in a unit hvagent converts. Errors are -32602 naming `vmParams.xml` and the element.
Pure: works on the parsed tree, no I/O.
"""

from __future__ import annotations

import contextlib
import uuid

from lxml import etree

from agent import wirevalues
from agent.errors import InvalidParams

MAX_VCPUS = 4096
MAX_MEMORY_KIB = 2**50  # 1 EiB, far past any host; keeps the arithmetic in range
MEMORY_UNITS = ("b", "bytes", "k", "kib", "m", "mib", "g", "gib")  # what live.py converts


def check(root: etree._Element, param: str) -> None:
    """Raise InvalidParams for a fact hvagent could not read back; normalise `<uuid>`."""
    uuid_el = root.find("uuid")
    if uuid_el is not None and uuid_el.text:
        with contextlib.suppress(ValueError):  # engine.prepare names a bad <uuid> itself
            uuid_el.text = str(uuid.UUID(uuid_el.text.strip()))
    vcpu = root.find("vcpu")
    if vcpu is not None:
        _whole(vcpu, param, 1, MAX_VCPUS)
    for tag in ("memory", "currentMemory"):
        el = root.find(tag)
        if el is None:
            continue
        _whole(el, param, 0, MAX_MEMORY_KIB)
        unit = el.get("unit", "KiB")
        if unit.lower() not in MEMORY_UNITS:
            raise InvalidParams(
                f"{param}: <{tag} unit=...> must be one of b, bytes, KiB, MiB, GiB (or k, m, "
                f"g), got {wirevalues.echo(unit)}",
                param=param,
            )


def _whole(el: etree._Element, param: str, low: int, high: int) -> int:
    text = (el.text or "").strip()
    if not wirevalues.is_decimal(text) or len(text) > 20 or not low <= int(text) <= high:
        raise InvalidParams(
            f"{param}: <{el.tag}> must be a whole number from {low} to {high}, "
            f"got {wirevalues.echo(el.text or '')}",
            param=param,
        )
    el.text = str(int(text))
    return int(text)
