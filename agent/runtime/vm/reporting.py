"""VDSM's result shapes for one VM (reference §7.2): the only place the runtime spells wire
names. `short` is Host.getVMList's entry and VM.create's answer, `stats` VM.getStats,
Host.getAllVmStats and every status event, `info` VM.getInfo and Host.getVMFullList.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from agent import consoles
from agent.consoles import GraphicsInfo
from agent.domxml.live import Devices
from agent.metrics.snapshot import Snapshot
from agent.runtime.vm.state import VmState
from agent.status import VmStatus
from agent.vmstats import fragment

# A running VM's sampled fields before its first sampling round (the shape, VDSM's defaults).
_UNSAMPLED: Mapping[str, Any] = MappingProxyType(
    {**fragment(None, {}, 0.0, Devices()), "monitorResponse": "0"}
)
_UNSAMPLED_JSON = json.dumps(dict(_UNSAMPLED))[1:-1]


# str(UUID) costs microseconds, on every VM of every Host.getAllVmStats.
_id_text = functools.lru_cache(maxsize=16384)(str)


def short(state: VmState) -> dict[str, Any]:
    return {
        "vmId": _id_text(state.vm_id),
        "status": str(state.status),
        "statusTime": state.status_time,
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _balloon_target(state: VmState, sampled: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fragment with VM.setBalloonTarget's target in balloonInfo, when one was set."""
    balloon = sampled.get("balloonInfo")
    if state.balloon_target_kib is None or not balloon:
        return sampled
    return {**sampled, "balloonInfo": {**balloon, "balloon_target": str(state.balloon_target_kib)}}


def stats(
    state: VmState,
    ports: tuple[GraphicsInfo, ...],
    sessions: Callable[[str], int],
    client_ip: str,
    operation: dict[str, Any] | None,
    sampled: Mapping[str, Any] | None = None,
    guest: Mapping[str, Any] | None = None,
    channels: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per-VM stats; Down VMs carry their exit info. `operation` is the last report of the
    VM's operation (hvagent's own `powerOperation` field); `sampled` the VM's fragment of
    the latest sampling round (agent/vmstats.py), copied as it is; `guest` the guest-agent
    poller's last answer (runtime/vm/guest_poll.py), absent without a poller; `channels`
    hvagent's own field: the drained channels (runtime/channels/), Down VMs included."""
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
    out.update(_UNSAMPLED if sampled is None else _balloon_target(state, sampled))
    if guest is not None:
        out.update(guest)
    if state.devices_hash is not None:
        out["hash"] = state.devices_hash
    if state.status is VmStatus.PAUSED:
        out["pauseCode"] = state.pause_code or "NOERR"
    return out


class JsonMemo:
    """One VM's last `base` (see stats_json) and its JSON members, reused while equal."""

    def __init__(self) -> None:
        self._base: dict[str, Any] | None = None
        self._text = ""

    def members(self, base: dict[str, Any]) -> str:
        if base != self._base:
            self._base, self._text = base, json.dumps(base)[1:-1]
        return self._text


def stats_json(
    memo: JsonMemo,
    state: VmState,
    base: dict[str, Any],
    snap: Snapshot | None,
    guest_json: str | None,
) -> str:
    """`stats` as JSON text from its parts, for Host.getAllVmStats: the round's fragment and
    the guest fields as serialized once (metrics/sampler.py, runtime/vm/guest_poll.py), and
    `base` (stats() without them), serialized again only when it changed since the VM's last
    call (`memo`), elapsedTime apart. Without a serialized fragment: VDSM's unsampled
    defaults, as stats(); a Down VM is `base` alone."""
    if base["status"] == str(VmStatus.DOWN):
        return json.dumps(base)
    sampled = snap.vm_stats.get(state.vm_id) if snap else None
    sampled_json = snap.vm_stats_json.get(state.vm_id) if snap else None
    if sampled is None or sampled_json is None:
        sampled, sampled_json = _UNSAMPLED, _UNSAMPLED_JSON
    elif (targeted := _balloon_target(state, sampled)) is not sampled:
        sampled, sampled_json = targeted, json.dumps(targeted)[1:-1]  # rare: per call
    for key in sampled:
        base.pop(key, None)  # vcpuCount: the sample's wins, as in stats()
    elapsed = base.pop("elapsedTime", None)
    parts = ["{" + memo.members(base), sampled_json]
    if elapsed is not None:
        parts.append(f'"elapsedTime": {json.dumps(elapsed)}')
    if guest_json is not None:
        parts.append(guest_json)
    return ", ".join(parts) + "}"


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
