"""Throwaway Debian 12 roots for the package tests: built once with debootstrap, then used
through an overlay so every test starts from the same clean root.

- `cached_root(packages)`: a bookworm root (debootstrap minbase + systemd) with `packages`
  installed, under /var/cache/hvagent/debootstrap/<hash of mirror, suite, packages>; built
  on first use (a few minutes), reused after. The mirror is the one apt uses on this host.
- `overlay(root)`: a writable copy-on-write view of a cached root, removed afterwards.
- `Container`: that view booted with `systemd-nspawn -b` (systemd as PID 1, private
  network), with `run()` executing commands inside it through nsenter.

Everything here runs as root (debootstrap, mount, nspawn); the tests skip otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
CACHE = Path(os.environ.get("HVAGENT_CACHE", "/var/cache/hvagent")) / "debootstrap"
BASE = ("systemd", "systemd-sysv", "dbus")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# No systemd runs on this host: no machined to register with, no scope unit to ask for.
NSPAWN = (
    "systemd-nspawn",
    "--quiet",
    "--boot",
    "--register=no",
    "--keep-unit",
    "--private-network",
)


def apt_mirror() -> str:
    """The Debian mirror this host's apt uses for the main archive (deb822 or one-line)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if path.suffix not in ("", ".list", ".sources") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:(.*)$", stanza, re.M)
                if uris and suites and SUITE in suites.group(1).split():
                    return uris.group(1).rstrip("/")
        else:
            m = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", text, re.M)
            if m:
                return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def _run(cmd: list[str], timeout: float = 900, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def cached_root(packages: list[str]) -> Path:
    """A bookworm root with BASE + packages installed; built once per distinct set."""
    mirror = apt_mirror()
    wanted = sorted(set(BASE) | set(packages))
    key = hashlib.sha256("\n".join([mirror, SUITE, *wanted]).encode()).hexdigest()[:16]
    root = CACHE / key / "root"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building the same root
        if (CACHE / key / "complete").exists():
            return root
        tmp = CACHE / f"{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        suite_args = [SUITE, str(tmp / "root"), mirror]
        _run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE)}", *suite_args],
            timeout=1800,
        )
        # No daemon may start inside a chroot (there is no systemd there anyway).
        policy = tmp / "root/usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        _run(["chroot", str(tmp / "root"), "apt-get", "update", "-q"], env=env)
        no_rec = ["--no-install-recommends"]
        _run(
            ["chroot", str(tmp / "root"), "apt-get", "install", "-y", "-q", *no_rec, *wanted],
            env=env,
            timeout=1800,
        )
        _run(["chroot", str(tmp / "root"), "apt-get", "clean"], env=env)
        policy.unlink()
        (tmp / "root/etc/hostname").write_text("hvagent-test\n")
        (tmp / "packages").write_text("\n".join([mirror, SUITE, *wanted]) + "\n")
        (tmp / "complete").touch()
        shutil.rmtree(CACHE / key, ignore_errors=True)
        tmp.rename(CACHE / key)
        return root


@contextlib.contextmanager
def overlay(lower: Path) -> Iterator[Path]:
    """A writable view of `lower` (an overlayfs; `lower` itself is never written)."""
    base = Path(tempfile.mkdtemp(prefix="hvagent-root-", dir="/var/tmp"))
    upper, work, merged = base / "upper", base / "work", base / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    _run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
    try:
        yield merged
    finally:
        subprocess.run(["umount", "-R", str(merged)], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def proc_mounted(root: Path) -> Iterator[None]:
    """/proc and /dev inside a chroot (python, systemd-analyze and dpkg want them)."""
    _run(["mount", "-t", "proc", "proc", str(root / "proc")])
    _run(["mount", "--bind", "/dev", str(root / "dev")])
    try:
        yield
    finally:
        subprocess.run(["umount", str(root / "dev")], capture_output=True, timeout=60)
        subprocess.run(["umount", str(root / "proc")], capture_output=True, timeout=60)


def chroot(root: Path, *cmd: str, check: bool = True, timeout: float = 300):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run(
        ["chroot", str(root), *cmd], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


class Container:
    """`systemd-nspawn -b` on a root: systemd is PID 1 inside, with its own network.

    No systemd runs on this host, so nspawn neither registers with machined (--register=no)
    nor asks for a scope unit (--keep-unit); commands go in through nsenter.
    """

    def __init__(self, root: Path, log: Path) -> None:
        self.root, self.log = root, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def boot(self, timeout: float = 300) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*NSPAWN, "--machine=hvagent-test", "-D", str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.leader:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"container did not start:\n{self.log.read_text()}")
            self.leader = self._find_leader()
            time.sleep(0.2)
        state = ""
        while state not in ("running", "degraded"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"systemd did not finish booting ({state!r}):\n{self.tail()}")
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            time.sleep(0.5)

    def _find_leader(self) -> int:
        """The container's PID 1: nspawn's child running systemd in a new PID namespace
        (nspawn first forks a short-lived helper that must not be mistaken for it)."""
        assert self.proc is not None
        ours = os.readlink("/proc/self/ns/pid")
        kids = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in kids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                ns = os.readlink(f"/proc/{pid}/ns/pid")
            except OSError:
                continue  # gone meanwhile
            if comm == "systemd" and ns != ours:
                return int(pid)
        return 0

    def run(self, *cmd: str, check: bool = True, timeout: float = 120):
        """Run cmd inside the container (all its namespaces, its root, systemd's env)."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        proc = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "-r", "-w", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def shutdown(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # nspawn asks systemd inside to halt
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
