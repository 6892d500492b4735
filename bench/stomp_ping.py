"""Host.ping2 requests/s over STOMP vs HTTP keep-alive, and the idle cost of STOMP connections.

One hvagent process (libvirt's test driver, log level WARNING) pinned to CPU 0 serves both
transports; the load runs on CPU 1. Rounds alternate STOMP/HTTP so machine noise hits both:
- STOMP: one connection, 10 requests in flight (a Python asyncio client that keeps 10 SENDs
  outstanding, as vdsm.client sends them: a batch of one with reply-to; it counts replies by
  their NUL and sends one more per reply). If this client saturates its CPU before hvagent
  does, the STOMP figure is a lower bound; the client's CPU share is printed.
- HTTP: wrk, 1 thread, 10 keep-alive connections (10 in flight), the same request.
Then idle cost: N STOMP connections (default 500, plain and mutual TLS) CONNECTed with
heart-beat 0,1000 (hvagent writes "\\n" every second: the clamp's worst case) and 0,15000 (the
engine's), held open; hvagent's RSS growth per connection and CPU seconds per second over
10 s are printed. Run: .venv/bin/python bench/stomp_ping.py  (needs wrk; make bench too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from bench.rpc_ping import ROOT, free_port, wait_http

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
IDLE_CONNS = int(os.environ.get("BENCH_IDLE_CONNS", "500"))
IN_FLIGHT = 10
BODY = json.dumps([{"jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": "b"}]).encode()
SEND = (
    b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-type:application/json\n"
    b"reply-to:r\ncontent-length:%d\n\n%s\0" % (len(BODY), BODY)
)
HELLO = b"CONNECT\naccept-version:1.2\nheart-beat:0,%d\n\n\0SUBSCRIBE\ndestination:r\nid:s\n\n\0"


class _Load(asyncio.Protocol):
    def __init__(self) -> None:
        self.replies = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(HELLO % 0 + SEND * IN_FLIGHT)

    def data_received(self, data: bytes) -> None:
        n = data.count(b"\0")
        if n and self.transport is not None:
            self.replies += n
            self.transport.write(SEND * n)  # the CONNECTED counts once: 11 in flight at most


async def _stomp_rate(port: int, pid: int) -> tuple[float, float, float]:
    """(requests/s, this client's CPU share, hvagent's CPU microseconds per request)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_Load, "127.0.0.1", port)
    await asyncio.sleep(0.5)  # warm-up
    start, cpu0, n0 = time.monotonic(), time.process_time(), proto.replies
    server0 = _proc_cpu_s(pid)
    await asyncio.sleep(SECONDS)
    done = proto.replies - n0
    server_us = (_proc_cpu_s(pid) - server0) / done * 1e6
    rate = done / (time.monotonic() - start)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - start)
    transport.close()
    return rate, cpu, server_us


def stomp_rate(port: int, pid: int) -> tuple[float, float, float]:
    return asyncio.run(_stomp_rate(port, pid))


def wrk(url: str, script: Path) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{IN_FLIGHT}", f"-d{int(SECONDS)}s", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def _proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _idle(pid: int, port: int, ctx: ssl.SSLContext | None, beat_ms: int) -> str:
    rss0 = _proc_rss_kib(pid)
    conns = []
    for _ in range(IDLE_CONNS):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="" if ctx else None
        )
        writer.write(HELLO % beat_ms)
        await reader.readuntil(b"\0")  # CONNECTED
        conns.append((reader, writer))
    drains = [asyncio.create_task(_drain(r)) for r, _ in conns]
    await asyncio.sleep(2)
    rss1, cpu0, t0 = _proc_rss_kib(pid), _proc_cpu_s(pid), time.monotonic()
    await asyncio.sleep(10)
    cpu = (_proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0)
    for task in drains:
        task.cancel()
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(1)
    per_conn = (rss1 - rss0) / IDLE_CONNS
    return (
        f"{IDLE_CONNS} idle {'TLS' if ctx else 'plain'} connections, heart-beat {beat_ms} ms: "
        f"RSS +{(rss1 - rss0) / 1024:.1f} MiB ({per_conn:.1f} KiB per connection), "
        f"CPU {cpu * 100:.2f}% of a core"
    )


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


@contextlib.contextmanager
def daemon(args: list[str], http_port: int) -> Iterator[int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{http_port}/jsonrpc")
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    os.sched_setaffinity(0, {1})  # this process and wrk on CPU 1, hvagent on CPU 0
    http_port, stomp_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}/jsonrpc"
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp) / "pki"
        subprocess.run([ROOT / "scripts" / "test-ca.sh", str(pki)], check=True)
        script = Path(tmp) / "post.lua"
        script.write_text(
            f"wrk.method = \"POST\"\nwrk.body = '{BODY[1:-1].decode()}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        common = [
            "taskset", "-c", "0", sys.executable, "-m", "agent",
            "--libvirt-uri", "test:///default", "--set", "logging.level=WARNING",
            "--set", f"virt.console_log_dir={tmp}/console", "--set", 'rpc.socket=""',
            "--set", f"state.dir={tmp}/state",
            "--listen", f"127.0.0.1:{http_port}",
            "--set", f"stomp.listen=127.0.0.1:{stomp_port}",
        ]  # fmt: skip
        plain = [*common, "--set", "stomp.tls=false"]
        tls = [
            *common,
            "--set", f'tls.ca="{pki}/certs/cacert.pem"',
            "--set", f'tls.cert="{pki}/certs/vdsmcert.pem"',
            "--set", f'tls.key="{pki}/keys/vdsmkey.pem"',
        ]  # fmt: skip
        with daemon(plain, http_port) as pid:
            stomp_runs, http_runs, client_cpu = [], [], []
            stomp_us, http_us = [], []  # hvagent CPU per request: robust to a busy machine
            for _ in range(ROUNDS):
                rate, cpu, server_us = stomp_rate(stomp_port, pid)
                stomp_us.append(server_us)
                stomp_runs.append(rate)
                client_cpu.append(cpu)
                cpu0 = _proc_cpu_s(pid)
                http_runs.append(wrk(url, script))
                http_us.append((_proc_cpu_s(pid) - cpu0) / (http_runs[-1] * SECONDS) * 1e6)
        idle = []
        for beat_ms in (1000, 15000):
            with daemon(plain, http_port) as pid:
                idle.append(asyncio.run(_idle(pid, stomp_port, None, beat_ms)))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(str(pki / "certs" / "cacert.pem"))
        ctx.load_cert_chain(str(pki / "client" / "cert.pem"), str(pki / "client" / "key.pem"))
        with daemon(tls, http_port) as pid:
            idle.append(asyncio.run(_idle(pid, stomp_port, ctx, 15000)))
    s, h = statistics.median(stomp_runs), statistics.median(http_runs)
    print(f"STOMP Host.ping2, 1 connection x {IN_FLIGHT} in flight: {s:8.0f} req/s  "
          f"(runs: {', '.join(f'{x:.0f}' for x in stomp_runs)}; load client CPU "
          f"{statistics.median(client_cpu) * 100:.0f}%)")  # fmt: skip
    print(f"HTTP  Host.ping2, wrk {IN_FLIGHT} keep-alive connections: {h:8.0f} req/s  "
          f"(runs: {', '.join(f'{x:.0f}' for x in http_runs)})")  # fmt: skip
    pairs = statistics.median(x / y for x, y in zip(stomp_runs, http_runs, strict=True))
    print(f"ratio STOMP/HTTP: {s / h:.2f} (target >= 1.0); median of per-round ratios {pairs:.2f}")
    print(
        f"hvagent CPU per request: STOMP {statistics.median(stomp_us):.0f} us, "
        f"HTTP {statistics.median(http_us):.0f} us (wrk's run: with its connection set-up)"
    )
    for line in idle:
        print(line)


if __name__ == "__main__":
    main()
