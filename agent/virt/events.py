"""libvirt event and state integers -> the port's enums (tables, no logic beyond lookup)."""

from __future__ import annotations

import libvirt

from agent.virt.port import DomainState, EventKind, GraphicsClient, StopCause

LIFECYCLE: dict[int, EventKind] = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: EventKind.DEFINED,
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: EventKind.UNDEFINED,
    libvirt.VIR_DOMAIN_EVENT_STARTED: EventKind.STARTED,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: EventKind.SUSPENDED,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: EventKind.RESUMED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: EventKind.STOPPED,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: EventKind.SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: EventKind.CRASHED,
}

STOPPED_DETAIL: dict[int, StopCause] = {
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: StopCause.SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED: StopCause.DESTROYED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED: StopCause.CRASHED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED: StopCause.MIGRATED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED: StopCause.SAVED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED: StopCause.FAILED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: StopCause.FROM_SNAPSHOT,
}

SHUTOFF_REASON: dict[int, StopCause] = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: StopCause.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: StopCause.DESTROYED,
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: StopCause.CRASHED,
    libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: StopCause.MIGRATED,
    libvirt.VIR_DOMAIN_SHUTOFF_SAVED: StopCause.SAVED,
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: StopCause.FAILED,
    libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: StopCause.FROM_SNAPSHOT,
}

STATE: dict[int, DomainState] = {
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
}

AGENT_STATE: dict[int, EventKind] = {
    libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED: EventKind.AGENT_CONNECTED,
    libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED: (
        EventKind.AGENT_DISCONNECTED
    ),
}

GRAPHICS_PHASE: dict[int, EventKind] = {
    libvirt.VIR_DOMAIN_EVENT_GRAPHICS_CONNECT: EventKind.GRAPHICS_CONNECT,
    libvirt.VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE: EventKind.GRAPHICS_INITIALIZE,
    libvirt.VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT: EventKind.GRAPHICS_DISCONNECT,
}


def _port(service: object) -> int | None:
    return int(service) if isinstance(service, str) and service.isdigit() else None


def graphics_client(local: dict[str, str], remote: dict[str, str]) -> GraphicsClient:
    """libvirt's address dicts ({family, node, service}) -> the port's GraphicsClient."""
    return GraphicsClient(
        local_port=_port(local.get("service")),
        remote_host=str(remote.get("node", "")),
        remote_port=_port(remote.get("service")),
    )


def pause_code(event: int, detail: int) -> str | None:
    """VDSM's pauseCode for a SUSPENDED event: "EIO" when libvirt paused on an I/O error."""
    if event != libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
        return None
    return "EIO" if detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR else "NOERR"


def lifecycle(event: int, detail: int) -> tuple[EventKind, StopCause | None]:
    kind = LIFECYCLE.get(event, EventKind.OTHER)
    cause = STOPPED_DETAIL.get(detail, StopCause.UNKNOWN) if kind is EventKind.STOPPED else None
    return kind, cause


def state(state_int: int, reason: int) -> tuple[DomainState, StopCause | None]:
    st = STATE.get(state_int, DomainState.OTHER)
    cause = SHUTOFF_REASON.get(reason, StopCause.UNKNOWN) if st is DomainState.SHUTOFF else None
    return st, cause
