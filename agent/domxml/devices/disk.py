"""<disk>: file- or block-backed disks, cdroms and floppies."""

from __future__ import annotations

from lxml import etree

from agent.domxml import address
from agent.domxml.attrs import attrs
from agent.domxml.builder import E
from agent.spec import DiskSpec


def build(disk: DiskSpec) -> etree._Element:
    el = E.disk(
        E.driver(
            **attrs(
                name="qemu",
                type=disk.format,
                cache=disk.cache,
                error_policy=disk.error_policy,
                io=disk.io,
            )
        ),
        **attrs(type="block" if disk.block else "file", device=disk.device),
    )
    if disk.path:
        el.append(E.source({"dev" if disk.block else "file": disk.path}))
    el.append(E.target(dev=disk.target, bus=disk.bus))
    if disk.boot_order is not None:
        el.append(E.boot(order=str(disk.boot_order)))
    if disk.readonly:
        el.append(E.readonly())
    if disk.shared:
        el.append(E.shareable())
    if disk.serial is not None:
        el.append(E.serial(disk.serial))
    address.append(el, disk.address)
    return el
