"""Console policy in the spec: listen, keymap, secure channels, one console per type."""

import uuid

import pytest

from agent import errors
from agent.config import VirtConfig
from agent.intake import vmparams

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
PLAIN = VirtConfig(domain_type="qemu", console_log_dir="/logs", graphics_listen="10.0.0.5")
TLS = VirtConfig(domain_type="qemu", console_log_dir="/logs", spice_tls=True)


def graphics(*devices, cfg=PLAIN, **top):
    params = {"vmId": str(VM), "memSize": 64, "devices": list(devices), **top}
    return vmparams.from_params(VM, params, cfg).graphics


def test_listen_policy():
    (g,) = graphics({"type": "graphics", "device": "vnc"})
    assert (g.listen_address, g.listen_network, g.tls) == ("10.0.0.5", None, False)
    (g,) = graphics({"type": "graphics", "device": "vnc", "specParams": {"displayIp": "1.2.3.4"}})
    assert g.listen_address == "1.2.3.4"
    (g,) = graphics({"type": "graphics", "device": "spice"}, displayNetwork="ovirtmgmt")
    assert (g.listen_address, g.listen_network) == (None, "vdsm-ovirtmgmt")


def test_secure_channels_with_tls_strip_legacy_prefix():
    (g,) = graphics(
        {
            "type": "graphics",
            "device": "spice",
            "specParams": {"spiceSecureChannels": "smain,inputs,sdisplay"},
        },
        cfg=TLS,
    )
    assert g.secure_channels == ("main", "inputs", "display") and g.tls


def test_headless_has_no_consoles():
    assert graphics() == ()


@pytest.mark.parametrize(
    ("devices", "top", "cfg", "param"),
    [
        (
            [
                {
                    "type": "graphics",
                    "device": "spice",
                    "specParams": {"spiceSecureChannels": "main"},
                }
            ],
            {},
            PLAIN,
            "devices[0].specParams.spiceSecureChannels",
        ),
        (
            [
                {
                    "type": "graphics",
                    "device": "spice",
                    "specParams": {"spiceSecureChannels": "smain,bogus"},
                }
            ],
            {},
            TLS,
            "devices[0].specParams.spiceSecureChannels",
        ),
        (
            [{"type": "graphics", "device": "spice", "specParams": {"copyPasteEnable": "maybe"}}],
            {},
            PLAIN,
            "devices[0].specParams.copyPasteEnable",
        ),
        (
            [{"type": "graphics", "device": "vnc", "specParams": {"keyMap": "en us;"}}],
            {},
            PLAIN,
            "devices[0].specParams.keyMap",
        ),
        (
            [{"type": "graphics", "device": "vnc"}, {"type": "graphics", "device": "vnc"}],
            {},
            PLAIN,
            "devices[1].device",
        ),
        ([{"type": "graphics", "device": "rdp"}], {}, PLAIN, "devices[0].device"),
        ([], {"display": "sdl"}, PLAIN, "display"),
        (
            [],
            {"display": "qxl", "spiceSecureChannels": "smain"},
            PLAIN,
            "spiceSecureChannels",
        ),
    ],
)
def test_refused_console_requests_name_the_field(devices, top, cfg, param):
    with pytest.raises(errors.InvalidParams) as exc:
        graphics(*devices, cfg=cfg, **top)
    assert exc.value.data["param"] == param
