"""<disk>: file-backed disks and cdroms."""

from __future__ import annotations

from lxml import etree
from lxml.builder import E

from agent.domxml.attrs import attrs
from agent.spec import DiskSpec


def build(disk: DiskSpec) -> etree._Element:
    el = E.disk(
        E.driver(name="qemu", type=disk.format),
        **attrs(type="file", device=disk.device),
    )
    if disk.path:
        el.append(E.source(file=disk.path))
    el.append(E.target(dev=disk.target, bus=disk.bus))
    if disk.boot_order is not None:
        el.append(E.boot(order=str(disk.boot_order)))
    if disk.readonly:
        el.append(E.readonly())
    if disk.serial is not None:
        el.append(E.serial(disk.serial))
    return el
