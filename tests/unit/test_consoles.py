from datetime import UTC, datetime

import pytest

from agent import consoles, domxml, errors
from agent.consoles import ConnAction, GraphicsInfo
from agent.logs import Secret

# Live XML as libvirt 9.0 + QEMU 7.2 reported it for a VM with SPICE and VNC.
LIVE = """<domain type='qemu'><name>x</name><devices>
<graphics type='spice' port='5900' autoport='yes' listen='127.0.0.1'
          passwdValidTo='1970-01-01T00:00:01'>
  <listen type='address' address='127.0.0.1'/>
</graphics>
<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1' keymap='en-us'
          passwdValidTo='1970-01-01T00:00:01'>
  <listen type='address' address='127.0.0.1'/>
</graphics>
</devices></domain>"""


def test_valid_to():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert consoles.valid_to(now, 120) == "2026-01-02T03:06:05"
    assert consoles.valid_to(now, 0) is None
    assert consoles.valid_to(now, -5) is None


def test_vnc_password_limit_never_echoes_the_password():
    consoles.check_password("vnc", Secret("12345678"))
    consoles.check_password("spice", Secret("a-much-longer-password"))
    with pytest.raises(errors.InvalidParams) as exc:
        consoles.check_password("vnc", Secret("hunter2hunter2"))
    assert exc.value.data["param"] == "password"
    assert "hunter2" not in str(exc.value.to_wire())


def test_connected_policy():
    assert consoles.connected_policy("spice", ConnAction.DISCONNECT) == "disconnect"
    assert consoles.connected_policy("spice", None) is None
    assert consoles.connected_policy("vnc", ConnAction.DISCONNECT) is None


def test_ticket_element_keeps_live_identity():
    live = domxml.parse(LIVE).find("devices/graphics[@type='vnc']")
    el = consoles.ticket_element(live, Secret("pw"), "2030-01-01T00:00:00", None)
    assert el.get("port") == "5901" and el.get("keymap") == "en-us"
    assert el.find("listen").get("address") == "127.0.0.1"
    assert (el.get("passwd"), el.get("passwdValidTo")) == ("pw", "2030-01-01T00:00:00")
    assert "connected" not in el.attrib
    assert live.get("passwd") is None  # the live element is not modified
    forever = consoles.ticket_element(live, Secret("pw"), None, None)
    assert "passwdValidTo" not in forever.attrib


def test_spice_ticket_element_connected():
    live = domxml.parse(LIVE).find("devices/graphics[@type='spice']")
    el = consoles.ticket_element(live, Secret("pw"), None, "disconnect")
    assert el.get("connected") == "disconnect"


def test_report_spice_and_vnc():
    report = consoles.display_report(consoles.read_graphics(domxml.parse(LIVE)))
    assert report == {
        "displayInfo": [
            {"type": "spice", "port": "5900", "tlsPort": "-1", "ipAddress": "127.0.0.1"},
            {"type": "vnc", "port": "5901", "tlsPort": "", "ipAddress": "127.0.0.1"},
        ],
        "displayType": "qxl",
        "displayPort": "5900",
        "displaySecurePort": "-1",
        "additionalDisplayPort": "5901",
        "displayIp": "127.0.0.1",
    }


def test_report_vnc_only_and_tls():
    vnc = consoles.display_report([GraphicsInfo("vnc", 5905, None, "0.0.0.0")])
    assert (
        vnc["displayType"],
        vnc["displayPort"],
        vnc["displaySecurePort"],
        vnc["additionalDisplayPort"],
    ) == ("vnc", "5905", "-1", "")
    spice = consoles.display_report([GraphicsInfo("spice", 5900, 5901, None)])
    assert (spice["displayPort"], spice["displaySecurePort"], spice["displayIp"]) == (
        "5900",
        "5901",
        "0",
    )


def test_report_headless_and_not_running():
    assert consoles.display_report([]) == {"displayInfo": []}
    defined = domxml.parse(
        "<domain><devices><graphics type='vnc' port='-1' autoport='yes'/></devices></domain>"
    )
    report = consoles.display_report(consoles.read_graphics(defined))
    assert report["displayPort"] == "-1" and report["displayIp"] == "0"
