"""Consoles in vmParams: graphics devices, the legacy top-level `display`, and host policy.

`read_graphics(dev)` keeps a graphics device's specParams as sent; `consoles(f, graphics,
virt)` adds the device the legacy keys describe (when there is none) and resolves each
console against host policy: listen address or network, keymap, secure channels and TLS
(reference §3.1, §3.3). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from agent import wirevalues
from agent.config import VirtConfig
from agent.errors import CreateFailed, InvalidParams
from agent.intake.fields import Fields
from agent.spec import SPICE_CHANNELS, GraphicsSpec
from agent.wirevalues import check, parse_bool

# Legacy top-level keys copied into a synthesised device's specParams (reference §3.1).
_LEGACY_KEYS = {
    "keyboardLayout": "keyMap",
    "displayNetwork": "displayNetwork",
    "spiceSecureChannels": "spiceSecureChannels",
    "copyPasteEnable": "copyPasteEnable",
    "fileTransferEnable": "fileTransferEnable",
}
_NETWORK = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_LEGACY_DISPLAY = {"vnc": "vnc", "qxl": "spice", "qxlnc": "spice"}


def _display_kind(f: Fields, key: str, kinds: dict[str, str]) -> str | None:
    """A display type; one hvagent does not know is VDSM's createErr (9), naming it."""
    value = f.str_(key, required=key == "device")
    if value is None or value in kinds:
        return kinds.get(value) if value is not None else None
    raise CreateFailed(
        f"{f.name(key)}: unsupported display type {wirevalues.echo(value)} "
        f"(supported: {', '.join(kinds)})",
        param=f.name(key),
    )


def read_graphics(dev: Fields) -> GraphicsSpec:
    kind = _display_kind(dev, "device", {"spice": "spice", "vnc": "vnc"})
    assert kind is not None
    sp = dev.obj("specParams")
    pairs = []
    for key in sorted(sp.field_names()):
        value = sp.raw(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int):
            raise sp.bad(key, "expected a string")
        pairs.append((key, check(str(value), sp.name(key))))
    return GraphicsSpec(kind, tuple(pairs), source=dev.name("specParams").rsplit(".", 1)[0])


# The host's address on a network (bridge/interface) named like the engine's network, or
# None: the host-facts seam (agent/hostnet.py on a real host, a mapping in tests).
AddressOf = Callable[[str], str | None]


def no_networks(name: str) -> str | None:
    return None


def consoles(
    f: Fields, graphics: list[GraphicsSpec], virt: VirtConfig, address_of: AddressOf = no_networks
) -> tuple[GraphicsSpec, ...]:
    """The VM's consoles: its graphics devices (or the legacy `display` one), resolved."""
    display = _display_kind(f, "display", _LEGACY_DISPLAY)
    if display is not None and not graphics:  # graphics devices win (reference §3.1)
        graphics = [_legacy_display(f, display)]
    legacy_network = f.str_("displayNetwork")
    return tuple(_resolve(g, virt, legacy_network, address_of) for g in graphics)


def _legacy_display(f: Fields, kind: str) -> GraphicsSpec:
    """Legacy top-level `display` (vnc|qxl): one graphics device of that kind, its fields
    from the legacy top-level keys."""
    pairs = []
    for legacy, key in sorted(_LEGACY_KEYS.items(), key=lambda kv: kv[1]):
        value = f.raw(legacy) if f.has(legacy) else None
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise f.bad(legacy, "expected a string")
        pairs.append((key, check(value, f.name(legacy))))
    return GraphicsSpec(kind, tuple(pairs), source="display")


def _resolve(
    g: GraphicsSpec, virt: VirtConfig, legacy_network: str | None, address_of: AddressOf
) -> GraphicsSpec:
    """Host policy for one console: listen address, keymap, channels, TLS."""
    sp = dict(g.spec_params)
    legacy_names = {v: k for k, v in _LEGACY_KEYS.items()}

    def name_of(key: str) -> str:
        # A synthesised console's fields came from top-level legacy keys: name those.
        return legacy_names[key] if g.source == "display" else f"{g.source}.specParams.{key}"

    def bad(key: str, reason: str) -> InvalidParams:
        return InvalidParams(f"{name_of(key)}: {reason}", param=name_of(key))

    def flag(key: str) -> bool:
        return parse_bool(sp.get(key, "true"), name_of(key))

    channels: list[str] = []
    for name in filter(None, (c.strip() for c in sp.get("spiceSecureChannels", "").split(","))):
        plain = name[1:] if name.startswith("s") and name[1:] in SPICE_CHANNELS else name
        if plain not in SPICE_CHANNELS:
            raise bad("spiceSecureChannels", f"unknown SPICE channel {name!r}")
        channels.append(plain)
    tls = g.type == "spice" and virt.spice_tls
    insecure = () if tls or g.type == "vnc" else tuple(channels)
    keymap = sp.get("keyMap") or None
    if keymap is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", keymap):
        raise bad("keyMap", f"not a keymap name: {keymap!r}")
    return replace(
        g,
        listen_address=_listen(sp, name_of, virt, legacy_network, address_of),
        keymap=keymap,
        secure_channels=tuple(channels) if tls else (),
        insecure_channels=insecure,
        insecure_param=name_of("spiceSecureChannels") if insecure else None,
        copy_paste=flag("copyPasteEnable"),
        file_transfer=flag("fileTransferEnable"),
        tls=tls,
    )


def _listen(
    sp: dict[str, str],
    name_of: Callable[[str], str],
    virt: VirtConfig,
    legacy_network: str | None,
    address_of: AddressOf,
) -> str:
    """The console's listen address: the host's address on its display network (the host
    network or bridge of that name, as VDSM's `vdsm-<name>` libvirt network would give),
    else `displayIp`, else [virt] graphics_listen."""
    network = sp.get("displayNetwork") or legacy_network
    if not network:
        return sp.get("displayIp") or virt.graphics_listen
    param = name_of("displayNetwork") if sp.get("displayNetwork") else "displayNetwork"
    address = address_of(network) if _NETWORK.fullmatch(network) else None
    if address is None:
        raise no_address(param, network)
    return address


def no_address(param: str, network: str) -> CreateFailed:
    """Code 9: the display network has no address on this host (vmParams and engine XML)."""
    return CreateFailed(
        f"{param}: display network {wirevalues.echo(network)} has no address on this host "
        "(no host network or bridge of that name with an IP address)",
        param=param,
        network=wirevalues.cut(network),
    )
