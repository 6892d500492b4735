"""VM stats over JSON-RPC on libvirt's test driver, whose bulk stats carry the domain state
only: every sampled field keeps VDSM's shape and defaults (cpuActual false, no crash), disks
come from the live XML with their imageID, `hash` is there once the VM runs, and the created
timeOffset is reported and survives an hvagent restart. The guest-agent fields: the test
driver's agent interface addresses, VDSM's defaults for the rest."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest

from agent import config
from tests.client import RpcClient
from tests.integration.conftest import SHARED_URI, Daemon, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

IMAGE = str(uuid.uuid4())


def _cfg(tmp_path) -> config.Config:
    cfg = make_config(tmp_path, SHARED_URI)
    return dataclasses.replace(
        cfg,
        metrics=config.MetricsConfig(sample_interval_s=0.1, sample_timeout_s=5.0),
        guest_agent=config.GuestAgentConfig(poll_interval_s=0.1, timeout_s=1),
    )


async def _sampled_twice(rpc: RpcClient, vm_id: str) -> dict:
    """Stats once the VM is Up and two sampling rounds later (the round covers the VM)."""
    await rpc.wait_status(vm_id, "Up", 15)
    deadline = time.monotonic() + 15
    seen = 0
    while seen < 3:
        (stats,) = await rpc.call("VM.getStats", vmID=vm_id)
        seen += 1
        assert time.monotonic() < deadline
        await asyncio.sleep(0.25)
    return stats


def _check_shape(s: dict) -> None:
    for key in ("cpuUser", "cpuSys"):
        assert s[key] == "0.00", key  # no cpu.* keys on the test driver
    assert s["cpuUsage"] == "0" and s["cpuActual"] is False
    assert s["vcpuCount"] == "2" and s["vcpuQuota"] == "-1" and s["vcpuPeriod"] == "100000"
    assert s["memUsage"] == "0" and s["memoryStats"] == {} and s["balloonInfo"] == {}
    assert s["network"] == {} and s["monitorResponse"] == "0"
    assert isinstance(s["hash"], str) and s["hash"].lstrip("-").isdigit()
    assert s["timeOffset"] == "3600" and "pauseCode" not in s
    vda = s["disks"]["vda"]
    assert vda["imageID"] == IMAGE
    for key in ("readRate", "writeRate"):
        assert vda[key] == "0.00"
    for key in ("readLatency", "writeLatency", "flushLatency", "readOps", "writeOps"):
        assert vda[key] == "0", key
    for key in ("readBytes", "writtenBytes", "truesize", "apparentsize"):
        assert vda[key] == "0", key
    # guest agent: the test driver answers interface addresses only (its own made-up
    # address for each NIC); the other fields keep VDSM's defaults
    assert s["guestInfoStale"] is False and s["guestInfoTime"].isdigit()
    (nic,) = s["netIfaces"]
    assert nic["inet"] and nic["inet6"] == [] and nic["hw"].count(":") == 5
    assert s["guestIPs"] == " ".join(nic["inet"])
    assert s["guestFQDN"] == s["guestName"] == "" and s["guestCPUCount"] == -1
    assert s["guestOsInfo"] == {} and s["guestTimezone"] == {} and s["disksUsage"] == []
    assert (s["username"], s["session"]) == ("Unknown", "Unknown")


async def test_stats_shape_on_the_test_driver_and_time_offset_across_a_restart(
    tmp_path, session, virconn
):
    vm_id = str(uuid.uuid4())
    params = {
        "vmId": vm_id,
        "vmName": f"vst-{vm_id[:8]}",
        "memSize": 96,
        "smp": 2,
        "timeOffset": 3600,
        "devices": [
            {
                "type": "disk",
                "path": "/var/lib/libvirt/images/x.img",
                "format": "raw",
                "serial": IMAGE,
            },
            {"type": "interface", "device": "bridge", "network": "br0", "nicModel": "virtio"},
            {"type": "balloon", "specParams": {"model": "virtio"}},
        ],
    }
    d = Daemon(_cfg(tmp_path))
    try:
        rpc = RpcClient(d.base, session)
        await rpc.wait_ready(30)
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        stats = await _sampled_twice(rpc, vm_id)
        _check_shape(stats)
        everyone = {s["vmId"]: s for s in await rpc.call("Host.getAllVmStats")}
        _check_shape(everyone[vm_id])
        assert everyone[vm_id]["hash"] == stats["hash"]
        assert everyone["6695eb01-f6a4-8304-79aa-97f2502e193f"]["status"] == "Up"  # "test"
        assert await d.stop() == 0
        d = Daemon(_cfg(tmp_path))  # hvagent restarted: adopts the running domain
        rpc = RpcClient(d.base, session)
        await rpc.wait_ready(30)
        again = await _sampled_twice(rpc, vm_id)
        _check_shape(again)
        assert again["hash"] == stats["hash"]  # same live devices, same hash
        await rpc.call("VM.destroy", vmID=vm_id)
    finally:
        if not d.task.done():
            assert await d.stop() == 0
