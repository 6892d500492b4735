"""PowerLadder: the shutdown/reboot ladder (agent/power.py) as the owner's Operation.

The pure machine decides; this adapter turns its steps into the owner's `OpStep`s, its
`Do` actions into calls on the port (the guest agent request time-boxed, so a dead agent
never eats the grace period), and restores the status the VM had before the operation when
the ladder gave up or its force action failed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from agent import power
from agent.runtime.vm.operation import Action, ActionContext, OpStep
from agent.status import ExitReason, VmStatus
from agent.virt.port import DomainEvent, EventKind, PowerMethod

_EVENTS = {
    EventKind.STOPPED: power.Event.STOPPED,
    EventKind.STARTED: power.Event.STARTED,
    EventKind.REBOOT: power.Event.REBOOTED,
}
_UNHAPPY = (power.Outcome.GAVE_UP, power.Outcome.FAILED)


@dataclass(frozen=True)
class PowerAction:
    do: power.Do
    reboot: bool

    @property
    def name(self) -> str:
        return str(self.do)

    async def run(self, ctx: ActionContext) -> None:
        ask = ctx.port.reboot if self.reboot else ctx.port.shutdown
        match self.do:
            case power.Do.AGENT:
                async with asyncio.timeout(ctx.power.agent_command_timeout_s):
                    await ask(ctx.vm_id, PowerMethod.AGENT)
            case power.Do.ACPI:
                await ask(ctx.vm_id, PowerMethod.ACPI)
            case power.Do.DESTROY:
                await ctx.port.destroy(ctx.vm_id, graceful_attempts=0)
            case power.Do.RESET:
                await ctx.port.reset(ctx.vm_id)


class PowerLadder:
    """One VM.shutdown (or a console disconnect action) from start to outcome."""

    def __init__(self, plan: power.Plan, *, pre_status: VmStatus) -> None:
        self._machine = power.PowerOperation(plan)
        # What the VM goes back to when the ladder gives up (Up, or Paused with force).
        self._pre_status = pre_status if pre_status is not VmStatus.DOWN else VmStatus.UP
        self._stage = ""

    @classmethod
    def from_metadata(cls, data: dict[str, str], status: VmStatus) -> PowerLadder:
        """ValueError/KeyError on a malformed record."""
        machine = power.PowerOperation.from_metadata(data)
        ladder = cls(machine.plan, pre_status=status)
        ladder._machine = machine
        return ladder

    @property
    def plan(self) -> power.Plan:
        return self._machine.plan

    @property
    def kind(self) -> str:
        return str(self.plan.kind)

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def running(self) -> bool:
        return self._machine.running

    @property
    def deadline(self) -> float | None:
        return self._machine.deadline

    @property
    def expected_exit(self) -> ExitReason | None:
        return ExitReason.ADMIN_SHUTDOWN if self.plan.kind is power.Kind.SHUTDOWN else None

    def start(self, now: float) -> OpStep:
        return self._step(self._machine.start(now))

    def resume(self, now: float) -> OpStep:
        return self._step(self._machine.resume(now))

    def update(self, plan: power.Plan, now: float) -> OpStep:
        return self._step(self._machine.update(plan, now))

    def on_event(self, event: DomainEvent, now: float) -> OpStep:
        mapped = _EVENTS.get(event.kind)
        if mapped is None:
            return OpStep()
        return self._step(self._machine.on_event(mapped, now))

    def on_deadline(self, now: float) -> OpStep:
        return self._step(self._machine.on_deadline(now))

    def on_action_failed(self, action: Action, now: float, reason: str) -> OpStep:
        assert isinstance(action, PowerAction)
        return self._step(self._machine.on_action_failed(action.do, now, reason))

    def after_action(self, action: Action, now: float) -> OpStep | None:
        if isinstance(action, PowerAction) and action.do is power.Do.RESET:
            # libvirt emits no REBOOT event for virDomainReset: the reset is the reboot.
            return self._step(self._machine.on_event(power.Event.REBOOTED, now))
        return None

    def cancel(self) -> None:
        if self._machine.running:
            self._machine.outcome = power.Outcome.STOPPED

    def to_metadata(self) -> dict[str, str]:
        return self._machine.to_metadata()

    def _step(self, step: power.Step) -> OpStep:
        machine = self._machine
        if machine.stage is not power.Stage.ENDED:
            self._stage = str(machine.stage)
        level = logging.WARNING if step.escalated or step.outcome in _UNHAPPY else logging.INFO
        status = step.status
        if step.outcome in _UNHAPPY:
            status = self._pre_status  # the VM stays what it was before the operation
        report: dict[str, object] = {
            "kind": self.kind,
            "stage": str(machine.stage),
            "force": self.plan.force,
            "message": self.plan.message,
            "reason": step.reason,
        }
        if step.outcome is not None:
            report["outcome"] = str(step.outcome)
        reboot = self.plan.kind is power.Kind.REBOOT
        return OpStep(
            actions=tuple(PowerAction(do, reboot) for do in step.actions),
            status=status,
            log=f"{step.reason}; message {self.plan.message!r}" if step.reason else "",
            level=level,
            persist=step.persist,
            outcome=str(step.outcome) if step.outcome is not None else None,
            report=report,
        )
