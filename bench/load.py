"""Load: N concurrent JSON-RPC clients for D seconds against hvagent on libvirt's test driver,
mixed verbs and VM churn; reports errors, p50/p99 per verb, and whether any VM was lost.

Each client loops: mostly reads (Host.ping2, Host.getVMList, Host.getAllVmStats,
Host.getStats, VM.getStats/VM.getInfo of its own VM), and every few calls churns its VM
(VM.destroy, then VM.create of a new one). "Lost": a VM a client created and has not
destroyed that is missing from Host.getVMList at the end, or a domain left after every
client destroyed its VM. Any JSON-RPC error or HTTP failure counts as an error.
Run: make load  (LOAD_CLIENTS=200 LOAD_SECONDS=60 by default); README.md records the figure.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import aiohttp

ROOT = Path(__file__).parents[1]
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
READS = [
    ("Host.ping2", 4),
    ("Host.getVMList", 2),
    ("Host.getAllVmStats", 1),
    ("Host.getStats", 1),
    ("VM.getStats", 3),
    ("VM.getInfo", 2),
]
CHURN_EVERY = 10  # calls between a client's destroy + create


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.ids = itertools.count()

    async def call(self, method: str, **params: object) -> object:
        body = {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}
        start = time.perf_counter()
        try:
            async with self.session.post(f"{self.base}/jsonrpc", json=body) as r:
                reply = json.loads(await r.read())
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            self.errors.append(f"{method}: {type(exc).__name__} {exc}")
            return None
        self.latency[method].append(time.perf_counter() - start)
        if "error" in reply:
            self.errors.append(f"{method}: {reply['error']}")
            return None
        return reply["result"]

    async def create(self, n: int) -> str | None:
        vm_id = str(uuid.uuid4())
        params = {"vmId": vm_id, "vmName": f"load-{n}-{vm_id[:8]}", "memSize": 64}
        ok = await self.call("VM.create", vmID=vm_id, vmParams=params)
        return vm_id if ok is not None else None

    async def client(self, n: int, until: float, alive: set[str]) -> None:
        rng = random.Random(n)
        names, weights = zip(*READS, strict=True)
        vm = await self.create(n)
        if vm:
            alive.add(vm)
        calls = 0
        while time.monotonic() < until:
            calls += 1
            if calls % CHURN_EVERY == 0 and vm:
                if await self.call("VM.destroy", vmID=vm) is not None:
                    alive.discard(vm)
                vm = await self.create(n)
                if vm:
                    alive.add(vm)
                continue
            method = rng.choices(names, weights)[0]
            if method.startswith("VM."):
                if vm:
                    await self.call(method, vmID=vm)
            else:
                await self.call(method)
        if vm and await self.call("VM.destroy", vmID=vm) is not None:
            alive.discard(vm)


def main() -> int:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="hvagent-load-"))
    cfg = tmp / "hvagent.toml"
    cfg.write_text(
        f'[rpc]\nlisten = "127.0.0.1:{port}"\nsocket = ""\n[libvirt]\nuri = "test:///default"\n'
        f'[virt]\nconsole_log_dir = "{tmp}/console"\n[logging]\nlevel = "WARNING"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(cfg)],
        cwd=ROOT,
        stdout=(tmp / "hvagent.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        load, alive, before, after, elapsed = asyncio.run(run(f"http://127.0.0.1:{port}", proc))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    return report(load, alive, before, after, elapsed, code)


async def run(base: str, proc: subprocess.Popen[bytes]) -> tuple:
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load = Load(base, session)
        deadline = time.monotonic() + 60
        while await _ready(session, base) is False:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("hvagent did not become ready")
            await asyncio.sleep(0.1)
        before = {vm["vmId"] for vm in await load.call("Host.getVMList")}  # type: ignore[union-attr]
        load.latency.clear()
        alive: set[str] = set()
        start = time.monotonic()
        until = start + SECONDS
        await asyncio.gather(*(load.client(n, until, alive) for n in range(CLIENTS)))
        elapsed = time.monotonic() - start
        after = {vm["vmId"] for vm in await load.call("Host.getVMList")}  # type: ignore[union-attr]
    return load, alive, before, after, elapsed


def report(
    load: Load, alive: set[str], before: set[str], after: set[str], elapsed: float, code: int
) -> int:
    lost = alive - after
    left = after - before - alive
    total = sum(len(v) for v in load.latency.values())
    print(f"{CLIENTS} clients, {elapsed:.1f} s, {total} calls ({total / elapsed:.0f}/s), "
          f"{len(load.errors)} errors, lost {len(lost)}, left behind {len(left)}, "
          f"hvagent exit {code}")  # fmt: skip
    print(f"{'verb':<20} {'calls':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for method, samples in sorted(load.latency.items()):
        samples.sort()
        p50 = statistics.median(samples) * 1000
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000
        print(f"{method:<20} {len(samples):>7} {p50:>8.1f} {p99:>8.1f}")
    for error in load.errors[:10]:
        print("error:", error[:300])
    return 0 if not load.errors and not lost and not left and code == 0 else 1


async def _ready(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


if __name__ == "__main__":
    sys.exit(main())
