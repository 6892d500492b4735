"""Channel building blocks: the ring buffer, marker scanning across chunks, the segment log
(resume offsets, the size cap), the Channel that ties them, and the socket path choice."""

from __future__ import annotations

import asyncio
import os
import random
import uuid

import pytest

from agent.domxml.devices.channel import SUN_PATH_MAX, socket_path
from agent.runtime.channels.channel import Channel
from agent.runtime.channels.log import SegmentLog
from agent.runtime.channels.markers import MarkerScanner
from agent.runtime.channels.ring import RingBuffer

STREAM = os.urandom(5000)


@pytest.mark.parametrize("capacity", [1, 7, 64, 4096, 10000])
def test_ring_holds_the_last_bytes_at_their_offsets(capacity):
    rng = random.Random(capacity)
    ring = RingBuffer(capacity, start=1000)
    pos = 0
    while pos < len(STREAM):
        n = rng.choice([1, 3, capacity - 1 or 1, capacity, capacity + 5, 333])
        ring.write(STREAM[pos : pos + n])
        pos += len(STREAM[pos : pos + n])
        assert ring.end == 1000 + pos
        assert ring.start == 1000 + max(0, pos - capacity)
        held = STREAM[max(0, pos - capacity) : pos]
        assert ring.read(ring.start, 1 << 20) == held
        mid = ring.start + len(held) // 2
        assert ring.read(mid, 5) == STREAM[mid - 1000 : min(mid - 1000 + 5, pos)]
    assert ring.read(ring.start - 1, 10) is None  # older: the log has it
    assert ring.read(ring.end, 10) == b""
    assert ring.read(ring.end + 1, 10) is None


MARKERS = ["HE_APPLIANCE_ENGINE_SETUP_SUCCESS", "HE_APPLIANCE_ENGINE_SETUP_FAIL"]


def test_markers_found_once_whatever_the_chunking():
    s, f = (m.encode() for m in MARKERS)
    text = b"a" * 40 + s + b"\n" + f + f + b"HE_APPLIANCE" + b"z" * 3 + s
    expected = [(s, 40), (f, 40 + len(s) + 1), (f, 40 + len(s) + 1 + len(f))]
    expected.append((s, len(text) - len(s)))
    rng = random.Random(5)
    for _ in range(500):
        scanner = MarkerScanner(MARKERS, start=0)
        found, pos = [], 0
        while pos < len(text):
            n = rng.randint(1, 40)
            found += scanner.feed(text[pos : pos + n])
            pos += n
        assert found == expected


def test_markers_byte_by_byte_and_from_an_offset():
    scanner = MarkerScanner(["abcab"], start=100)
    found = []
    for byte in b"xxabcabcabyy":
        found += scanner.feed(bytes([byte]))
    assert found == [(b"abcab", 102), (b"abcab", 105)]  # overlapping ones too
    assert MarkerScanner([]).feed(b"anything") == []


def test_log_resumes_where_it_ended(tmp_path):
    log = SegmentLog(str(tmp_path), "chan", 1 << 20)
    assert log.open() == 0
    log.append(b"hello ")
    log.append(b"world")
    log.close()
    again = SegmentLog(str(tmp_path), "chan", 1 << 20)
    assert again.open() == 11  # offsets continue from the log's size
    again.append(b"!")
    assert again.read(0, 100).data == b"hello world!"
    assert again.read(6, 3).data == b"wor"
    assert os.listdir(tmp_path) == ["chan." + "0" * 20]
    other = SegmentLog(str(tmp_path), "chan2", 1 << 20)  # another channel: its own files
    assert other.open() == 0


def test_log_keeps_the_newest_bytes_within_its_cap(tmp_path):
    log = SegmentLog(str(tmp_path), "c", 4096)  # segments of 1024 bytes
    log.open()
    for i in range(0, len(STREAM), 100):
        log.append(STREAM[i : i + 100])
    assert log.end == len(STREAM)
    assert log.disk_bytes <= 4096
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) == log.disk_bytes
    first = log.first
    assert first > 0 and first % 1024 == 0
    chunk = log.read(0, 1 << 20)  # dropped bytes: the read starts at the oldest kept
    assert chunk.offset == first and chunk.data == STREAM[first:] and chunk.end == len(STREAM)
    log.close()
    again = SegmentLog(str(tmp_path), "c", 4096)
    assert again.open() == len(STREAM)
    assert again.read(first + 10, 2000).data == STREAM[first + 10 : first + 2010]


def test_channel_serves_ring_and_log_and_wakes_readers(tmp_path):
    async def scenario() -> None:
        seen = []
        ch = Channel(
            "c", "/nowhere", SegmentLog(str(tmp_path), "c", 1 << 20), ring_bytes=4096,
            markers=("MARK",), on_marker=lambda c, m: seen.append(m),
        )  # fmt: skip
        await ch.open()
        ch.set_live(True)
        waiter = asyncio.create_task(ch.wait_beyond(0))
        await asyncio.sleep(0)
        assert not waiter.done()
        ch.append(STREAM[:3000] + b"MA")
        ch.append(b"RK" + STREAM[3000:])
        await asyncio.wait_for(waiter, 5)
        total = len(STREAM) + 4
        assert ch.end == total and [(m.marker, m.offset) for m in seen] == [("MARK", 3000)]
        whole = STREAM[:3000] + b"MARK" + STREAM[3000:]
        assert (await ch.read(0, 1 << 20)).data == whole  # older than the ring: from the log
        assert (await ch.read(total - 100, 1 << 20)).data == whole[-100:]  # from the ring
        assert not ch.eof(total)
        ch.set_live(False)
        assert ch.eof(total) and not ch.eof(total - 1)
        await asyncio.wait_for(ch.wait_beyond(total), 1)  # ended: no wait
        ch.close()
        again = Channel(
            "c", "/nowhere", SegmentLog(str(tmp_path), "c", 1 << 20), ring_bytes=4096,
            markers=("MARK",),
        )  # fmt: skip
        await again.open()  # after a restart: offsets go on, markers found again
        assert again.end == total and [m.offset for m in again.markers] == [3000]
        assert again.report()["lastByteTime"] is not None
        again.append(b"xxMA")
        again.close()
        third = Channel(
            "c", "/nowhere", SegmentLog(str(tmp_path), "c", 1 << 20), ring_bytes=4096,
            markers=("MARK",),
        )  # fmt: skip
        await third.open()  # a marker cut by a restart is still found, once
        third.append(b"RK")
        assert [m.offset for m in third.markers] == [3000, total + 2]
        third.close()

    asyncio.run(scenario())


def test_socket_path_fits_and_stays_under_its_directory():
    vm = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
    plain = socket_path("/run/hvagent/channels", vm, "org.ovirt.hosted-engine-setup.0")
    assert plain == f"/run/hvagent/channels/{vm}/org.ovirt.hosted-engine-setup.0"
    for name in ["..", ".", "a/../../etc", "x" * 100, "\ud800", "-rf"]:
        path = socket_path("/run/hvagent/channels/", vm, name)
        assert path.startswith(f"/run/hvagent/channels/{vm}/")
        tail = path.rsplit("/", 1)[1]
        assert len(path.encode()) <= SUN_PATH_MAX and tail not in (".", "..")
    assert socket_path("/d", vm, "..") == socket_path("/d", vm, "..")  # stable


@pytest.mark.parametrize(
    "bad",
    [
        {"dir": "relative"},
        {"dir": "/" + "d" * 60},  # <dir>/<vmId>/<name> would not fit a socket address
        {"log_dir": "rel"},
        {"log_max_bytes": 10},
        {"ring_bytes": 1 << 30},
        {"markers": ("",)},
        {"markers": ("bad\nmarker",)},
    ],
)
def test_channels_config_refuses(bad):
    from agent.config import ChannelsConfig

    with pytest.raises(ValueError):
        ChannelsConfig(**bad)


def test_channels_config_loads_from_toml(tmp_path):
    from agent import config

    path = tmp_path / "h.toml"
    path.write_text('[channels]\ndir = "/run/x"\nmarkers = ["DONE"]\nlog_max_bytes = 8192\n')
    cfg = config.load(path)
    assert cfg.channels.dir == "/run/x" and cfg.channels.markers == ("DONE",)
    assert cfg.channels.logs("/var/lib/hvagent") == "/var/lib/hvagent/channels"


@pytest.mark.parametrize("name", ["..", ".hidden", "-x", "a/b", "a b", "é", "x" * 101, 5, ""])
def test_vmparams_channel_names_are_checked(name):
    from agent.config import VirtConfig
    from agent.errors import AgentError
    from agent.intake import launch

    vm = uuid.uuid4()
    params = {
        "vmId": str(vm),
        "vmName": "c",
        "memSize": 64,
        "devices": [
            {"type": "channel", "device": "unix", "name": "ok.0"},
            {"type": "channel", "device": "unix", "name": name},
        ],
    }
    with pytest.raises(AgentError) as caught:
        launch.plan(vm, params, VirtConfig())
    assert caught.value.code in (-32602, 11) and caught.value.data["param"] == "devices[1].name"


def test_a_log_that_cannot_be_opened_leaves_the_ring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def scenario() -> None:
        ch = Channel(
            "c", "/nowhere", SegmentLog(str(blocker / "sub"), "c", 1 << 20), ring_bytes=4096,
            markers=(),
        )  # fmt: skip
        await ch.open()
        ch.append(b"still served")
        assert (await ch.read(0, 100)).data == b"still served"
        assert ch.disk_bytes == 0

    asyncio.run(scenario())
