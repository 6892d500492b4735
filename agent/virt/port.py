"""The narrow async port to the hypervisor: a Protocol plus the plain types it speaks.

The runtime depends on this module only; `adapter.LibvirtHypervisor` implements it on
libvirt-python, and tests may hand in a fake. No libvirt objects or flag integers cross this
boundary: VM ids are UUIDs, XML is str, states and events are enums.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class DomainState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"
    OTHER = "other"  # blocked, shutting down, crashed, pmsuspended: transient, not terminal


class StopCause(StrEnum):
    """Why a domain stopped (lifecycle STOPPED detail or SHUTOFF state reason)."""

    SHUTDOWN = "shutdown"  # the guest powered itself off
    DESTROYED = "destroyed"
    CRASHED = "crashed"
    MIGRATED = "migrated"
    SAVED = "saved"
    FAILED = "failed"
    FROM_SNAPSHOT = "from-snapshot"
    UNKNOWN = "unknown"


class EventKind(StrEnum):
    DEFINED = "defined"
    UNDEFINED = "undefined"
    STARTED = "started"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    STOPPED = "stopped"
    SHUTDOWN = "shutdown"  # guest-initiated shutdown finished; STOPPED follows
    CRASHED = "crashed"
    REBOOT = "reboot"
    AGENT_CONNECTED = "agent-connected"
    AGENT_DISCONNECTED = "agent-disconnected"
    # A console client: the TCP connection opened, authenticated (the session begins), closed.
    GRAPHICS_CONNECT = "graphics-connect"
    GRAPHICS_INITIALIZE = "graphics-initialize"
    GRAPHICS_DISCONNECT = "graphics-disconnect"
    RTC_CHANGE = "rtc-change"  # the guest set its clock: `utc_offset` is the new offset
    IO_ERROR = "io-error"  # a disk I/O error (`pause_code`: "ENOSPC" or "EIO"); may pause
    OTHER = "other"


class PowerMethod(StrEnum):
    """How to ask a guest to shut down or reboot."""

    AGENT = "agent"  # the QEMU guest agent
    ACPI = "acpi"  # ACPI power button / ACPI reboot


@dataclass(frozen=True)
class GraphicsClient:
    """Who a GRAPHICS_* event is about. `local_port` is the console's port the client reached
    (None for a Unix socket); a SPICE client opens one connection per channel."""

    local_port: int | None
    remote_host: str
    remote_port: int | None


@dataclass(frozen=True)
class DomainEvent:
    vm_id: uuid.UUID
    kind: EventKind
    stop_cause: StopCause | None = None  # set for STOPPED
    client: GraphicsClient | None = None  # set for GRAPHICS_*
    utc_offset: int | None = None  # set for RTC_CHANGE: the RTC's offset from UTC (s)
    # set for SUSPENDED ("NOERR", or "EIO" on an I/O error) and IO_ERROR ("ENOSPC", "EIO")
    pause_code: str | None = None


@dataclass(frozen=True)
class DomainRecord:
    vm_id: uuid.UUID
    state: DomainState
    stop_cause: StopCause | None  # set when SHUTOFF
    xml: str  # inactive-or-live XML without secrets


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    capabilities_xml: str
    cpu_model: str  # from virNodeGetInfo, e.g. "x86_64"
    memory_mib: int
    cpus: int
    mhz: int
    numa_nodes: int
    sockets_per_node: int
    cores_per_socket: int
    threads_per_core: int
    libvirt_version: str  # "9.0.0"
    hypervisor_version: str  # QEMU's version for qemu:// URIs
    hypervisor_type: str  # "QEMU", "Test"
    domain_capabilities_xml: str = ""  # virConnectGetDomainCapabilities; "" where unsupported


@dataclass(frozen=True)
class DomainStats:
    """One domain's libvirt bulk stats (virConnectGetAllDomainStats keys, e.g. "vcpu.0.time")."""

    vm_id: uuid.UUID
    name: str
    stats: dict[str, int | float | str]


@dataclass(frozen=True)
class GuestAddress:
    family: str  # "ipv4" or "ipv6"
    address: str
    prefix: int


@dataclass(frozen=True)
class GuestInterface:
    """One guest network interface as the QEMU guest agent names it."""

    name: str
    hwaddr: str
    addresses: tuple[GuestAddress, ...] = ()


@dataclass(frozen=True)
class GuestInfo:
    """What the QEMU guest agent told libvirt, read in one time-boxed trip.

    `info` holds virDomainGetGuestInfo's typed parameters as libvirt names them ("hostname",
    "os.id", "timezone.offset", "user.0.name", "fs.0.mountpoint", ...); `interfaces` the
    agent's interface addresses; `cpu_count` the guest's online vCPUs. A part the driver or
    the agent could not answer is empty (None for `cpu_count`) and named in `missing`."""

    info: dict[str, int | str]
    interfaces: tuple[GuestInterface, ...] = ()
    cpu_count: int | None = None
    missing: tuple[str, ...] = ()


class ConnectionLost(Exception):
    """Raised by `events()` when the libvirt connection closed underneath us."""


class Hypervisor(Protocol):
    async def list_domains(self) -> list[DomainRecord]: ...

    async def domain(self, vm_id: uuid.UUID) -> DomainRecord: ...

    async def has_domain(self, vm_id: uuid.UUID) -> bool:
        """Whether libvirt has a domain with this UUID (one look-up, nothing read)."""

    async def define_and_start(self, xml: str, *, paused: bool) -> str:
        """Define persistently (schema-validated) and start; on start failure undefine.
        Returns the running domain's live XML (without secrets)."""

    async def destroy(self, vm_id: uuid.UUID, *, graceful_attempts: int) -> None:
        """Stop now; a domain that is not running is not an error."""

    async def undefine(self, vm_id: uuid.UUID) -> None: ...

    async def shutdown(self, vm_id: uuid.UUID, method: PowerMethod) -> None:
        """Ask the guest to power off (returns once asked, not when it is off)."""

    async def reboot(self, vm_id: uuid.UUID, method: PowerMethod) -> None:
        """Ask the guest to reboot (libvirt emits REBOOT when it does)."""

    async def reset(self, vm_id: uuid.UUID) -> None:
        """Hard reset, like the reset button; raises errors.ResetFailed on refusal."""

    async def domain_xml(self, vm_id: uuid.UUID) -> str:
        """The domain's current XML (live when running), without secrets."""

    async def update_graphics(self, vm_id: uuid.UUID, element_xml: str) -> None:
        """Live-update one <graphics> (a console ticket); raises errors.TicketFailed."""

    async def set_metadata(self, vm_id: uuid.UUID, element_xml: str) -> None:
        """Replace hvagent's metadata element, live and persistent as applicable."""

    async def host_facts(self) -> HostFacts: ...

    # -- a running domain (runtime/vm/devices_cmd.py); errors as AgentErrors, libvirt's
    # refusal with its detail in `data.libvirt` (the caller picks the verb's error class).

    async def suspend(self, vm_id: uuid.UUID) -> None:
        """Pause the guest CPUs (libvirt emits SUSPENDED)."""

    async def resume(self, vm_id: uuid.UUID) -> None:
        """Run the guest CPUs again (libvirt emits RESUMED)."""

    async def attach_device(self, vm_id: uuid.UUID, element_xml: str) -> None:
        """Hot-plug one device element into the running domain (live only, as VDSM)."""

    async def detach_device(self, vm_id: uuid.UUID, element_xml: str) -> None:
        """Ask to hot-unplug one device (live); the guest may release it later: callers
        read the live XML to know when it is gone."""

    async def set_vcpus(self, vm_id: uuid.UUID, count: int) -> None:
        """Set the running domain's vCPU count (up to its maximum)."""

    async def set_balloon(self, vm_id: uuid.UUID, kib: int) -> None:
        """Set the running domain's balloon target (KiB, up to its memory)."""

    async def host_sysinfo(self) -> str:
        """libvirt's host <sysinfo> XML (SMBIOS); errors.HardwareInfoFailed when the host
        has none to give."""

    async def all_domain_stats(self) -> list[DomainStats]:
        """Bulk stats of every domain, taken on a separate small executor (never blocks verbs)."""
        ...

    async def guest_info(self, vm_id: uuid.UUID, *, timeout_s: int) -> GuestInfo:
        """Ask the guest agent (libvirt's agent timeout set to `timeout_s`), on threads of
        its own so a hung agent never holds a verb's thread. Raises the first part's error
        (e.g. GuestAgentUnresponsive, WrongState when no agent is connected) when no part
        answered; NoSuchVM for an unknown domain."""
        ...

    def events(self) -> AsyncIterator[DomainEvent]:
        """The domain events of the current connection; ends with ConnectionLost."""
        ...

    async def reconnect(self) -> None:
        """Open a new connection after ConnectionLost (waits until libvirt answers)."""

    @property
    def alive(self) -> bool: ...

    async def close(self) -> None: ...
