"""HostService: Host.getCapabilities and Host.getStats figures, from libvirt and /proc.

Capabilities are asked of libvirt once and cached (they do not change while we run). CPU
percentages are computed against the previous Host.getStats call (or process start), as the
engine polls this verb periodically.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__, hostinfo
from agent.runtime.registry import VmRegistry
from agent.status import VmStatus
from agent.virt.port import HostFacts, Hypervisor


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


class HostService:
    def __init__(self, port: Hypervisor, registry: VmRegistry) -> None:
        self._port = port
        self._registry = registry
        self._facts: HostFacts | None = None
        self._hardware: dict[str, str] | None = None
        self._last_cpu = hostinfo.cpu_times(_read("/proc/stat"))
        self._dev_kvm = os.path.exists("/dev/kvm")

    async def _host_facts(self) -> HostFacts:
        if self._facts is None:
            self._facts = await self._port.host_facts()
        return self._facts

    async def hardware_info(self) -> dict[str, str]:
        """Host.getHardwareInfo: the SMBIOS system entries, asked of libvirt once (a refusal,
        errors.HardwareInfoFailed, is not cached: the next call asks again)."""
        if self._hardware is None:
            self._hardware = hostinfo.hardware(await self._port.host_sysinfo())
        return dict(self._hardware)

    async def capabilities(self) -> dict[str, Any]:
        facts = await self._host_facts()
        caps = hostinfo.capabilities(facts.capabilities_xml)
        osr = hostinfo.os_release(_read("/etc/os-release"))
        kvm = self._dev_kvm and "kvm" in caps.domain_types
        sockets = facts.numa_nodes * facts.sockets_per_node
        return {
            "kvmEnabled": "true" if kvm else "false",
            "cpuCores": str(sockets * facts.cores_per_socket),
            "cpuThreads": str(facts.cpus),
            "cpuSockets": str(sockets),
            "onlineCpus": ",".join(str(i) for i in sorted(os.sched_getaffinity(0))),
            "cpuSpeed": str(facts.mhz),
            "cpuModel": caps.cpu_model or facts.cpu_model,
            "cpuVendor": caps.cpu_vendor,
            "memSize": str(facts.memory_mib),
            "vmTypes": ["kvm"] if kvm else ["qemu"],
            "domainTypes": list(caps.domain_types),
            "emulatedMachines": list(caps.machines),
            "uuid": caps.host_uuid,
            "hostname": facts.hostname,
            "operatingSystem": {
                "name": osr.get("NAME", ""),
                "version": osr.get("VERSION_ID", ""),
                "release": osr.get("VERSION_CODENAME", ""),
                "pretty_name": osr.get("PRETTY_NAME", ""),
            },
            "kernelVersion": os.uname().release,
            "software_version": __version__,
            "packages2": {
                "hvagent": {"version": __version__},
                "libvirt": {"version": facts.libvirt_version},
                facts.hypervisor_type.lower(): {"version": facts.hypervisor_version},
            },
        }

    def stats(self) -> dict[str, Any]:
        now_cpu = hostinfo.cpu_times(_read("/proc/stat"))
        user, system, idle = hostinfo.cpu_percent(self._last_cpu, now_cpu)
        self._last_cpu = now_cpu
        mem = hostinfo.meminfo(_read("/proc/meminfo"))
        free_kib = (
            mem.get("MemFree", 0)
            + mem.get("Cached", 0)
            + mem.get("Buffers", 0)
            + mem.get("SReclaimable", 0)
        )
        owners = self._registry.owners()
        active = sum(o.status is not VmStatus.DOWN for o in owners)
        return {
            "cpuUser": f"{user:.2f}",
            "cpuSys": f"{system:.2f}",
            "cpuIdle": f"{idle:.2f}",
            "cpuLoad": f"{os.getloadavg()[0]:.2f}",
            "memTotal": mem.get("MemTotal", 0) // 1024,
            "memFree": free_kib // 1024,
            "memAvailable": mem.get("MemAvailable", 0) // 1024,
            "memUsed": str(round(100 * (1 - free_kib / max(mem.get("MemTotal", 1), 1)))),
            "swapTotal": mem.get("SwapTotal", 0) // 1024,
            "swapFree": mem.get("SwapFree", 0) // 1024,
            "vmCount": len(owners),
            "vmActive": active,
            "vmMigrating": 0,
            "bootTime": str(int(time.time() - time.clock_gettime(time.CLOCK_BOOTTIME))),
            "dateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S GMT"),
        }
