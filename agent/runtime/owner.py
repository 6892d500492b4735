"""VmOwner: the one task that owns a VM and serialises everything that happens to it.

RPC commands and routed libvirt events go through one inbox and are handled one at a time,
so verbs and events never race (jsonrpcserver runs batch entries concurrently; this is what
makes that safe). A command carries a Future: the verb awaits the part it must wait for and
nothing more. An error in a command fails that command only; the loop goes on. The loop ends
when the VM is destroyed (its domain undefined) or when the registry cancels it at shutdown,
which leaves the guest untouched.

Status changes are published on the StatusBus; the Down status and its exit info are first
written to the domain metadata, so a restarted hvagent reports the same.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from agent import consoles, domxml, errors, power
from agent.clock import Clock, RealClock
from agent.config import PowerConfig
from agent.domxml import metadata, to_string
from agent.domxml.live import DomainFacts
from agent.domxml.metadata import VmMetadata
from agent.logs import Secret, vm_id_var
from agent.runtime.bus import StatusBus
from agent.runtime.console_watch import ConsoleObserver, ConsoleWatch
from agent.sessions import DisconnectAction, DisconnectPolicy
from agent.status import ExitInfo, ExitReason, VmStatus
from agent.virt.port import (
    DomainEvent,
    DomainState,
    EventKind,
    Hypervisor,
    PowerMethod,
    StopCause,
)

log = logging.getLogger(__name__)


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
            return ExitInfo.of(ExitReason.GENERIC_ERROR, "The domain failed to start or run")
        case _:
            return ExitInfo.of(ExitReason.GENERIC_ERROR, "The domain is not running")


def status_time() -> str:
    """VDSM's statusTime: monotonic milliseconds, as a string."""
    return str(int(time.monotonic() * 1000))


@dataclass
class _Launch:
    xml: str
    paused: bool


@dataclass
class PowerCommand:
    """VM.shutdown (kind shutdown/reboot) or VM.reset / VM.setDestroyOnReboot."""

    what: str  # "ladder", "reset", "destroy-on-reboot"
    kind: power.Kind = power.Kind.SHUTDOWN
    delay_s: float | None = None
    timeout_s: float | None = None
    force: bool = False
    message: str = ""
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Destroy:
    graceful_attempts: int
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class TicketCommand:
    """VM.setTicket / VM.updateDevice(graphics): a console password with its expiry, and
    what to do when the last console client leaves (setTicket resets it to NONE, as VDSM)."""

    password: Secret
    ttl_s: int
    conn_action: consoles.ConnAction | None = None
    graphics_type: str | None = None  # None: the first console, as VDSM
    disconnect: DisconnectPolicy = field(default_factory=DisconnectPolicy)
    failure: type[errors.AgentError] = errors.TicketFailed  # 18 setTicket, 56 updateDevice
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


_Item = _Launch | _Destroy | PowerCommand | TicketCommand | DomainEvent


class OwnerObserver(ConsoleObserver, Protocol):
    """Who counts power operations and console state (metrics.instruments.Instruments)."""

    def power_operation_started(self) -> None: ...

    def power_operation_finished(
        self, kind: str, outcome: str, stage: str, duration_s: float
    ) -> None: ...


class VmOwner:
    """State and serialised handling of one VM. Built and supervised by the registry."""

    def __init__(
        self,
        port: Hypervisor,
        bus: StatusBus,
        facts: DomainFacts,
        status: VmStatus,
        *,
        exit_info: ExitInfo | None = None,
        power_config: PowerConfig | None = None,
        clock: Clock | None = None,
        observer: OwnerObserver | None = None,
    ) -> None:
        self.vm_id = facts.vm_id
        self._observer = observer
        self._op_began: float | None = None  # monotonic; set while an operation is counted
        self._op_stage = ""  # the last stage the operation ran, for the metrics label
        self.facts = facts
        self.consoles = facts.consoles  # ports as last read from libvirt's live XML
        self.external = facts.metadata is None
        self._meta = facts.metadata or VmMetadata()
        self._port = port
        self._bus = bus
        self._inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._power_cfg = power_config or PowerConfig()
        self.console_watch = ConsoleWatch(
            str(self.vm_id), observer, self._power_cfg.console_disconnect_grace_s
        )
        self._clock: Clock = clock or RealClock(asyncio.sleep)
        self._op: power.PowerOperation | None = None
        self._op_info: dict[str, Any] | None = None  # carried in status events
        self._get: asyncio.Task[Any] | None = None
        self._pre_op_status = status if status is not VmStatus.DOWN else VmStatus.UP
        self.status = status
        self.status_time = status_time()
        self.exit_info = exit_info
        self.agent_connected = False
        self._started_mono = time.monotonic()
        self._stop_reason: ExitReason | None = None
        self._gone = False

    @classmethod
    def adopt(
        cls,
        port: Hypervisor,
        bus: StatusBus,
        facts: DomainFacts,
        state: DomainState,
        cause: StopCause | None,
        *,
        power_config: PowerConfig | None = None,
        clock: Clock | None = None,
        observer: OwnerObserver | None = None,
    ) -> VmOwner:
        """An owner for a domain found in libvirt (recovery or a domain defined outside).

        A power operation recorded in the metadata of a running domain is resumed by `run`
        with the time that remains until its persisted deadlines.
        """
        kw: dict[str, Any] = {"power_config": power_config, "clock": clock, "observer": observer}
        if state is DomainState.SHUTOFF:
            recorded = facts.metadata.exit if facts.metadata else None
            exit_info = recorded or exit_for_stop(cause, None)
            return cls(port, bus, facts, VmStatus.DOWN, exit_info=exit_info, **kw)
        status = VmStatus.PAUSED if state is DomainState.PAUSED else VmStatus.UP
        owner = cls(port, bus, facts, status, **kw)
        recorded_op = facts.metadata.operation if facts.metadata else None
        if recorded_op is not None:
            try:
                owner._op = power.PowerOperation.from_metadata(recorded_op)
            except (KeyError, ValueError) as exc:
                log.warning("VM %s: unreadable power operation in metadata: %s", owner.vm_id, exc)
        return owner

    # -- called by the registry / verbs (event-loop thread) -------------------------------

    def launch(self, xml: str, *, paused: bool) -> None:
        self._inbox.put_nowait(_Launch(xml, paused))

    async def destroy(self, graceful_attempts: int) -> None:
        cmd = _Destroy(graceful_attempts)
        self._inbox.put_nowait(cmd)
        await cmd.done

    async def power(self, cmd: PowerCommand) -> None:
        """Queue a power command; returns once the owner accepted (or refused) it."""
        self._inbox.put_nowait(cmd)
        await cmd.done

    def post_event(self, event: DomainEvent) -> None:
        self._inbox.put_nowait(event)

    @property
    def power_operation(self) -> str | None:
        """'shutdown'/'reboot' while a power operation runs (or awaits resuming), else None."""
        return str(self._op.plan.kind) if self._op is not None and self._op.running else None

    @property
    def gone(self) -> bool:
        return self._gone

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        vm_id_var.set(str(self.vm_id))
        self._publish_consoles()
        if self._op is not None:
            await self._resume_op()
        while not self._gone:
            item = await self._next_item()
            if item is None:
                await self._on_deadline()
            elif isinstance(item, DomainEvent):
                await self._on_event(item)
            elif isinstance(item, _Launch):
                await self._launch(item)
            elif isinstance(item, TicketCommand):
                await self._settle(item.done, self._set_ticket(item))
            elif isinstance(item, PowerCommand):
                await self._settle(item.done, self._power(item))
            else:
                await self._settle(item.done, self._destroy(item.graceful_attempts))
        # Anything still queued refers to a VM that no longer exists.
        self._publish_consoles()
        if self._get is not None:
            self._get.cancel()
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, _Destroy):
                item.done.set_result(None)
            elif isinstance(item, PowerCommand | TicketCommand):
                item.done.set_exception(errors.NoSuchVM(vmId=str(self.vm_id)))

    @staticmethod
    async def _settle(done: asyncio.Future[None], work: Awaitable[None]) -> None:
        """Run one command: its AgentError fails that command only, and the loop goes on.

        A command may have answered already (VM.shutdown answers once accepted); a later
        error is then logged, since nobody waits for it any more.
        """
        try:
            await work
        except errors.AgentError as exc:
            if done.done():
                log.warning("after the command was answered: %s", exc.reason)
            else:
                done.set_exception(exc)
        else:
            if not done.done():
                done.set_result(None)

    async def _next_item(self) -> _Item | None:
        """The next inbox item, or None when a deadline (the power operation's, the console
        disconnect action's) comes first."""
        if self._get is None:
            self._get = asyncio.ensure_future(self._inbox.get())
        deadlines = [self.console_watch.action_at]
        if self._op is not None:
            deadlines.append(self._op.deadline)
        deadline = min((d for d in deadlines if d is not None), default=None)
        if deadline is not None and not self._get.done():
            sleeper = asyncio.ensure_future(self._clock.sleep_until(deadline))
            try:
                await asyncio.wait({self._get, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
            if not self._get.done():
                return None
        item = await self._get
        self._get = None
        return item

    async def _on_deadline(self) -> None:
        now = self._clock.time()
        action = self.console_watch.action_due(now)
        if action is not None:
            await self._run_disconnect_action(action)
        op = self._op
        if op is not None and op.deadline is not None and now >= op.deadline:
            await self._op_step(op.on_deadline(now))

    # -- power -----------------------------------------------------------------------------

    async def _power(self, cmd: PowerCommand) -> None:
        if self.external:
            raise errors.Unsupported(
                "the VM is not managed by hvagent (foreign domain)", vmId=str(self.vm_id)
            )
        if self.status in (VmStatus.DOWN, VmStatus.WAIT_FOR_LAUNCH):
            raise errors.WrongState(f"the VM is {self.status}", vmId=str(self.vm_id))
        if cmd.what == "destroy-on-reboot":
            self._meta = replace(self._meta, destroy_on_reboot=True)
            await self._port.set_metadata(self.vm_id, to_string(metadata.build(self._meta)))
            log.info("destroy on reboot set")
            return
        if cmd.what == "reset":
            await self._port.reset(self.vm_id)  # errors.ResetFailed on refusal
            log.info("VM reset")
            return
        if self.status is VmStatus.PAUSED and not cmd.force:
            raise errors.WrongState(
                "the VM is paused: a paused guest cannot shut down; use force=true",
                vmId=str(self.vm_id),
            )
        cfg = self._power_cfg
        plan = power.Plan(
            kind=cmd.kind,
            delay_s=cfg.shutdown_delay_s if cmd.delay_s is None else cmd.delay_s,
            timeout_s=cfg.shutdown_timeout_s if cmd.timeout_s is None else cmd.timeout_s,
            force=cmd.force,
            message=cmd.message,
            acpi_retry_s=cfg.acpi_retry_s,
            agent=self.agent_connected,
            acpi=self.facts.acpi,
        )
        if self._op is not None and self._op.running:
            if self._op.plan.kind is not cmd.kind:
                raise errors.WrongState(
                    f"a {self._op.plan.kind} is in progress", vmId=str(self.vm_id)
                )
            log.info("%s in progress: plan updated (force=%s)", cmd.kind, cmd.force)
            cmd.done.set_result(None)
            await self._op_step(self._op.update(plan))
            return
        log.info(
            "%s requested (delay %s s, timeout %s s, force %s): %s",
            cmd.kind,
            plan.delay_s,
            plan.timeout_s,
            plan.force,
            plan.message,
        )
        self._op = power.PowerOperation(plan)
        self._pre_op_status = self.status
        if cmd.kind is power.Kind.SHUTDOWN:
            self._stop_reason = ExitReason.ADMIN_SHUTDOWN
        cmd.done.set_result(None)  # accepted: the verb answers true now
        self._op_counted_start()
        await self._op_step(self._op.start(self._clock.time()))

    async def _resume_op(self) -> None:
        assert self._op is not None
        if self._op.plan.kind is power.Kind.SHUTDOWN:
            self._stop_reason = ExitReason.ADMIN_SHUTDOWN
        log.info(
            "resuming %s: %s stage, deadline %s",
            self._op.plan.kind,
            self._op.stage,
            self._op.to_metadata().get("stageDeadline"),
        )
        self._op_counted_start()
        await self._op_step(self._op.resume(self._clock.time()))

    def _op_counted_start(self) -> None:
        if self._observer is not None and self._op_began is None:
            self._observer.power_operation_started()
        self._op_began = time.monotonic()

    def _op_counted_end(self, op: power.PowerOperation, outcome: power.Outcome) -> None:
        if self._observer is not None and self._op_began is not None:
            self._observer.power_operation_finished(
                str(op.plan.kind), str(outcome), self._op_stage, time.monotonic() - self._op_began
            )
        self._op_began = None

    async def _op_step(self, step: power.Step) -> None:
        """Persist, publish, then execute one Step of the power operation (and its follow-ups)."""
        op = self._op
        if op is None:
            return
        while True:
            if op.stage is not power.Stage.ENDED:
                self._op_stage = str(op.stage)
            if step.reason:
                level = logging.WARNING if step.escalated else logging.INFO
                if step.outcome in (power.Outcome.GAVE_UP, power.Outcome.FAILED):
                    level = logging.WARNING
                log.log(level, "%s: %s; message %r", op.plan.kind, step.reason, op.plan.message)
            if step.persist and not self.external:
                self._meta = replace(
                    self._meta, operation=None if step.outcome else op.to_metadata()
                )
                try:
                    await self._port.set_metadata(self.vm_id, to_string(metadata.build(self._meta)))
                except errors.AgentError as exc:
                    log.warning("could not persist the power operation: %s", exc.reason)
            self._op_info = {
                "kind": str(op.plan.kind),
                "stage": str(op.stage),
                "force": op.plan.force,
                "message": op.plan.message,
                "reason": step.reason,
            }
            if step.outcome is not None:
                self._op_info["outcome"] = str(step.outcome)
                self._op_counted_end(op, step.outcome)
                if step.outcome in (power.Outcome.GAVE_UP, power.Outcome.FAILED):
                    self._stop_reason = None  # a later stop is the guest's own doing
                    # back to what it was before the operation (Up, or Paused with force)
                    step = replace(step, status=self._pre_op_status)
            if step.status is not None and step.status is not VmStatus.DOWN:
                if step.status is not self.status or step.outcome is not None:
                    self._set_status(step.status)
            elif step.outcome is power.Outcome.GAVE_UP and step.status is None:
                self._bus.publish_status(self.vm_id, self.stats())
            nxt = await self._execute(step.actions)
            if nxt is None:
                return
            step = nxt

    async def _execute(self, actions: tuple[power.Do, ...]) -> power.Step | None:
        """Run actions through the port; a failure feeds the machine and returns its step."""
        op = self._op
        assert op is not None
        reboot = op.plan.kind is power.Kind.REBOOT
        for action in actions:
            began = time.monotonic()
            try:
                match action:
                    case power.Do.AGENT:
                        fn = self._port.reboot if reboot else self._port.shutdown
                        async with asyncio.timeout(self._power_cfg.agent_command_timeout_s):
                            await fn(self.vm_id, PowerMethod.AGENT)
                    case power.Do.ACPI:
                        fn = self._port.reboot if reboot else self._port.shutdown
                        await fn(self.vm_id, PowerMethod.ACPI)
                    case power.Do.DESTROY:
                        await self._port.destroy(self.vm_id, graceful_attempts=0)
                    case power.Do.RESET:
                        await self._port.reset(self.vm_id)
            except (errors.AgentError, TimeoutError) as exc:
                reason = exc.reason if isinstance(exc, errors.AgentError) else "timed out"
                log.warning("%s %s failed: %s", op.plan.kind, action, reason)
                return op.on_action_failed(action, self._clock.time(), reason)
            took = time.monotonic() - began
            log.log(logging.INFO if took > 0.5 else logging.DEBUG, "%s took %.3f s", action, took)
            if action is power.Do.RESET:
                # libvirt emits no REBOOT event for virDomainReset: the reset is the reboot.
                return op.on_event(power.Event.REBOOTED, self._clock.time())
        return None

    def _cancel_op(self, why: str) -> None:
        if self._op is not None and self._op.running:
            log.info("%s cancelled: %s", self._op.plan.kind, why)
            self._op.outcome = power.Outcome.STOPPED
            self._op_counted_end(self._op, power.Outcome.STOPPED)
            self._meta = replace(self._meta, operation=None)
        self._op = None

    async def _launch(self, cmd: _Launch) -> None:
        try:
            await self._port.define_and_start(cmd.xml, paused=cmd.paused)
        except errors.AgentError as exc:
            log.warning("VM failed to start: %s", exc.reason)
            self._set_status(
                VmStatus.DOWN, ExitInfo.of(ExitReason.LIBVIRT_START_FAILED, exc.reason)
            )
            return
        self._started_mono = time.monotonic()
        await self._read_consoles()
        self._set_status(VmStatus.PAUSED if cmd.paused else VmStatus.UP)

    async def set_ticket(self, cmd: TicketCommand) -> None:
        self._inbox.put_nowait(cmd)
        await cmd.done

    async def _set_ticket(self, cmd: TicketCommand) -> None:
        """Set a console password live, on the element libvirt runs (reference §5), then
        the disconnect policy. Refusals carry the command's error class (18 or 56)."""
        try:
            kind = await self._update_ticket(cmd)
        except errors.TicketFailed as exc:
            if cmd.failure is errors.TicketFailed:
                raise
            detail = {k: v for k, v in exc.data.items() if k != "reason"}
            raise cmd.failure(exc.reason, **detail) from exc
        expires = self._clock.time() + cmd.ttl_s if cmd.ttl_s > 0 else math.inf
        self.console_watch.ticket_set(kind, expires)
        self.console_watch.set_policy(cmd.disconnect)

    async def _update_ticket(self, cmd: TicketCommand) -> str:
        if self.external:
            raise errors.Unsupported(
                "the VM is not managed by hvagent (foreign domain); its consoles are left as "
                "they are",
                vmId=str(self.vm_id),
            )
        if not self.consoles:
            raise errors.TicketFailed(
                "the VM is headless: it has no graphics console", vmId=str(self.vm_id)
            )
        if self.status is VmStatus.DOWN:
            raise errors.TicketFailed("the VM is not running", vmId=str(self.vm_id))
        kind = cmd.graphics_type or self.consoles[0].type
        consoles.check_password(kind, cmd.password)
        live = domxml.parse(await self._port.domain_xml(self.vm_id))
        element = live.find(f"devices/graphics[@type='{kind}']")
        if element is None:
            raise errors.TicketFailed(
                f"the VM has no {kind} console", vmId=str(self.vm_id), param="graphicsType"
            )
        expiry = consoles.valid_to(self._clock.utcnow(), cmd.ttl_s)
        update = consoles.ticket_element(
            element, cmd.password, expiry, consoles.connected_policy(kind, cmd.conn_action)
        )
        await self._port.update_graphics(self.vm_id, to_string(update))
        log.info("%s ticket set, valid until %s", kind, expiry or "no expiry")
        return kind

    # -- the disconnect action ---------------------------------------------------------------

    async def _run_disconnect_action(self, action: DisconnectAction) -> None:
        reboot = action is DisconnectAction.REBOOT
        kind = power.Kind.REBOOT if reboot else power.Kind.SHUTDOWN
        log.info("no console client came back: disconnect action %s", action)
        cmd = PowerCommand(
            "ladder", kind=kind, force=True, message=f"Scheduled {kind} on console disconnect"
        )
        try:
            await self._power(cmd)
        except errors.AgentError as exc:
            log.warning("disconnect action %s not run: %s", action, exc.reason)

    async def _read_consoles(self) -> None:
        """Console ports as libvirt assigned them (autoport); hvagent never picks ports."""
        if not self.consoles:
            return
        try:
            xml = await self._port.domain_xml(self.vm_id)
        except errors.AgentError as exc:
            log.warning("could not read console ports: %s", exc.reason)
            return
        self.consoles = tuple(consoles.read_graphics(domxml.parse(xml)))

    async def _destroy(self, graceful_attempts: int) -> None:
        if self.external:
            raise errors.Unsupported(
                "the VM is not managed by hvagent (foreign domain); it is left untouched",
                vmId=str(self.vm_id),
            )
        self._cancel_op("VM.destroy")
        if self.status is not VmStatus.DOWN:
            self._stop_reason = ExitReason.ADMIN_SHUTDOWN
            await self._port.destroy(self.vm_id, graceful_attempts=graceful_attempts)
            self._set_status(VmStatus.DOWN, ExitInfo.of(ExitReason.ADMIN_SHUTDOWN))
        await self._port.undefine(self.vm_id)
        log.info("VM destroyed and undefined")
        self._gone = True

    async def _on_event(self, event: DomainEvent) -> None:
        if event.kind is EventKind.REBOOT and self._meta.destroy_on_reboot and not self.external:
            log.info("the guest rebooted and destroy-on-reboot is set: destroying")
            self._cancel_op("destroy on reboot")
            self._stop_reason = ExitReason.DESTROYED_ON_REBOOT
            try:
                await self._port.destroy(self.vm_id, graceful_attempts=0)
            except errors.AgentError as exc:
                log.warning("destroy on reboot failed: %s", exc.reason)
            return
        if self._op is not None and self._op.running:
            mapped = {
                EventKind.STOPPED: power.Event.STOPPED,
                EventKind.STARTED: power.Event.STARTED,
                EventKind.REBOOT: power.Event.REBOOTED,
            }.get(event.kind)
            if mapped is not None:
                await self._op_step(self._op.on_event(mapped, self._clock.time()))
        match event.kind:
            case (
                EventKind.GRAPHICS_CONNECT
                | EventKind.GRAPHICS_INITIALIZE
                | EventKind.GRAPHICS_DISCONNECT
            ):
                if event.client is not None:
                    self.console_watch.on_client(
                        event.kind, event.client, self.consoles, self._clock.time()
                    )
            case EventKind.STOPPED if self.status is not VmStatus.DOWN:
                await self._went_down(exit_for_stop(event.stop_cause, self._stop_reason))
            case EventKind.STARTED if self.status is VmStatus.DOWN:
                self._started_mono = time.monotonic()
                self._stop_reason = None
                await self._read_consoles()  # a restarted QEMU may have new ports
                self._set_status(VmStatus.UP)
            case EventKind.SUSPENDED if self.status is not VmStatus.DOWN:
                self._set_status(VmStatus.PAUSED)
            case EventKind.RESUMED if self.status is VmStatus.PAUSED:
                self._set_status(VmStatus.UP)
            case EventKind.AGENT_CONNECTED:
                self.agent_connected = True
            case EventKind.AGENT_DISCONNECTED:
                self.agent_connected = False
            case EventKind.UNDEFINED if self.external:
                self._gone = True
            case _:
                log.debug(
                    "event %s (%s) in status %s: nothing to do",
                    event.kind,
                    event.stop_cause,
                    self.status,
                )

    async def _went_down(self, exit_info: ExitInfo) -> None:
        if self._op is not None and self._op.running:
            self._cancel_op("the domain stopped")
        if not self.external:
            self._meta = replace(self._meta, exit=exit_info, operation=None)
            try:
                await self._port.set_metadata(self.vm_id, to_string(metadata.build(self._meta)))
            except errors.AgentError as exc:
                log.warning("could not persist exit info: %s", exc.reason)
        self._set_status(VmStatus.DOWN, exit_info)

    def _publish_consoles(self) -> None:
        running = self.status is not VmStatus.DOWN and not self._gone
        self.console_watch.publish(self.consoles, running=running)

    def _set_status(self, status: VmStatus, exit_info: ExitInfo | None = None) -> None:
        old = self.status
        self.status = status
        self.status_time = status_time()
        self.exit_info = exit_info if status is VmStatus.DOWN else None
        if status is VmStatus.DOWN:
            self.console_watch.clients_gone()
        self._publish_consoles()
        if exit_info is not None:
            log.info(
                "status %s -> %s (exitReason %d: %s)",
                old,
                status,
                exit_info.reason,
                exit_info.message,
            )
        else:
            log.info("status %s -> %s", old, status)
        self._bus.publish_status(self.vm_id, self.stats())

    # -- reporting -------------------------------------------------------------------------

    def short(self) -> dict[str, Any]:
        return {"vmId": str(self.vm_id), "status": str(self.status), "statusTime": self.status_time}

    def stats(self) -> dict[str, Any]:
        """VDSM's per-VM stats dict (reference §7.2); Down VMs carry their exit info."""
        out = self.short()
        if self.external:
            out["external"] = True
        if self._op_info is not None:
            out["powerOperation"] = dict(self._op_info)
        if self.status is VmStatus.DOWN:
            if self.exit_info is not None:
                out.update(self.exit_info.to_wire())
            out["timeOffset"] = "0"
            return out
        out.update(
            vmName=self.facts.name,
            vmType=self.facts.domain_type,
            kvmEnable="true" if self.facts.domain_type == "kvm" else "false",
            acpiEnable="true" if self.facts.acpi else "false",
            elapsedTime=str(int(time.monotonic() - self._started_mono)),
            monitorResponse="0",
            clientIp=self.console_watch.sessions.client_ip,
            timeOffset="0",
            vcpuCount=str(self.facts.vcpus),
            memSize=self.facts.memory_mib,
            guestAgentConnected=self.agent_connected,
            **consoles.display_report(list(self.consoles), self.console_watch.sessions.count),
        )
        return out

    def info(self) -> dict[str, Any]:
        """VM.getInfo: identity and configuration plus status (and exit info when Down)."""
        out = self.short()
        out.update(
            vmName=self.facts.name,
            vmType=self.facts.domain_type,
            memSize=self.facts.memory_mib,
            smp=str(self.facts.vcpus),
            acpiEnable="true" if self.facts.acpi else "false",
            kvmEnable="true" if self.facts.domain_type == "kvm" else "false",
            external=self.external,
            custom=dict(self._meta.custom),
        )
        if self.status is not VmStatus.DOWN:
            out.update(consoles.display_report(list(self.consoles)))
        elif self.exit_info is not None:
            out.update(self.exit_info.to_wire())
        return out
