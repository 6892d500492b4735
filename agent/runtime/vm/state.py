"""VmState: what a VM's owner knows of its VM, and the one way its metadata is persisted.

Status, exit info, the metadata block that must survive an hvagent restart, and the facts
read from the domain. Status changes go through the owner (`VmOwner.set_status`), which
publishes them; this class only holds them.

Persisting (`persist`): the in-memory metadata is updated first and is what this process
acts on; the whole block is then written to the domain. A failed write is logged at WARNING
and never raised: the next write carries the whole block again, so nothing is lost for good
while the domain exists, and no operation or verb fails halfway because the log of its state
could not be written (one policy, where there were three).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from agent import errors
from agent.domxml import metadata, parse, to_string
from agent.domxml.live import DomainFacts, current_vcpus
from agent.domxml.live import devices as live_devices
from agent.domxml.metadata import VmMetadata
from agent.status import ExitInfo, ExitReason, VmStatus
from agent.virt.port import Hypervisor, StopCause

log = logging.getLogger(__name__)


def status_time() -> str:
    """VDSM's statusTime: monotonic milliseconds, as a string."""
    return str(int(time.monotonic() * 1000))


def exit_for_stop(cause: StopCause | None, requested: ExitReason | None) -> ExitInfo:
    """Exit info for a domain that stopped; `requested` is the reason hvagent set beforehand."""
    if requested is not None and cause in (StopCause.DESTROYED, StopCause.SHUTDOWN, None):
        return ExitInfo.of(requested)
    match cause:
        case StopCause.SHUTDOWN:
            return ExitInfo.of(ExitReason.USER_SHUTDOWN)
        case StopCause.DESTROYED:
            return ExitInfo.of(ExitReason.LOST_QEMU_CONNECTION, "Domain destroyed outside hvagent")
        case StopCause.CRASHED:
            return ExitInfo.of(ExitReason.LOST_QEMU_CONNECTION, "QEMU process crashed")
        case StopCause.MIGRATED:
            return ExitInfo.of(ExitReason.MIGRATION_SUCCEEDED)
        case StopCause.SAVED:
            return ExitInfo.of(ExitReason.SAVE_STATE_SUCCEEDED)
        case StopCause.FAILED:
            # libvirt's STOPPED/FAILED: the emulator died (SIGKILL, OOM) under a running
            # guest; VDSM reports that as the lost QEMU connection.
            return ExitInfo.of(ExitReason.LOST_QEMU_CONNECTION)
        case _:
            return ExitInfo.of(ExitReason.GENERIC_ERROR, "The domain is not running")


class VmState:
    def __init__(
        self,
        port: Hypervisor,
        facts: DomainFacts,
        status: VmStatus,
        exit_info: ExitInfo | None = None,
    ) -> None:
        self.vm_id = facts.vm_id
        self.facts = facts
        self.external = facts.metadata is None  # a foreign domain: reported, never touched
        self.meta = facts.metadata or VmMetadata()
        self.status = status
        self.status_time = status_time()
        self.exit_info = exit_info
        self.agent_connected = False
        self.started_mono = time.monotonic()
        # VM stats' `hash`: known once libvirt's live XML was read (adoption reads it; a VM
        # being created has only the XML hvagent built until its owner reads the live one).
        self.devices_hash = facts.devices.hash if status is not VmStatus.WAIT_FOR_LAUNCH else None
        self.pause_code: str | None = "NOERR" if status is VmStatus.PAUSED else None
        self.io_error: str | None = None  # the last I/O error's code since running
        # Why the domain will stop, when hvagent stops it (VM.destroy, destroy-on-reboot).
        self.stop_reason: ExitReason | None = None
        self._port = port

    def change(self, status: VmStatus, exit_info: ExitInfo | None) -> VmStatus:
        """Record a new status; returns the old one."""
        old, self.status = self.status, status
        self.status_time = status_time()
        self.exit_info = exit_info if status is VmStatus.DOWN else None
        return old

    def started(self) -> None:
        """The domain (re)started: elapsed time counts from now, no stop is pending."""
        self.started_mono = time.monotonic()
        self.stop_reason = None

    @property
    def balloon_target_kib(self) -> int | None:
        """VM.setBalloonTarget's target for the running QEMU (persisted: it survives an
        hvagent restart); None when never set."""
        return self.meta.balloon_target_kib

    def rebooted(self) -> None:
        """The guest rebooted (libvirt's REBOOT): VDSM resets elapsedTime."""
        self.started_mono = time.monotonic()

    def read_live(self, xml: str) -> None:
        """libvirt's live XML: device facts (NIC target devs, disks), the devices hash and
        the current vCPU count."""
        dom = parse(xml)
        devices = live_devices(dom)
        self.facts = dataclasses.replace(self.facts, devices=devices, vcpus=current_vcpus(dom))
        self.devices_hash = devices.hash

    @property
    def time_offset(self) -> int:
        """The guest RTC's offset (s): as the last RTC_CHANGE said, else as created."""
        offset = self.meta.time_offset
        return self.facts.time_offset if offset is None else offset

    def forget_operation(self) -> None:
        """Drop the persisted operation from memory; the next write clears it in libvirt."""
        self.meta = dataclasses.replace(self.meta, operation=None)

    async def persist(self, **changes: Any) -> None:
        """Update hvagent's metadata with `changes` (VmMetadata fields) and write it.

        Foreign domains are never written. See the module docstring for the error policy."""
        self.meta = dataclasses.replace(self.meta, **changes)
        if self.external:
            return
        try:
            await self._port.set_metadata(self.vm_id, to_string(metadata.build(self.meta)))
        except errors.AgentError as exc:
            log.warning(
                "could not persist %s in the domain metadata (kept in memory): %s",
                ", ".join(sorted(changes)) or "metadata",
                exc.reason,
            )
