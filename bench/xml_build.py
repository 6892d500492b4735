"""vmParams -> VmSpec -> domain XML text for a typical 15-device VM, in µs per VM.

Measures `agent.intake.launch.plan` (validation, defaults, lxml build, serialisation, the
host-access checks) in one process; prints the median of several rounds. Target: under
500 µs per VM. Also printed: bench/launch.py's small VM and a 20-device VM.
Run: .venv/bin/python bench/xml_build.py
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from agent.config import HostAccessConfig, VirtConfig
from agent.intake import launch

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
PCI = {"type": "pci", "domain": "0x0000", "bus": "0x00", "function": "0x0"}
PARAMS = {
    "vmId": str(VM),
    "vmName": "bench",
    "memSize": "2048",
    "smp": "2",
    "maxVCpus": "4",
    "smpCoresPerSocket": "2",
    "cpuType": "Westmere,+vmx",
    "tabletEnable": "true",
    "custom": {"k": "v"},
    "devices": [
        {
            "type": "disk",
            "device": "disk",
            "path": "/img/a.qcow2",
            "format": "cow",
            "iface": "virtio",
            "bootOrder": "1",
            "serial": "a1",
            "address": {**PCI, "slot": "0x05"},
        },
        {
            "type": "disk",
            "device": "disk",
            "path": "/dev/mapper/b",
            "iface": "scsi",
            "cache": "none",
            "io": "native",
        },
        {"type": "disk", "device": "cdrom", "path": "/img/cd.iso", "iface": "ide"},
        {
            "type": "interface",
            "device": "bridge",
            "network": "ovirtmgmt",
            "nicModel": "pv",
            "macAddr": "52:54:00:00:00:01",
            "address": {**PCI, "slot": "0x03"},
        },
        {
            "type": "interface",
            "device": "network",
            "network": "default",
            "nicModel": "e1000",
            "macAddr": "52:54:00:00:00:02",
        },
        {"type": "controller", "device": "virtio-serial", "index": "0"},
        {"type": "controller", "device": "scsi", "model": "virtio-scsi", "index": "0"},
        {"type": "controller", "device": "usb", "model": "piix3-uhci", "index": "0"},
        {"type": "video", "device": "qxl", "specParams": {"vram": "32768", "heads": "1"}},
        {"type": "sound", "device": "ich6"},
        {"type": "balloon", "device": "memballoon", "specParams": {"model": "virtio"}},
        {"type": "watchdog", "specParams": {"model": "i6300esb", "action": "reset"}},
        {"type": "rng", "specParams": {"source": "urandom"}},
        {"type": "graphics", "device": "spice"},
        {"type": "disk", "device": "disk", "path": "/img/c.raw", "iface": "sata"},
    ],
}
CFG = VirtConfig(domain_type="qemu", console_log_dir="/var/log/hvagent/console")
# The disks' directory is an image root, as an operator's would be ([host_access]).
ACCESS = HostAccessConfig(image_roots=("/img",))


SMALL = {"vmId": str(VM), "vmName": "bench", "memSize": 64}  # bench/launch.py's VM
PARAMS_20 = {
    **PARAMS,
    "devices": [
        *PARAMS["devices"],
        {"type": "disk", "device": "disk", "path": "/img/d.qcow2", "format": "cow"},
        {"type": "disk", "device": "disk", "path": "/img/e.raw", "iface": "scsi"},
        {"type": "interface", "device": "bridge", "network": "br1", "nicModel": "pv"},
        {"type": "controller", "device": "scsi", "model": "virtio-scsi", "index": "1"},
        {"type": "disk", "device": "cdrom", "path": "/img/cd2.iso", "iface": "sata"},
    ],
}


def rounds(params: dict, n: int) -> list[float]:
    for _ in range(n // 10):
        launch.plan(VM, params, CFG, ACCESS)
    out = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            launch.plan(VM, params, CFG, ACCESS)
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out


def main() -> None:
    assert len(PARAMS["devices"]) == 15 and len(PARAMS_20["devices"]) == 20
    r = rounds(PARAMS, 2000)
    print(
        f"spec + XML build, 15-device VM: median {statistics.median(r):.0f} µs per VM "
        f"(rounds: {', '.join(f'{x:.0f}' for x in r)}; target < 500 µs)"
    )
    for what, params in (("small VM (bench/launch.py's)", SMALL), ("20-device VM", PARAMS_20)):
        r = rounds(params, 1000)
        print(f"  {what}: median {statistics.median(r):.0f} µs")


if __name__ == "__main__":
    main()
