"""Intake: VM definitions hvagent reads itself and turns into legacy vmParams before
VM.create validates them — the hosted-engine VM's oVirt OVF (`vmParams.ovf`), a
hosted-engine vm.conf (`vmParams.vmConf`) and an appliance OVA path (`vmParams.ova`).

`convert` dispatches on those keys; plain vmParams pass through untouched. It blocks (file
look-ups, OVA extraction): VM.create runs it with asyncio.to_thread. Each converter
returns the vmParams and a list of warnings `{code, message, data}` (what was adapted or not
honoured) that VM.create adds to its reply. `host_view` gathers the host facts they need.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import hostinfo
from agent.config import VirtConfig
from agent.errors import InvalidParams
from agent.intake import ova, ovf, vmconf
from agent.intake.host import HostView

KEYS = ("ovf", "vmConf", "ova")


@dataclass
class Converted:
    params: Any
    warnings: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # files to remove if the create fails
    image_root: str = ""

    def rollback(self) -> None:
        if self.created:
            ova.Extracted("", self.created).remove(self.image_root)


def wants(params: Any) -> bool:
    return isinstance(params, Mapping) and any(k in params for k in KEYS)


def host_view(
    virt: VirtConfig, capabilities_xml: str, domain_capabilities_xml: str = ""
) -> HostView:
    """This host as the converters see it (reads /etc/os-release: call it off the loop)."""
    caps = hostinfo.capabilities(capabilities_xml)
    osr = hostinfo.os_release(_read("/etc/os-release"))
    return HostView(
        image_root=virt.image_root,
        machines=frozenset(caps.machines) or None,
        cpu_models=hostinfo.cpu_models(domain_capabilities_xml),
        default_machine=virt.default_machine or None,
        host_uuid=caps.host_uuid,
        os_name=osr.get("NAME", ""),
        os_version=osr.get("VERSION_ID", ""),
    )


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def convert(vm_id: uuid.UUID, params: Any, host: HostView) -> Converted:
    """vmParams for VM.create from `{"ovf": text}`, `{"vmConf": text}` or `{"ova": path}`.
    Blocking (an OVA is extracted here): VM.create runs it in a thread."""
    if not wants(params):
        return Converted(params)
    given = [k for k in KEYS if k in params]
    if len(given) > 1 or set(params) - {*KEYS, "vmId"}:
        extra = sorted(set(params) - {"vmId"})
        raise InvalidParams(
            f"vmParams: give exactly one of ovf, vmConf or ova, alone (got {', '.join(extra)})",
            param="vmParams",
        )
    key = given[0]
    if key == "ovf":
        out, warnings = ovf.convert(params["ovf"], vm_id, host)
        return Converted(out, warnings)
    if key == "vmConf":
        out, warnings = vmconf.convert(params["vmConf"], vm_id, host)
        return Converted(out, warnings)
    extracted = ova.extract(params["ova"], host)
    try:
        out, warnings = ovf.convert(extracted.ovf_text, vm_id, host, param=ova.PARAM)
    except BaseException:
        extracted.remove(host.image_root)
        raise
    return Converted(out, extracted.warnings + warnings, extracted.created, host.image_root)
