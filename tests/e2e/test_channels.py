"""Channels on real QEMU (issue 13): the test guest writes to a virtio-serial port
(tests/guest: `payload_to=`, `blast=`) and hvagent drains it from boot, with no reader.

- the guest reads its cloud-init cdrom and sends the files: the channel carries the
  `user-data` bytes exactly, then the success marker, which VM.getStats reports; the
  engine's `PAYLOAD:` cdrom and a legacy vmPayload cdrom give the guest the same bytes;
- a late reader misses nothing: 3 MiB written at boot with no reader; then VM.readChannel
  and the WebSocket stream both get all of it from offset 0, identical to the guest's data;
  the guest never stalled; the stream ends after VM.destroy and the log stays on disk;
- `kill -9` of hvagent while the guest writes, then a restart: under (a stand-in for)
  systemd, whose fd store keeps the connection, the log holds every byte exactly once;
  without it, at most the one gap QEMU leaves when its client goes.

Floppy and engine-XML payload images and their cleanup: tests/e2e/test_payload.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.client import EventStream, RpcClient
from tests.e2e.conftest import PREFIX, guest_params
from tests.e2e.fake_systemd import FakeSystemd

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CLIENT = str(Path(sys.executable).with_name("hvagent-client"))
CHANNEL = "org.hvagent.test.0"
SUCCESS = b"HE_APPLIANCE_ENGINE_SETUP_SUCCESS\n"
READ_SIZE = 256 * 1024
MIB = 1 << 20
# How long the guest may go between two MiB (or from the start to the first) before we
# call it stalled. Unread, a virtio-serial port blocks its writer forever; drained, a MiB
# takes well under a second under TCG.
MAX_STALL_S = 10.0


def blast_bytes(mib: int) -> bytes:
    """What the guest's `blast=MIB` writes (tests/guest/README.md), before the marker."""
    body = bytes(range(256)) * (MIB // 256)
    return b"".join(b"MIB%012d\n" % i + body[: MIB - 16] for i in range(mib))


def payload_frames(files: dict[str, bytes]) -> bytes:
    """What the guest's `payload_to=` writes for a cdrom holding `files`."""
    out = b""
    for rel in sorted(files, key=lambda r: r.encode()):
        out += b"PAYLOAD-FILE %s %d\n" % (rel.encode(), len(files[rel])) + files[rel]
    return out + SUCCESS


def blast_report(console: str) -> tuple[str, int, list[float]]:
    """(sha256, bytes, [uptime at start, after each MiB, at the end]) from the console."""
    m = re.search(r"HVAGENT-GUEST-BLAST sha256=([0-9a-f]{64}) bytes=(\d+) end=([\d.]+)", console)
    assert m, console[-2000:]
    start = re.search(r"HVAGENT-GUEST-BLAST-START ([\d.]+)", console)
    assert start, console[-2000:]
    mibs = re.findall(r"HVAGENT-GUEST-BLAST-MIB (\d+) ([\d.]+)", console)
    assert [int(i) for i, _ in mibs] == list(range(int(m.group(2)) // MIB)), mibs
    times = [float(start.group(1)), *(float(t) for _, t in mibs), float(m.group(3))]
    return m.group(1), int(m.group(2)), times


def first_difference(a: bytes, b: bytes) -> int:
    """The first offset where `a` and `b` differ (the shorter length if one is a prefix)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if a[lo:mid] == b[lo:mid] else (lo, mid)
    return lo


def one_gap(got: bytes, want: bytes) -> tuple[int, int] | None:
    """None when `got == want`; (offset, length) when `got` is `want` less one run of bytes;
    AssertionError for anything else (duplicates, bytes out of place, several gaps)."""
    if got == want:
        return None
    assert len(got) < len(want), f"{len(got) - len(want)} bytes too many"
    at, lost = first_difference(got, want), len(want) - len(got)
    assert got[at:] == want[at + lost :], (
        f"bytes differ from offset {at} and are not a single gap of {lost} bytes"
    )
    return at, lost


def max_gap(times: list[float]) -> float:
    return max(b - a for a, b in itertools.pairwise(times))


async def channel_stats(rpc: RpcClient, vm_id: str) -> dict:
    stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
    (chan,) = [c for c in stats.get("channels", []) if c["name"] == CHANNEL]
    return chan


async def wait_marker(rpc: RpcClient, vm_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    chan = None
    while time.monotonic() < deadline:
        chan = await channel_stats(rpc, vm_id)
        if chan["markers"]:
            return chan
        await asyncio.sleep(0.5)
    raise AssertionError(f"no marker reported after {timeout} s: {chan}")


async def read_channel(rpc: RpcClient, vm_id: str, total: int, timeout: float = 300) -> bytes:
    """VM.readChannel from offset 0 until `total` bytes came (polling while it grows)."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < total:
        assert time.monotonic() < deadline, f"readChannel: {len(out)} of {total} bytes"
        r = await rpc.call(
            "VM.readChannel", vmID=vm_id, name=CHANNEL, offset=len(out), size=READ_SIZE
        )
        data = base64.b64decode(r["data"])
        assert r["nextOffset"] == len(out) + len(data), (r["nextOffset"], len(out), len(data))
        out += data
        if not data:
            assert not r["eof"], f"eof at {len(out)} of {total}"
            await asyncio.sleep(0.2)
    return bytes(out)


async def follow_ws(session: aiohttp.ClientSession, base: str, vm_id: str, out: bytearray):
    """The WebSocket stream from offset 0 into `out` until hvagent closes it (VM down)."""
    url = f"{base}/vm/{vm_id}/channel/{CHANNEL}?offset=0"
    async with session.ws_connect(url, max_msg_size=0) as ws:
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.BINARY, (msg.type, msg.data)
            out += msg.data


def log_bytes(agent, vm_id: str) -> bytes:
    """The channel's log kept on disk (`<state dir>/channels/<vmId>/<file>.<offset>`)."""
    segments = sorted((agent.tmp / "state" / "channels" / vm_id).glob(f"{CHANNEL}.*"))
    assert segments, list((agent.tmp / "state").rglob("*"))
    return b"".join(p.read_bytes() for p in segments)


def channel_device() -> dict:
    return {"type": "channel", "device": "unix", "name": CHANNEL}


async def test_guest_sends_its_cloud_init_payload(rpc, agent, guest):
    user_data = "#cloud-config\nruncmd: [echo 'héllo ✓']\n# 5000 bytes: " + "u" * 5000 + "\n"
    meta_data = "instance-id: e2e-channels\n"
    vm_id, params = guest_params(
        guest,
        f"payload_to={CHANNEL}",
        devices=[channel_device()],
        cloudInit={"userData": user_data, "metaData": meta_data},
    )
    expected = payload_frames({"user-data": user_data.encode(), "meta-data": meta_data.encode()})
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 120)
        console = await agent.wait_console(vm_id, "HVAGENT-GUEST-PAYLOAD-SENT", 300)
        assert "HVAGENT-GUEST-PAYLOAD-MOUNTED sr0" in console

        chan = await wait_marker(rpc, vm_id)
        data = await read_channel(rpc, vm_id, len(expected))
        assert data == expected
        (seen,) = chan["markers"]
        assert seen["marker"] == SUCCESS.strip().decode()
        assert seen["offset"] == len(expected) - len(SUCCESS), seen  # its first byte
        assert chan["bytes"] == len(expected)
        assert chan["lastByteTime"] > 0 and seen["time"] > 0

        # A follower from the CLI gets the same bytes and returns once the VM is down.
        cli = await asyncio.create_subprocess_exec(
            CLIENT, "--socket", str(agent.tmp / "hvagent.sock"), "VM", "follow-channel",
            vm_id, CHANNEL, "--offset", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert cli.stdout is not None and cli.stderr is not None
        try:
            out = await asyncio.wait_for(cli.stdout.readexactly(len(expected)), 120)
        except (asyncio.IncompleteReadError, TimeoutError):
            cli.kill()
            raise AssertionError((await cli.stderr.read()).decode()) from None
        assert out == expected
        assert await rpc.call("VM.destroy", vmID=vm_id) is True
        assert await asyncio.wait_for(cli.stdout.read(), 120) == b""
        assert await asyncio.wait_for(cli.wait(), 60) == 0, await cli.stderr.read()
        assert log_bytes(agent, vm_id) == expected
    finally:
        await events.close()


async def test_engine_xml_payload_and_vm_payload_give_the_guest_the_same_files(rpc, agent, guest):
    """The engine's `PAYLOAD:` cdrom (with a unix channel in the domain XML) and the legacy
    vmPayload cdrom, same files, binary included: the guest reads the same bytes from both."""
    files = {
        "openstack/latest/user_data": b"#cloud-config\nruncmd: [true]\n",
        "openstack/latest/blob.bin": bytes(range(256)) * 8,
    }
    encoded = {rel: base64.b64encode(data).decode() for rel, data in files.items()}
    flags = f"console=ttyS0 panic=-1 payload_to={CHANNEL}"
    xml_id, _ = guest_params(guest)
    entries = "".join(
        f'<ovirt-vm:file path="{rel}">{data}</ovirt-vm:file>' for rel, data in encoded.items()
    )
    xml = f"""<domain type="qemu" xmlns:ovirt-vm="http://ovirt.org/vm/1.0">
  <name>{PREFIX}{xml_id[:8]}</name><uuid>{xml_id}</uuid>
  <memory unit="MiB">256</memory><vcpu>1</vcpu>
  <metadata><ovirt-vm:vm>
    <ovirt-vm:device devtype="disk" name="hdc"><ovirt-vm:payload>
      <ovirt-vm:volId>config-2</ovirt-vm:volId>{entries}
    </ovirt-vm:payload></ovirt-vm:device>
  </ovirt-vm:vm></metadata>
  <os><type arch="x86_64" machine="pc">hvm</type><kernel>{guest["kernel"]}</kernel>
    <initrd>{guest["initrd"]}</initrd><cmdline>{flags}</cmdline></os>
  <devices>
    <disk type="file" device="cdrom"><driver name="qemu" type="raw"/>
      <source file="PAYLOAD:" startupPolicy="optional"/>
      <target dev="hdc" bus="ide"/><readonly/></disk>
    <channel type="unix"><target type="virtio" name="{CHANNEL}"/></channel>
  </devices>
</domain>"""
    legacy_id, legacy = guest_params(
        guest,
        f"payload_to={CHANNEL}",
        devices=[
            {
                "type": "disk",
                "device": "cdrom",
                "specParams": {"vmPayload": {"volId": "config-2", "file": encoded}},
            },
            channel_device(),
        ],
    )
    expected = payload_frames(files)
    await rpc.call("VM.create", vmID=xml_id, vmParams={"vmId": xml_id, "xml": xml})
    await rpc.call("VM.create", vmID=legacy_id, vmParams=legacy)
    for vm_id in (xml_id, legacy_id):
        chan = await wait_marker(rpc, vm_id)
        assert [m["marker"] for m in chan["markers"]] == [SUCCESS.strip().decode()]
        assert await read_channel(rpc, vm_id, chan["bytes"]) == expected, vm_id
    for vm_id in (xml_id, legacy_id):
        assert await rpc.call("VM.destroy", vmID=vm_id) is True


async def test_late_readers_miss_nothing(rpc, agent, guest):
    """3 MiB at boot and nobody reading: the guest is not held up; two readers that come
    once it is done (from offset 0) both get every byte."""
    vm_id, params = guest_params(guest, f"blast=3 blast_to={CHANNEL}", devices=[channel_device()])
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 120)
        # No reader until the guest says it is done: it printed its sum after the marker.
        console = await agent.wait_console(vm_id, "HVAGENT-GUEST-BLAST sha256=", 600)
        sha, size, times = blast_report(console)
        expected = blast_bytes(3)
        assert size == len(expected) and hashlib.sha256(expected).hexdigest() == sha
        assert max_gap(times) < MAX_STALL_S, times
        chan = await wait_marker(rpc, vm_id)
        assert chan["bytes"] == size + len(SUCCESS)

        async with aiohttp.ClientSession() as session:
            by_ws = bytearray()
            ws_reader = asyncio.ensure_future(follow_ws(session, agent.base, vm_id, by_ws))
            by_rpc = await read_channel(rpc, vm_id, size + len(SUCCESS))
            deadline = time.monotonic() + 120
            while len(by_ws) < len(by_rpc) and not ws_reader.done():
                assert time.monotonic() < deadline, f"WebSocket: {len(by_ws)} bytes"
                await asyncio.sleep(0.2)
            assert not ws_reader.done()  # all there, and it follows until the VM is down
            assert await rpc.call("VM.destroy", vmID=vm_id) is True
            await asyncio.wait_for(ws_reader, 120)
        assert by_rpc == bytes(by_ws) == expected + SUCCESS
        assert log_bytes(agent, vm_id) == expected + SUCCESS  # kept after destroy
    finally:
        await events.close()


@pytest.mark.parametrize("under_systemd", [True, False], ids=["fd-store", "no-systemd"])
async def test_hvagent_restart_while_the_guest_writes(rpc, agent, guest, under_systemd):
    """kill -9 mid-stream, then a restart: the restarted hvagent goes on draining and its log
    holds every byte exactly once.

    fd-store: hvagent runs under a stand-in for systemd (tests/e2e/fake_systemd.py) that
    keeps the channel's connection in its fd store and hands it back on restart: QEMU never
    sees its client leave; the guest waits for the reader in the meantime.
    no-systemd: hvagent reconnects. QEMU 7.2 drops what it was pushing when its one client
    leaves mid-write (a few KiB; a plain socket reader killed -9 shows the same), so the test
    xfails naming that one gap; any other damage (duplicates, bytes out of place, a second
    gap) fails it."""
    fake = None
    if under_systemd:
        assert agent.stop() == 0
        fake = FakeSystemd(agent.tmp / "notify")
        fake.start(agent)
        await rpc.wait_ready(180)
    try:
        await restart_while_writing(rpc, agent, guest, fake)
    finally:
        if fake is not None:
            fake.close()


async def restart_while_writing(rpc, agent, guest, fake: FakeSystemd | None) -> None:
    mib = 32
    vm_id, params = guest_params(
        guest, f"blast={mib} blast_to={CHANNEL}", devices=[channel_device()]
    )
    events = await EventStream.open(rpc)
    try:
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        await events.wait_status(vm_id, "Up", 120)
    finally:
        await events.close()
    await agent.wait_console(vm_id, "HVAGENT-GUEST-BLAST-MIB 3 ", 600)
    if fake is not None:
        assert [n for n in fake.stored if CHANNEL in n], fake.stored  # kept before the kill
    agent.kill9()
    killed_at = agent.console_log(vm_id).count("HVAGENT-GUEST-BLAST-MIB ")
    assert killed_at < mib, "the guest finished before hvagent went down"
    if fake is not None:
        fake.start(agent)
    else:
        agent.start()
    await rpc.wait_ready(180)

    console = await agent.wait_console(vm_id, "HVAGENT-GUEST-BLAST sha256=", 600)
    sha, size, _ = blast_report(console)
    expected = blast_bytes(mib) + SUCCESS
    assert size + len(SUCCESS) == len(expected)
    assert hashlib.sha256(expected[:size]).hexdigest() == sha
    chan = await wait_marker(rpc, vm_id)  # the marker comes last: every byte is in
    data = await read_channel(rpc, vm_id, chan["bytes"])
    assert await rpc.call("VM.destroy", vmID=vm_id) is True
    assert log_bytes(agent, vm_id) == data
    gap = one_gap(data, expected)
    if gap and fake is None:
        pytest.xfail(f"QEMU dropped {gap[1]} bytes at offset {gap[0]} when hvagent died")
    assert gap is None, f"{gap[1]} bytes lost at offset {gap[0]} with the connection kept"
