"""sd_notify without a dependency: READY/STOPPING/STATUS and watchdog pings over $NOTIFY_SOCKET.

Protocol (sd_notify(3)): newline-separated KEY=VALUE datagrams to the AF_UNIX datagram socket
named by $NOTIFY_SOCKET ("@name" is an abstract socket). Without the variable every call is a
no-op, so hvagent runs the same outside systemd. The watchdog is armed when $WATCHDOG_USEC is
set (and $WATCHDOG_PID, if set, is this process): `watchdog()` pings at half that period from
the event loop, and only while `healthy()` says so - a blocked loop or a sick daemon misses
pings and systemd restarts it (WatchdogSec in systemd/hvagent.service).
The fd store (`FdStore`, `inherited_fds`) keeps channel connections open across a restart.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        armed = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_interval_s = int(usec) / 1e6 / 2 if armed else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self._address)
                s.sendall("\n".join(lines).encode())
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self._address.lstrip("\0"), exc)
            return False
        return True

    def send_fd(self, name: str, fd: int) -> bool:
        """FDSTORE=1: systemd keeps a duplicate of `fd` under `name` across restarts."""
        if not self._address:
            return False
        message = f"FDSTORE=1\nFDNAME={name}".encode()
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendmsg([message], rights, 0, self._address)
        except OSError as exc:
            log.warning("sd_notify FDSTORE %s failed: %s", name, exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    async def watchdog(self, healthy: Callable[[], bool]) -> None:
        """Ping WATCHDOG=1 every half period while `healthy()`; returns at once if unarmed."""
        if self.watchdog_interval_s is None or not self.enabled:
            return
        was_healthy = True
        while True:
            ok = healthy()
            if ok:
                self.notify("WATCHDOG=1")
            elif was_healthy:
                log.warning("unhealthy: withholding systemd watchdog pings")
            was_healthy = ok
            await asyncio.sleep(self.watchdog_interval_s)


SD_LISTEN_FDS_START = 3


def inherited_fds(environ: dict[str, str] | None = None) -> dict[str, int]:
    """The file descriptors systemd handed this process (sd_listen_fds(3)): its fd store's
    content after a restart, by FDNAME. Empty outside systemd or when meant for another
    process; the variables are removed so children never see them."""
    env = os.environ if environ is None else environ
    pid, count = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    names = env.get("LISTEN_FDNAMES", "").split(":")
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(key, None)
    if pid != str(os.getpid()) or not count.isdigit():
        return {}
    out = {}
    for i in range(int(count)):
        fd = SD_LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        out[names[i] if i < len(names) and names[i] else f"unknown.{i}"] = fd
    return out


class FdStore:
    """Connections systemd keeps for hvagent across a restart (the service's fd store,
    FileDescriptorStoreMax in systemd/hvagent.service): a channel's socket stays connected
    while hvagent is away, so QEMU never sees its one client leave and drops nothing.
    `take` hands back one inherited at start; `keep` stores a new one; `drop` forgets one
    (the channel's socket closed); `release_unclaimed` closes what nobody took after
    recovery. Outside systemd `keep` and `drop` do nothing."""

    def __init__(self, notifier: Notifier, inherited: dict[str, int]) -> None:
        self._notifier = notifier
        self._inherited = dict(inherited)
        self._kept: set[str] = set(inherited)

    def take(self, name: str) -> socket.socket | None:
        fd = self._inherited.pop(name, None)
        if fd is None:
            return None
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            log.warning("inherited descriptor %s is unusable: %s", name, exc)
            self.drop(name)
            return None
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            sock.close()
            self.drop(name)
            return None
        return sock

    def keep(self, name: str, fd: int) -> None:
        if self._notifier.enabled and self._notifier.send_fd(name, fd):
            self._kept.add(name)

    def drop(self, name: str) -> None:
        fd = self._inherited.pop(name, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if name in self._kept:
            self._kept.discard(name)
            self._notifier.notify("FDSTOREREMOVE=1", f"FDNAME={name}")

    def release_unclaimed(self) -> None:
        for name in list(self._inherited):
            log.info("closing kept connection %s: no running VM claimed it", name)
            self.drop(name)
