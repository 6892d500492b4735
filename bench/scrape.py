"""GET /metrics at 1000 VMs on libvirt's test driver: scrape latency (target < 100 ms).

hvagent runs in-process on test:///default with a fast sampler; the script creates N VMs
through VM.create (BENCH_VMS, default 1000) with 2 vCPUs each, waits until a sampling round
covers them all, then times BENCH_SCRAPES sequential scrapes over HTTP (keep-alive) and
prints median and p95 with the body size. The test driver reports domain state only in bulk
stats, so the per-VM part of a scrape is smaller than on QEMU; the families, labels and the
collector path are the same. Run: .venv/bin/python bench/scrape.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parents[1]))

from agent import config
from agent.daemon import run
from tests.client import RpcClient, free_port

VMS = int(os.environ.get("BENCH_VMS", "1000"))
NL = b"\n"
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "50"))


async def main() -> None:
    tmp = tempfile.mkdtemp(prefix="hvagent-bench-")
    base = config.Config.defaults()
    cfg = dataclasses.replace(
        base,
        rpc=config.RpcConfig(listen=f"127.0.0.1:{free_port()}", socket=f"{tmp}/hvagent.sock"),
        libvirt=config.LibvirtConfig(uri="test:///default"),
        virt=config.VirtConfig(domain_type="kvm", console_log_dir=f"{tmp}/console"),
        logging=config.LoggingConfig(level="WARNING"),
        metrics=config.MetricsConfig(sample_interval_s=0.5, sample_timeout_s=30.0),
    )
    stop = asyncio.Event()
    daemon = asyncio.create_task(run(cfg, shutdown_trigger=stop.wait()))
    url = f"http://{cfg.rpc.listen}"
    async with aiohttp.ClientSession() as session:
        rpc = RpcClient(url, session)
        await rpc.wait_ready(30)
        sem = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            vm_id = str(uuid.uuid4())
            params = {"vmId": vm_id, "vmName": f"bench-{i:05d}", "memSize": 64, "smp": 2}
            async with sem:
                await rpc.call("VM.create", vmID=vm_id, vmParams=params)

        t = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(VMS)))
        print(f"created {VMS} VMs in {time.monotonic() - t:.1f} s")
        deadline = time.monotonic() + 120
        while True:
            async with session.get(f"{url}/metrics") as r:
                text = await r.text()
            if text.count('libvirt_domain_info_vstate{domain="bench-') >= VMS:
                break
            assert time.monotonic() < deadline, "sampler never covered every VM"
            await asyncio.sleep(0.5)
        times = []
        for _ in range(SCRAPES):
            t = time.perf_counter()
            async with session.get(f"{url}/metrics") as r:
                body = await r.read()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(
            f"scrape at {VMS} VMs: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, "
            f"{len(body) / 1024:.0f} KiB, {body.count(NL)} lines ({SCRAPES} scrapes)"
        )
    stop.set()
    await daemon
    synthetic()


def synthetic() -> None:
    """The collector alone over QEMU-shaped stats (balloon, 2 vCPUs, 1 disk, 1 NIC per VM)."""
    from agent.metrics.collector import render
    from agent.metrics.snapshot import Snapshot
    from agent.virt.port import DomainStats

    stats = {"state.state": 1, "state.reason": 1, "cpu.time": 10**12, "balloon.current": 65536}
    stats |= {f"balloon.{k}": 1000 for k in ("maximum", "rss", "unused", "available", "usable")}
    stats |= {"balloon.swap_in": 0, "balloon.swap_out": 0, "balloon.major_fault": 3}
    stats |= {"balloon.minor_fault": 9, "balloon.disk_caches": 100}
    stats |= {"vcpu.current": 2, "vcpu.maximum": 2, "block.count": 1, "net.count": 1}
    for i in range(2):
        stats |= {f"vcpu.{i}.state": 1, f"vcpu.{i}.time": 10**11, f"vcpu.{i}.wait": 0}
    stats |= {f"block.0.{k}": 1000 for k in ("rd.bytes", "rd.reqs", "rd.times", "wr.bytes")}
    stats |= {f"block.0.{k}": 1000 for k in ("wr.reqs", "wr.times", "fl.reqs", "fl.times")}
    stats |= {f"net.0.{d}.{k}": 5 for d in ("rx", "tx") for k in ("bytes", "pkts", "errs", "drop")}
    stats |= {"block.0.name": "vda", "net.0.name": "vnet0"}
    domains = tuple(DomainStats(uuid.uuid4(), f"vm-{i:05d}", stats) for i in range(VMS))
    snap = Snapshot(time.monotonic(), domains)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        body = render(snap)
        times.append((time.perf_counter() - t) * 1000)
    print(
        f"rendering QEMU-shaped stats of {VMS} VMs (once per sampling round, worker thread):"
        f" median {statistics.median(times):.1f} ms, {len(body) / 1024:.0f} KiB,"
        f" {body.count(NL)} lines"
    )


if __name__ == "__main__":
    asyncio.run(main())
