"""Readers over live domain XML: the facts the agent needs from what libvirt runs.

Readers never raise on a missing optional element; they return defaults (VDSM's
display_info crashed on a <graphics> without <listen>, reference §13.6).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from lxml import etree

from agent.consoles import GraphicsInfo, read_graphics
from agent.domxml import metadata, parse
from agent.domxml.devices import channel
from agent.domxml.metadata import VmMetadata


@dataclass(frozen=True)
class NicFacts:
    """One <interface>: `dev` is libvirt's target dev (bulk stats' net.N.name), None until
    libvirt assigned it (the XML given at create has none)."""

    dev: str | None
    mac: str
    model: str


@dataclass(frozen=True)
class DiskFacts:
    """One <disk>: `dev` is the target dev (bulk stats' block.N.name); `image_id` its
    <serial> when that is a UUID (oVirt writes the image id there), else None."""

    dev: str
    image_id: str | None


@dataclass(frozen=True)
class Devices:
    """What VM stats need of the devices, plus the digest of the whole <devices> element
    (`hash`, None when this XML is not libvirt's live XML yet)."""

    nics: tuple[NicFacts, ...] = ()
    disks: tuple[DiskFacts, ...] = ()
    vcpu_quota: int | None = None  # <cputune><quota>, None when unset
    vcpu_period: int | None = None
    balloon: bool = False  # a <memballoon> other than model none
    min_guaranteed_mib: int = 0
    hash: str | None = None


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
    devices: Devices = Devices()
    time_offset: int = 0  # <clock adjustment> (seconds): the created guest RTC offset
    # (name, socket path) of the unix channels QEMU binds, but the guest agent's
    channels: tuple[tuple[str, str], ...] = ()


def facts(xml: str | etree._Element) -> DomainFacts:
    """The facts of a domain, from its XML text or its parsed tree."""
    dom = parse(xml) if isinstance(xml, str) else xml
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
        vcpus=current_vcpus(dom),
        memory_mib=memory_kib // 1024,
        metadata=metadata.read(meta_el) if meta_el is not None else None,
        consoles=tuple(read_graphics(dom)),
        devices=devices(dom),
        time_offset=_int(dom.find("clock"), "adjustment"),
        channels=channel.bound(dom),
    )


def current_vcpus(dom: etree._Element) -> int:
    """The vCPUs the domain runs with: <vcpu current=N> when below the maximum."""
    vcpu = dom.find("vcpu")
    if vcpu is None:
        return 1
    return _opt_int(vcpu.get("current")) or _opt_int(vcpu.text) or 1


def devices(dom: etree._Element) -> Devices:
    """Device facts of a parsed <domain>. `hash` means something only for live XML: the
    owner reports it once it read libvirt's (runtime/vm/state.py)."""
    nics = tuple(
        NicFacts(
            nic.find("target").get("dev") if nic.find("target") is not None else None,
            (nic.find("mac").get("address", "") if nic.find("mac") is not None else "").lower(),
            nic.find("model").get("type", "") if nic.find("model") is not None else "",
        )
        for nic in dom.iterfind("devices/interface")
    )
    disks = tuple(
        DiskFacts(d.find("target").get("dev", ""), _uuid_or_none(d.findtext("serial")))
        for d in dom.iterfind("devices/disk")
        if d.find("target") is not None
    )
    balloon = dom.find("devices/memballoon")
    return Devices(
        nics=nics,
        disks=disks,
        vcpu_quota=_opt_int(dom.findtext("cputune/quota")),
        vcpu_period=_opt_int(dom.findtext("cputune/period")),
        balloon=balloon is not None and balloon.get("model") != "none",
        min_guaranteed_mib=(_opt_int(dom.findtext("memtune/min_guarantee")) or 0) // 1024,
        hash=devices_hash(dom),
    )


def devices_hash(dom: etree._Element) -> str:
    """A digest of the <devices> element as libvirt wrote it (canonical XML): changes
    whenever a device, an address or an alias does."""
    el = dom.find("devices")
    if el is None:
        return "0"
    digest = hashlib.blake2b(etree.tostring(el, method="c14n"), digest_size=8).digest()
    return str(int.from_bytes(digest, "big", signed=True))


def _uuid_or_none(text: str | None) -> str | None:
    try:
        return str(uuid.UUID(text)) if text else None
    except ValueError:
        return None


def _opt_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _int(el: etree._Element | None, attr: str) -> int:
    return (_opt_int(el.get(attr)) if el is not None else None) or 0


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
