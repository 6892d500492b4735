"""Metrics and hvagent-client on a real QEMU guest: bulk stats in the scrape, CLI on the socket."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.client import EventStream
from tests.e2e.conftest import guest_params

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CLIENT = str(Path(sys.executable).with_name("hvagent-client"))


async def scrape(base: str) -> dict[tuple[str, str], dict]:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics") as r:
        text = await r.text()
    out = {}
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            key = (smp.name, smp.labels.get("uuid", ""))
            out.setdefault(key, []).append(smp)
    return out


async def test_qemu_guest_stats_in_scrape_and_cli(rpc, agent, guest, tmp_path):
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    dev = {"type": "disk", "device": "disk", "path": str(disk), "format": "cow", "iface": "virtio"}
    vm_id, params = guest_params(guest, devices=[dev])
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 120)
        await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
        deadline = time.monotonic() + 60
        while True:
            s = await scrape(agent.base)
            cpu = s.get(("libvirt_domain_info_cpu_time_seconds_total", vm_id))
            reads = s.get(("libvirt_domain_block_stats_read_bytes_total", vm_id))
            if cpu and reads and cpu[0].value > 0 and reads[0].value > 0:
                break
            assert time.monotonic() < deadline, "no QEMU stats in the scrape"
            await asyncio.sleep(1)
        assert cpu[0].labels["domain"] == params["vmName"]
        assert reads[0].labels["target_device"] == "vda"
        assert s[("libvirt_domain_info_vstate", vm_id)][0].value == 1
        assert s[("libvirt_domain_vcpu_time_seconds_total", vm_id)][0].labels["vcpu"] == "0"
        assert s[("libvirt_domain_info_maximum_memory_bytes", vm_id)][0].value == 256 * 2**20
        assert s[("libvirt_domain_timed_out", vm_id)][0].value == 0

        sock = str(agent.tmp / "hvagent.sock")
        proc = await asyncio.create_subprocess_exec(
            CLIENT, "--socket", sock, "VM", "getStats", f"vmID={vm_id}",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0 and json.loads(out)[0]["status"] == "Up"
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        await events.wait_status(vm_id, "Down", 60)
    finally:
        await events.close()
    log = agent.log.read_text()
    assert f"VM.create vm={vm_id} ok" in log and f"VM.getStats vm={vm_id} ok" in log
