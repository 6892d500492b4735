"""Services: what the verbs are handed (jsonrpcserver's `context=` argument)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config import VirtConfig
from agent.runtime.bus import StatusBus
from agent.runtime.host import HostService
from agent.runtime.registry import VmRegistry
from agent.virt.port import Hypervisor


@dataclass(frozen=True)
class Services:
    registry: VmRegistry
    host: HostService
    bus: StatusBus
    port: Hypervisor
    virt: VirtConfig
    # agent.metrics.instruments.Instruments; None in tests that build Services by hand.
    metrics: Any = None

    @property
    def ready(self) -> bool:
        return self.registry.recovered.is_set() and self.port.alive
