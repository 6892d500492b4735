"""VM.* verbs: parse the wire parameters, call the runtime, return VDSM's result shapes."""

from __future__ import annotations

from typing import Any

from agent import errors
from agent.api.context import Services
from agent.domxml import launch
from agent.params import parse_uuid


async def create(services: Services, vmID: Any, vmParams: Any) -> dict[str, Any]:
    vm_id = parse_uuid(vmID, "vmID")
    return await services.registry.create(launch.plan(vm_id, vmParams, services.virt))


async def destroy(services: Services, vmID: Any, gracefulAttempts: Any = 1) -> bool:
    vm_id = parse_uuid(vmID, "vmID")
    if (
        isinstance(gracefulAttempts, bool)
        or not isinstance(gracefulAttempts, int)
        or not (0 <= gracefulAttempts <= 10)
    ):
        raise errors.InvalidParams(
            "gracefulAttempts must be an integer from 0 to 10", param="gracefulAttempts"
        )
    await services.registry.destroy(vm_id, gracefulAttempts)
    return True


async def get_stats(services: Services, vmID: Any) -> list[dict[str, Any]]:
    return [services.registry.get(parse_uuid(vmID, "vmID")).stats()]


async def get_info(services: Services, vmID: Any) -> dict[str, Any]:
    return services.registry.get(parse_uuid(vmID, "vmID")).info()
