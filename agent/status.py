"""VM status names and exit reasons, with VDSM's exact wire strings and numbers.

Pure values only: the status strings the engine matches on (reference/vdsm.md §2.4) and the
exit reason table (§6.5). Which status a VM is in is decided by its owner
(`runtime/owner.py`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from agent.wirevalues import scrub


class VmStatus(StrEnum):
    WAIT_FOR_LAUNCH = "WaitForLaunch"
    POWERING_UP = "Powering up"
    UP = "Up"
    POWERING_DOWN = "Powering down"
    REBOOT_IN_PROGRESS = "RebootInProgress"
    PAUSED = "Paused"
    DOWN = "Down"


class ExitCode(IntEnum):
    NORMAL = 0
    ERROR = 1


class ExitReason(IntEnum):
    SUCCESS = 0
    GENERIC_ERROR = 1
    LOST_QEMU_CONNECTION = 2
    LIBVIRT_START_FAILED = 3
    MIGRATION_SUCCEEDED = 4
    SAVE_STATE_SUCCEEDED = 5
    ADMIN_SHUTDOWN = 6
    USER_SHUTDOWN = 7
    MIGRATION_FAILED = 8
    LIBVIRT_DOMAIN_MISSING = 9
    DESTROYED_ON_STARTUP = 10
    HOST_SHUTDOWN = 11
    POSTCOPY_MIGRATION_FAILED = 12
    DESTROYED_ON_REBOOT = 13
    DESTROYED_ON_PAUSE_TIMEOUT = 14


# VDSM's default messages, spelling included ("succesfully"): engines display them.
EXIT_MESSAGES: dict[ExitReason, str] = {
    ExitReason.SUCCESS: "VM terminated succesfully",
    ExitReason.GENERIC_ERROR: "VM terminated with error",
    ExitReason.LOST_QEMU_CONNECTION: "Lost connection with qemu process",
    ExitReason.LIBVIRT_START_FAILED: "failed to start libvirt vm",
    ExitReason.MIGRATION_SUCCEEDED: "Migration succeeded",
    ExitReason.SAVE_STATE_SUCCEEDED: "SaveState succeeded",
    ExitReason.ADMIN_SHUTDOWN: "Admin shut down from the engine",
    ExitReason.USER_SHUTDOWN: "User shut down from within the guest",
    ExitReason.MIGRATION_FAILED: "VM failed to migrate",
    ExitReason.LIBVIRT_DOMAIN_MISSING: "Failed to find the libvirt domain",
    ExitReason.DESTROYED_ON_STARTUP: "VM destroyed during the startup",
    ExitReason.HOST_SHUTDOWN: "VM has been terminated on the host",
    ExitReason.POSTCOPY_MIGRATION_FAILED: "Migration failed in post-copy",
    ExitReason.DESTROYED_ON_REBOOT: "Down as a part of the reboot process",
    ExitReason.DESTROYED_ON_PAUSE_TIMEOUT: "Down because paused for too long",
}


@dataclass(frozen=True)
class ExitInfo:
    """Why a VM is Down: `exitCode`, `exitReason`, `exitMessage` on the wire."""

    code: ExitCode
    reason: ExitReason
    message: str

    @classmethod
    def of(cls, reason: ExitReason, message: str | None = None) -> ExitInfo:
        """Exit info with VDSM's code rule: ERROR for start failures and crashes."""
        code = ExitCode.ERROR if reason in _ERROR_REASONS else ExitCode.NORMAL
        # Messages often carry libvirt's text; keep them storable in XML metadata.
        text = scrub(message) if message else EXIT_MESSAGES[reason]
        return cls(code, reason, text)

    def to_wire(self) -> dict[str, object]:
        return {
            "exitCode": int(self.code),
            "exitReason": int(self.reason),
            "exitMessage": self.message,
        }


_ERROR_REASONS = frozenset(
    {
        ExitReason.GENERIC_ERROR,
        ExitReason.LOST_QEMU_CONNECTION,
        ExitReason.LIBVIRT_START_FAILED,
        ExitReason.MIGRATION_FAILED,
        ExitReason.LIBVIRT_DOMAIN_MISSING,
        ExitReason.HOST_SHUTDOWN,
        ExitReason.POSTCOPY_MIGRATION_FAILED,
        ExitReason.DESTROYED_ON_PAUSE_TIMEOUT,
    }
)
