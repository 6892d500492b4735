"""VmChannels: the drained channels of one VM, owned by its VmOwner.

Built from the domain's channels (name, socket path: agent/domxml/live.py); only sockets at
the path hvagent itself chose under `[channels] dir` are drained, so a domain defined
outside cannot make hvagent connect anywhere else, and foreign domains get none. `start`
runs one drain per channel as `while_running` subtasks when the domain starts;
`domain_stopped` lets them read to the end QEMU left (at most `STOP_GRACE_S`) before the
owner stops them. Readers find a channel with `get`, which works while the VM record exists,
Down VMs included (their logs stay on disk, also after VM.destroy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import errors
from agent.config import ChannelsConfig
from agent.domxml.devices.channel import socket_path
from agent.runtime.channels.channel import Channel, MarkerSeen
from agent.runtime.channels.drain import Keeper, drain
from agent.runtime.channels.log import SegmentLog

if TYPE_CHECKING:  # runtime/vm imports this package
    from agent.runtime.vm.subtasks import Subtasks

log = logging.getLogger(__name__)

STOP_GRACE_S = 2.0
SOCKET_DIR_MODE = 0o755  # libvirt (root) binds the sockets in it; nobody but hvagent connects


class VmChannels:
    def __init__(
        self,
        vm_id: uuid.UUID,
        bound: tuple[tuple[str, str], ...],
        cfg: ChannelsConfig | None,
        on_marker: Callable[[Channel, MarkerSeen], None] | None = None,
        keeper: Keeper | None = None,
    ) -> None:
        self.vm_id = vm_id
        self._keeper = keeper
        self._cfg = cfg
        self._channels: dict[str, Channel] = {}
        self._stopping = asyncio.Event()
        self._drains: list[asyncio.Task[None]] = []
        if cfg is None:
            return
        log_dir = str(Path(cfg.logs("/var/lib/hvagent")) / str(vm_id))
        for name, path in bound:
            if path != socket_path(cfg.dir, vm_id, name):
                log.info("channel %s: socket %s is not hvagent's: not drained", name, path)
                continue
            seg = SegmentLog(log_dir, os.path.basename(path), cfg.log_max_bytes)
            channel = Channel(
                name, path, seg, ring_bytes=cfg.ring_bytes, markers=cfg.markers,
                on_marker=on_marker,
            )  # fmt: skip
            channel.key = f"hvagent-channel.{vm_id}.{os.path.basename(path)}"
            self._channels[name] = channel

    @property
    def names(self) -> list[str]:
        return sorted(self._channels)

    def all(self) -> list[Channel]:
        return list(self._channels.values())

    def get(self, name: str) -> Channel:
        channel = self._channels.get(name)
        if channel is None:
            raise errors.NoSuchChannel(
                f"the VM has no drained channel of that name; it has: {', '.join(self.names)}"
                if self._channels
                else "the VM has no drained channel",
                param="name",
                vmId=str(self.vm_id),
                channels=self.names,
            )
        return channel

    async def prepare(self) -> None:
        """Before the domain starts: the per-VM directory QEMU's sockets are bound in."""
        if self._cfg is None or not self._channels:
            return
        directory = Path(self._cfg.dir) / str(self.vm_id)
        try:
            await asyncio.to_thread(directory.mkdir, SOCKET_DIR_MODE, True, True)
        except OSError as exc:  # libvirt then says why it cannot bind there
            log.warning("cannot create the channel socket directory %s: %s", directory, exc)

    def start(self, subtasks: Subtasks) -> None:
        """The domain (re)started: drain every channel (idempotent while drains run)."""
        self._drains = [t for t in self._drains if not t.done()]
        if self._drains:
            return
        self._stopping = asyncio.Event()
        stopping = self._stopping
        for channel in self._channels.values():
            self._drains.append(
                subtasks.start(
                    f"channel:{channel.name}",
                    lambda c=channel: drain(c, stopping, self._keeper),  # type: ignore[misc]
                    while_running=True,
                )
            )

    def release_kept(self) -> None:
        """The VM is down: no connection of its channels stays kept across restarts."""
        if self._keeper is not None:
            for channel in self._channels.values():
                self._keeper.drop(channel.key)

    async def domain_stopped(self) -> None:
        """QEMU exited: let the drains read what it left, then they end (the owner's
        `stop_running` cancels any still going)."""
        self._stopping.set()
        running = [t for t in self._drains if not t.done()]
        if running:
            await asyncio.wait(running, timeout=STOP_GRACE_S)
        for channel in self._channels.values():
            channel.set_live(False)
        self.release_kept()

    async def remove_sockets(self) -> None:
        """VM.destroy: the socket directory goes (the logs stay)."""
        if self._cfg is None or not self._channels:
            return
        directory = Path(self._cfg.dir) / str(self.vm_id)

        def remove() -> None:
            for channel in self._channels.values():
                with contextlib.suppress(OSError):
                    os.unlink(channel.path)
            with contextlib.suppress(OSError):
                directory.rmdir()

        await asyncio.to_thread(remove)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def report(self) -> list[dict[str, Any]]:
        return [c.report() for c in self._channels.values()]
