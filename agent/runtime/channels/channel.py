"""Channel: one drained channel's state: its log and ring, offsets, markers, readers.

Everything here runs on the event-loop thread except the blocking parts handed to a worker
thread (opening the log and scanning it again after a restart, reading old bytes). `append`
is the drain's one call per chunk: ring, log (a page-cache write), marker scan, wake the
readers waiting for more; it never waits for a reader.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.runtime.channels.log import Chunk, SegmentLog
from agent.runtime.channels.markers import MarkerScanner
from agent.runtime.channels.ring import RingBuffer

MAX_MARKERS = 100  # markers kept per channel for VM.getStats (the first ones)


@dataclass(frozen=True)
class MarkerSeen:
    marker: str
    offset: int
    time: float  # epoch seconds (after a restart: the log segment's modification time)

    def to_wire(self) -> dict[str, Any]:
        return {"marker": self.marker, "offset": self.offset, "time": self.time}


class Channel:
    def __init__(
        self,
        name: str,
        path: str,
        log: SegmentLog,
        *,
        ring_bytes: int,
        markers: tuple[str, ...],
        on_marker: Callable[[Channel, MarkerSeen], None] | None = None,
    ) -> None:
        self.name = name
        self.path = path  # the socket QEMU binds
        self.key = name  # its connection's name in the keeper (VmChannels sets it)
        self._log = log
        self._ring_bytes = ring_bytes
        self._marker_names = markers
        self._on_marker = on_marker
        self._ring: RingBuffer | None = None
        self._scanner: MarkerScanner | None = None
        self._opening: asyncio.Task[None] | None = None
        self.end = 0  # stream offset of the next byte
        self.last_byte_time: float | None = None
        self.markers: list[MarkerSeen] = []
        self.readers = 0
        self.live = False  # the domain runs and the drain goes on: readers wait for more
        self._waiter: asyncio.Future[None] | None = None

    async def open(self) -> None:
        """Open the log (once; concurrent callers wait for the same opening)."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        end, scanner, found, mtime = await asyncio.to_thread(self._open_and_rescan)
        self.end = end
        self._ring = RingBuffer(self._ring_bytes, start=end)
        self._scanner = scanner  # its tail holds the log's last bytes: no marker is cut
        self.markers = found
        if end and mtime is not None:
            self.last_byte_time = mtime

    def _open_and_rescan(self) -> tuple[int, MarkerScanner, list[MarkerSeen], float | None]:
        """Blocking: open the log and scan what it holds (an hvagent restart): markers
        already there are found again, stamped with their segment's modification time."""
        end = self._log.open()
        offset = self._log.first
        scanner = MarkerScanner(self._marker_names, start=offset)
        found: list[MarkerSeen] = []
        while offset < end:
            chunk = self._log.read(offset, 1 << 20)
            if not chunk.data:
                break
            if chunk.offset != offset:  # dropped from the log meanwhile
                scanner = MarkerScanner(self._marker_names, start=chunk.offset)
            seen = scanner.feed(chunk.data)
            if seen and len(found) < MAX_MARKERS:
                mtime = self._log.mtime(chunk.offset) or time.time()
                found += [MarkerSeen(m.decode(), at, mtime) for m, at in seen]
            offset = chunk.next_offset
        if offset != end:  # could not read it all: scan on from the end, without a tail
            scanner = MarkerScanner(self._marker_names, start=end)
        return end, scanner, found[:MAX_MARKERS], self._log.mtime(end - 1) if end else None

    @property
    def opened(self) -> bool:
        return self._ring is not None

    @property
    def disk_bytes(self) -> int:
        return self._log.disk_bytes

    def close(self) -> None:
        self._log.close()

    # -- the drain (event loop) ------------------------------------------------------------

    def append(self, data: bytes) -> None:
        assert self._ring is not None and self._scanner is not None, "open() first"
        now = time.time()
        self._ring.write(data)
        self._log.append(data)
        self.end += len(data)
        self.last_byte_time = now
        for marker, offset in self._scanner.feed(data):
            seen = MarkerSeen(marker.decode(), offset, now)
            if len(self.markers) < MAX_MARKERS:
                self.markers.append(seen)
            if self._on_marker is not None:
                self._on_marker(self, seen)
        self._wake()

    def set_live(self, live: bool) -> None:
        self.live = live
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    # -- readers ---------------------------------------------------------------------------

    async def read(self, offset: int, size: int) -> Chunk:
        """Up to `size` bytes from `offset` (<= end): from the ring when it still holds
        them, else from the log on a worker thread."""
        await self.open()
        assert self._ring is not None
        data = self._ring.read(offset, size)
        if data is not None:
            return Chunk(offset, data, self.end)
        chunk = await asyncio.to_thread(self._log.read, offset, size)
        if not chunk.data and chunk.offset < self._ring.start:  # the log stopped (disk)
            data = self._ring.read(self._ring.start, size) or b""
            return Chunk(self._ring.start, data, self.end)
        return chunk

    def eof(self, offset: int) -> bool:
        return not self.live and offset >= self.end

    async def wait_beyond(self, offset: int) -> None:
        """Return once there are bytes past `offset` or the stream ended."""
        while offset >= self.end and self.live:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bytes": self.end,
            "lastByteTime": self.last_byte_time,
            "markers": [m.to_wire() for m in self.markers],
        }
