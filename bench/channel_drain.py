"""Channel drain throughput: guest -> hvagent's log against a raw socket reader (target >= 0.8x).

The same tiny test guest (tests/guest, `blast=N blast_to=PORT`) writes N MiB to a
virtio-serial port from boot, on real QEMU (TCG), twice per round:
- raw: a libvirt domain with a unix channel (`<source mode='bind'/>`), read by this process
  with a plain blocking socket loop that throws the bytes away, connected from the start;
- hvagent: the daemon as its own process (tests/e2e/conftest.py `Agent`), a VM.create with
  a `{"type": "channel", "device": "unix"}` device; hvagent drains into its ring + log.

A virtio-serial writer blocks while its reader is behind, so the guest's own clock measures
the reader: rate = N MiB / (BLAST end - BLAST-START), both uptimes printed by the guest on
the serial console. Under TCG the guest itself is often the slower side, so the host CPU
each reader spends per MiB is reported too (raw: the reader thread's CPU time; hvagent: the
daemon process's user+system time over the blast, everything it did meanwhile included):
its inverse is the rate one core could drain. hvagent's byte count is checked in
VM.getStats. Rounds alternate raw/hvagent. Run (root, libvirtd, the test guest built):
  HVAGENT_GUEST_DIR=... .venv/bin/python bench/channel_drain.py [MIB] [ROUNDS]
README.md "Benchmarks" records figures.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import libvirt
from lxml import etree

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.client import RpcClient  # noqa: E402
from tests.e2e.conftest import GUEST_DIR, URI, Agent, guest_params  # noqa: E402

PORT = "org.hvagent.bench.0"
MIB = 1 << 20
MARKER = b"HE_APPLIANCE_ENGINE_SETUP_SUCCESS\n"
TIMEOUT = 600.0


def guest_rate(console: str, mib: int) -> float:
    """MiB/s by the guest's clock, from its console lines."""
    start = float(re.search(r"HVAGENT-GUEST-BLAST-START ([\d.]+)", console).group(1))
    m = re.search(r"HVAGENT-GUEST-BLAST sha256=\w+ bytes=(\d+) end=([\d.]+)", console)
    assert int(m.group(1)) == mib * MIB
    return mib / (float(m.group(2)) - start)


def wait_for(read, text: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        out = read()
        if text in out:
            return out
        time.sleep(0.2)
    raise TimeoutError(f"{text!r} not seen after {TIMEOUT} s")


def raw_round(tmp: Path, mib: int) -> float:
    console = tmp / f"raw-{uuid.uuid4().hex[:8]}.console"
    name = f"bench-drain-{console.stem}"
    xml = f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>
<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type>
<kernel>{GUEST_DIR}/vmlinuz</kernel><initrd>{GUEST_DIR}/initrd.img</initrd>
<cmdline>console=ttyS0 panic=-1 noqga blast={mib} blast_to={PORT}</cmdline></os>
<features><acpi/></features><devices><serial type='file'><source path='{console}'/></serial>
<channel type='unix'><source mode='bind'/><target type='virtio' name='{PORT}'/></channel>
</devices></domain>"""
    conn = libvirt.open(URI)
    dom = conn.createXML(xml, 0)
    try:
        path = etree.fromstring(dom.XMLDesc()).find("devices/channel/source").get("path")
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        got = [0]
        cpu = [0.0]

        def drain() -> None:  # the plain reader: read and throw away, until the VM is gone
            while data := sock.recv(1 << 16):
                got[0] += len(data)
                cpu[0] = time.thread_time()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        text = wait_for(lambda: console.read_text(errors="replace"), "HVAGENT-GUEST-BLAST sha")
        rate = guest_rate(text, mib)
        deadline = time.monotonic() + 60
        while got[0] < mib * MIB + len(MARKER) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got[0] == mib * MIB + len(MARKER), got[0]
        return rate, cpu[0] / mib
    finally:
        dom.destroy()
        sock.close()
        conn.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hvagent_round(agent: Agent, rpc: RpcClient, mib: int) -> tuple[float, float]:
    guest = {"kernel": str(GUEST_DIR / "vmlinuz"), "initrd": str(GUEST_DIR / "initrd.img")}
    vm_id, params = guest_params(
        guest,
        "noqga",
        f"blast={mib}",
        f"blast_to={PORT}",
        devices=[{"type": "channel", "device": "unix", "name": PORT}],
    )
    assert agent.proc is not None
    await rpc.call("VM.create", vmID=vm_id, vmParams=params)
    try:
        await asyncio.to_thread(
            wait_for, lambda: agent.console_log(vm_id), "HVAGENT-GUEST-BLAST-START"
        )
        cpu0 = cpu_seconds(agent.proc.pid)
        text = await asyncio.to_thread(
            wait_for, lambda: agent.console_log(vm_id), "HVAGENT-GUEST-BLAST sha"
        )
        cpu = cpu_seconds(agent.proc.pid) - cpu0
        rate = guest_rate(text, mib)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (stats,) = await rpc.call("VM.getStats", vmID=vm_id)
            (chan,) = stats["channels"]
            if chan["bytes"] >= mib * MIB + len(MARKER):
                break
            await asyncio.sleep(0.2)
        assert chan["bytes"] == mib * MIB + len(MARKER), chan
        return rate, cpu / mib
    finally:
        await rpc.call("VM.destroy", vmID=vm_id)


async def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp_name:
        tmp = Path(tmp_name)
        agent = Agent(tmp)
        agent.start()
        try:
            async with aiohttp.ClientSession() as session:
                rpc = RpcClient(agent.base, session)
                await rpc.wait_ready(180)
                raw, hv = [], []
                for i in range(rounds):
                    raw.append(await asyncio.to_thread(raw_round, tmp, mib))
                    hv.append(await hvagent_round(agent, rpc, mib))
                    print(
                        f"round {i + 1}: raw {raw[-1][0]:.2f} MiB/s"
                        f" ({raw[-1][1] * 1000:.1f} ms CPU/MiB), hvagent {hv[-1][0]:.2f} MiB/s"
                        f" ({hv[-1][1] * 1000:.1f} ms CPU/MiB)"
                    )
        finally:
            agent.stop()
    r, h = (statistics.median(x[0] for x in raw), statistics.median(x[0] for x in hv))
    rc, hc = (statistics.median(x[1] for x in raw), statistics.median(x[1] for x in hv))
    print(f"{mib} MiB per run, {rounds} rounds, medians:")
    print(f"  by the guest's clock: raw socket reader {r:.2f} MiB/s, hvagent drain {h:.2f} MiB/s")
    print(f"  = {h / r:.2f}x raw (target >= 0.8)")
    print(f"  host CPU per MiB: raw {rc * 1000:.1f} ms, hvagent {hc * 1000:.1f} ms")
    print(f"  = one core could drain raw {1 / rc:.0f} MiB/s, hvagent {1 / hc:.0f} MiB/s")


if __name__ == "__main__":
    asyncio.run(main())
