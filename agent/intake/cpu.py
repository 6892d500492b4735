"""vmParams' CPU and memory layout -> CpuSpec and friends: topology, CPU model and flags,
guest NUMA nodes, memory hotplug (maxMemSize/slots/DIMMs), vCPU pinning, NUMA tuning.

Pure: no I/O. Errors name the field (code 11 missing, -32602 bad).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.intake.fields import Fields
from agent.spec import CpuSpec, MemoryDeviceSpec


@dataclass(frozen=True)
class CpuMemory:
    """The VmSpec fields this module decides."""

    cpu: CpuSpec | None
    max_memory_mib: int | None
    max_memory_slots: int | None
    memory_guaranteed_mib: int | None
    cpu_pinning: tuple[tuple[int, str], ...]
    numa_tune: tuple[str, str] | None
    hyperv: bool
    time_offset: int | None


_CPU_MODE = {"hostPassthrough": "host-passthrough", "hostModel": "host-model"}
# cpuType flags come in VDSM's (the kernel's /proc/cpuinfo) spelling; libvirt's cpu_map
# (x86_features.xml) names these differently. Flags not listed are spelled alike.
_LIBVIRT_FLAG = {
    "sse4_1": "sse4.1",
    "sse4_2": "sse4.2",
    "pclmulqdq": "pclmuldq",
    "tsc_deadline_timer": "tsc-deadline",
    "sha_ni": "sha-ni",
    "intel_pt": "intel-pt",
    "avx512_vnni": "avx512vnni",
    "avx512_vbmi2": "avx512vbmi2",
    "avx512_bitalg": "avx512bitalg",
    "avx512_vpopcntdq": "avx512-vpopcntdq",
    "avx512_4vnniw": "avx512-4vnniw",
    "avx512_4fmaps": "avx512-4fmaps",
    "avx512_vp2intersect": "avx512-vp2intersect",
    "avx512_bf16": "avx512-bf16",
    "avx512_fp16": "avx512-fp16",
    "avx_vnni": "avx-vnni",
    "amx_bf16": "amx-bf16",
    "amx_tile": "amx-tile",
    "amx_int8": "amx-int8",
    "md_clear": "md-clear",
    "spec_ctrl": "spec-ctrl",
    "arch_capabilities": "arch-capabilities",
    "arch_lbr": "arch-lbr",
    "tsxldtrk": "tsx-ldtrk",
    "bus_lock_detect": "bus-lock-detect",
    "split_lock_detect": "split-lock-detect",
    "amd_ssbd": "amd-ssbd",
    "amd_stibp": "amd-stibp",
    "virt_ssbd": "virt-ssbd",
    "vmcb_clean": "vmcb-clean",
    "nrip_save": "nrip-save",
    "tsc_scale": "tsc-scale",
    "pausefilter": "pause-filter",
    "svm_lock": "svm-lock",
    "v_vmsave_vmload": "v-vmsave-vmload",
}
_CPU_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CPUSET = re.compile(r"^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$")


def _cpu_type(f: Fields) -> tuple[str | None, str | None, tuple[tuple[str, str], ...]]:
    value = f.str_("cpuType")
    if value is None:
        return None, None, ()
    if value in _CPU_MODE:
        return _CPU_MODE[value], None, ()
    model, *flags = value.split(",")
    if not _CPU_NAME.match(model):
        raise f.bad("cpuType", f"bad CPU model {model!r}")
    features = []
    for flag in flags:
        if len(flag) < 2 or flag[0] not in "+-" or not _CPU_NAME.match(flag[1:]):
            raise f.bad("cpuType", f"bad CPU flag {flag!r} (expected +name or -name)")
        name = _LIBVIRT_FLAG.get(flag[1:], flag[1:])
        features.append(("require" if flag[0] == "+" else "disable", name))
    return "custom", model, tuple(features)


def _cpuset(f: Fields, key: str, value: object) -> str:
    if not isinstance(value, str) or not _CPUSET.match(value):
        raise f.bad(key, f"expected a CPU set like '0-3,^2', got {value!r}")
    return value


def read_cpu_memory(f: Fields, memory: int, vcpus: int, max_vcpus: int | None) -> CpuMemory:
    """Topology, CPU model, guest NUMA, memory hotplug, pinning and NUMA tuning."""
    total = max_vcpus or vcpus
    cores = f.int_("smpCoresPerSocket", minimum=1, maximum=4096)
    threads = f.int_("smpThreadsPerCore", minimum=1, maximum=64)
    topology = None
    if cores is not None or threads is not None:
        cores, threads = cores or 1, threads or 1
        if total % (cores * threads):
            raise f.bad(
                "smpCoresPerSocket",
                f"{total} vCPUs do not divide into {cores} cores x {threads} threads sockets",
            )
        topology = (total // (cores * threads), cores, threads)
    mode, model, features = _cpu_type(f)
    cells = []
    for i, raw in enumerate(f.list_("guestNumaNodes")):
        node = Fields(raw, f"guestNumaNodes[{i}]")
        cells.append(
            (
                node.int_("nodeIndex", i, minimum=0, maximum=255),
                _cpuset(node, "cpus", node.str_("cpus", required=True)),
                node.int_("memory", required=True, minimum=1),
            )
        )
    if cells and sum(c[2] for c in cells) != memory:
        raise f.bad("guestNumaNodes", f"node memory must add up to memSize ({memory})")
    max_mem = f.int_("maxMemSize", minimum=1)
    slots = f.int_("maxMemSlots", minimum=1, maximum=255)
    if max_mem is not None:
        if max_mem < memory:
            raise f.bad("maxMemSize", f"must be at least memSize ({memory})")
        slots = slots or 16
        if not cells:  # QEMU needs a guest NUMA node for memory hotplug
            cells = [(0, f"0-{total - 1}", memory)]
    elif slots is not None:
        raise f.missing("maxMemSize")
    guaranteed = f.int_("memGuaranteedSize", minimum=0)
    if guaranteed is not None and guaranteed > memory:
        raise f.bad("memGuaranteedSize", f"must be at most memSize ({memory})")
    cpu = None
    if mode or topology or cells:
        cpu = CpuSpec(mode, model, features, topology, tuple(cells))
    pinning = []
    for vcpu, cpuset in sorted(f.str_map("cpuPinning").items()):
        if not (vcpu.isascii() and vcpu.isdigit()) or int(vcpu) >= total:
            raise f.bad("cpuPinning", f"no vCPU {vcpu!r} (the VM has {total})")
        pinning.append((int(vcpu), _cpuset(f, "cpuPinning", cpuset)))
    numa_tune = None
    nt = f.raw("numaTune")
    if nt is not None:
        tune = Fields(nt, "numaTune")
        numa_tune = (
            tune.choice("mode", ("strict", "interleave", "preferred"), "strict"),
            _cpuset(tune, "nodeset", tune.str_("nodeset", required=True)),
        )
    return CpuMemory(
        cpu=cpu,
        max_memory_mib=max_mem,
        max_memory_slots=slots if max_mem is not None else None,
        memory_guaranteed_mib=guaranteed,
        cpu_pinning=tuple(sorted(pinning)),
        numa_tune=numa_tune,
        hyperv=f.bool_("hypervEnable", False),
        time_offset=f.int_("timeOffset", minimum=-(10**9), maximum=10**9),
    )


def check_memory_devices(
    f: Fields, dimms: list[MemoryDeviceSpec], memory: int, top: CpuMemory
) -> None:
    """Memory hotplug DIMMs fit the slots and the maximum the request declared."""
    if not dimms:
        return
    max_mem, slots = top.max_memory_mib, top.max_memory_slots
    if max_mem is None or slots is None:
        raise f.missing("maxMemSize")
    if len(dimms) > slots:
        raise f.bad("devices", f"{len(dimms)} memory devices exceed maxMemSlots ({slots})")
    if memory + sum(d.size_mib for d in dimms) > max_mem:
        raise f.bad("devices", "memSize plus memory devices exceeds maxMemSize")
