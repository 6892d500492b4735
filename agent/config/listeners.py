"""Configuration of what hvagent listens on: the HTTP JSON-RPC API, the engine's STOMP
port and its TLS certificates, and the optional read-only metrics listener."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def split_listen(listen: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as '[::1]:PORT') -> (host, port); ValueError when malformed."""
    host, sep, port_s = listen.rpartition(":")
    if not sep or not host or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ValueError(f"listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port_s)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RpcConfig:
    # Plain HTTP: loopback only unless `insecure` (the engine port 54321 is [stomp]'s).
    listen: str = "127.0.0.1:54322"
    # Local Unix socket (same HTTP endpoints; hvagent-client's default); "" disables it.
    socket: str = "/run/hvagent/hvagent.sock"
    # Group owning the socket (mode 0660); "" keeps the daemon's own group (root).
    socket_group: str = ""
    # Allow `listen` on a non-loopback address: plain HTTP, no authentication.
    insecure: bool = False
    # A connection that has not sent a whole request head this long after it opened or after
    # its last response is closed (idle and slow clients); aiohttp's keep-alive timeout.
    idle_timeout_s: float = 15.0
    # A request body not received whole in this time is answered 408.
    body_timeout_s: float = 30.0
    # Open HTTP connections, both listeners together; past it a new one gets 503 and is closed.
    max_connections: int = 512

    def __post_init__(self) -> None:
        split_listen(self.listen)
        if self.idle_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("idle_timeout_s and body_timeout_s must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.socket and not self.socket.startswith("/"):
            raise ValueError("socket must be an absolute path or empty")

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


@dataclass(frozen=True)
class StompConfig:
    # HOST:PORT of the engine transport (STOMP 1.2, JSON-RPC); "" disables it. 54321 is
    # the port the engine is configured with by default.
    listen: str = "0.0.0.0:54321"
    # Mutual TLS per [tls]. false: plain TCP, refused off loopback unless `insecure`.
    tls: bool = True
    insecure: bool = False
    # Hard frame limits; a violation gets an ERROR frame and the connection is closed.
    max_frame_bytes: int = 32 * 1024 * 1024
    max_headers: int = 64
    max_header_bytes: int = 64 * 1024
    # A consumer with more unsent bytes than this is closed (and counted).
    max_pending_bytes: int = 16 * 1024 * 1024
    # Requests running at once per connection; past it, the connection is not read.
    max_in_flight: int = 32
    # After a burst of frames, one "\n" once the connection was idle this long (the
    # engine's Java client can leave a frame unread until more bytes arrive); 0 disables.
    nudge_ms: int = 20

    def __post_init__(self) -> None:
        if self.listen:
            split_listen(self.listen)
        for name in ("max_frame_bytes", "max_headers", "max_header_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_pending_bytes < 64 * 1024 or self.max_in_flight < 1 or self.nudge_ms < 0:
            raise ValueError(
                "max_pending_bytes must be >= 65536, max_in_flight >= 1, nudge_ms >= 0"
            )


@dataclass(frozen=True)
class TlsConfig:
    # PEM files, VDSM's paths: the CA that signs engine (client) certificates, and this
    # host's certificate and key. SIGHUP re-reads them for new connections.
    ca: str = "/etc/pki/vdsm/certs/cacert.pem"
    cert: str = "/etc/pki/vdsm/certs/vdsmcert.pem"
    key: str = "/etc/pki/vdsm/keys/vdsmkey.pem"
    handshake_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.handshake_timeout_s <= 0:
            raise ValueError("handshake_timeout_s must be positive")


@dataclass(frozen=True)
class MetricsConfig:
    # Seconds between libvirt bulk-stats rounds (GET /metrics serves the latest round).
    sample_interval_s: float = 15.0
    # A round longer than this is abandoned; the previous numbers stay, flagged timed out.
    sample_timeout_s: float = 10.0
    # HOST:PORT of a read-only plain HTTP listener with /metrics, /healthz and /readyz only
    # (Prometheus on a management network); "" = off. No verbs: allowed off loopback.
    listen: str = ""

    def __post_init__(self) -> None:
        if self.listen:
            split_listen(self.listen)
        if self.sample_interval_s <= 0:
            raise ValueError("sample_interval_s must be positive")
        if self.sample_timeout_s <= 0:
            raise ValueError("sample_timeout_s must be positive")
