"""Guest info in VDSM's shape (reference/vdsm.md §7.2, "guest agent data") from what the
QEMU guest agent told libvirt (port.GuestInfo).

Pure: `to_wire` gives every field, with VDSM's defaults for the parts the agent did not
answer. Everything here comes from inside the guest, so it is bounded: strings are cut to
MAX_TEXT characters (NULs dropped) and lists to MAX_ITEMS entries, whatever the guest sends.

Shapes: `guestIPs` the addresses of every interface but `lo`, space-separated;
`guestFQDN` and `guestName` the agent's host name; `guestOs` the kernel release and
`guestOsInfo` {type, arch, kernel, distribution, version, codename}; `guestTimezone`
{zone, offset (minutes east of UTC)}; `netIfaces` [{name, hw, inet, inet6}]; `disksUsage`
[{path, fs, total, used}] (bytes as strings); `username` the logged-in users, comma-
separated, and `session` "UserLoggedOn" / "LoggedOff" ("Unknown" while not known);
`guestCPUCount` the guest's online vCPUs (-1 while not known).
"""

from __future__ import annotations

from typing import Any

from agent.virt.port import GuestInfo

MAX_TEXT = 255
MAX_ITEMS = 64


def _text(value: Any) -> str:
    return str(value).replace("\0", "")[:MAX_TEXT] if value is not None else ""


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _count(info: dict[str, Any], key: str) -> int:
    return max(0, min(MAX_ITEMS, _int(info.get(key))))


def _os(info: dict[str, Any]) -> dict[str, str]:
    if not any(k.startswith("os.") for k in info):
        return {}
    return {
        "type": "windows" if info.get("os.id") == "mswindows" else "linux",
        "arch": _text(info.get("os.machine", "")),
        "kernel": _text(info.get("os.kernel-release", "")),
        "distribution": _text(info.get("os.name", "")),
        "version": _text(info.get("os.version-id", "")),
        "codename": _text(info.get("os.variant-id", "")),
    }


def _users(info: dict[str, Any]) -> tuple[str, str]:
    if "user.count" not in info:
        return "Unknown", "Unknown"
    names = (_text(info.get(f"user.{i}.name")) for i in range(_count(info, "user.count")))
    users = list(dict.fromkeys(n for n in names if n))
    return ", ".join(users), "UserLoggedOn" if users else "LoggedOff"


def _disks_usage(info: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for i in range(_count(info, "fs.count")):
        k = f"fs.{i}."
        if k + "total-bytes" not in info:
            continue  # the agent could not stat it
        out.append(
            {
                "path": _text(info.get(k + "mountpoint")),
                "fs": _text(info.get(k + "fstype")),
                "total": str(max(0, _int(info.get(k + "total-bytes")))),
                "used": str(max(0, _int(info.get(k + "used-bytes")))),
            }
        )
    return out


def _net(g: GuestInfo) -> tuple[list[dict[str, Any]], str]:
    ifaces, ips = [], []
    for iface in g.interfaces[:MAX_ITEMS]:
        if iface.name == "lo":
            continue
        inet = [_text(a.address) for a in iface.addresses[:MAX_ITEMS] if a.family == "ipv4"]
        inet6 = [_text(a.address) for a in iface.addresses[:MAX_ITEMS] if a.family == "ipv6"]
        ifaces.append(
            {"name": _text(iface.name), "hw": _text(iface.hwaddr), "inet": inet, "inet6": inet6}
        )
        ips += inet + inet6
    return ifaces, " ".join(ips)


def to_wire(g: GuestInfo) -> dict[str, Any]:
    """Every guest-agent field VM stats carry, from one answer."""
    info = g.info
    host = _text(info.get("hostname", ""))
    os_info = _os(info)
    username, session = _users(info)
    net_ifaces, guest_ips = _net(g)
    out: dict[str, Any] = {
        "guestIPs": guest_ips,
        "guestFQDN": host,
        "guestName": host,
        "guestOs": os_info.get("kernel", ""),
        "guestOsInfo": os_info,
        "guestTimezone": {},
        "netIfaces": net_ifaces,
        "disksUsage": _disks_usage(info),
        "username": username,
        "session": session,
        "guestCPUCount": g.cpu_count if g.cpu_count is not None else -1,
    }
    if "timezone.offset" in info:
        out["guestTimezone"] = {
            "zone": _text(info.get("timezone.name", "")),
            "offset": _int(info["timezone.offset"]) // 60,
        }
    return out


UNKNOWN = to_wire(GuestInfo(info={}))
