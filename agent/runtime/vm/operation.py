"""The Operation protocol: a long-running thing a VM's owner drives (the power ladder today;
a migration or a payload clean-up tomorrow), and the steps it asks the owner to take.

An operation is a pure state machine fed with the time and what happened: `start`,
`on_event` (a domain event), `on_deadline`, `on_action_failed`/`after_action` (the outcome
of an action it asked for), `resume` (after an hvagent restart, from `to_metadata`). Each
returns an `OpStep`: actions for the owner to run, in order, the status to publish, whether
to persist the operation before acting, and, once it ended, its outcome. The owner runs one
operation at a time and never looks inside; `runtime/vm/operations.py` lists the kinds that
can be resumed from metadata.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.config import PowerConfig
from agent.status import ExitReason, VmStatus
from agent.virt.port import DomainEvent, Hypervisor


@dataclass(frozen=True)
class ActionContext:
    """What an action may use: the hypervisor port, the VM's id and the power settings."""

    port: Hypervisor
    vm_id: uuid.UUID
    power: PowerConfig


class Action(Protocol):
    """One thing an operation asks for; raises AgentError or TimeoutError when it fails."""

    @property
    def name(self) -> str: ...

    async def run(self, ctx: ActionContext) -> None: ...


@dataclass(frozen=True)
class OpStep:
    actions: tuple[Action, ...] = ()
    status: VmStatus | None = None  # publish this status (Down comes from the domain itself)
    log: str = ""  # logged at `level` when set
    level: int = logging.INFO
    persist: bool = False  # write to_metadata() (or clear it, once ended) before acting
    outcome: str | None = None  # set when the operation ended
    report: dict[str, Any] = field(default_factory=dict)  # carried in status events


class Operation(Protocol):
    @property
    def kind(self) -> str:
        """What runs, e.g. "shutdown": log lines and the metrics' `kind` label."""

    @property
    def stage(self) -> str:
        """The last stage it ran, for the metrics' `stage` label."""

    @property
    def running(self) -> bool: ...

    @property
    def deadline(self) -> float | None:
        """When `on_deadline` is due (epoch seconds), None when nothing is scheduled."""

    @property
    def expected_exit(self) -> ExitReason | None:
        """The exit reason if the domain stops while this runs (None: the stop decides)."""

    def start(self, now: float) -> OpStep: ...

    def resume(self, now: float) -> OpStep: ...

    def on_event(self, event: DomainEvent, now: float) -> OpStep: ...

    def on_deadline(self, now: float) -> OpStep: ...

    def on_action_failed(self, action: Action, now: float, reason: str) -> OpStep: ...

    def after_action(self, action: Action, now: float) -> OpStep | None:
        """A step to take once `action` succeeded, or None to go on with the next one."""

    def cancel(self) -> None:
        """Stop now (VM.destroy, the domain went away); no further steps."""

    def to_metadata(self) -> dict[str, str]:
        """What `operations.resume` needs after a restart; carries a `kind` key."""
