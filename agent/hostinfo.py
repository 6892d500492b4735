"""Pure parsers for host facts: libvirt capabilities XML and /proc, /etc/os-release text.

The runtime reads the files and asks libvirt; these functions only turn text into values,
so they are tested on fixed inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.domxml import parse


@dataclass(frozen=True)
class Capabilities:
    host_uuid: str
    cpu_model: str
    cpu_vendor: str
    domain_types: tuple[str, ...]
    machines: tuple[str, ...]


def capabilities(xml: str) -> Capabilities:
    root = parse(xml)
    host_cpu = root.find("host/cpu")
    machines: set[str] = set()
    types: set[str] = set()
    for arch in root.iterfind("guest/arch"):
        if arch.get("name") != "x86_64":
            continue
        for m in arch.iterfind("machine"):
            machines.add(m.text or "")
            if m.get("canonical"):
                machines.add(m.get("canonical", ""))
        for d in arch.iterfind("domain"):
            types.add(d.get("type", ""))
            for m in d.iterfind("machine"):
                machines.add(m.text or "")
    machines.discard("")
    return Capabilities(
        host_uuid=root.findtext("host/uuid", ""),
        cpu_model=host_cpu.findtext("model", "") if host_cpu is not None else "",
        cpu_vendor=host_cpu.findtext("vendor", "") if host_cpu is not None else "",
        domain_types=tuple(sorted(types)),
        machines=tuple(sorted(machines)),
    )


def cpu_models(domain_capabilities_xml: str) -> frozenset[str] | None:
    """The named CPU models this host's QEMU knows (domain capabilities, mode 'custom');
    None when unknown (no domain capabilities from this driver)."""
    if not domain_capabilities_xml:
        return None
    root = parse(domain_capabilities_xml)
    models = {(m.text or "").strip() for m in root.iterfind("cpu/mode[@name='custom']/model")}
    models.discard("")
    return frozenset(models) or None


def meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {key: KiB}."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key] = int(fields[0])
    return out


@dataclass(frozen=True)
class CpuTimes:
    user: int
    system: int
    idle: int
    total: int


def cpu_times(proc_stat: str) -> CpuTimes:
    """The aggregate 'cpu' line of /proc/stat, in jiffies."""
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            user, nice, system, idle = v[0], v[1], v[2], v[3]
            iowait = v[4] if len(v) > 4 else 0
            return CpuTimes(user + nice, system + sum(v[5:8]), idle + iowait, sum(v[:8]))
    raise ValueError("no aggregate cpu line in /proc/stat")


def cpu_percent(before: CpuTimes, after: CpuTimes) -> tuple[float, float, float]:
    """(user, sys, idle) percent of the time between two samples."""
    total = after.total - before.total
    if total <= 0:
        return 0.0, 0.0, 100.0
    return (
        100.0 * (after.user - before.user) / total,
        100.0 * (after.system - before.system) / total,
        100.0 * (after.idle - before.idle) / total,
    )


def os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


# VDSM's Host.getHardwareInfo keys <- the SMBIOS system entries of libvirt's host <sysinfo>.
_HARDWARE = {
    "systemManufacturer": "manufacturer",
    "systemProductName": "product",
    "systemVersion": "version",
    "systemSerialNumber": "serial",
    "systemUUID": "uuid",
    "systemFamily": "family",
}


def hardware(sysinfo_xml: str) -> dict[str, str]:
    """Host.getHardwareInfo from libvirt's sysinfo XML; an entry the host lacks is ""."""
    root = parse(sysinfo_xml)
    entries = {e.get("name"): (e.text or "").strip() for e in root.iterfind("system/entry")}
    return {key: entries.get(name, "") for key, name in _HARDWARE.items()}
