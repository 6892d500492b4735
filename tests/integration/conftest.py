"""Integration fixtures: hvagent in-process on libvirt's test driver, one session loop.

libvirt's event loop can be registered once per process, so every test here shares the
session-scoped asyncio loop (shared/design/ANCHORS.md A.6, A.8).
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import itertools
import shutil
import tempfile
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from agent import config
from agent.daemon import run
from tests.client import RpcClient, free_port

NODE_XML = Path(__file__).parents[1] / "data" / "libvirt" / "node.xml"

# [channels] dir for every daemon of this run: short (<dir>/<vmId>/<name> must fit a socket
# address, 107 bytes), one directory per daemon below it, all removed when the run ends.
_CHANNELS_ROOT = tempfile.mkdtemp(prefix="hvc-", dir="/tmp")
atexit.register(shutil.rmtree, _CHANNELS_ROOT, True)
_channel_dirs = itertools.count()


def make_config(tmp_path: Path, uri: str | None = None) -> config.Config:
    base = config.Config.defaults()
    return dataclasses.replace(
        base,
        rpc=config.RpcConfig(
            listen=f"127.0.0.1:{free_port()}", socket=str(tmp_path / "hvagent.sock")
        ),
        libvirt=config.LibvirtConfig(uri=uri or f"test://{NODE_XML}"),
        virt=config.VirtConfig(
            domain_type="kvm",
            console_log_dir=str(tmp_path / "console"),
            # short (a unix socket path): the test driver never binds it
            console_socket_dir="/tmp/hvagent-it-vmconsole",
        ),
        stomp=config.StompConfig(listen=""),  # tests/integration/test_stomp_*.py enable it
        state=config.StateConfig(dir=str(tmp_path / "state")),
        # The test driver never opens a file: tests name made-up paths anywhere. The policy's
        # defaults are tested in test_host_access.py.
        host_access=config.HostAccessConfig(image_roots=("/",)),
        payload=config.PayloadConfig(dir=str(tmp_path / "payload")),
        channels=config.ChannelsConfig(dir=f"{_CHANNELS_ROOT}/{next(_channel_dirs)}"),
    )


class Daemon:
    """hvagent's `run()` as a task on the session loop, stopped through its trigger."""

    def __init__(self, cfg: config.Config) -> None:
        self.cfg = cfg
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(run(cfg, shutdown_trigger=self._stop.wait()))
        self.base = f"http://{cfg.rpc.listen}"

    async def stop(self) -> int:
        self._stop.set()
        return await asyncio.wait_for(self.task, 30)


@pytest_asyncio.fixture(loop_scope="session")
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


# test:///default is one state per process: a restarted daemon sees the same domains, and
# the tests' own connection sees what hvagent left behind. It ships one running domain,
# "test", which hvagent must report as foreign and never touch.
SHARED_URI = "test:///default"


@pytest.fixture(scope="session")
def virconn():
    import libvirt

    conn = libvirt.open(SHARED_URI)
    yield conn
    conn.close()


def libvirt_uuids(conn) -> set[str]:
    return {d.UUIDString() for d in conn.listAllDomains(0)}


@pytest_asyncio.fixture(loop_scope="session")
async def daemon(tmp_path, virconn):
    d = Daemon(make_config(tmp_path, SHARED_URI))
    yield d
    if not d.task.done():
        assert await d.stop() == 0


@pytest_asyncio.fixture(loop_scope="session")
async def rpc(daemon, session):
    client = RpcClient(daemon.base, session)
    await client.wait_ready(30)
    return client
