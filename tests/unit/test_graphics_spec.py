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
    assert (g.listen_address, g.tls) == ("10.0.0.5", False)
    (g,) = graphics({"type": "graphics", "device": "vnc", "specParams": {"displayIp": "1.2.3.4"}})
    assert g.listen_address == "1.2.3.4"


NETWORKS = {"ovirtmgmt": "192.0.2.1", "display": "fd00::5"}


def test_display_network_is_the_hosts_address_on_that_network():
    def on(*devices, **top):
        params = {"vmId": str(VM), "memSize": 64, "devices": list(devices), **top}
        return vmparams.from_params(VM, params, PLAIN, NETWORKS.get).graphics

    (g,) = on({"type": "graphics", "device": "spice"}, displayNetwork="ovirtmgmt")
    assert g.listen_address == "192.0.2.1"
    # the device's own displayNetwork wins over the legacy top-level one
    dev = {"type": "graphics", "device": "vnc", "specParams": {"displayNetwork": "display"}}
    (g,) = on(dev, displayNetwork="ovirtmgmt")
    assert g.listen_address == "fd00::5"
    with pytest.raises(errors.CreateFailed) as exc:
        on({"type": "graphics", "device": "vnc", "specParams": {"displayNetwork": "blue"}})
    assert exc.value.data["param"] == "devices[0].specParams.displayNetwork"
    assert exc.value.data["network"] == "blue" and "'blue'" in exc.value.reason
    with pytest.raises(errors.CreateFailed) as exc:  # never a path or option to the lookup
        on({"type": "graphics", "device": "vnc"}, displayNetwork="../../etc")
    assert exc.value.data["param"] == "displayNetwork"


def test_secure_channels_without_tls_are_plain_and_reported():
    (g,) = graphics(
        {
            "type": "graphics",
            "device": "spice",
            "specParams": {"spiceSecureChannels": "smain,sinputs"},
        }
    )
    assert g.secure_channels == () and not g.tls
    assert g.insecure_channels == ("main", "inputs")
    assert g.insecure_param == "devices[0].specParams.spiceSecureChannels"
    (g,) = graphics(display="qxlnc", spiceSecureChannels="smain")
    assert g.type == "spice" and g.insecure_param == "spiceSecureChannels"
    (g,) = graphics(
        {"type": "graphics", "device": "spice", "specParams": {"spiceSecureChannels": "main"}},
        cfg=TLS,
    )
    assert g.secure_channels == ("main",) and g.insecure_channels == ()


def test_unsupported_display_types_are_code_9_naming_the_field():
    with pytest.raises(errors.CreateFailed) as exc:
        graphics(display="sdl")
    assert exc.value.code == 9 and exc.value.data["param"] == "display"
    with pytest.raises(errors.CreateFailed) as exc:
        graphics({"type": "graphics", "device": "rdp"})
    assert exc.value.data["param"] == "devices[0].device"


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
    ],
)
def test_refused_console_requests_name_the_field(devices, top, cfg, param):
    with pytest.raises(errors.InvalidParams) as exc:
        graphics(*devices, cfg=cfg, **top)
    assert exc.value.data["param"] == param
