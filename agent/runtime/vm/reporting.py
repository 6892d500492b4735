"""VDSM's result shapes for one VM (reference §7.2): the only place the runtime spells wire
names. `short` is Host.getVMList's entry and VM.create's answer, `stats` VM.getStats,
Host.getAllVmStats and every status event, `info` VM.getInfo and Host.getVMFullList.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from agent import consoles
from agent.consoles import GraphicsInfo
from agent.domxml.live import Devices
from agent.runtime.vm.state import VmState
from agent.status import VmStatus
from agent.vmstats import fragment

# A running VM's sampled fields before its first sampling round (the shape, VDSM's defaults).
_UNSAMPLED: Mapping[str, Any] = MappingProxyType(
    {**fragment(None, {}, 0.0, Devices()), "monitorResponse": "0"}
)


def short(state: VmState) -> dict[str, Any]:
    return {
        "vmId": str(state.vm_id),
        "status": str(state.status),
        "statusTime": state.status_time,
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def stats(
    state: VmState,
    ports: tuple[GraphicsInfo, ...],
    sessions: Callable[[str], int],
    client_ip: str,
    operation: dict[str, Any] | None,
    sampled: Mapping[str, Any] | None = None,
    channels: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per-VM stats; Down VMs carry their exit info. `operation` is the last report of the
    VM's operation (hvagent's own `powerOperation` field); `sampled` the VM's fragment of
    the latest sampling round (agent/vmstats.py), copied as it is; `channels` hvagent's own
    field: the drained channels (runtime/channels/), Down VMs included."""
    out = short(state)
    if channels:
        out["channels"] = channels
    if state.external:
        out["external"] = True
    if operation is not None:
        out["powerOperation"] = dict(operation)
    if state.status is VmStatus.DOWN:
        if state.exit_info is not None:
            out.update(state.exit_info.to_wire())
        out["timeOffset"] = str(state.time_offset)
        return out
    facts = state.facts
    out.update(
        vmName=facts.name,
        vmType=facts.domain_type,
        kvmEnable=_flag(facts.domain_type == "kvm"),
        acpiEnable=_flag(facts.acpi),
        elapsedTime=str(int(time.monotonic() - state.started_mono)),
        clientIp=client_ip,
        timeOffset=str(state.time_offset),
        vcpuCount=str(facts.vcpus),
        memSize=facts.memory_mib,
        guestAgentConnected=state.agent_connected,
        **consoles.display_report(list(ports), sessions),
    )
    out.update(_UNSAMPLED if sampled is None else sampled)
    balloon = out.get("balloonInfo")
    if state.balloon_target_kib is not None and balloon:
        out["balloonInfo"] = {**balloon, "balloon_target": str(state.balloon_target_kib)}
    if state.devices_hash is not None:
        out["hash"] = state.devices_hash
    if state.status is VmStatus.PAUSED:
        out["pauseCode"] = state.pause_code or "NOERR"
    return out


def info(state: VmState, ports: tuple[GraphicsInfo, ...]) -> dict[str, Any]:
    """VM.getInfo: identity and configuration plus status (and exit info when Down)."""
    out = short(state)
    facts = state.facts
    out.update(
        vmName=facts.name,
        vmType=facts.domain_type,
        memSize=facts.memory_mib,
        smp=str(facts.vcpus),
        acpiEnable=_flag(facts.acpi),
        kvmEnable=_flag(facts.domain_type == "kvm"),
        external=state.external,
        custom=dict(state.meta.custom),
    )
    if state.status is not VmStatus.DOWN:
        out.update(consoles.display_report(list(ports)))
    elif state.exit_info is not None:
        out.update(state.exit_info.to_wire())
    return out
