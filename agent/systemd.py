"""sd_notify without a dependency: READY/STOPPING/STATUS and watchdog pings over $NOTIFY_SOCKET.

Protocol (sd_notify(3)): newline-separated KEY=VALUE datagrams to the AF_UNIX datagram socket
named by $NOTIFY_SOCKET ("@name" is an abstract socket). Without the variable every call is a
no-op, so hvagent runs the same outside systemd. The watchdog is armed when $WATCHDOG_USEC is
set (and $WATCHDOG_PID, if set, is this process): `watchdog()` pings at half that period from
the event loop, and only while `healthy()` says so - a blocked loop or a sick daemon misses
pings and systemd restarts it (WatchdogSec in systemd/hvagent.service).
"""

from __future__ import annotations

import asyncio
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
