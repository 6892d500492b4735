"""A channel's connection kept across an hvagent death through systemd's fd store: the test
plays systemd (its NOTIFY_SOCKET receives FDSTORE=1 with the descriptor, and hands it back
as an inherited descriptor) and QEMU (tests/fake_chardev.py). QEMU never sees its client
leave, and the log holds every byte once."""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import socket

from agent import systemd
from agent.runtime.channels.channel import Channel
from agent.runtime.channels.drain import drain
from agent.runtime.channels.log import SegmentLog
from tests.fake_chardev import FakeChardev

KEY = "hvagent-channel.vm.out"


def receive_stored(sock: socket.socket) -> tuple[str, int]:
    """One FDSTORE datagram: (its text, the descriptor it carried)."""
    fds = array.array("i")
    msg, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg.decode(), fds[0]


def test_a_kept_connection_loses_nothing(tmp_path):
    async def scenario() -> None:
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(30)
        notifier = systemd.Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
        qemu = await FakeChardev(str(tmp_path / "s" / "out")).start()

        def channel() -> Channel:
            ch = Channel(
                "out", qemu.path, SegmentLog(str(tmp_path / "log"), "out", 1 << 20),
                ring_bytes=4096, markers=(),
            )  # fmt: skip
            ch.key = KEY
            return ch

        first = channel()
        task = asyncio.create_task(drain(first, asyncio.Event(), systemd.FdStore(notifier, {})))
        await qemu.attached()
        text, kept_fd = await asyncio.to_thread(receive_stored, notify)
        assert text == f"FDSTORE=1\nFDNAME={KEY}"
        a = os.urandom(100_000)
        await qemu.write(a)
        while first.end < len(a):
            await asyncio.sleep(0.01)
        task.cancel()  # hvagent dies: its own descriptor goes, systemd's stays
        await asyncio.gather(task, return_exceptions=True)
        first.close()
        b = os.urandom(50_000)
        await qemu.write(b)  # the guest goes on writing into the kept connection
        assert qemu.connections == 1 and qemu._client is not None

        second = channel()  # the restarted hvagent, handed the kept descriptor
        store = systemd.FdStore(notifier, {KEY: kept_fd})
        stopping = asyncio.Event()
        task = asyncio.create_task(drain(second, stopping, store))
        while second.end < len(a) + len(b):
            await asyncio.sleep(0.01)
        assert qemu.connections == 1  # never reconnected: QEMU saw no client leave
        assert (await second.read(0, 1 << 20)).data == a + b
        await qemu.close()  # QEMU exits: the kept connection is dropped from the store
        stopping.set()
        await asyncio.wait_for(task, 10)
        assert notify.recv(4096).decode() == f"FDSTOREREMOVE=1\nFDNAME={KEY}"
        second.close()
        notify.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_inherited_fds_only_for_this_process():
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": KEY}
    assert systemd.inherited_fds(env) == {} and env == {}
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0", "LISTEN_FDNAMES": ""}
    assert systemd.inherited_fds(env) == {}
    a, b = socket.socketpair()
    with contextlib.ExitStack() as stack:
        stack.callback(a.close)
        store = systemd.FdStore(systemd.Notifier({}), {KEY: b.detach(), "other": os.dup(0)})
        sock = store.take(KEY)
        assert sock is not None and sock.family == socket.AF_UNIX
        sock.close()
        assert store.take("other") is None  # not a Unix stream socket: closed, dropped
        assert store.take(KEY) is None
        store.keep("x", 0)  # outside systemd: nothing happens
        store.release_unclaimed()
