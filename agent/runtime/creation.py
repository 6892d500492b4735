"""VM.create's way through the runtime to a launch plan.

Plain vmParams are planned at once (agent/intake/launch.py, pure). A hosted-engine form
(`ovf`, `vmConf`, `ova`) is first converted into vmParams by agent/intake/ with the host's
facts: conversion may read files and extract an OVA, so it runs on a worker thread, and the
files it made are removed again if the create fails before the VM's owner takes over.
Payload disks (agent/intake/payload.py: validated first) are written the same way, on a
worker thread before the domain is defined (runtime/payloads.py), and removed on failure;
the host-access policy then allows exactly those image files. Display networks resolve to
this host's addresses through agent/hostnet.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from agent import hostnet, intake
from agent.config import ChannelsConfig, HostAccessConfig, PayloadConfig, VirtConfig
from agent.intake import hostaccess, payload
from agent.intake.launch import Launch, plan
from agent.runtime import payloads
from agent.virt.port import Hypervisor

Access = tuple[HostAccessConfig, Iterable[str]]


@asynccontextmanager
async def planned(
    port: Hypervisor,
    virt: VirtConfig,
    vm_id: uuid.UUID,
    params: Any,
    access: tuple[HostAccessConfig, Iterable[str]] = (HostAccessConfig(), ()),
    payload_cfg: PayloadConfig | None = None,
    channels: ChannelsConfig | None = None,
) -> AsyncIterator[Launch]:
    """The launch plan for a VM.create request; leaving the block with an error undoes
    what a conversion made and removes the payload images written for it. `access`: the
    [host_access] policy and the host's emulators."""
    pcfg = payload_cfg or PayloadConfig()
    if not intake.wants(params):
        if not payload.wanted(params):
            yield plan(vm_id, params, virt, *access, hostnet.address_of, channels=channels)
            return
        params, paths = await asyncio.to_thread(_with_payloads, pcfg, vm_id, params)
        try:
            yield plan(
                vm_id,
                params,
                virt,
                *_allowing(access, paths),
                hostnet.address_of,
                channels=channels,
            )
        except BaseException:
            await asyncio.to_thread(payloads.remove, paths)
            raise
        return
    facts = await port.host_facts()

    def convert() -> intake.Converted:  # blocking: file look-ups, OVA extraction
        _check_ova(params, access[0])
        host = intake.host_view(virt, facts.capabilities_xml, facts.domain_capabilities_xml)
        return intake.convert(vm_id, params, host)

    converted = await asyncio.to_thread(convert)
    paths: list[str] = []
    try:
        out, paths = await asyncio.to_thread(_with_payloads, pcfg, vm_id, converted.params)
        launch = plan(
            vm_id, out, virt, *_allowing(access, paths), hostnet.address_of, channels=channels
        )
        yield dataclasses.replace(launch, warnings=(*converted.warnings, *launch.warnings))
    except BaseException:
        await asyncio.to_thread(payloads.remove, paths)
        await asyncio.to_thread(converted.rollback)
        raise


def _check_ova(params: Any, policy: HostAccessConfig) -> None:
    """An OVA is read only from where [host_access] allows (its appliance and image roots)."""
    path = params.get("ova")
    if isinstance(path, str):
        roots = (*policy.appliance_roots, *policy.image_roots)
        hostaccess.check_path(path, "vmParams.ova", roots, policy)


def _allowing(access: Access, paths: list[str]) -> Access:
    """The policy with this create's own payload images allowed (only those files: another
    VM's payload in the same directory stays out of reach)."""
    policy, emulators = access
    if not paths:
        return access
    return dataclasses.replace(policy, image_roots=(*policy.image_roots, *paths)), emulators


def _with_payloads(cfg: PayloadConfig, vm_id: uuid.UUID, params: Any) -> tuple[Any, list[str]]:
    """Blocking: validate and decode the payloads (refused before any file is written),
    write their images; the request with their paths, and the paths."""
    found = payload.find(params, cfg.max_bytes)
    if not found.images:
        return params, []
    paths = payloads.write(cfg.dir, vm_id, found.images)
    try:
        return found.apply(paths), paths
    except BaseException:
        payloads.remove(paths)
        raise
