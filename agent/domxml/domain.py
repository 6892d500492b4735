"""Top-level <domain> assembly, in the element order libvirt itself emits."""

from __future__ import annotations

from lxml import etree
from lxml.builder import E

from agent.domxml import metadata
from agent.domxml.attrs import attrs
from agent.domxml.devices import (
    channel,
    controller,
    disk,
    input,
    interface,
    memballoon,
    rng,
    serial,
    sound,
    video,
    watchdog,
)
from agent.spec import GUEST_AGENT_CHANNEL, VmSpec


def build_domain(spec: VmSpec, meta: metadata.VmMetadata) -> etree._Element:
    root = E.domain(type=spec.domain_type)
    for child in (
        E.name(spec.name),
        E.uuid(str(spec.vm_id)),
        E.metadata(metadata.build(meta)),
        E.memory(str(spec.memory_mib * 1024), unit="KiB"),
        E.currentMemory(str(spec.memory_mib * 1024), unit="KiB"),
        E.vcpu(str(spec.vcpus), placement="static"),
        _os(spec),
        _features(spec),
        E.clock(offset="utc"),
        E.on_poweroff("destroy"),
        # hvagent decides what a guest reboot means (destroy-on-reboot, reference §6.4);
        # libvirt restarts the guest in the same process and tells us with a REBOOT event.
        E.on_reboot("restart"),
        E.on_crash("destroy"),
        _devices(spec),
    ):
        if child is not None:
            root.append(child)
    return root


def _os(spec: VmSpec) -> etree._Element:
    el = E.os(E.type("hvm", **attrs(arch="x86_64", machine=spec.machine)))
    if spec.kernel:
        el.append(E.kernel(spec.kernel))
        if spec.initrd:
            el.append(E.initrd(spec.initrd))
        if spec.kernel_args:
            el.append(E.cmdline(spec.kernel_args))
    if spec.boot_menu:
        el.append(E.bootmenu(enable="yes"))
    return el


def _features(spec: VmSpec) -> etree._Element | None:
    if not spec.acpi:
        return None
    return E.features(E.acpi(), E.apic())


def _devices(spec: VmSpec) -> etree._Element:
    # libvirt's own order: disk, controller, interface, serial, console, channel, input,
    # sound, video, watchdog, memballoon, rng.
    devices = E.devices()
    devices.extend(disk.build(d) for d in spec.disks)
    devices.extend(controller.build(c) for c in spec.controllers)
    devices.extend(interface.build(n) for n in spec.interfaces)
    devices.extend(serial.build(spec.console_log))
    devices.append(channel.build_unix(GUEST_AGENT_CHANNEL))
    if spec.tablet:
        devices.append(input.build_tablet())
    devices.extend(sound.build(s) for s in spec.sounds)
    devices.extend(video.build(v) for v in spec.videos)
    devices.extend(watchdog.build(w) for w in spec.watchdogs)
    devices.append(memballoon.build(spec.balloon))
    devices.extend(rng.build(r) for r in spec.rngs)
    return devices
