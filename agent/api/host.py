"""Host.* verbs."""

from __future__ import annotations

import logging
from typing import Any

from agent import errors
from agent.api.context import Services
from agent.wirevalues import parse_uuid

log = logging.getLogger("agent.api")
_MAX_LISTED = 100  # missing VM ids named in an error or a log line


async def ping2(services: Services) -> bool:
    return True


async def get_capabilities(services: Services) -> dict[str, Any]:
    return await services.host.capabilities()


async def get_hardware_info(services: Services) -> dict[str, str]:
    """VDSM's system* keys from the host's SMBIOS (libvirt's sysinfo), read once."""
    return await services.host.hardware_info()


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
    """VDSM's device-refresh verb: {vmId: live domain XML}, passwords blanked.

    Reported per VM: a VM hvagent does not know, or whose domain is gone (a Down VM), is left
    out of the map and logged, and the others are still answered. VDSM's shape stays a plain
    {vmId: xml} map (an engine reads every key as a VM id, so nothing else goes in it); only
    when no requested VM can be reported is the answer code 1 (`data.vmIds`: the missing)."""
    vm_ids = _vm_list(vmList)
    if vm_ids is None:
        raise errors.MissingParameter("vmList is required", param="vmList")
    found: dict[str, str] = {}
    missing: list[str] = []
    for vm_id in dict.fromkeys(vm_ids):
        try:
            found[str(vm_id)] = await services.registry.dump_xml(vm_id)
        except errors.NoSuchVM:
            missing.append(str(vm_id))
    if missing and not found:
        raise errors.NoSuchVM(
            f"no domain XML for {len(missing)} VM(s)", vmIds=missing[:_MAX_LISTED]
        )
    if missing:
        log.info("Host.dumpxmls: no domain XML for %s", ", ".join(missing[:_MAX_LISTED]))
    return found


async def get_all_vm_stats(services: Services) -> list[dict[str, Any]]:
    return [o.stats() for o in services.registry.owners()]
