"""VM.* verbs: parse the wire parameters, call the runtime, return VDSM's result shapes."""

from __future__ import annotations

import math
import uuid
from typing import Any

from agent import consoles, errors, power, sessions, wirevalues
from agent.api.context import Services
from agent.logs import Secret
from agent.runtime.vm import (
    BalloonCommand,
    Command,
    ContCommand,
    DestroyOnRebootCommand,
    HotplugDiskCommand,
    HotplugNicCommand,
    HotunplugDiskCommand,
    HotunplugNicCommand,
    PauseCommand,
    PowerCommand,
    ResetCommand,
    SetCpusCommand,
    TicketCommand,
)
from agent.wirevalues import parse_bool, parse_uuid, scrub


async def create(services: Services, vmID: Any, vmParams: Any) -> dict[str, Any]:
    """vmParams: legacy fields, engine `xml`, or a hosted-engine `ovf`/`vmConf`/`ova`."""
    return await services.registry.create(parse_uuid(vmID, "vmID"), vmParams)


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
    """None (the configured default) when omitted or 0: engines send 0 for "use the
    default", as VDSM reads it (reference §6.1)."""
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
    return float(value) or None


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
        kind=power.Kind.REBOOT if parse_bool(reboot, "reboot") else power.Kind.SHUTDOWN,
        delay_s=_seconds(delay, "delay"),
        timeout_s=_seconds(timeout, "timeout"),
        force=parse_bool(force, "force"),
        message=scrub(message or "")[:1000],
    )
    await services.registry.get(vm_id).submit(cmd)
    return True


async def reset(services: Services, vmID: Any) -> bool:
    await services.registry.get(parse_uuid(vmID, "vmID")).submit(ResetCommand())
    return True


async def set_destroy_on_reboot(services: Services, vmID: Any) -> bool:
    await services.registry.get(parse_uuid(vmID, "vmID")).submit(DestroyOnRebootCommand())
    return True


def _ticket(
    password: Any, ttl: Any, conn_action: Any, graphics_type: Any, params: Any, prefix: str = ""
) -> TicketCommand:
    """The ticket fields shared by VM.setTicket and VM.updateDevice; errors name the field
    (prefixed `params.` for updateDevice, whose fields sit in its `params` object)."""
    secret = Secret(wirevalues.check(password, f"{prefix}password", limit=consoles.MAX_PASSWORD))
    seconds = _whole(ttl, -consoles.MAX_TTL_S, consoles.MAX_TTL_S)
    if seconds is None:
        raise errors.InvalidParams(
            f"ttl must be whole seconds from {-consoles.MAX_TTL_S} to {consoles.MAX_TTL_S} "
            "(ten years); 0 or less: no expiry",
            param=f"{prefix}ttl",
        )
    actions = [str(a) for a in consoles.ConnAction]
    if conn_action is not None and conn_action not in actions:
        raise errors.InvalidParams(
            f"existingConnAction must be one of {', '.join(actions)}",
            param=f"{prefix}existingConnAction",
        )
    if graphics_type not in (None, "spice", "vnc"):
        raise errors.InvalidParams(
            "graphicsType must be spice or vnc", param=f"{prefix}graphicsType"
        )
    if params is not None and not isinstance(params, dict):
        raise errors.InvalidParams("params must be an object", param=f"{prefix}params")
    if graphics_type is not None:  # else the owner checks, once it knows the first console
        consoles.check_password(graphics_type, secret, param=f"{prefix}password")
    return TicketCommand(
        secret,
        seconds,
        consoles.ConnAction(conn_action) if conn_action else None,
        graphics_type,
    )


async def set_ticket(
    services: Services,
    vmID: Any,
    password: Any,
    ttl: Any,
    existingConnAction: Any = None,
    params: Any = None,
    graphicsType: Any = None,
) -> bool:
    """Set the console password; ttl > 0 expires it ttl seconds from now, ttl <= 0 never.
    Resets the console disconnect action to NONE, as VDSM resets it."""
    vm_id = parse_uuid(vmID, "vmID")
    cmd = _ticket(password, ttl, existingConnAction, graphicsType, params)
    await services.registry.get(vm_id).submit(cmd)
    return True


async def update_device(services: Services, vmID: Any, params: Any = None) -> dict[str, Any]:
    """VM.updateDevice for graphics: a ticket on the console of `graphicsType` plus the
    action when the last console client leaves. Other device types: 75."""
    vm_id = parse_uuid(vmID, "vmID")
    if params is None:
        raise errors.MissingParameter("params is required", param="params")
    if not isinstance(params, dict):
        raise errors.InvalidParams("params must be an object", param="params")
    if params.get("deviceType") is None:
        raise errors.MissingParameter("params.deviceType is required", param="params.deviceType")
    if params["deviceType"] != "graphics":
        raise errors.Unsupported("hvagent updates graphics devices only", param="params.deviceType")
    if "xml" in params:  # VDSM: noimpl (44)
        raise errors.NotImplementedByAgent(
            "graphics updates take fields (password, ttl, ...), not XML", param="params.xml"
        )
    for name in ("graphicsType", "password", "ttl"):
        if params.get(name) is None:
            raise errors.MissingParameter(f"params.{name} is required", param=f"params.{name}")
    cmd = _ticket(
        params["password"],
        params["ttl"],
        params.get("existingConnAction"),
        params["graphicsType"],
        params.get("params"),
        prefix="params.",
    )
    cmd.disconnect = _disconnect_policy(
        params.get("disconnectAction"), params.get("consoleDisconnectActionDelay")
    )
    cmd.failure = errors.UpdateDeviceFailed
    await services.registry.get(vm_id).submit(cmd)
    if cmd.disconnect.action in sessions.NEEDS_OVIRT_AGENT:
        unsupported = errors.Unsupported(
            f"disconnectAction {cmd.disconnect.action} needs an oVirt guest agent, which "
            "hvagent does not speak: the ticket is set, nothing happens on disconnect",
            param="params.disconnectAction",
        )
        return {"warnings": [unsupported.to_wire()]}
    return {}


def _required_whole(value: Any, param: str, high: int, what: str) -> int:
    """`param`'s value by `_whole` from 1 to `high`: missing is code 11, anything else -32602."""
    if value is None:
        raise errors.MissingParameter(f"{param} is required", param=param)
    whole = _whole(value, 1, high)
    if whole is None:
        raise errors.InvalidParams(f"{param} must be {what} from 1 to {high}", param=param)
    return whole


def _whole(value: Any, low: int, high: int) -> int | None:
    """An integer (JSON number or decimal string, ASCII digits) within [low, high]; None
    for anything else, huge digit strings included (never parsed past the bound's length)."""
    if isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        if not wirevalues.is_decimal(digits) or len(digits) > len(str(max(-low, high))):
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _disconnect_policy(action: Any, delay: Any) -> sessions.DisconnectPolicy:
    names = [str(a) for a in sessions.DisconnectAction]
    if action is not None and action not in names:
        raise errors.InvalidParams(
            f"disconnectAction must be one of {', '.join(names)}", param="params.disconnectAction"
        )
    minutes = 0 if delay is None else _whole(delay, 0, sessions.MAX_DELAY_MIN)
    if minutes is None:
        raise errors.InvalidParams(
            f"consoleDisconnectActionDelay must be whole minutes from 0 to "
            f"{sessions.MAX_DELAY_MIN}",
            param="params.consoleDisconnectActionDelay",
        )
    return sessions.DisconnectPolicy(sessions.DisconnectAction(action or "NONE"), minutes)


# -- a running VM's hardware (runtime/vm/devices_cmd.py) -----------------------------------

MAX_VCPUS = 4096
MAX_BALLOON_KIB = 1 << 42  # 4 PiB: above any guest's memory; libvirt refuses past the VM's


async def pause(services: Services, vmID: Any) -> dict[str, Any]:
    await services.registry.get(parse_uuid(vmID, "vmID")).submit(PauseCommand())
    return {"vmList": {}}


async def cont(services: Services, vmID: Any) -> dict[str, Any]:
    await services.registry.get(parse_uuid(vmID, "vmID")).submit(ContCommand())
    return {"vmList": {}}


async def _device_change(services: Services, vm_id: uuid.UUID, cmd: Command) -> dict[str, Any]:
    owner = services.registry.get(vm_id)
    await owner.submit(cmd)
    return owner.info()


def _params(params: Any) -> Any:
    if params is None:
        raise errors.MissingParameter("params is required", param="params")
    return params


async def hotplug_disk(services: Services, vmID: Any, params: Any = None) -> dict[str, Any]:
    """params: {vmId, drive: {path, iface, format, name|index, ...}} (a devices[] disk), or
    the engine's {vmId, xml: "<hotplug><devices><disk>..."} (intake/hotplug_xml.py)."""
    vm_id = parse_uuid(vmID, "vmID")
    cmd = HotplugDiskCommand(
        _params(params), policy=services.registry.device_policy, image_root=services.virt.image_root
    )
    return await _device_change(services, vm_id, cmd)


async def hotunplug_disk(services: Services, vmID: Any, params: Any = None) -> dict[str, Any]:
    """params: {vmId, drive: {path | name}} or {vmId, xml}."""
    vm_id = parse_uuid(vmID, "vmID")
    cmd = HotunplugDiskCommand(
        _params(params), services.virt.hotunplug_timeout_s, image_root=services.virt.image_root
    )
    return await _device_change(services, vm_id, cmd)


async def hotplug_nic(services: Services, vmID: Any, params: Any = None) -> dict[str, Any]:
    """params: {vmId, nic: {device, network, macAddr, nicModel, ...}} (a devices[] NIC), or
    the engine's {vmId, xml: "<hotplug><devices><interface>..."}."""
    vm_id = parse_uuid(vmID, "vmID")
    cmd = HotplugNicCommand(_params(params), policy=services.registry.device_policy)
    return await _device_change(services, vm_id, cmd)


async def hotunplug_nic(services: Services, vmID: Any, params: Any = None) -> dict[str, Any]:
    """params: {vmId, nic: {macAddr}} or {vmId, xml}."""
    vm_id = parse_uuid(vmID, "vmID")
    cmd = HotunplugNicCommand(_params(params), services.virt.hotunplug_timeout_s)
    return await _device_change(services, vm_id, cmd)


async def set_number_of_cpus(
    services: Services, vmID: Any, numberOfCpus: Any = None
) -> dict[str, Any]:
    vm_id = parse_uuid(vmID, "vmID")
    count = _required_whole(numberOfCpus, "numberOfCpus", MAX_VCPUS, "a whole number")
    return await _device_change(services, vm_id, SetCpusCommand(count))


async def set_balloon_target(services: Services, vmID: Any, target: Any = None) -> bool:
    """target: the balloon's size in KiB."""
    vm_id = parse_uuid(vmID, "vmID")
    kib = _required_whole(target, "target", MAX_BALLOON_KIB, "whole KiB")
    await services.registry.get(vm_id).submit(BalloonCommand(kib))
    return True
