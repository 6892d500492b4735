"""Mutual TLS for hvagent's engine listener: the server SSLContext, its reload, failure reasons.

`ServerTls(cfg)` builds an `ssl.SSLContext` from [tls]: TLS >= 1.2, this host's certificate and
key, and a client certificate required, signed by `ca` (no hostname check: VDSM's clients and
the engine send no SNI and expect none). `current` is the context new connections use;
`reload()` (SIGHUP) builds a fresh one and swaps it in, so established connections keep theirs.
A reload that fails (missing or mismatched files) keeps the previous context and logs why.

`failure_reason(exc)` maps a handshake exception to a fixed, small set of metric labels; never
text from the peer. `subject(peercert)` formats a peer certificate's subject for the log.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from agent.config import TlsConfig

log = logging.getLogger(__name__)

REASONS = (
    "timeout",
    "no_client_cert",
    "bad_cert",
    "protocol_version",
    "not_tls",
    "closed",
    "other",
)


class TlsFilesError(Exception):
    """The configured certificate, key or CA cannot be loaded; the message names the key."""


def build_context(cfg: TlsConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFilesError(
            f"[tls] cert = {cfg.cert!r}, key = {cfg.key!r}: cannot load: {_why(exc)}"
        ) from None
    try:
        ctx.load_verify_locations(cafile=cfg.ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFilesError(f"[tls] ca = {cfg.ca!r}: cannot load: {_why(exc)}") from None
    return ctx


def _why(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "invalid"
    return getattr(exc, "strerror", None) or type(exc).__name__


class ServerTls:
    def __init__(self, cfg: TlsConfig) -> None:
        self.cfg = cfg
        self.current = build_context(cfg)

    def reload(self) -> bool:
        try:
            self.current = build_context(self.cfg)
        except TlsFilesError as exc:
            log.error("TLS reload failed, keeping the previous certificates: %s", exc)
            return False
        log.info("TLS certificates reloaded from %s (new connections)", self.cfg.cert)
        return True


def failure_reason(exc: BaseException) -> str:
    """The label for a failed handshake: one of REASONS."""
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        return "timeout"  # asyncio aborts a handshake past ssl_handshake_timeout this way
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reason or "CERTIFICATE_REQUIRED" in reason:
            return "no_client_cert"
        if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
            return "bad_cert"
        if "PROTOCOL" in reason or "VERSION" in reason or "NO_SHARED_CIPHER" in reason:
            return "protocol_version"
        if "HTTP" in reason or "RECORD" in reason or "PACKET" in reason:
            return "not_tls"
        return "other"
    if isinstance(exc, ConnectionError | EOFError):
        return "closed"
    return "other"


def subject(peercert: dict[str, Any] | None) -> str:
    """'CN=engine,O=Test' from getpeercert()'s nested tuples; '-' when there is none."""
    if not peercert:
        return "-"
    parts = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            short = {"commonName": "CN", "organizationName": "O", "countryName": "C"}.get(key, key)
            parts.append(f"{short}={value}")
    return ",".join(parts) or "-"
