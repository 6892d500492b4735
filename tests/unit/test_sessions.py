"""Pure session bookkeeping and the disconnect policy."""

from __future__ import annotations

from agent.consoles import GraphicsInfo
from agent.sessions import DisconnectAction, DisconnectPolicy, Sessions, console_of

SPICE = GraphicsInfo("spice", 5900, 5901, "0.0.0.0")
VNC = GraphicsInfo("vnc", 5902, None, "0.0.0.0")


def test_console_of_matches_plain_and_tls_ports():
    both = (SPICE, VNC)
    assert [console_of(both, p) for p in (5900, 5901, 5902)] == ["spice", "spice", "vnc"]
    assert console_of(both, 6000) == "unknown"
    assert console_of(both, None) == "unknown"
    assert console_of((VNC,), None) == "vnc"  # a Unix socket client of the only console


def test_spice_sessions_are_client_hosts_and_vnc_sessions_connections():
    s = Sessions()
    for port in (1, 2, 3):
        s.opened("spice", "10.0.0.1", port)
    s.opened("vnc", "10.0.0.1", 4)
    s.opened("vnc", "10.0.0.1", 5)
    assert s.counts(["spice", "vnc"]) == {"spice": 1, "vnc": 2}
    assert s.total == 5 and s.client_ip == "10.0.0.1"
    s.opened("spice", "10.0.0.2", 6)
    assert s.count("spice") == 2 and s.client_ip == "10.0.0.2"
    assert s.closed("spice", "10.0.0.2", 6)
    assert not s.closed("spice", "10.0.0.2", 6)  # closing twice, or never opened
    assert s.client_ip == "10.0.0.1"
    assert s.counts([]) == {"spice": 1, "vnc": 2}  # types with clients are always listed
    s.clear()
    assert s.total == 0 and s.client_ip == "" and s.counts(["vnc"]) == {"vnc": 0}


def test_policy_deadline():
    now = 1000.0
    assert DisconnectPolicy().deadline(now, 5) is None
    assert DisconnectPolicy(DisconnectAction.LOCK_SCREEN, 3).deadline(now, 5) is None
    assert DisconnectPolicy(DisconnectAction.SHUTDOWN, 0).deadline(now, 5) == 1005
    assert DisconnectPolicy(DisconnectAction.REBOOT, 2).deadline(now, 5) == 1120
