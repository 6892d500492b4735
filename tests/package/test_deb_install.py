"""The package installed into a throwaway Debian 12 root (chroot, no systemd running):
dpkg accepts it with only Debian's packages present, the commands print the package version,
the installed unit verifies, and the installed daemon serves on Debian's python3 libraries
plus the bundled ones (libvirt's test driver; a batch exercises jsonrpcserver, /metrics
prometheus-client, Host.getCapabilities lxml).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from agent import __version__
from tests.client import free_port
from tests.package import rootfs


@pytest.fixture(scope="module")
def installed(deb, debian_root):
    with rootfs.overlay(debian_root) as root, rootfs.proc_mounted(root):
        shutil.copy(deb, root / "tmp" / deb.name)
        proc = rootfs.chroot(root, "dpkg", "-i", f"/tmp/{deb.name}")
        yield root, proc.stdout + proc.stderr


def test_dpkg_installs_it_with_debians_packages_only(installed):
    root, out = installed
    status = rootfs.chroot(root, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", "hvagent")
    assert status.stdout == f"installed {__version__}", out
    # py3compile byte-compiled the private directory at install (ProtectSystem=strict
    # would forbid writing __pycache__ at run time).
    assert list((root / "usr/lib/hvagent/agent").glob("__pycache__/daemon.cpython-311.pyc"))
    # Enabled on install (dh_installsystemd), though nothing could be started in a chroot.
    wants = root / "etc/systemd/system/multi-user.target.wants/hvagent.service"
    assert wants.is_symlink()


def test_commands_print_the_package_version(installed):
    root, _ = installed
    assert rootfs.chroot(root, "hvagent", "--version").stdout.strip() == f"hvagent {__version__}"
    client = rootfs.chroot(root, "hvagent-client", "--version").stdout.strip()
    assert client == f"hvagent-client {__version__}"


def test_installed_unit_verifies(installed):
    root, _ = installed
    proc = rootfs.chroot(
        root,
        "systemd-analyze",
        "verify",
        "--man=no",
        "/lib/systemd/system/hvagent.service",
        check=False,
    )
    ours = [line for line in proc.stderr.splitlines() if "hvagent" in line]
    assert proc.returncode == 0 and not ours, proc.stderr


def post(url: str, body: object) -> object:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_installed_daemon_serves_on_debians_libraries(installed):
    root, _ = installed
    port = free_port()
    args = ["--config", "/etc/hvagent/hvagent.toml", "--libvirt-uri", "test:///default"]
    args += ["--listen", f"127.0.0.1:{port}", "--set", "rpc.socket=/run/hvagent-test.sock"]
    args += ["--set", "virt.console_log_dir=/tmp"]
    daemon = subprocess.Popen(
        ["chroot", str(root), "hvagent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert daemon.poll() is None, daemon.stdout.read()
            assert time.monotonic() < deadline, "hvagent in the root never became ready"
            time.sleep(0.3)
        # A batch goes through the bundled jsonrpcserver.
        batch = post(
            f"{base}/jsonrpc",
            [
                {"jsonrpc": "2.0", "id": 1, "method": "Host.ping2", "params": {}},
                {"jsonrpc": "2.0", "id": 2, "method": "Host.getCapabilities", "params": {}},
            ],
        )
        by_id = {r["id"]: r for r in batch}
        assert by_id[1]["result"] is True, batch
        caps = by_id[2]["result"]
        assert caps["packages2"]["hvagent"]["version"] == __version__, caps
        assert caps["cpuCores"] and caps["operatingSystem"]["release"] == "bookworm", caps
        with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
            metrics = r.read().decode()
        assert re.search(r"^hvagent_libvirt_up 1\.0$", metrics, re.M), metrics
        # hvagent-client (bundled aiohttp's client) over the daemon's Unix socket.
        reply = rootfs.chroot(
            root, "hvagent-client", "--socket", "/run/hvagent-test.sock", "Host", "ping2"
        )
        assert json.loads(reply.stdout) is True
    finally:
        daemon.terminate()
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert "orderly shutdown" in out
