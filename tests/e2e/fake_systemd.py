"""The part of systemd an hvagent restart needs, for e2e tests on a host without systemd:
the notify socket (READY, WATCHDOG, ... ignored; `FDSTORE=1` + `FDNAME` with a descriptor
kept; `FDSTOREREMOVE=1` closes it) and a start that hands the kept descriptors to the new
process as sd_listen_fds(3) does (fds from 3, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID)."""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.e2e.conftest import ROOT, Agent

HIGH_FD = 200  # kept descriptors go up here, then bash (not dash: 1 digit) moves them to 3..


class FakeSystemd:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.closing = threading.Event()
        self.stored: dict[str, int] = {}  # FDNAME -> our duplicate of the descriptor
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
            except TimeoutError:
                continue
            got = array.array("i")
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got.frombytes(data[: len(data) - len(data) % got.itemsize])
            fields = dict(line.split("=", 1) for line in msg.decode().splitlines() if "=" in line)
            with self.lock:
                name = fields.get("FDNAME", "stored")
                if fields.get("FDSTORE") == "1" and got:
                    if name in self.stored:
                        os.close(self.stored.pop(name))
                    self.stored[name] = got[0]
                    got = got[1:]
                elif fields.get("FDSTOREREMOVE") == "1" and name in self.stored:
                    os.close(self.stored.pop(name))
            for fd in got:
                os.close(fd)

    def start(self, agent: Agent) -> None:
        """Start `agent`'s hvagent as systemd would: NOTIFY_SOCKET, the kept descriptors."""
        with self.lock:
            names = list(self.stored)
            high = [fcntl.fcntl(self.stored[n], fcntl.F_DUPFD, HIGH_FD) for n in names]
        moves = " ".join(f"{3 + i}<&{fd} {fd}<&-" for i, fd in enumerate(high))
        script = (f"exec {moves}; " if moves else "") + 'LISTEN_PID=$$ exec "$@"'
        env = {**os.environ, "NOTIFY_SOCKET": str(self.path)}
        if names:
            env |= {"LISTEN_FDS": str(len(names)), "LISTEN_FDNAMES": ":".join(names)}
        try:
            with agent.log.open("ab") as out:
                argv = [sys.executable, "-m", "agent", "--config", str(agent.config)]
                agent.proc = subprocess.Popen(
                    ["bash", "-c", script, "bash", *argv, *agent._set_args()],
                    cwd=ROOT, env=env, pass_fds=high,
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
        finally:
            for fd in high:
                os.close(fd)

    def close(self) -> None:
        self.closing.set()
        self.thread.join(10)
        self.sock.close()
        with self.lock:
            for fd in self.stored.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.stored.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
