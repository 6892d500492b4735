"""VM.create's way through the runtime to a launch plan.

Plain vmParams are planned at once (agent/intake/launch.py, pure). A hosted-engine form
(`ovf`, `vmConf`, `ova`) is first converted into vmParams by agent/intake/ with the host's
facts: conversion may read files and extract an OVA, so it runs on a worker thread, and the
files it made are removed again if the create fails before the VM's owner takes over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from agent import intake
from agent.config import HostAccessConfig, VirtConfig
from agent.intake.launch import Launch, plan
from agent.virt.port import Hypervisor


@asynccontextmanager
async def planned(
    port: Hypervisor,
    virt: VirtConfig,
    vm_id: uuid.UUID,
    params: Any,
    access: tuple[HostAccessConfig, Iterable[str]] = (HostAccessConfig(), ()),
) -> AsyncIterator[Launch]:
    """The launch plan for a VM.create request; leaving the block with an error undoes
    what a conversion made. `access`: the [host_access] policy and the host's emulators."""
    if not intake.wants(params):
        yield plan(vm_id, params, virt, *access)
        return
    facts = await port.host_facts()

    def convert() -> intake.Converted:  # blocking: file look-ups, OVA extraction
        host = intake.host_view(virt, facts.capabilities_xml, facts.domain_capabilities_xml)
        return intake.convert(vm_id, params, host)

    converted = await asyncio.to_thread(convert)
    try:
        launch = plan(vm_id, converted.params, virt, *access)
        yield dataclasses.replace(launch, warnings=(*converted.warnings, *launch.warnings))
    except BaseException:
        await asyncio.to_thread(converted.rollback)
        raise
