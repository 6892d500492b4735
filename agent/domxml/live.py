"""Readers over live domain XML: the facts the agent needs from what libvirt runs.

Readers never raise on a missing optional element; they return defaults (VDSM's
display_info crashed on a <graphics> without <listen>, reference §13.6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from agent.consoles import GraphicsInfo, read_graphics
from agent.domxml import metadata, parse
from agent.domxml.metadata import VmMetadata


@dataclass(frozen=True)
class DomainFacts:
    vm_id: uuid.UUID
    name: str
    domain_type: str
    acpi: bool
    vcpus: int
    memory_mib: int
    metadata: VmMetadata | None  # None: not an hvagent domain
    consoles: tuple[GraphicsInfo, ...] = ()  # ports as this XML says (None before start)


def facts(xml: str) -> DomainFacts:
    dom = parse(xml)
    meta_el = metadata.find(dom)
    memory = dom.find("memory")
    memory_kib = int(memory.text or 0) if memory is not None else 0
    if memory is not None and memory.get("unit", "KiB") != "KiB":
        memory_kib = _to_kib(memory_kib, memory.get("unit", "KiB"))
    return DomainFacts(
        vm_id=uuid.UUID(dom.findtext("uuid", "")),
        name=dom.findtext("name", ""),
        domain_type=dom.get("type", ""),
        acpi=dom.find("features/acpi") is not None,
        vcpus=int(dom.findtext("vcpu", "1")),
        memory_mib=memory_kib // 1024,
        metadata=metadata.read(meta_el) if meta_el is not None else None,
        consoles=tuple(read_graphics(dom)),
    )


_UNITS = {
    "b": 1 / 1024,
    "bytes": 1 / 1024,
    "k": 1,
    "kib": 1,
    "m": 1024,
    "mib": 1024,
    "g": 1024**2,
    "gib": 1024**2,
}


def _to_kib(value: int, unit: str) -> int:
    return int(value * _UNITS.get(unit.lower(), 1))
