"""ChannelLog: one channel's bytes on disk, append-only, size-capped, resumable.

Files: `<log dir>/<vmId>/<file>.<offset>` where `<file>` is the channel's socket file name
(its name, or a hash for odd names: domxml/devices/channel.py) and `<offset>` (20 digits)
the stream offset of the segment's first byte. A segment grows to a quarter of
`max_bytes`; then a new one starts, and the oldest are deleted while the total is over
`max_bytes` (the newest output, where a failure shows, is what a post-mortem needs).
Reopening (an hvagent restart) continues at the last segment's end: offsets go on and
nothing is written twice. Writes are plain `os.write` to the page cache (no fsync: a crash
of hvagent loses nothing written; a host crash may lose the last seconds); reads are
blocking `pread`s that callers run on a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_DIGITS = 20
DIR_MODE = 0o750
FILE_MODE = 0o640


@dataclass(frozen=True)
class Chunk:
    """Bytes read from a channel: `offset` is where `data` starts (later than asked when the
    bytes asked for were dropped from the log), `end` the channel's end when read."""

    offset: int
    data: bytes
    end: int

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.data)


class SegmentLog:
    def __init__(self, directory: str, file: str, max_bytes: int) -> None:
        self.dir = Path(directory)
        self._file = file
        self._pattern = re.compile(re.escape(file) + rf"\.(\d{{{_DIGITS}}})")
        self._max = max_bytes
        self._segment_max = max(1, max_bytes // 4)
        self._segments: list[tuple[int, int]] = []  # (start offset, size), oldest first
        self._fd: int | None = None
        self.failed = False  # a write failed: the log stopped, the ring goes on

    # -- blocking: open and read (worker thread) -------------------------------------------

    def open(self) -> int:
        """Find the segments on disk, open the newest for appending; returns the end offset.
        A log that cannot be opened is logged and stays off: the ring alone serves."""
        try:
            self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            found = []
            for entry in os.scandir(self.dir):
                m = self._pattern.fullmatch(entry.name)
                if m and entry.is_file(follow_symlinks=False):
                    found.append((int(m.group(1)), entry.stat(follow_symlinks=False).st_size))
            self._segments = sorted(found) or [(0, 0)]
            self._open_fd(self._segments[-1][0])
        except OSError as exc:
            self.failed = True
            self._segments = self._segments or [(0, 0)]
            log.error("channel log %s/%s: cannot open (ring only): %s", self.dir, self._file, exc)
        return self.end

    def _name(self, start: int) -> Path:
        return self.dir / f"{self._file}.{start:0{_DIGITS}d}"

    def _open_fd(self, start: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(self._name(start), flags, FILE_MODE)

    @property
    def end(self) -> int:
        start, size = self._segments[-1] if self._segments else (0, 0)
        return start + size

    @property
    def first(self) -> int:
        return self._segments[0][0] if self._segments else 0

    @property
    def disk_bytes(self) -> int:
        return sum(size for _, size in self._segments)

    def read(self, offset: int, size: int) -> Chunk:
        """Up to `size` bytes from `offset` (or from the oldest byte kept, if later)."""
        segments = list(self._segments)  # a snapshot: the loop may append meanwhile
        if not segments:
            return Chunk(offset, b"", 0)
        end = segments[-1][0] + segments[-1][1]
        begin = pos = min(max(offset, segments[0][0]), end)
        parts: list[bytes] = []
        got = 0
        for start, seg_size in segments:
            if pos >= start + seg_size:
                continue
            if got >= size:
                break
            want = min(size - got, start + seg_size - pos)
            try:
                fd = os.open(self._name(start), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:  # dropped meanwhile (or unreadable): go on from the next one
                if got:
                    break
                begin = pos = start + seg_size
                continue
            try:
                data = os.pread(fd, want, pos - start)
            finally:
                os.close(fd)
            parts.append(data)
            got += len(data)
            pos += len(data)
            if len(data) < want:
                break
        return Chunk(begin, b"".join(parts), end)

    # -- the drain's path (event loop: page-cache writes) ----------------------------------

    def append(self, data: bytes) -> None:
        if self._fd is None or self.failed:
            return
        try:
            view = memoryview(data)
            while view:
                start, size = self._segments[-1]
                room = self._segment_max - size
                if room <= 0:
                    self._roll()
                    continue
                n = os.write(self._fd, view[:room])
                self._segments[-1] = (start, size + n)
                view = view[n:]
        except OSError as exc:
            self.failed = True
            log.error("channel log %s stopped (the ring buffer goes on): %s", self.dir, exc)

    def _roll(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        end = self.end
        self._segments.append((end, 0))
        self._open_fd(end)
        # the new segment will fill up: make room for it now
        while len(self._segments) > 1 and self.disk_bytes + self._segment_max > self._max:
            start, _ = self._segments.pop(0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._name(start))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def mtime(self, offset: int) -> float | None:
        """Blocking: the modification time of the segment holding `offset`."""
        for start, size in reversed(self._segments):
            if start <= offset < start + max(size, 1):
                try:
                    return os.stat(self._name(start)).st_mtime
                except OSError:
                    return None
        return None
