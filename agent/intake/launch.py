"""What VM.create hands the VM runtime: the domain XML to define, the facts the VM's owner
starts with, and the reply's warnings; from legacy vmParams (via VmSpec) or engine XML.

`plan(vm_id, vmParams, virt)` is the intake's one entry: it validates everything and renders
the XML before anything touches libvirt. Every unix channel hvagent drains (all but the guest
agent's, from vmParams or engine XML) is bound to a socket under `[channels] dir`
(domxml/devices/channel.py); engine XML channel names are checked like vmParams ones.
Converters for other request forms (OVF, vm.conf, OVA) are siblings in this package and end
here too.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from agent import wirevalues
from agent.config import ChannelsConfig, HostAccessConfig, VirtConfig
from agent.consoles import GraphicsInfo
from agent.domxml import build_domain, live, parse, to_string
from agent.domxml.devices import channel
from agent.domxml.metadata import VmMetadata
from agent.errors import CreateFailed
from agent.intake import engine, hostaccess, vmparams, xmlattrs
from agent.intake.fields import Fields
from agent.intake.graphics import AddressOf, no_networks
from agent.intake.host import warning
from agent.spec import VmSpec


@dataclass(frozen=True)
class Launch:
    vm_id: uuid.UUID
    name: str
    xml: str
    facts: live.DomainFacts
    paused: bool
    # Reply warnings, VDSM error shape ({code, message, data}): what hvagent adapted.
    warnings: tuple[dict[str, Any], ...] = ()


def plan(
    vm_id: uuid.UUID,
    params: Any,
    virt: VirtConfig,
    access: HostAccessConfig | None = None,
    emulators: Iterable[str] = (),
    address_of: AddressOf = no_networks,
    *,
    channels: ChannelsConfig | None = None,
) -> Launch:
    """Validate `vmParams` and render the domain; raises before anything touches libvirt.
    The host-access policy `access` (default: the safe defaults) checks the result;
    `emulators` are the host's own, from libvirt's capabilities; `address_of` resolves a
    display network to this host's address on it (agent/hostnet.py on a real host);
    `channels` ([channels]) says where drained channels' sockets go."""
    _refuse_restore(params)
    chan_dir = (channels or ChannelsConfig()).dir
    policy = hostaccess.for_host(access or HostAccessConfig(), virt)
    policy = dataclasses.replace(policy, chardev_roots=(*policy.chardev_roots, chan_dir))
    if isinstance(params, Mapping) and "xml" in params:
        planned, root = _from_engine_xml(vm_id, params, virt, address_of, chan_dir)
        hostaccess.check(params, root, policy, emulators)
        xmlattrs.check(root, policy)  # the engine's elements and attributes, one by one
        return planned
    planned, root = _from_spec(vmparams.from_params(vm_id, params, virt, address_of), chan_dir)
    hostaccess.check(params, root, policy, emulators)  # hvagent's own tree, not re-parsed
    return planned


def from_spec(s: VmSpec, channels_dir: str = ChannelsConfig.dir) -> Launch:
    return _from_spec(s, channels_dir)[0]


def _from_spec(s: VmSpec, channels_dir: str) -> tuple[Launch, etree._Element]:
    meta = VmMetadata(
        launch_paused=s.launch_paused, destroy_on_reboot=s.destroy_on_reboot, custom=s.custom
    )
    root = build_domain(s, meta)
    channel.bind_all(root, channels_dir)
    xml = to_string(root)
    consoles = tuple(GraphicsInfo(g.type, None, None, g.listen_address) for g in s.graphics)
    facts = live.DomainFacts(
        s.vm_id, s.name, s.domain_type, s.acpi, s.vcpus, s.memory_mib, meta, consoles,
        time_offset=s.time_offset or 0, channels=channel.bound(root),
    )  # fmt: skip
    return Launch(s.vm_id, s.name, xml, facts, s.launch_paused, _warnings(s)), root


def _warnings(s: VmSpec) -> tuple[dict[str, Any], ...]:
    """SPICE secure channels asked for on a host without SPICE TLS: the VM starts, its
    channels are plain, and the reply says so (VDSM would refuse at libvirt start)."""
    return tuple(
        warning(
            f"SPICE secure channels {', '.join(g.insecure_channels)} are not secure: this host "
            "has no SPICE TLS ([virt] spice_tls = false)",
            g.insecure_param or "spiceSecureChannels",
        )
        for g in s.graphics
        if g.insecure_channels
    )


# Restore from hibernation / a RAM snapshot: hvagent cannot, and must not cold-boot instead.
_RESTORE_KEYS = ("hiberVolHandle", "memoryDumpVolume", "memoryConfVolume", "restoreFromSnapshot")


def _refuse_restore(params: Any) -> None:
    if not isinstance(params, Mapping):
        return
    for key in _RESTORE_KEYS:
        if isinstance(params.get(key), str):
            wirevalues.check(params[key], key)  # hostile text is -32602, as everywhere
        if params.get(key) not in (None, "", False, "false"):
            raise CreateFailed(
                f"{key}: restoring a VM from hibernation or a memory snapshot is not "
                "supported by hvagent (the VM would cold-boot and lose its memory state)",
                param=key,
            )


def _from_engine_xml(
    vm_id: uuid.UUID,
    params: Mapping[str, Any],
    virt: VirtConfig,
    address_of: AddressOf,
    channels_dir: str,
) -> tuple[Launch, etree._Element]:
    f = Fields(params)
    text = params["xml"]
    if not isinstance(text, str) or not text:
        raise engine.bad("expected the domain XML as a non-empty string")
    wirevalues.check(text, engine.PARAM, limit=wirevalues.MAX_XML, allow=wirevalues.XML_WHITESPACE)
    paused = f.bool_("launchPaused", False)
    warnings: list[dict[str, Any]] = []
    xml = engine.prepare(
        vm_id,
        text,
        domain_type=virt.domain_type,
        console_log=virt.console_log_path(vm_id),
        launch_paused=paused,
        custom=f.str_map("custom"),
        balloon_stats_period_s=virt.balloon_stats_period_s,
        address_of=address_of,
        vnc_sasl=virt.vnc_sasl,
        spice_tls=virt.spice_tls,
        warnings=warnings,
    )
    root = parse(xml)  # the text libvirt will get, read and checked as libvirt will read it
    names = channel.bind_all(root, channels_dir)
    for name in names:
        if not wirevalues.is_channel_name(name):
            raise engine.bad(f"bad channel name {wirevalues.echo(name)}")
    if len(set(names)) != len(names):
        raise engine.bad("two unix channels have the same name")
    if names:
        xml = to_string(root)
    facts = live.facts(root)
    return Launch(vm_id, facts.name, xml, facts, paused, tuple(warnings)), root
