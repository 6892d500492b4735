"""MarkerScanner: finds byte markers in a stream read in chunks of any size.

A marker split over two chunks is found once, at the offset of its first byte: the scanner
keeps the last (longest marker - 1) bytes of the stream and searches them joined with each
new chunk, counting only matches that end inside the new chunk.
"""

from __future__ import annotations

from collections.abc import Iterable


class MarkerScanner:
    def __init__(self, markers: Iterable[str | bytes], start: int = 0) -> None:
        self._markers = [m.encode() if isinstance(m, str) else bytes(m) for m in markers]
        self._markers = [m for m in self._markers if m]
        self._keep = max((len(m) for m in self._markers), default=1) - 1
        self._tail = b""
        self._offset = start  # stream offset of the next chunk's first byte

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        """(marker, stream offset) for every marker occurrence ending in `chunk`, in order."""
        base = self._offset
        self._offset += len(chunk)
        if not self._markers:
            return []
        tail = self._tail
        found = []
        for marker in self._markers:
            i = chunk.find(marker)
            while i >= 0:
                found.append((base + i, marker))
                i = chunk.find(marker, i + 1)
            if tail:  # starting in the kept tail, ending in this chunk
                joint = tail + chunk[: len(marker) - 1]
                i = joint.find(marker, max(0, len(tail) - len(marker) + 1))
                while 0 <= i < len(tail):
                    found.append((base - len(tail) + i, marker))
                    i = joint.find(marker, i + 1)
        keep = self._keep
        self._tail = (tail + chunk)[-keep:] if len(chunk) < keep else chunk[len(chunk) - keep :]
        if not keep:
            self._tail = b""
        return [(m, o) for o, m in sorted(found)]
