"""Host.* verbs."""

from __future__ import annotations

from typing import Any

from agent import errors
from agent.api.context import Services
from agent.wirevalues import parse_uuid


async def ping2(services: Services) -> bool:
    return True


async def get_capabilities(services: Services) -> dict[str, Any]:
    return await services.host.capabilities()


async def get_stats(services: Services) -> dict[str, Any]:
    return services.host.stats()


def _vm_list(vm_list: Any) -> list[Any] | None:
    if vm_list is None:
        return None
    if not isinstance(vm_list, list):
        raise errors.InvalidParams("vmList must be a list of VM ids", param="vmList")
    return [parse_uuid(v, "vmList") for v in vm_list]


async def get_vm_list(
    services: Services, fullStatus: Any = False, vmList: Any = None, onlyUUID: Any = False
) -> list[dict[str, Any]]:
    """HEAD shape: [{vmId, status, statusTime}]; fullStatus/onlyUUID ignored, as in VDSM."""
    return [o.short() for o in services.registry.owners(_vm_list(vmList))]


async def get_vm_full_list(services: Services, vmList: Any = None) -> list[dict[str, Any]]:
    return [o.info() for o in services.registry.owners(_vm_list(vmList))]


async def dumpxmls(services: Services, vmList: Any) -> dict[str, str]:
    """VDSM's device-refresh verb: {vmId: live domain XML}, passwords blanked."""
    vm_ids = _vm_list(vmList)
    if vm_ids is None:
        raise errors.MissingParameter("vmList is required", param="vmList")
    return {str(v): await services.registry.dump_xml(v) for v in vm_ids}


async def get_all_vm_stats(services: Services) -> list[dict[str, Any]]:
    return [o.stats() for o in services.registry.owners()]
