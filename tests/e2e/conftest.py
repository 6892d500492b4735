"""End-to-end fixtures: real libvirtd + QEMU (TCG), hvagent as a separate process.

`make test` prepares the host (scripts/host-setup.sh) and the test guest
(tests/guest/build.sh). Missing pieces fail loudly here rather than skip: a skipped e2e
suite proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import libvirt
import pytest
import pytest_asyncio

from tests.client import RpcClient, free_port

ROOT = Path(__file__).parents[2]
GUEST_DIR = Path(os.environ.get("HVAGENT_GUEST_DIR", "/var/cache/hvagent/guest"))
URI = "qemu:///system"
# Per-session prefix: cleanup removes only this session's domains, so several test runs
# (developers' worktrees) can share one libvirtd.
PREFIX = f"e2e{os.getpid()}-"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def guest() -> dict[str, str]:
    kernel, initrd = GUEST_DIR / "vmlinuz", GUEST_DIR / "initrd.img"
    if not (kernel.exists() and initrd.exists()):
        pytest.fail(f"test guest missing in {GUEST_DIR}: run `make guest` (tests/guest/build.sh)")
    return {"kernel": str(kernel), "initrd": str(initrd)}


@pytest.fixture(scope="session")
def virconn():
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.fail(f"libvirtd not reachable at {URI} ({exc}): run `make host`")
    yield conn
    _cleanup()
    # libvirtd may have been restarted under this connection (test_zz_libvirtd_restart).
    with contextlib.suppress(libvirt.libvirtError):
        conn.close()


def _cleanup() -> None:
    """Remove every domain an e2e test made, whatever state the test left it in.

    Opens its own connection: the session's may predate a libvirtd restart.
    """
    conn = libvirt.open(URI)
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError:
                pass
    conn.close()


class Agent:
    """An hvagent process started from conf/-style TOML, like systemd would."""

    def __init__(self, tmp: Path, overrides: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.overrides = overrides  # SECTION.KEY=VALUE, passed as --set
        self.console_dir = tmp / "console"
        # ovirt-vmconsole's sockets ([virt] console_socket_dir): a short path, since a unix
        # socket path has at most 107 bytes.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="hvc-", dir="/tmp"))
        self.listen = f"127.0.0.1:{free_port()}"
        self.config = tmp / "hvagent.toml"
        self.config.write_text(
            f'[rpc]\nlisten = "{self.listen}"\nsocket = "{tmp / "hvagent.sock"}"\n'
            f'[libvirt]\nuri = "{URI}"\n'
            f'[virt]\ndomain_type = "qemu"\nconsole_log_dir = "{self.console_dir}"\n'
            f'console_socket_dir = "{self.socket_dir}"\n'
            "[metrics]\nsample_interval_s = 1.0\n"
            '[stomp]\nlisten = ""\n'  # test_stomp_qemu.py turns it on with --set
            f'[state]\ndir = "{tmp / "state"}"\n'
            # The test guest and each test's own temp dir hold the images (defaults stay).
            f'[host_access]\nimage_roots = ["{GUEST_DIR}", "{tmp}", "/var/lib/libvirt/images"]\n'
            f'[payload]\ndir = "{tmp / "payload"}"\n'
        )
        self.log = tmp / "hvagent.log"
        self.base = f"http://{self.listen}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config), *self._set_args()],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _set_args(self) -> list[str]:
        return [arg for o in self.overrides for arg in ("--set", o)]

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        return self.proc.returncode

    def console_log(self, vm_id: str) -> str:
        p = self.console_dir / f"{vm_id}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    async def wait_console(
        self, vm_id: str, text: str, timeout: float = 180, count: int = 1
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.console_log(vm_id)
            if log.count(text) >= count:
                return log
            await asyncio.sleep(0.25)
        raise AssertionError(
            f"{text!r} x{count} not on {vm_id}'s console after {timeout} s:\n"
            f"{self.console_log(vm_id)[-2000:]}"
        )


@pytest_asyncio.fixture(loop_scope="session")
async def agent(request, tmp_path, virconn):
    """hvagent for one test; `@pytest.mark.hvagent_set("virt.spice_tls=true", ...)` overrides
    config keys as `hvagent --set` does."""
    marker = request.node.get_closest_marker("hvagent_set")
    a = Agent(tmp_path, marker.args if marker else ())
    a.start()
    yield a
    code = a.stop()
    _cleanup()
    shutil.rmtree(a.socket_dir, ignore_errors=True)
    assert code == 0, f"hvagent exited {code}; log:\n{a.log.read_text()[-3000:]}"


@pytest_asyncio.fixture(loop_scope="session")
async def rpc(agent):
    async with aiohttp.ClientSession() as session:
        client = RpcClient(agent.base, session)
        await client.wait_ready(180)
        yield client


def guest_params(guest: dict[str, str], *flags: str, **extra) -> tuple[str, dict]:
    vm_id = str(uuid.uuid4())
    params = {
        "vmId": vm_id,
        "vmName": f"{PREFIX}{vm_id[:8]}",
        "memSize": 256,
        "smp": 1,
        "kvmEnable": "false",
        "kernel": guest["kernel"],
        "initrd": guest["initrd"],
        "kernelArgs": " ".join(("console=ttyS0", "panic=-1", *flags)),
        **extra,
    }
    return vm_id, params
