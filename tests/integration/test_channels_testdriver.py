"""Channels on libvirt's test driver, with the test playing QEMU: the socket hvagent chose
(read from the defined domain) is served by tests/fake_chardev.py. Through JSON-RPC, the
WebSocket stream and hvagent-client: bytes come out as written (binary, long lines),
markers are reported across chunk boundaries, any number of readers get identical bytes,
the log outlives the VM and an hvagent restart continues it without duplicates."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from tests.client import EventStream, RpcClient
from tests.fake_chardev import FakeChardev
from tests.integration.conftest import SHARED_URI, Daemon, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLIENT = str(Path(sys.executable).with_name("hvagent-client"))
OUT = "org.example.out"
HE = "org.ovirt.hosted-engine-setup.0"
BINARY = bytes(range(256)) * 64 + b"x" * 5000 + b"\n"  # every byte value, a 5000-byte line


def vm_params(vm_id: str, *names: str) -> dict:
    return {
        "vmId": vm_id,
        "vmName": f"ch-{vm_id[:8]}",
        "memSize": 64,
        "devices": [{"type": "channel", "device": "unix", "name": n} for n in names],
    }


def bound_paths(virconn, vm_id: str) -> dict[str, str]:
    root = etree.fromstring(virconn.lookupByUUIDString(vm_id).XMLDesc(0))
    out = {}
    for ch in root.iterfind("devices/channel"):
        src = ch.find("source")
        if src is not None and src.get("path"):
            out[ch.find("target").get("name")] = src.get("path")
    return out


async def read_all(rpc: RpcClient, vm_id: str, name: str, until: int, offset: int = 0) -> bytes:
    """readChannel from `offset` until `until` bytes were returned (deadline 30 s)."""
    out = bytearray()
    deadline = time.monotonic() + 30
    while len(out) < until:
        assert time.monotonic() < deadline, f"only {len(out)} of {until} bytes"
        r = await rpc.call("VM.readChannel", vmID=vm_id, name=name, offset=offset, size=100000)
        data = base64.b64decode(r["data"])
        assert r["offset"] == offset and r["nextOffset"] == offset + len(data)
        out += data
        offset = r["nextOffset"]
        if not data:
            await asyncio.sleep(0.05)
    return bytes(out)


async def wait_bytes(rpc: RpcClient, vm_id: str, name: str, count: int) -> dict:
    deadline = time.monotonic() + 30
    while True:
        stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
        chan = {c["name"]: c for c in stats.get("channels", [])}[name]
        if chan["bytes"] >= count:
            return chan
        assert time.monotonic() < deadline, chan
        await asyncio.sleep(0.05)


async def follow(rpc: RpcClient, vm_id: str, name: str, offset: int = 0) -> tuple[bytes, int]:
    """The WebSocket stream until the server closes it: (bytes, close code)."""
    url = f"{rpc.base}/vm/{vm_id}/channel/{name}?offset={offset}"
    out = bytearray()
    async with rpc.session.ws_connect(url) as ws:
        async for msg in ws:
            assert msg.type is aiohttp.WSMsgType.BINARY
            out += msg.data
        return bytes(out), ws.close_code


async def started(rpc, virconn, daemon, vm_id: str, *names: str) -> dict[str, FakeChardev]:
    await rpc.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id, *names))
    await rpc.wait_status(vm_id, "Up", 10)
    paths = bound_paths(virconn, vm_id)
    chan_dir = daemon.cfg.channels.dir
    for name in names:
        assert paths[name] == f"{chan_dir}/{vm_id}/{name}"
    assert "path" not in str(paths.get("org.qemu.guest_agent.0", ""))  # libvirt's own
    return {n: await FakeChardev(paths[n]).start() for n in names}


async def test_drained_served_and_kept(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    events = await EventStream.open(rpc)
    qemu = await started(rpc, virconn, daemon, vm_id, OUT, HE)
    out, he = qemu[OUT], qemu[HE]
    await out.attached()
    await he.attached()
    # written before any reader exists; the marker split over two writes
    await out.write(BINARY)
    await out.write(b"setup done: HE_APPLIANCE_ENGINE_SET")
    await out.write(b"UP_SUCCESS\n")
    await he.write(b"HE_APPLIANCE_ENGINE_SETUP_FAIL")
    expected = BINARY + b"setup done: HE_APPLIANCE_ENGINE_SETUP_SUCCESS\n"
    chan = await wait_bytes(rpc, vm_id, OUT, len(expected))
    assert chan["bytes"] == len(expected) and chan["lastByteTime"] > time.time() - 60
    marker_at = len(BINARY) + len(b"setup done: ")
    assert [(m["marker"], m["offset"]) for m in chan["markers"]] == [
        ("HE_APPLIANCE_ENGINE_SETUP_SUCCESS", marker_at)
    ]
    he_stats = await wait_bytes(rpc, vm_id, HE, 30)
    assert [m["marker"] for m in he_stats["markers"]] == ["HE_APPLIANCE_ENGINE_SETUP_FAIL"]
    async with asyncio.timeout(10):
        while not [m for m in events.messages if "VM_channel_marker" in m["method"]]:
            await asyncio.sleep(0.05)
    marks = [m["params"][vm_id] for m in events.messages if "VM_channel_marker" in m["method"]]
    assert {(m["channel"], m["marker"], m["offset"]) for m in marks} == {
        (OUT, "HE_APPLIANCE_ENGINE_SETUP_SUCCESS", marker_at),
        (HE, "HE_APPLIANCE_ENGINE_SETUP_FAIL", 0),
    }
    await events.close()

    assert await read_all(rpc, vm_id, OUT, len(expected)) == expected
    # two live followers and the CLI over HTTP, then more bytes, then the VM goes down
    readers = [asyncio.create_task(follow(rpc, vm_id, OUT)) for _ in range(2)]
    pipe = asyncio.subprocess.PIPE
    clis = [
        await asyncio.create_subprocess_exec(
            CLIENT, *where, "VM", "follow-channel", vm_id, OUT, stdout=pipe, stderr=pipe
        )
        for where in (["--url", rpc.base], ["--socket", daemon.cfg.rpc.socket])
    ]
    await wait_readers(rpc, vm_id, OUT, 4)
    tail = os.urandom(300_000)
    await out.write(tail)
    await wait_bytes(rpc, vm_id, OUT, len(expected) + len(tail))
    await out.close()  # QEMU exits: its sockets close
    await he.close()
    virconn.lookupByUUIDString(vm_id).destroy()  # the domain stops outside hvagent: Down
    await rpc.wait_status(vm_id, "Down", 10)
    whole = expected + tail
    for data, code in await asyncio.gather(*readers):
        assert data == whole and code == 1000
    for cli in clis:
        stdout, stderr = await asyncio.wait_for(cli.communicate(), 30)
        assert cli.returncode == 0 and stdout == whole, stderr
    # from an offset, and the CLI's refusals
    code, stdout, _ = await run_cli("--url", rpc.base, "VM", "follow-channel", vm_id, OUT,
                                    "--offset", str(len(whole) - 7))  # fmt: skip
    assert code == 0 and stdout == whole[-7:]
    code, _, stderr = await run_cli("--url", rpc.base, "VM", "follow-channel", vm_id, "nope")
    assert code == 1 and b"error 1004" in stderr and OUT.encode() in stderr
    code, _, stderr = await run_cli("--stomp", "VM", "follow-channel", vm_id, OUT)
    assert code == 2 and b"WebSocket" in stderr
    # Down: a late reader from 0 gets everything, the stream ends at once
    assert await follow(rpc, vm_id, OUT) == (whole, 1000)
    last = await rpc.call("VM.readChannel", vmID=vm_id, name=OUT, offset=len(whole) - 10)
    assert base64.b64decode(last["data"]) == whole[-10:] and last["eof"] is True
    # VM.destroy: the VM is gone (code 1), its log stays on disk
    await rpc.call("VM.destroy", vmID=vm_id)
    err = await rpc.error("VM.readChannel", vmID=vm_id, name=OUT)
    assert err["code"] == 1
    log_dir = Path(daemon.cfg.state.dir) / "channels" / vm_id
    segments = sorted(log_dir.glob(f"{OUT}.*"))
    assert b"".join(p.read_bytes() for p in segments) == whole
    assert not Path(daemon.cfg.channels.dir, vm_id).exists()


async def run_cli(*args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        CLIENT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def wait_readers(rpc: RpcClient, vm_id: str, name: str, count: int) -> None:
    deadline = time.monotonic() + 30
    line = f'hvagent_channel_readers{{channel="{name}",vm="{vm_id}"}} {float(count)}'
    while True:
        async with rpc.session.get(f"{rpc.base}/metrics") as r:
            text = await r.text()
        if line in text:
            return
        assert time.monotonic() < deadline, [x for x in text.splitlines() if "channel" in x]
        await asyncio.sleep(0.05)


async def test_bad_reads(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    qemu = await started(rpc, virconn, daemon, vm_id, OUT)
    err = await rpc.error("VM.readChannel", vmID=vm_id, name="org.nope")
    assert err["code"] == 1004 and err["data"]["channels"] == [OUT]
    assert err["data"]["param"] == "name"
    err = await rpc.error("VM.readChannel", vmID=str(uuid.uuid4()), name=OUT)
    assert err["code"] == 1
    hostile = {
        "name": [None, 7, "", "..", "a/b", "x\x00", "\ud800", "é", "n" * 1_000_000],
        "offset": [-1, 1.5, True, "x", "1e3", 2**70, "9" * 10000, None, [], 10**9],
        "size": [-1, 1 << 21, 0.5, False, "big", 2**64, {}],
    }
    for param, values in hostile.items():
        for value in values:
            args = {"vmID": vm_id, "name": OUT, param: value}
            err = await rpc.error("VM.readChannel", **args)
            assert err["code"] == -32602 and err["data"]["param"] == param, (param, value, err)
    # the stream refuses the same before the upgrade
    async with rpc.session.get(f"{rpc.base}/vm/{vm_id}/channel/{OUT}?offset=-3") as r:
        assert r.status == 400 and (await r.json())["error"]["data"]["param"] == "offset"
    async with rpc.session.get(f"{rpc.base}/vm/{vm_id}/channel/nope") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == 1004
    async with rpc.session.get(f"{rpc.base}/vm/{uuid.uuid4()}/channel/{OUT}") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == 1
    await qemu[OUT].close()
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_engine_xml_channel_rebound_and_bad_names(rpc, daemon):
    vm_id = str(uuid.uuid4())
    xml = (
        f"<domain type='kvm'><name>chx-{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        "<memory>65536</memory><os><type>hvm</type></os><devices>"
        "<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channels/x.y'/>"
        "<target type='virtio' name='NAME'/></channel></devices></domain>"
    )
    err = await rpc.error("VM.create", vmID=vm_id, vmParams={"xml": xml.replace("NAME", "..")})
    assert err["code"] == -32602 and err["data"]["param"] == "vmParams.xml"
    await rpc.call("VM.create", vmID=vm_id, vmParams={"xml": xml.replace("NAME", OUT)})
    await rpc.wait_status(vm_id, "Up", 10)
    stats = (await rpc.call("VM.getStats", vmID=vm_id))[0]
    assert [c["name"] for c in stats["channels"]] == [OUT]
    r = await rpc.call("VM.readChannel", vmID=vm_id, name=OUT)
    assert r == {"data": "", "offset": 0, "nextOffset": 0, "eof": False}
    await rpc.call("VM.destroy", vmID=vm_id)


async def test_restart_resumes_the_log(tmp_path, virconn, session):
    cfg = make_config(tmp_path, SHARED_URI)
    daemon = Daemon(cfg)
    rpc = RpcClient(daemon.base, session)
    await rpc.wait_ready(30)
    vm_id = str(uuid.uuid4())
    out = (await started(rpc, virconn, daemon, vm_id, OUT))[OUT]
    await out.attached()
    first = os.urandom(100_000)
    await out.write(first)
    await wait_bytes(rpc, vm_id, OUT, len(first))
    assert await daemon.stop() == 0  # the VM keeps running; the drain's connection closes
    await out.detached()
    second = os.urandom(50_000) + b"HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
    await out.write(second)  # while hvagent is away: held, as a guest would block
    daemon = Daemon(cfg)
    rpc = RpcClient(daemon.base, session)
    await rpc.wait_ready(30)
    chan = await wait_bytes(rpc, vm_id, OUT, len(first) + len(second))
    assert chan["bytes"] == len(first) + len(second)
    assert [m["offset"] for m in chan["markers"]] == [len(first) + 50_000]
    assert await read_all(rpc, vm_id, OUT, len(first) + len(second)) == first + second
    await out.close()
    await rpc.call("VM.destroy", vmID=vm_id)
    assert await daemon.stop() == 0


async def test_a_stalled_reader_never_holds_the_drain(rpc, daemon, virconn):
    vm_id = str(uuid.uuid4())
    out = (await started(rpc, virconn, daemon, vm_id, OUT))[OUT]
    await out.attached()
    url = f"{rpc.base}/vm/{vm_id}/channel/{OUT}"
    stalled = await rpc.session.ws_connect(url)  # never read until the end
    await wait_readers(rpc, vm_id, OUT, 1)
    data = os.urandom(4 << 20)
    for i in range(0, len(data), 1 << 16):
        await out.write(data[i : i + (1 << 16)])
    await wait_bytes(rpc, vm_id, OUT, len(data))  # drained while the reader sleeps
    fresh, _ = await asyncio.gather(follow_until(rpc, vm_id, len(data)), out.close())
    assert fresh == data
    virconn.lookupByUUIDString(vm_id).destroy()
    await rpc.wait_status(vm_id, "Down", 10)
    got = bytearray()
    async for msg in stalled:
        got += msg.data
    assert bytes(got) == data and stalled.close_code == 1000
    await rpc.call("VM.destroy", vmID=vm_id)


async def follow_until(rpc: RpcClient, vm_id: str, count: int) -> bytes:
    out = bytearray()
    async with rpc.session.ws_connect(f"{rpc.base}/vm/{vm_id}/channel/{OUT}") as ws:
        async for msg in ws:
            out += msg.data
            if len(out) >= count:
                break
    return bytes(out)
