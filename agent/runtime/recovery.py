"""Startup recovery: adopt every libvirt domain, hvagent's and foreign ones.

Domains with hvagent's metadata get their status from libvirt's state and their exit info
from metadata; foreign domains are reported (external) and never touched. VMs that went
Down without a domain (a failed start) come back Down from their records
(runtime/records.py). A power operation
recorded in a running domain's metadata is resumed by its owner with the time that remains.
VM verbs answer `Recovering` (99) until this finishes; Host verbs answer throughout.
"""

from __future__ import annotations

import logging
import time

from agent.runtime.registry import VmRegistry
from agent.virt.port import Hypervisor

log = logging.getLogger(__name__)


async def recover(port: Hypervisor, registry: VmRegistry) -> float:
    """Adopt all domains; returns the duration in seconds."""
    start = time.monotonic()
    records = await port.list_domains()
    owned = 0
    for record in records:
        owner = registry.adopt(record)
        owned += not owner.external
        log.info(
            "recovered VM %s: %s%s%s",
            owner.vm_id,
            owner.status,
            " (foreign, left untouched)" if owner.external else "",
            f", resuming its {owner.power_operation}" if owner.power_operation else "",
        )
    down = await registry.adopt_down_records()
    if down:
        log.info("recovered %d Down VMs without a domain (their start had failed)", down)
    registry.recovered.set()
    duration = time.monotonic() - start
    log.info(
        "recovery done: %d domains, %d owned by hvagent, %.3f s", len(records), owned, duration
    )
    return duration
