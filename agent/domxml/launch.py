"""What VM.create hands the runtime: the domain XML to define and the facts the VM's owner
starts with, from either legacy vmParams (via VmSpec) or the engine's own XML."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from agent import spec as vmspec
from agent import wiretext
from agent.config import VirtConfig
from agent.consoles import GraphicsInfo
from agent.domxml import build_domain, engine, live, to_string
from agent.domxml.metadata import VmMetadata
from agent.params import Fields


@dataclass(frozen=True)
class Launch:
    vm_id: uuid.UUID
    name: str
    xml: str
    facts: live.DomainFacts
    paused: bool


def plan(vm_id: uuid.UUID, params: Any, virt: VirtConfig) -> Launch:
    """Validate `vmParams` and render the domain; raises before anything touches libvirt."""
    if isinstance(params, Mapping) and "xml" in params:
        return _from_engine_xml(vm_id, params, virt)
    return from_spec(vmspec.from_params(vm_id, params, virt))


def from_spec(s: vmspec.VmSpec) -> Launch:
    meta = VmMetadata(launch_paused=s.launch_paused, custom=s.custom)
    xml = to_string(build_domain(s, meta))
    consoles = tuple(GraphicsInfo(g.type, None, None, g.listen_address) for g in s.graphics)
    facts = live.DomainFacts(
        s.vm_id, s.name, s.domain_type, s.acpi, s.vcpus, s.memory_mib, meta, consoles
    )
    return Launch(s.vm_id, s.name, xml, facts, s.launch_paused)


def _from_engine_xml(vm_id: uuid.UUID, params: Mapping[str, Any], virt: VirtConfig) -> Launch:
    f = Fields(params)
    text = params["xml"]
    if not isinstance(text, str) or not text:
        raise engine.bad("expected the domain XML as a non-empty string")
    wiretext.check(text, engine.PARAM, limit=wiretext.MAX_XML, allow=wiretext.XML_WHITESPACE)
    paused = f.bool_("launchPaused", False)
    xml = engine.prepare(
        vm_id,
        text,
        domain_type=virt.domain_type,
        console_log=str(PurePosixPath(virt.console_log_dir) / f"{vm_id}.log"),
        guest_agent_channel=vmspec.GUEST_AGENT_CHANNEL,
        launch_paused=paused,
        custom=f.str_map("custom"),
    )
    facts = live.facts(xml)
    return Launch(vm_id, facts.name, xml, facts, paused)
