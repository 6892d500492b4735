"""This host's addresses on its networks: the host-facts seam behind display networks.

An engine names a console's display network by its oVirt name X; VDSM listens on the
address of the host network (the bridge, or the interface, named X). `address_of(X)` answers
that address: the interface's first IPv4 address, else its first global IPv6 address, else
None. Names are checked before any look-up (no path or option can reach the kernel).
Blocking but cheap (one ioctl, one small /proc read): called on the event loop at create.
"""

from __future__ import annotations

import fcntl
import ipaddress
import re
import socket
import struct
from pathlib import Path

_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")  # IFNAMSIZ - 1
_SIOCGIFADDR = 0x8915
_IF_INET6 = Path("/proc/net/if_inet6")


def address_of(name: str) -> str | None:
    if not _IFNAME.match(name) or name in (".", ".."):
        return None
    return _ipv4(name) or _ipv6(name, _read(_IF_INET6))


def _ipv4(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()))
        except OSError:  # no such interface, or no IPv4 address on it
            return None
    return socket.inet_ntoa(packed[20:24])


def _ipv6(name: str, table: str) -> str | None:
    """The first global-scope address of `name` in /proc/net/if_inet6's text."""
    for line in table.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[5] == name and fields[3] == "00":  # scope global
            return str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
