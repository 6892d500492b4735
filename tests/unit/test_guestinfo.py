"""Guest info in VDSM's shape (agent/guestinfo.py): every field from a full agent answer,
VDSM's defaults for parts not answered, and hostile guest values bounded."""

from __future__ import annotations

import json

from agent.guestinfo import MAX_ITEMS, MAX_TEXT, UNKNOWN, to_wire
from agent.virt.port import GuestAddress, GuestInfo, GuestInterface

# virDomainGetGuestInfo's typed parameters as libvirt 9 returns them from qemu-ga.
FULL = {
    "hostname": "guest.example.org",
    "os.id": "debian",
    "os.name": "Debian GNU/Linux",
    "os.version-id": "12",
    "os.variant-id": "bookworm",
    "os.kernel-release": "6.1.0-28-cloud-amd64",
    "os.machine": "x86_64",
    "timezone.name": "CET",
    "timezone.offset": 3600,
    "user.count": 3,
    "user.0.name": "root",
    "user.1.name": "alice",
    "user.2.name": "root",
    "fs.count": 2,
    "fs.0.mountpoint": "/",
    "fs.0.fstype": "ext4",
    "fs.0.total-bytes": 10_000_000,
    "fs.0.used-bytes": 4_000_000,
    "fs.1.mountpoint": "/proc",  # no sizes: left out
    "fs.1.fstype": "proc",
}
NICS = (
    GuestInterface("lo", "00:00:00:00:00:00", (GuestAddress("ipv4", "127.0.0.1", 8),)),
    GuestInterface(
        "eth0",
        "52:54:00:57:a7:01",
        (GuestAddress("ipv4", "10.9.8.7", 24), GuestAddress("ipv6", "fe80::1", 64)),
    ),
)


def test_full_answer_in_vdsm_shape():
    out = to_wire(GuestInfo(info=FULL, interfaces=NICS, cpu_count=2))
    assert out == {
        "guestIPs": "10.9.8.7 fe80::1",
        "guestFQDN": "guest.example.org",
        "guestName": "guest.example.org",
        "guestOs": "6.1.0-28-cloud-amd64",
        "guestOsInfo": {
            "type": "linux",
            "arch": "x86_64",
            "kernel": "6.1.0-28-cloud-amd64",
            "distribution": "Debian GNU/Linux",
            "version": "12",
            "codename": "bookworm",
        },
        "guestTimezone": {"zone": "CET", "offset": 60},
        "netIfaces": [
            {
                "name": "eth0",
                "hw": "52:54:00:57:a7:01",
                "inet": ["10.9.8.7"],
                "inet6": ["fe80::1"],
            }
        ],
        "disksUsage": [{"path": "/", "fs": "ext4", "total": "10000000", "used": "4000000"}],
        "username": "root, alice",
        "session": "UserLoggedOn",
        "guestCPUCount": 2,
    }


def test_parts_not_answered_keep_vdsm_defaults():
    assert UNKNOWN["guestCPUCount"] == -1 and UNKNOWN["username"] == "Unknown"
    assert UNKNOWN["session"] == "Unknown" and UNKNOWN["guestIPs"] == ""
    assert UNKNOWN["netIfaces"] == [] and UNKNOWN["disksUsage"] == []
    assert UNKNOWN["guestOsInfo"] == {} and UNKNOWN["guestTimezone"] == {}
    nobody = to_wire(GuestInfo(info={"user.count": 0}))
    assert (nobody["username"], nobody["session"]) == ("", "LoggedOff")
    windows = to_wire(GuestInfo(info={"os.id": "mswindows", "os.kernel-release": "10.0"}))
    assert windows["guestOsInfo"]["type"] == "windows" and windows["guestOs"] == "10.0"


def test_hostile_guest_values_are_bounded():
    huge = "x" * 2_000_000
    info = {
        "hostname": "a\0b" + huge,
        "user.count": 10**9,
        "user.0.name": huge,
        "fs.count": "not a number",
        "timezone.offset": "garbage",
    }
    many = tuple(
        GuestInterface(f"eth{i}", huge, (GuestAddress("ipv4", huge, 24),)) for i in range(1000)
    )
    out = to_wire(GuestInfo(info=info, interfaces=many))
    assert out["guestFQDN"] == "ab" + "x" * (MAX_TEXT - 2)
    assert out["username"] == "x" * MAX_TEXT
    assert len(out["netIfaces"]) == MAX_ITEMS
    assert all(len(i["hw"]) == MAX_TEXT for i in out["netIfaces"])
    assert out["disksUsage"] == [] and out["guestTimezone"]["offset"] == 0
    assert len(json.dumps(out)) < 100_000
