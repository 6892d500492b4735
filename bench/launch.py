"""VM.create -> Up through hvagent against the raw libvirt calls for the same XML, side by side.

libvirt's test driver (a fresh node per connection) on both sides:
- raw: `defineXMLFlags(xml, VALIDATE)` + `createWithFlags(0)` + `XMLDesc(0)` on a thread pool
  of the same size as hvagent's libvirt pool ([libvirt] call_threads), awaited from this
  process's event loop;
- hvagent: the daemon as its own process (as in production; its client, this process, does
  not share its event loop), a JSON-RPC `VM.create` over HTTP keep-alive, timed until the
  VM's `Up` status notification arrives on /events.

Sequential: per-VM time, median over N VMs, in up to 10 rounds that alternate raw, raw
without VALIDATE and hvagent (so a load change on the machine hits all three alike). Concurrent: 100
creates at once, VMs per second, each side. Also reported: the raw path without VALIDATE
(what libvirt's schema check costs). Domains are destroyed and undefined between rounds,
untimed. Run: .venv/bin/python bench/launch.py [N]; README.md "Benchmarks" records figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import libvirt

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from agent import config  # noqa: E402
from agent.intake.launch import plan  # noqa: E402
from agent.virt.connection import register_event_loop  # noqa: E402

NODE = f"test://{ROOT / 'tests/data/libvirt/node.xml'}"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
CONCURRENT = 100
ROUNDS = max(1, min(10, N // 10))
THREADS = config.LibvirtConfig().call_threads


def params(vm_id: uuid.UUID) -> dict:
    return {"vmId": str(vm_id), "vmName": f"b-{vm_id.hex[:12]}", "memSize": 64}


class Raw:
    def __init__(self, flags: int) -> None:
        self.conn = libvirt.open(NODE)
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="raw")
        self.flags = flags
        self.virt = config.VirtConfig(domain_type="qemu", console_log_dir="/tmp/hvagent-bench")

    async def launch(self, vm_id: uuid.UUID) -> None:
        loop = asyncio.get_running_loop()
        xml = plan(vm_id, params(vm_id), self.virt).xml  # the same XML hvagent defines
        dom = await loop.run_in_executor(self.pool, self.conn.defineXMLFlags, xml, self.flags)
        await loop.run_in_executor(self.pool, dom.createWithFlags, 0)
        await loop.run_in_executor(self.pool, dom.XMLDesc, 0)

    def clean(self) -> None:
        for dom in self.conn.listAllDomains(0):
            if dom.name().startswith("b-"):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()


class Agent:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.ids = 0

    async def follow(self) -> None:
        async with self.session.ws_connect(f"{self.base}/events") as ws:
            async for msg in ws:
                note = json.loads(msg.data)
                for vm, detail in note["params"].items():
                    fut = self.waiting.get(vm)
                    if fut and isinstance(detail, dict) and detail.get("status") == "Up":
                        fut.set_result(None)

    async def call(self, method: str, **kw) -> object:
        self.ids += 1
        body = {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": kw}
        async with self.session.post(f"{self.base}/jsonrpc", json=body) as r:
            reply = await r.json()
        assert "result" in reply, reply
        return reply["result"]

    async def launch(self, vm_id: uuid.UUID) -> None:
        up = self.waiting[str(vm_id)] = asyncio.get_running_loop().create_future()
        await self.call("VM.create", vmID=str(vm_id), vmParams=params(vm_id))
        await up
        del self.waiting[str(vm_id)]

    async def clean(self, vm_ids: list[uuid.UUID]) -> None:
        await asyncio.gather(*(self.call("VM.destroy", vmID=str(v)) for v in vm_ids))


async def sequential(launch, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await launch(uuid.uuid4())
        times.append(time.perf_counter() - t)
    return times


async def concurrent(launch, n: int) -> tuple[float, list[uuid.UUID]]:
    ids = [uuid.uuid4() for _ in range(n)]
    t = time.perf_counter()
    await asyncio.gather(*(launch(v) for v in ids))
    return n / (time.perf_counter() - t), ids


def start_daemon(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sets = {
        "libvirt.uri": NODE,
        "rpc.listen": f"127.0.0.1:{port}",
        "rpc.socket": "",
        "stomp.listen": "",
        "logging.level": "WARNING",
        "virt.domain_type": "qemu",
        "virt.console_log_dir": str(tmp / "console"),
        "state.dir": str(tmp / "state"),
        "payload.dir": str(tmp / "payload"),
    }
    args = [f"--set={k}={v}" for k, v in sets.items()]
    proc = subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=ROOT)
    return proc, f"http://127.0.0.1:{port}"


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    register_event_loop()
    raw, raw_novalidate = Raw(libvirt.VIR_DOMAIN_DEFINE_VALIDATE), Raw(0)
    proc, base = start_daemon(Path(tempfile.mkdtemp()))
    async with aiohttp.ClientSession() as session:
        agent = Agent(session, base)
        for _ in range(300):
            try:
                await agent.call("Host.ping2")
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        follower = asyncio.create_task(agent.follow())
        await asyncio.sleep(0.2)
        seq: dict[str, list[float]] = {"raw": [], "raw-novalidate": [], "hvagent": []}
        for _ in range(ROUNDS):  # alternating rounds
            seq["raw"] += await sequential(raw.launch, N // ROUNDS)
            raw.clean()
            seq["raw-novalidate"] += await sequential(raw_novalidate.launch, N // ROUNDS)
            raw_novalidate.clean()
            created: list[uuid.UUID] = []

            async def launch_and_keep(vm_id: uuid.UUID, keep: list[uuid.UUID] = created) -> None:
                keep.append(vm_id)
                await agent.launch(vm_id)

            seq["hvagent"] += await sequential(launch_and_keep, N // ROUNDS)
            await agent.clean(created)
        conc: dict[str, list[float]] = {"raw": [], "hvagent": []}
        for _ in range(3):
            rate, _ids = await concurrent(raw.launch, CONCURRENT)
            conc["raw"].append(rate)
            raw.clean()
            rate, ids = await concurrent(agent.launch, CONCURRENT)
            conc["hvagent"].append(rate)
            await agent.clean(ids)
        follower.cancel()
    proc.terminate()
    proc.wait(30)
    ms = {k: statistics.median(v) * 1000 for k, v in seq.items()}
    print(f"sequential, {N} VMs each, median ms per VM (create -> running/Up):")
    for k, v in ms.items():
        print(f"  {k:15s} {v:7.2f} ms")
    print(f"  hvagent - raw  {ms['hvagent'] - ms['raw']:7.2f} ms (target <= 2 ms)")
    r, h = statistics.median(conc["raw"]), statistics.median(conc["hvagent"])
    print(f"concurrent, {CONCURRENT} at once through {THREADS} libvirt threads, VMs/s:")
    print(f"  raw {r:.0f}  hvagent {h:.0f}  ratio {h / r:.2f} (target >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main())
