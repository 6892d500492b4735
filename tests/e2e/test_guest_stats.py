"""VM stats that need the guest's help, on real QEMU: cpuUser/cpuSys rise while the guest
burns CPU and fall after; disk and network counters grow by what the guest wrote, read and
sent; memoryStats fills from the guest's balloon driver (<memballoon><stats period>); and
the guest-agent fields show the address the guest's qemu-ga reports.

Guest flags (tests/guest/README.md): burn=N, diskio=N, guest_ip=ADDR/PREFIX, netio=ADDR,
guest_hostname=NAME."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import guest_params
from tests.e2e.test_devices import isolated_network  # noqa: F401  (fixture)
from tests.e2e.test_vmstats import _stats_until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MAC = "52:54:00:57:a7:61"
ADDR = "10.213.7.2"
DISKIO_MIB = 8


def _cpu(stats: dict) -> float:
    # VDSM's split: cpuSys is QEMU's user+system time, cpuUser the rest of its CPU time;
    # under TCG the guest's work shows in their sum.
    return float(stats["cpuUser"]) + float(stats["cpuSys"])


@pytest.mark.hvagent_set(
    "metrics.sample_interval_s=1",
    "guest_agent.poll_interval_s=1",
    "guest_agent.backoff_max_s=4",
    "virt.balloon_stats_period_s=1",
)
async def test_guest_work_moves_the_stats_and_qemu_ga_reports_the_address(
    rpc,
    agent,
    guest,
    tmp_path,
    isolated_network,  # noqa: F811
):
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    flags = (
        "guest_hostname=hvguest",
        f"guest_ip={ADDR}/24",
        "burn=30",
        f"diskio={DISKIO_MIB}",
        "netio=10.213.7.1",
    )
    vm_id, params = guest_params(
        guest,
        *flags,
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
    console = await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
    assert f"HVAGENT-GUEST-IP eth0 {ADDR}/24" in console, console[-2000:]

    # CPU: the busy loop shows, then its end does
    burning = await _stats_until(
        rpc, vm_id, lambda s: s["cpuActual"] and _cpu(s) >= 20, 60, "burn never showed"
    )
    await agent.wait_console(vm_id, "HVAGENT-GUEST-BURN-DONE", 120)
    await _stats_until(
        rpc, vm_id, lambda s: _cpu(s) < _cpu(burning) / 2, 60, "CPU never fell after the burn"
    )

    # disk: the guest wrote then read DISKIO_MIB of /dev/vda (boot reads only a few KiB)
    await agent.wait_console(vm_id, "HVAGENT-GUEST-DISKIO-DONE", 120)
    want = DISKIO_MIB * 2**20
    stats = await _stats_until(
        rpc,
        vm_id,
        lambda s: (
            int(s["disks"]["vda"]["writtenBytes"]) >= want
            and int(s["disks"]["vda"]["readBytes"]) >= want
        ),
        30,
        "disk counters did not grow by the guest's I/O",
    )
    vda = stats["disks"]["vda"]
    assert int(vda["writeOps"]) > 0 and int(vda["readOps"]) > 0

    # network: 20 pings to a peer that never answers still send ARP requests
    await agent.wait_console(vm_id, "HVAGENT-GUEST-NETIO-DONE", 120)
    stats = await _stats_until(
        rpc,
        vm_id,
        lambda s: any(int(n["rx"]) + int(n["tx"]) >= 20 * 42 for n in s["network"].values()),
        30,
        "network counters did not grow by the guest's packets",
    )
    (nic,) = stats["network"].values()
    assert nic["macAddr"] == MAC

    # the guest's balloon driver reports with the configured period
    stats = await _stats_until(
        rpc, vm_id, lambda s: "mem_total" in s["memoryStats"], 60, "memoryStats stayed empty"
    )
    mem = stats["memoryStats"]
    assert 0 < int(mem["mem_total"]) <= 256 * 1024 and int(mem["mem_free"]) >= 0
    assert 0 <= int(stats["memUsage"]) <= 100

    # qemu-ga's answer, through the guest-agent poller
    stats = await _stats_until(
        rpc, vm_id, lambda s: ADDR in s.get("guestIPs", "").split(), 90, "guestIPs never showed"
    )
    assert stats["guestInfoStale"] is False and stats["guestInfoTime"].isdigit()
    (eth0,) = [i for i in stats["netIfaces"] if i["hw"] == MAC]
    assert eth0["name"] == "eth0" and ADDR in eth0["inet"]
    assert stats["guestCPUCount"] == 1
    assert stats["guestFQDN"] == stats["guestName"] == "hvguest"
    assert stats["guestOs"].endswith("-cloud-amd64")  # the Debian cloud kernel's release
    os_info = stats["guestOsInfo"]
    assert (os_info["type"], os_info["arch"], os_info["kernel"]) == (
        "linux",
        "x86_64",
        stats["guestOs"],
    )
    assert stats["guestTimezone"] == {"zone": "UTC", "offset": 0}
    assert (stats["username"], stats["session"]) == ("", "LoggedOff")  # nobody logged in
    await rpc.call("VM.destroy", vmID=vm_id)


@pytest.mark.hvagent_set(
    "guest_agent.poll_interval_s=1",
    "guest_agent.timeout_s=2",
    "guest_agent.backoff_max_s=2",
)
async def test_a_hung_guest_agent_goes_stale_and_never_holds_a_ticket_or_a_shutdown(
    rpc, agent, guest
):
    """qemu-ga answers once, then hangs (SIGSTOP, still connected to libvirt): the poller's
    queries time out again and again (libvirt's agent timeout, 2 s here), the last answer
    stays marked stale, and VM.setTicket and VM.shutdown (agent stage failing, then ACPI)
    still do their work."""
    vm_id, params = guest_params(
        guest,
        "guest_hostname=frozen",
        "qga_freeze_after=10",
        devices=[{"type": "graphics", "device": "vnc", "specParams": {"displayIp": "127.0.0.1"}}],
    )
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    await rpc.wait_status(vm_id, "Up", 120)
    await _stats_until(
        rpc, vm_id, lambda s: s.get("guestFQDN") == "frozen", 60, "qemu-ga never answered"
    )
    await agent.wait_console(vm_id, "HVAGENT-GUEST-QGA-FROZEN", 120)
    stale = await _stats_until(
        rpc, vm_id, lambda s: s["guestInfoStale"] is True, 60, "a hung agent never went stale"
    )
    assert stale["guestFQDN"] == "frozen"  # the last answer, kept
    assert await rpc.call("VM.setTicket", vmID=vm_id, password="hung-ga", ttl=60)
    assert await rpc.call("VM.shutdown", vmID=vm_id, timeout=60)
    await rpc.wait_status(vm_id, "Down", 180)
    assert "HVAGENT-GUEST-ACPI-POWEROFF" in agent.console_log(vm_id)
    await rpc.call("VM.destroy", vmID=vm_id)
