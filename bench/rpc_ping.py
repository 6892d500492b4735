"""Host.ping2 requests/s through hvagent vs a bare aiohttp handler, side by side.

Both servers run as separate processes pinned to CPU 0; wrk (keep-alive, 1 thread, 8
connections) runs on CPU 1. Runs alternate A/B/A/B so machine noise hits both alike. hvagent
runs on libvirt's test driver (ping2 does not touch libvirt). Prints both medians and the
ratio of the medians, and the median of each round's own ratio (less sensitive to the
machine getting faster or slower between rounds); README.md records the figure.
Run: make bench  (installs wrk first: scripts/host-setup.sh --bench-tools).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[1]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = os.environ.get("BENCH_DURATION", "5s")
BODY = '{"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, data=BODY.encode(), method="POST")
            urllib.request.urlopen(req, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not answer")


def wrk(url: str, script: Path) -> float:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{DURATION}", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    hv_port, bare_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = '{BODY}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        pin = ["taskset", "-c", "0"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        servers = [
            subprocess.Popen(
                [
                    *pin,
                    sys.executable,
                    "-m",
                    "agent",
                    "--libvirt-uri",
                    "test:///default",
                    "--listen",
                    f"127.0.0.1:{hv_port}",
                    "--set",
                    "logging.level=WARNING",
                    "--set",
                    f"virt.console_log_dir={tmp}/console",
                    # No Unix socket: a daemon already on the default path would refuse us.
                    "--set",
                    'rpc.socket=""',
                    "--set",
                    'stomp.listen=""',  # HTTP only: no engine certificates here
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [*pin, sys.executable, str(ROOT / "bench" / "bare_ping_server.py"), str(bare_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            hv_url = f"http://127.0.0.1:{hv_port}/jsonrpc"
            bare_url = f"http://127.0.0.1:{bare_port}/jsonrpc"
            wait_http(hv_url)
            wait_http(bare_url)
            hv, bare = [], []
            for _ in range(ROUNDS):
                hv.append(wrk(hv_url, script))
                bare.append(wrk(bare_url, script))
        finally:
            for p in servers:
                p.terminate()
                p.wait(10)
    h, b = statistics.median(hv), statistics.median(bare)
    print(f"hvagent Host.ping2: {h:8.0f} req/s  (runs: {', '.join(f'{x:.0f}' for x in hv)})")
    print(f"bare aiohttp:       {b:8.0f} req/s  (runs: {', '.join(f'{x:.0f}' for x in bare)})")
    pairs = statistics.median(x / y for x, y in zip(hv, bare, strict=True))
    print(f"ratio: {h / b:.2f} (target >= 0.7); median of per-round ratios {pairs:.2f}")


if __name__ == "__main__":
    main()
