"""Console tickets and port reporting: pure functions over graphics elements and values.

- Tickets: password rules, `passwdValidTo` arithmetic, the `connected=` policy, and the
  `<graphics>` element for a live update, built from the live element (libvirt refuses an
  update whose port, listen or keymap differ from what runs).
- Reporting: VDSM's display fields (`displayPort`, `displaySecurePort`,
  `additionalDisplayPort`, `displayType`, `displayIp`, `displayInfo`) from what libvirt's live
  XML says; hvagent never chooses ports.
No asyncio, no libvirt: the VM owner reads live XML, calls these, and updates through the port.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lxml import etree

from agent.errors import InvalidParams
from agent.logs import Secret

# An already-expired ticket: consoles are locked until the engine sets one (reference §3.2).
# libvirt drops passwdValidTo when passwd is absent, so a placeholder password goes with it.
EXPIRED = "1970-01-01T00:00:01"
LOCKED_PASSWORD = "*****"
VNC_MAX_PASSWORD = 8
MAX_PASSWORD = 1024  # longer than any console honours; the wire check's cap for passwords
MAX_TTL_S = 10 * 365 * 86400  # ten years: the longest ticket lifetime hvagent accepts
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # libvirt's passwdValidTo: UTC, no zone suffix


class ConnAction(StrEnum):
    """What happens to a client already connected when the ticket changes (SPICE only)."""

    KEEP = "keep"
    DISCONNECT = "disconnect"
    FAIL = "fail"


def valid_to(now_utc: datetime, ttl_s: int) -> str | None:
    """`passwdValidTo` for a ticket set at `now_utc` (naive or aware UTC).

    ttl > 0: expires ttl seconds from now. ttl <= 0: no expiry (None: the attribute is
    removed). VDSM instead keeps whatever expiry the live XML had, which is accidental.
    """
    if ttl_s <= 0:
        return None
    try:
        return (now_utc + timedelta(seconds=min(ttl_s, MAX_TTL_S))).strftime(_TIME_FORMAT)
    except OverflowError:  # a clock near year 9999: the furthest time libvirt can be told
        return datetime.max.strftime(_TIME_FORMAT)


def check_password(console_type: str, password: Secret, param: str = "password") -> None:
    """Refuse passwords the console cannot honour (the VNC length limit; wire text rules are
    `agent.wirevalues.check`'s, applied where the password is read); never echoes the value."""
    if console_type == "vnc" and len(password.reveal()) > VNC_MAX_PASSWORD:
        raise InvalidParams(
            f"VNC passwords are limited to {VNC_MAX_PASSWORD} characters "
            f"(got {len(password.reveal())}); libvirt refuses longer ones",
            param=param,
        )


def connected_policy(console_type: str, action: ConnAction | None) -> str | None:
    """The `connected=` attribute: SPICE honours keep/disconnect/fail; VNC supports only
    keeping existing clients, so nothing is set for it (documented, not an error)."""
    if console_type != "spice" or action is None:
        return None
    return str(action)


def ticket_element(
    live: etree._Element, password: Secret, expiry: str | None, connected: str | None
) -> etree._Element:
    """The update element: the live `<graphics>` as is, with the new ticket on it."""
    el = copy.deepcopy(live)
    el.set("passwd", password.reveal())
    if expiry is None:
        el.attrib.pop("passwdValidTo", None)
    else:
        el.set("passwdValidTo", expiry)
    if connected is None:
        el.attrib.pop("connected", None)
    else:
        el.set("connected", connected)
    return el


@dataclass(frozen=True)
class GraphicsInfo:
    """One console as libvirt runs it. Ports are None until libvirt assigned them."""

    type: str
    port: int | None
    tls_port: int | None
    address: str | None


def _port(value: str | None) -> int | None:
    if value is None or not value.lstrip("-").isdigit() or int(value) <= 0:
        return None
    return int(value)


def read_graphics(domain: etree._Element) -> list[GraphicsInfo]:
    """Every `<graphics>` of a domain, in document order. Missing parts are None, never an
    error: a `<graphics>` without `<listen>` must not break stats (reference §13.6)."""
    out = []
    for g in domain.iterfind("devices/graphics"):
        listen = g.find("listen")
        address = listen.get("address") if listen is not None else None
        out.append(
            GraphicsInfo(
                type=g.get("type", ""),
                port=_port(g.get("port")),
                tls_port=_port(g.get("tlsPort")),
                address=address or g.get("listen"),
            )
        )
    return out


def _s(port: int | None) -> str:
    return str(port) if port is not None else "-1"


_DISPLAY_TYPE = {"spice": "qxl", "vnc": "vnc"}


def display_report(
    consoles: list[GraphicsInfo], sessions: Callable[[str], int] | None = None
) -> dict[str, Any]:
    """VDSM's display fields for stats, getInfo and status events.

    Headless: only `displayInfo: []`. Otherwise the "Multiple Consoles" rule: the primary
    console is SPICE when present, else VNC; `additionalDisplayPort` is the VNC port when
    both exist, "" otherwise; ports read "-1" until libvirt assigned them. With `sessions`
    (console type -> open sessions) each displayInfo entry also says `sessions` (hvagent's).
    """
    info = [
        {
            "type": c.type,
            "port": _s(c.port),
            "tlsPort": _s(c.tls_port) if c.type == "spice" else "",
            "ipAddress": c.address or "0",
            **({"sessions": sessions(c.type)} if sessions is not None else {}),
        }
        for c in consoles
    ]
    if not consoles:
        return {"displayInfo": []}
    spice = next((c for c in consoles if c.type == "spice"), None)
    vnc = next((c for c in consoles if c.type == "vnc"), None)
    primary = spice or vnc or consoles[0]
    return {
        "displayInfo": info,
        "displayType": _DISPLAY_TYPE.get(primary.type, primary.type),
        "displayPort": _s(primary.port),
        "displaySecurePort": _s(spice.tls_port) if spice else "-1",
        "additionalDisplayPort": _s(vnc.port) if spice and vnc else "",
        "displayIp": primary.address or "0",
    }
