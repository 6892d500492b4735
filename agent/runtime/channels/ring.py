"""RingBuffer: the most recent bytes of a stream, bounded, addressed by stream offset.

Memory grows with the bytes written, up to `capacity`: a quiet channel costs next to
nothing (see bench/channel_memory.py)."""

from __future__ import annotations


class RingBuffer:
    """Keeps the last `capacity` bytes written. Offsets count from the stream's start (the
    first `write` continues at `start`, e.g. a log's size after a restart)."""

    def __init__(self, capacity: int, start: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf = bytearray()  # grows to capacity; then offset o sits at (o - base) % cap
        self._cap = capacity
        self._base = start
        self.end = start  # offset of the next byte written

    @property
    def start(self) -> int:
        """Offset of the oldest byte held."""
        return self.end - len(self._buf)

    def write(self, data: bytes) -> None:
        n = len(data)
        if len(self._buf) + n <= self._cap:  # still growing: the stream in order from base
            self._buf += data
            self.end += n
            return
        if len(self._buf) < self._cap:  # fill up to capacity first
            room = self._cap - len(self._buf)
            self._buf += memoryview(data)[:room]
            self.end += room
            data = memoryview(data)[room:]
            n -= room
        if n > self._cap:  # only the last `capacity` bytes can be kept
            self.end += n - self._cap
            data = memoryview(data)[n - self._cap :]
            n = self._cap
        pos = (self.end - self._base) % self._cap
        first = min(n, self._cap - pos)
        self._buf[pos : pos + first] = data[:first]
        if first < n:
            self._buf[: n - first] = data[first:]
        self.end += n

    def read(self, offset: int, size: int) -> bytes | None:
        """Up to `size` bytes from `offset`; b"" at the end; None when `offset` is older than
        what the ring holds (read the log) or beyond the end."""
        if offset < self.start or offset > self.end:
            return None
        size = min(size, self.end - offset)
        if len(self._buf) < self._cap:
            pos = offset - self._base
            return bytes(self._buf[pos : pos + size])
        pos = (offset - self._base) % self._cap
        first = min(size, self._cap - pos)
        out = bytes(self._buf[pos : pos + first])
        if first < size:
            out += bytes(self._buf[: size - first])
        return out
