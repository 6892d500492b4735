"""VM stats on real QEMU: a guest with a virtio disk and a NIC reports CPU figures, disk and
network counters in VDSM's shape, moving between sampling rounds; monitorResponse turns
"-1" while QEMU is stopped (SIGSTOP) and back to "0" after SIGCONT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

from tests.e2e.conftest import guest_params
from tests.e2e.test_devices import isolated_network  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MAC = "52:54:00:57:a7:01"


async def _stats_until(rpc, vm_id, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        (stats,) = await rpc.call("VM.getStats", vmID=vm_id)
        if predicate(stats):
            return stats
        assert time.monotonic() < deadline, f"{what}; last stats: {stats}"
        await asyncio.sleep(0.5)


def _qemu_pid(vm_name: str) -> int:
    with open(f"/run/libvirt/qemu/{vm_name}.pid") as f:
        return int(f.read().strip())


@pytest.mark.hvagent_set("metrics.sample_interval_s=1", "metrics.sample_timeout_s=2")
async def test_guest_stats_move_and_monitor_response_follows_qemu(
    rpc,
    agent,
    guest,
    tmp_path,
    isolated_network,  # noqa: F811
):
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    vm_id, params = guest_params(
        guest,
        devices=[
            {"type": "disk", "device": "disk", "path": str(disk), "format": "cow"},
            {
                "type": "interface",
                "device": "network",
                "network": isolated_network,
                "nicModel": "virtio",
                "macAddr": MAC,
            },
            {"type": "balloon", "device": "memballoon", "specParams": {"model": "virtio"}},
        ],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 120)

    def sampled(s):
        vda = s.get("disks", {}).get("vda", {})
        return s["cpuActual"] is True and int(vda.get("readOps", "0")) > 0 and s["network"]

    first = await _stats_until(rpc, vm_id, sampled, 60, "never sampled twice with disk reads")
    (nic,) = first["network"].values()
    assert nic["macAddr"] == MAC and nic["speed"] == "1000" and nic["state"] == "unknown"
    assert nic["name"].startswith("vnet") or nic["name"].startswith("tap")
    for key in ("rx", "tx", "rxErrors", "rxDropped", "txErrors", "txDropped"):
        assert nic[key].isdigit(), key
    vda = first["disks"]["vda"]
    assert int(vda["readBytes"]) > 0 and int(vda["apparentsize"]) == 64 * 2**20
    assert int(vda["truesize"]) > 0
    assert float(vda["readRate"]) >= 0 and vda["readLatency"].replace(".", "").isdigit()
    assert first["monitorResponse"] == "0" and first["timeOffset"] == "0"
    # the test guest has no balloon driver: no memoryStats, but libvirt's balloon figures
    assert first["hash"] and isinstance(first["memoryStats"], dict)
    assert first["balloonInfo"]["ballooning_enabled"] is True
    assert first["balloonInfo"]["balloon_max"] == str(256 * 1024)
    # the guest's CPU time grows (TCG) and the percentages are computed from it
    later = await _stats_until(
        rpc,
        vm_id,
        lambda s: int(s["cpuUsage"]) > int(first["cpuUsage"]),
        30,
        "cpuUsage never grew",
    )
    await _stats_until(
        rpc,
        vm_id,
        lambda s: float(s["cpuUser"]) + float(s["cpuSys"]) > 0,
        30,
        "cpuUser + cpuSys stayed 0",
    )
    assert float(later["cpuUser"]) >= 0 and float(later["cpuSys"]) >= 0

    pid = _qemu_pid(params["vmName"])
    os.kill(pid, signal.SIGSTOP)
    try:
        await _stats_until(
            rpc, vm_id, lambda s: s["monitorResponse"] == "-1", 60, "never -1 while stopped"
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    await _stats_until(rpc, vm_id, lambda s: s["monitorResponse"] == "0", 60, "never back to 0")
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_created_time_offset_survives_an_hvagent_restart(rpc, agent, guest):
    from tests.client import RpcClient

    vm_id, params = guest_params(guest, timeOffset="3600")
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 120)
    (before,) = await rpc.call("VM.getStats", vmID=vm_id)
    assert before["timeOffset"] == "3600" and before["hash"]
    agent.kill9()
    agent.start()
    second = RpcClient(agent.base, rpc.session)
    await second.wait_ready(120)
    (after,) = await second.call("VM.getStats", vmID=vm_id)
    assert after["status"] == "Up" and after["timeOffset"] == "3600"
    assert after["hash"] == before["hash"]  # same live devices
    await second.call("VM.destroy", vmID=vm_id)
