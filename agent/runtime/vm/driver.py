"""OperationDriver: runs a VM's one Operation for its owner (runtime/vm/operation.py).

It starts, resumes and cancels the operation, and executes each step the operation returns:
persist the operation first when the step says so, remember its report for status events,
publish the status, run the actions through the port, and feed their failures (or
follow-ups) back to the operation. It also counts operations for the metrics. Called on the
owner's task only; it knows no operation kind.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from agent import errors
from agent.runtime.vm.operation import ActionContext, Operation, OpStep
from agent.status import VmStatus
from agent.virt.port import DomainEvent

if TYPE_CHECKING:
    from agent.runtime.vm.actor import VmOwner

log = logging.getLogger(__name__)


class OperationObserver(Protocol):
    """Who counts operations (metrics.instruments.Instruments)."""

    def power_operation_started(self) -> None: ...

    def power_operation_finished(
        self, kind: str, outcome: str, stage: str, duration_s: float
    ) -> None: ...


class OperationDriver:
    def __init__(self, vm: VmOwner, observer: OperationObserver | None) -> None:
        self._vm = vm
        self._observer = observer
        self.current: Operation | None = None
        self.report: dict[str, Any] | None = None  # the last step's report, in status events
        self._began: float | None = None  # monotonic; set while an operation is counted

    @property
    def running(self) -> Operation | None:
        op = self.current
        return op if op is not None and op.running else None

    @property
    def deadline(self) -> float | None:
        op = self.running
        return op.deadline if op is not None else None

    async def begin(self, op: Operation) -> None:
        """Start an operation (none may be running)."""
        self.current = op
        self._count_start()
        await self.drive(op.start(self._vm.clock.time()))

    async def resume(self) -> None:
        """Continue the operation adopted from metadata (after an hvagent restart)."""
        op = self.current
        if op is None:
            return
        log.info("resuming %s: %s stage, deadline %s", op.kind, op.stage or "-", op.deadline)
        self._count_start()
        await self.drive(op.resume(self._vm.clock.time()))

    def cancel(self, why: str) -> None:
        op = self.running
        if op is not None:
            log.info("%s cancelled: %s", op.kind, why)
            op.cancel()
            self._count_end(op, "stopped")
            self._vm.state.forget_operation()
        self.current = None

    async def on_event(self, event: DomainEvent) -> None:
        op = self.running
        if op is not None:
            await self.drive(op.on_event(event, self._vm.clock.time()))

    async def on_deadline(self, now: float) -> None:
        op = self.running
        if op is not None and op.deadline is not None and now >= op.deadline:
            await self.drive(op.on_deadline(now))

    async def drive(self, step: OpStep) -> None:
        """Persist, publish, then execute one step of the operation (and its follow-ups)."""
        op, vm = self.current, self._vm
        if op is None:
            return
        while True:
            if step.log:
                log.log(step.level, "%s: %s", op.kind, step.log)
            if step.persist:
                await vm.state.persist(operation=None if step.outcome else op.to_metadata())
            self.report = step.report or self.report
            if step.outcome is not None:
                self._count_end(op, step.outcome)
            changed = step.status is not vm.state.status or step.outcome is not None
            if step.status is not None and step.status is not VmStatus.DOWN and changed:
                vm.set_status(step.status)
            nxt = await self._perform(op, step)
            if nxt is None:
                return
            step = nxt

    async def _perform(self, op: Operation, step: OpStep) -> OpStep | None:
        """Run a step's actions; a failure or a follow-up feeds the operation and returns
        its next step."""
        vm = self._vm
        ctx = ActionContext(vm.port, vm.vm_id, vm.power_config)
        for action in step.actions:
            began = time.monotonic()
            try:
                await action.run(ctx)
            except (errors.AgentError, TimeoutError) as exc:
                reason = exc.reason if isinstance(exc, errors.AgentError) else "timed out"
                log.warning("%s %s failed: %s", op.kind, action.name, reason)
                return op.on_action_failed(action, vm.clock.time(), reason)
            took = time.monotonic() - began
            level = logging.INFO if took > 0.5 else logging.DEBUG
            log.log(level, "%s took %.3f s", action.name, took)
            follow = op.after_action(action, vm.clock.time())
            if follow is not None:
                return follow
        return None

    def _count_start(self) -> None:
        if self._observer is not None and self._began is None:
            self._observer.power_operation_started()
        self._began = time.monotonic()

    def _count_end(self, op: Operation, outcome: str) -> None:
        if self._observer is not None and self._began is not None:
            took = time.monotonic() - self._began
            self._observer.power_operation_finished(op.kind, outcome, op.stage, took)
        self._began = None
