"""VM.* verbs: parse the wire parameters, call the runtime, return VDSM's result shapes."""

from __future__ import annotations

import math
import re
from typing import Any

from agent import consoles, errors, power
from agent.api.context import Services
from agent.domxml import launch
from agent.logs import Secret
from agent.params import parse_uuid
from agent.runtime.owner import PowerCommand, TicketCommand


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


def _seconds(value: Any, name: str) -> float | None:
    """None when omitted; an explicit 0 means 0 (VDSM treats 0 as 'use the default')."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise errors.InvalidParams(f"{name} must be a number of seconds", param=name) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.InvalidParams(f"{name} must be a number of seconds", param=name)
    if not math.isfinite(value) or not 0 <= value <= 86400:
        raise errors.InvalidParams(f"{name} must be from 0 to 86400 seconds", param=name)
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise errors.InvalidParams(f"{name} must be a boolean", param=name)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


async def shutdown(
    services: Services,
    vmID: Any,
    delay: Any = None,
    message: Any = None,
    reboot: Any = False,
    timeout: Any = None,  # noqa: ASYNC109 (VDSM parameter name)
    force: Any = False,
) -> bool:
    vm_id = parse_uuid(vmID, "vmID")
    if message is not None and not isinstance(message, str):
        raise errors.InvalidParams("message must be a string", param="message")
    cmd = PowerCommand(
        "ladder",
        kind=power.Kind.REBOOT if _flag(reboot, "reboot") else power.Kind.SHUTDOWN,
        delay_s=_seconds(delay, "delay"),
        timeout_s=_seconds(timeout, "timeout"),
        force=_flag(force, "force"),
        message=_CONTROL.sub(" ", message or "")[:1000],
    )
    await services.registry.get(vm_id).power(cmd)
    return True


async def reset(services: Services, vmID: Any) -> bool:
    await services.registry.get(parse_uuid(vmID, "vmID")).power(PowerCommand("reset"))
    return True


async def set_destroy_on_reboot(services: Services, vmID: Any) -> bool:
    await services.registry.get(parse_uuid(vmID, "vmID")).power(PowerCommand("destroy-on-reboot"))
    return True


async def set_ticket(
    services: Services,
    vmID: Any,
    password: Any,
    ttl: Any,
    existingConnAction: Any = None,
    params: Any = None,
    graphicsType: Any = None,
) -> bool:
    """Set the console password; ttl > 0 expires it ttl seconds from now, ttl <= 0 never."""
    vm_id = parse_uuid(vmID, "vmID")
    if not isinstance(password, str):
        raise errors.InvalidParams("password must be a string", param="password")
    secret = Secret(password)
    if isinstance(ttl, bool) or not (
        isinstance(ttl, int) or (isinstance(ttl, str) and re.fullmatch(r"-?\d+", ttl))
    ):
        raise errors.InvalidParams("ttl must be an integer (seconds)", param="ttl")
    actions = [str(a) for a in consoles.ConnAction]
    if existingConnAction is not None and existingConnAction not in actions:
        raise errors.InvalidParams(
            f"existingConnAction must be one of {', '.join(actions)}", param="existingConnAction"
        )
    if graphicsType not in (None, "spice", "vnc"):
        raise errors.InvalidParams("graphicsType must be spice or vnc", param="graphicsType")
    if params is not None and not isinstance(params, dict):
        raise errors.InvalidParams("params must be an object", param="params")
    cmd = TicketCommand(
        secret,
        int(ttl),
        consoles.ConnAction(existingConnAction) if existingConnAction else None,
        graphicsType,
    )
    await services.registry.get(vm_id).set_ticket(cmd)
    return True
