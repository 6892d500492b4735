"""Top-level <domain> assembly, in the element order libvirt itself emits."""

from __future__ import annotations

from lxml import etree

from agent.domxml import cpu, metadata
from agent.domxml.attrs import attrs
from agent.domxml.builder import E
from agent.domxml.devices import (
    channel,
    console,
    controller,
    disk,
    graphics,
    input,
    interface,
    memballoon,
    memory,
    rng,
    serial,
    smartcard,
    sound,
    tpm,
    video,
    watchdog,
)
from agent.spec import GUEST_AGENT_CHANNEL, SPICE_AGENT_CHANNEL, VmSpec


def build_domain(spec: VmSpec, meta: metadata.VmMetadata) -> etree._Element:
    root = E.domain(type=spec.domain_type)
    for child in (
        E.name(spec.name),
        E.uuid(str(spec.vm_id)),
        E.metadata(metadata.build(meta)),
        _max_memory(spec),
        E.memory(str(spec.memory_mib * 1024), unit="KiB"),
        E.currentMemory(str(spec.memory_mib * 1024), unit="KiB"),
        _vcpu(spec),
        _cputune(spec),
        _numatune(spec),
        _os(spec),
        _sysinfo(spec),
        _features(spec),
        cpu.build(spec.cpu) if spec.cpu else None,
        _clock(spec),
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


def _max_memory(spec: VmSpec) -> etree._Element | None:
    if spec.max_memory_mib is None:
        return None
    return E.maxMemory(
        str(spec.max_memory_mib * 1024), slots=str(spec.max_memory_slots), unit="KiB"
    )


def _vcpu(spec: VmSpec) -> etree._Element:
    if spec.max_vcpus is None or spec.max_vcpus == spec.vcpus:
        return E.vcpu(str(spec.vcpus), placement="static")
    return E.vcpu(str(spec.max_vcpus), placement="static", current=str(spec.vcpus))


def _cputune(spec: VmSpec) -> etree._Element | None:
    if not spec.cpu_pinning:
        return None
    return E.cputune(*(E.vcpupin(vcpu=str(v), cpuset=s) for v, s in spec.cpu_pinning))


def _numatune(spec: VmSpec) -> etree._Element | None:
    if spec.numa_tune is None:
        return None
    mode, nodeset = spec.numa_tune
    return E.numatune(E.memory(mode=mode, nodeset=nodeset))


def _clock(spec: VmSpec) -> etree._Element:
    if spec.time_offset is None:
        el = E.clock(offset="utc")
    else:
        el = E.clock(offset="variable", adjustment=str(spec.time_offset), basis="utc")
    # VDSM's timers: the RTC catches up lost ticks, the PIT delays them, no HPET.
    el.append(E.timer(name="rtc", tickpolicy="catchup"))
    el.append(E.timer(name="pit", tickpolicy="delay"))
    el.append(E.timer(name="hpet", present="no"))
    if spec.hyperv:
        el.append(E.timer(name="hypervclock", present="yes"))
    return el


def _sysinfo(spec: VmSpec) -> etree._Element | None:
    if not spec.sysinfo:
        return None
    entries = (E.entry(value, name=name) for name, value in spec.sysinfo)
    return E.sysinfo(E.system(*entries), type="smbios")


def _os(spec: VmSpec) -> etree._Element:
    el = E.os(E.type("hvm", **attrs(arch="x86_64", machine=spec.machine)))
    if spec.firmware:
        el.set("firmware", spec.firmware)
    if spec.kernel:
        el.append(E.kernel(spec.kernel))
        if spec.initrd:
            el.append(E.initrd(spec.initrd))
        if spec.kernel_args:
            el.append(E.cmdline(spec.kernel_args))
    for dev in spec.boot_devices:
        el.append(E.boot(dev=dev))
    if spec.boot_menu:
        el.append(E.bootmenu(enable="yes"))
    if spec.sysinfo:
        el.append(E.smbios(mode="sysinfo"))
    return el


def _features(spec: VmSpec) -> etree._Element | None:
    el = E.features()
    if spec.acpi:
        el.extend([E.acpi(), E.apic()])
    if spec.hyperv:
        el.append(
            E.hyperv(
                E.relaxed(state="on"),
                E.vapic(state="on"),
                E.spinlocks(state="on", retries="8191"),
            )
        )
    return el if len(el) else None


def _devices(spec: VmSpec) -> etree._Element:
    # libvirt's own order: disk, controller, interface, smartcard, serial, console, channel,
    # input, tpm, graphics, sound, video, watchdog, memballoon, rng, memory.
    devices = E.devices()
    devices.extend(disk.build(d) for d in spec.disks)
    devices.extend(controller.build(c) for c in spec.controllers)
    devices.extend(interface.build(n) for n in spec.interfaces)
    devices.extend(smartcard.build(c) for c in spec.smartcards)
    devices.extend(serial.build(spec.console_log, spec.serial_socket))
    devices.extend(console.build(c) for c in spec.consoles)
    devices.append(channel.build_unix(GUEST_AGENT_CHANNEL))
    devices.extend(channel.build(c) for c in spec.channels)
    if any(g.type == "spice" for g in spec.graphics) and not any(
        c.name == SPICE_AGENT_CHANNEL for c in spec.channels
    ):
        devices.append(graphics.build_agent())
    if spec.tablet:
        devices.append(input.build_tablet())
    if spec.tpm is not None:
        devices.append(tpm.build(spec.tpm))
    devices.extend(graphics.build(g) for g in spec.graphics)
    devices.extend(sound.build(s) for s in spec.sounds)
    devices.extend(video.build(v) for v in spec.videos)
    devices.extend(watchdog.build(w) for w in spec.watchdogs)
    devices.append(memballoon.build(spec.balloon))
    devices.extend(rng.build(r) for r in spec.rngs)
    devices.extend(memory.build(m) for m in spec.memory_devices)
    return devices
