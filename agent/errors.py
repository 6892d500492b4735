"""The agent's error table: one class per stable JSON-RPC error code.

Every error the agent answers with is an `AgentError` subclass from this module. The message
is fixed per class (it is what an engine matches on); everything specific to one failure goes
into `data`, a JSON object: `reason` (human text), the offending `param` when a request field
is at fault, `vmId`, and `libvirt: {code, domain, message}` when libvirt refused.

Codes below 1000 reuse VDSM's number where the meaning matches (reference/vdsm.md §1.4);
codes from 1000 up are hvagent's own. This module imports nothing from the agent.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar


class AgentError(Exception):
    """Base class. `expected` errors are logged at INFO without a traceback."""

    code: ClassVar[int] = -32603
    message: ClassVar[str] = "Internal error"
    expected: ClassVar[bool] = True

    def __init__(self, reason: str | None = None, **data: Any) -> None:
        self.data: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
        if reason is not None:
            self.data["reason"] = reason
        super().__init__(reason or self.message)

    @property
    def reason(self) -> str:
        return str(self.data.get("reason", self.message))

    def to_wire(self) -> dict[str, Any]:
        """The JSON-RPC `error` object (without id)."""
        return {"code": self.code, "message": self.message, "data": self.data}


class InternalError(AgentError):
    """A bug: the client sees only an error id; the log has the traceback under that id."""

    expected = False


def internal_error(log: logging.Logger, what: str, exc: BaseException) -> InternalError:
    """Log `exc` (a bug) with a fresh error id and its traceback; the error to answer with."""
    error_id = uuid.uuid4().hex[:12]
    log.error("%s, error_id=%s", what, error_id, exc_info=exc)
    return InternalError(error_id=error_id)


class InvalidParams(AgentError):
    code = -32602
    message = "Invalid params"


class MethodNotFound(AgentError):
    """The message names the method as VDSM's does (`data.method` has it too)."""

    code = -32601
    message = "Method not found"

    def to_wire(self) -> dict[str, Any]:
        wire = super().to_wire()
        if isinstance(self.data.get("method"), str):
            name = self.data["method"]
            wire["message"] = (
                f"The method does not exist or is not available: {{'method': {name!r}}}"
            )
        return wire


class NoSuchVM(AgentError):
    code = 1
    message = "Virtual machine does not exist"


class VMExists(AgentError):
    code = 4
    message = "Virtual machine already exists"


class WrongState(AgentError):
    code = 6
    message = "Virtual machine is not in a valid state for this operation"


class CreateFailed(AgentError):
    code = 9
    message = "Error creating the requested VM"


class MissingParameter(AgentError):
    code = 11
    message = "Missing required parameter"


class NotImplementedByAgent(AgentError):
    code = 44
    message = "Not implemented"


class TicketFailed(AgentError):
    code = 18
    message = "Error while setting ticket"


class GuestAgentUnresponsive(AgentError):
    code = 19
    message = "Guest agent non-responsive"


class HypervisorUnavailable(AgentError):
    code = 40
    message = "Resource unavailable"


class DestroyFailed(AgentError):
    code = 42
    message = "Virtual machine destroy error"


class HotplugDiskFailed(AgentError):
    code = 45
    message = "Failed to hotplug disk"


class HotunplugDiskFailed(AgentError):
    code = 46
    message = "Failed to hotunplug disk"


class HotplugNicFailed(AgentError):
    code = 49
    message = "Failed to hotplug NIC"


class HotunplugNicFailed(AgentError):
    code = 50
    message = "Failed to hotunplug NIC"


class BalloonFailed(AgentError):
    code = 53
    message = "Balloon operation is not available"


class UpdateDeviceFailed(AgentError):
    code = 56
    message = "Failed to update device"


class HardwareInfoFailed(AgentError):
    code = 57
    message = "Failed to read hardware information"


class SetNumberOfCpusFailed(AgentError):
    code = 60
    message = "Failed to set the number of cpus"


class Unsupported(AgentError):
    code = 75
    message = "Operation not supported"


class ResetFailed(AgentError):
    code = 90
    message = "Failed to reset VM"


class Recovering(AgentError):
    code = 99
    message = "Recovering from crash or Initializing"


class OperationConflict(AgentError):
    code = 1001
    message = "Another operation is in progress"


class OperationTimeout(AgentError):
    code = 1002
    message = "Operation timed out"


class HypervisorError(AgentError):
    """libvirt refused for a reason no more specific class covers."""

    code = 1003
    message = "Hypervisor error"


class NoSuchChannel(AgentError):
    """VM.readChannel / the channel stream: the VM has no drained channel of that name
    (`data.channels` lists those it has)."""

    code = 1004
    message = "Channel does not exist"


def all_error_classes() -> list[type[AgentError]]:
    """Every concrete error class, for the error-table test and the README."""
    return [AgentError, *_subclasses(AgentError)]


def _subclasses(cls: type[AgentError]) -> list[type[AgentError]]:
    out: list[type[AgentError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out
