"""Memory per drained channel, and drain throughput against a raw socket read.

Memory: a feeder process (this script with --feed) plays QEMU for N channels (default
200): one Unix socket each, serving one client, writing `--bytes` per channel as soon as it
attaches. This process drains them all as hvagent does (agent/runtime/channels: Channel,
SegmentLog in a temporary dir, drain) and reports its RSS growth per channel once every
byte arrived, for quiet channels (0 bytes) and busy ones (default 1 MiB each, more than
the 256 KiB ring).
Throughput: one channel, the feeder writes `--stream` MiB as fast as it can; the time until
the drain has it all (ring + log + marker scan) against a bare asyncio protocol that only
counts the same bytes (the socket's raw read rate on this host). File writes happen on the
event loop (page cache), so this is also what they cost it.
Run: .venv/bin/python bench/channel_memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from agent.runtime.channels.channel import Channel
from agent.runtime.channels.drain import drain
from agent.runtime.channels.log import SegmentLog

MARKERS = ("HE_APPLIANCE_ENGINE_SETUP_SUCCESS", "HE_APPLIANCE_ENGINE_SETUP_FAIL")
BLOCK = os.urandom(1 << 16)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- the feeder (another process: its memory is not counted) ------------------------------


async def feed(directory: str, count: int, each: int) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        left = each
        while left > 0:
            writer.write(BLOCK[: min(left, len(BLOCK))])
            left -= min(left, len(BLOCK))
            await writer.drain()
        await reader.read()
        writer.close()

    servers = [await asyncio.start_unix_server(serve, f"{directory}/{i}") for i in range(count)]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


def feeder(directory: str, count: int, each: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--feed", directory, str(count), str(each)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


# -- the drains ------------------------------------------------------------------------


async def drained_rss(count: int, each: int) -> float:
    with tempfile.TemporaryDirectory(prefix="hvc-") as socks, tempfile.TemporaryDirectory() as logs:
        proc = feeder(socks, count, each)
        try:
            gc.collect()
            before = rss_kib()
            stopping = asyncio.Event()
            channels = [
                Channel(
                    f"c{i}",
                    f"{socks}/{i}",
                    SegmentLog(logs, f"c{i}", 64 << 20),
                    ring_bytes=256 * 1024,
                    markers=MARKERS,
                )
                for i in range(count)
            ]
            tasks = [asyncio.create_task(drain(c, stopping)) for c in channels]
            while sum(c.end for c in channels) < count * each:  # noqa: ASYNC110 (a poll)
                await asyncio.sleep(0.05)
            gc.collect()
            after = rss_kib()
            stopping.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in channels:
                c.close()
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)
    return (after - before) / count


class _Count(asyncio.Protocol):
    def __init__(self, want: int, done: asyncio.Future[float]) -> None:
        self.got = 0
        self.want = want
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= self.want and not self.done.done():
            self.done.set_result(time.perf_counter())


async def throughput(mib: int) -> tuple[float, float]:
    """(drain MiB/s, raw MiB/s) for one stream of `mib` MiB."""
    total = mib << 20
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="hvc-") as socks, tempfile.TemporaryDirectory() as logs:
        proc = feeder(socks, 2, total)
        try:
            done: asyncio.Future[float] = loop.create_future()
            start = time.perf_counter()
            transport, _ = await loop.create_unix_connection(
                lambda: _Count(total, done), f"{socks}/0"
            )
            raw = mib / (await done - start)
            transport.close()
            channel = Channel(
                "t", f"{socks}/1", SegmentLog(logs, "t", 1 << 40), ring_bytes=256 * 1024,
                markers=MARKERS,
            )  # fmt: skip
            await channel.open()
            stopping = asyncio.Event()
            start = time.perf_counter()
            task = asyncio.create_task(drain(channel, stopping))
            while channel.end < total:
                if channel.live:
                    await channel.wait_beyond(channel.end)
                else:  # the drain is still connecting
                    await asyncio.sleep(0.001)
            drained = mib / (time.perf_counter() - start)
            stopping.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            channel.close()
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)
    return drained, raw


async def main(args: argparse.Namespace) -> None:
    quiet = await drained_rss(args.channels, 0)
    busy = await drained_rss(args.channels, args.bytes)
    print(
        f"{args.channels} channels: {quiet:.1f} KiB RSS per quiet channel, "
        f"{busy:.1f} KiB per channel after {args.bytes >> 10} KiB each (ring 256 KiB)"
    )
    runs = [await throughput(args.stream) for _ in range(3)]
    drained = sorted(r[0] for r in runs)[1]
    raw = sorted(r[1] for r in runs)[1]
    print(
        f"one channel, {args.stream} MiB: drain {drained:.0f} MiB/s (ring + log + markers), "
        f"raw socket read {raw:.0f} MiB/s: {drained / raw:.2f}x (median of 3)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--feed":
        asyncio.run(feed(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=200)
    p.add_argument("--bytes", type=int, default=1 << 20, help="bytes per busy channel")
    p.add_argument("--stream", type=int, default=256, help="MiB for the throughput run")
    asyncio.run(main(p.parse_args()))
