"""RingBuffer: the most recent bytes of a stream, bounded, addressed by stream offset."""

from __future__ import annotations


class RingBuffer:
    """Keeps the last `capacity` bytes written. Offsets count from the stream's start (the
    first `write` continues at `start`, e.g. a log's size after a restart)."""

    def __init__(self, capacity: int, start: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf = bytearray(capacity)
        self._cap = capacity
        self.end = start  # offset of the next byte written
        self._len = 0  # bytes held (<= capacity)

    @property
    def start(self) -> int:
        """Offset of the oldest byte held."""
        return self.end - self._len

    def write(self, data: bytes) -> None:
        n = len(data)
        if n > self._cap:  # only the last `capacity` bytes can be kept
            self.end += n - self._cap
            data = memoryview(data)[n - self._cap :]
            n = self._cap
        pos = self.end % self._cap
        first = min(n, self._cap - pos)
        self._buf[pos : pos + first] = data[:first]
        if first < n:
            self._buf[: n - first] = data[first:]
        self.end += n
        self._len = min(self._cap, self._len + n)

    def read(self, offset: int, size: int) -> bytes | None:
        """Up to `size` bytes from `offset`; b"" at the end; None when `offset` is older than
        what the ring holds (read the log) or beyond the end."""
        if offset < self.start or offset > self.end:
            return None
        size = min(size, self.end - offset)
        pos = offset % self._cap
        first = min(size, self._cap - pos)
        out = bytes(self._buf[pos : pos + first])
        if first < size:
            out += bytes(self._buf[: size - first])
        return out
