"""Snapshot: one round of libvirt bulk stats, immutable, as the sampler took it and the
collectors and the VM owners (`vm_stats`, agent/vmstats.py) read it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from agent.virt.port import DomainStats


@dataclass(frozen=True)
class Snapshot:
    taken_at: float  # time.monotonic() when the round finished; 0 = never
    domains: tuple[DomainStats, ...] = ()
    timed_out: bool = False
    duration_s: float = 0.0
    extra: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Each domain's VM.getStats fragment for this round (agent/vmstats.py); not to be mutated.
    vm_stats: Mapping[uuid.UUID, Mapping[str, Any]] = field(default_factory=dict)
    # The same fragments as JSON object members (`{...}` without the braces), serialized
    # once per round on the worker thread, for Host.getAllVmStats to splice in.
    vm_stats_json: Mapping[uuid.UUID, str] = field(default_factory=dict)
