"""STOMP 1.2 frames as bytes: an incremental, sans-I/O decoder and the encoder.

`Decoder.feed(data)` takes whatever bytes arrived and returns the client frames completed so
far; state is kept across calls, so a frame may arrive split anywhere and no byte is scanned
twice. EOLs between frames (heart-beats) are skipped. Every limit is hard: a command longer
than `max_command` or not a client command, more than `max_headers` headers, a header block
over `max_header_bytes`, a body over `max_body`, a `content-length` that is not digits, or a
body not followed by NUL raise `FrameError` (fixed text, never the caller's bytes); the
server answers ERROR and closes.

Header rules (stomp.md §4): UTF-8, split at the first `:`, `\\\\ \\n \\r \\c` decoded except
in CONNECT/STOMP (unknown escapes stay literal, the engine's Java client never escapes), the
first of repeated headers wins. `encode` escapes `\\ : CR LF` except in CONNECTED, and always
writes `content-length` on MESSAGE and ERROR (the Java client needs it).
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_COMMANDS = frozenset(
    {
        "CONNECT",
        "STOMP",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
    }
)
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})
_UNESCAPED = frozenset({"CONNECT", "STOMP", "CONNECTED"})
_ESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\c": ":"}


class FrameError(Exception):
    """A frame breaks the protocol or a limit. The message is fixed text, safe for ERROR."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_command: int = 32
    max_headers: int = 64
    max_header_bytes: int = 64 * 1024
    max_body: int = 32 * 1024 * 1024


@dataclass(slots=True)
class Frame:
    command: str
    headers: dict[str, str]
    body: bytes = b""


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _ESCAPES:
            out.append(_ESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _escape(text: str) -> str:
    if not any(c in text for c in "\\:\r\n"):
        return text
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")


class Decoder:
    """Client frames out of a byte stream, one `feed` at a time (`commands=SERVER_COMMANDS`:
    a client's decoder)."""

    def __init__(
        self, limits: Limits | None = None, commands: frozenset[str] = CLIENT_COMMANDS
    ) -> None:
        self.limits = limits or Limits()
        self._commands = commands
        self._buf = bytearray()
        self._reset()

    def _reset(self) -> None:
        self._scan = 0  # where the next search for "\n" (headers) or NUL (body) starts
        self._command: str | None = None
        self._headers: dict[str, str] = {}
        self._count = 0
        self._body_len: int | None = None  # content-length, once the headers are complete
        self._in_body = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        if not self._in_body:
            if self._command is None:
                self._skip_eols()
            if not self._read_headers():
                return None
        return self._read_body()

    def _skip_eols(self) -> None:
        buf = self._buf
        i = 0
        n = len(buf)
        while i < n:
            if buf[i] == 0x0A:
                i += 1
            elif buf[i] == 0x0D and i + 1 < n and buf[i + 1] == 0x0A:
                i += 2
            else:
                break
        if i:
            del buf[:i]

    def _read_headers(self) -> bool:
        """Consume header lines; True once the blank line ending the block was read."""
        buf = self._buf
        limits = self.limits
        while True:
            end = buf.find(b"\n", self._scan)
            if end < 0:
                pending = len(buf) - self._scan
                if self._command is None and len(buf) > limits.max_command + 1:
                    raise FrameError("command too long")
                if self._scan + pending > limits.max_header_bytes:
                    raise FrameError("header block too large")
                return False
            if end > limits.max_header_bytes:
                raise FrameError("header block too large")
            line = bytes(buf[self._scan : end])
            self._scan = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._command is None:
                self._set_command(line)
                continue
            if not line:
                return True
            self._add_header(line)

    def _set_command(self, line: bytes) -> None:
        if len(line) > self.limits.max_command:
            raise FrameError("command too long")
        command = line.decode("ascii", "replace")
        if command not in self._commands:
            raise FrameError("unknown command")
        self._command = command

    def _add_header(self, line: bytes) -> None:
        self._count += 1
        if self._count > self.limits.max_headers:
            raise FrameError("too many headers")
        try:
            text = line.decode()
        except UnicodeDecodeError:
            raise FrameError("header is not UTF-8") from None
        key, sep, value = text.partition(":")
        if not sep:
            raise FrameError("header without ':'")
        if self._command not in _UNESCAPED:
            key, value = _unescape(key), _unescape(value)
        self._headers.setdefault(key, value)

    def _read_body(self) -> Frame | None:
        buf = self._buf
        if not self._in_body:
            self._in_body = True
            del buf[: self._scan]
            self._scan = 0
            length = self._headers.get("content-length")
            if length is not None:
                length = length.strip()
                if not length.isdigit() or not length.isascii():
                    raise FrameError("content-length is not a number")
                if len(length) > 12 or int(length) > self.limits.max_body:
                    raise FrameError("frame too large")
                self._body_len = int(length)
        if self._body_len is not None:
            if len(buf) <= self._body_len:
                return None
            if buf[self._body_len] != 0:
                raise FrameError("body not terminated by NUL")
            end = self._body_len
        else:
            end = buf.find(b"\0", self._scan)
            if end < 0:
                self._scan = len(buf)
                if len(buf) > self.limits.max_body:
                    raise FrameError("frame too large")
                return None
            if end > self.limits.max_body:
                raise FrameError("frame too large")
        frame = Frame(self._command or "", self._headers, bytes(buf[:end]))
        del buf[: end + 1]
        self._reset()
        return frame


def encode(command: str, headers: list[tuple[str, str]] | tuple = (), body: bytes = b"") -> bytes:
    """One frame as bytes: `\\n` line ends, escaped headers, content-length where needed."""
    escape = command not in _UNESCAPED
    lines = [command]
    for key, value in headers:
        lines.append(f"{_escape(key)}:{_escape(value)}" if escape else f"{key}:{value}")
    needs_length = body or command in ("MESSAGE", "ERROR")
    if needs_length and not any(k == "content-length" for k, _ in headers):
        lines.append(f"content-length:{len(body)}")
    head = "\n".join(lines).encode() + b"\n\n"
    return head + body + b"\0"


def message(destination: str, subscription: str, body: bytes) -> bytes:
    """A MESSAGE in VDSM's header order (destination, content-type, subscription, length)."""
    head = (
        f"MESSAGE\ndestination:{_escape(destination)}\ncontent-type:application/json\n"
        f"subscription:{_escape(subscription)}\ncontent-length:{len(body)}\n\n"
    )
    return head.encode() + body + b"\0"
