"""VmOwner: the one task that owns a VM and serialises everything that happens to it.

RPC commands and routed libvirt events go through one inbox and are handled one at a time,
so verbs and events never race (jsonrpcserver runs batch entries concurrently; this is what
makes that safe). A command carries a Future: the verb awaits the part it must wait for and
nothing more. Anything a command raises fails that command only (an unexpected exception
becomes -32603 with an error id in the log) and the loop goes on; an unexpected exception
while handling an event or a deadline is logged the same way. The loop ends when the VM is
destroyed (its domain undefined) or when the registry cancels it at shutdown, which leaves
the guest untouched.

The owner runs at most one Operation at a time (through runtime/vm/driver.py), wakes at the
earliest deadline (the operation's, the console disconnect action's), and owns per-VM
subtasks (runtime/vm/subtasks.py). Status changes are published on the StatusBus; the Down
status and its exit info are first written to the domain metadata, so a restarted hvagent
reports the same.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from agent import errors
from agent.clock import Clock, RealClock
from agent.config import ChannelsConfig, GuestAgentConfig, PowerConfig, VirtConfig
from agent.domxml.live import DomainFacts
from agent.logs import vm_id_var
from agent.metrics.snapshot import Snapshot
from agent.runtime import console_socket, payloads
from agent.runtime.bus import StatusBus, marker_notification
from agent.runtime.channels import VmChannels
from agent.runtime.channels.drain import Keeper
from agent.runtime.records import DownRecords
from agent.runtime.vm import domain_events, operations, reporting
from agent.runtime.vm.commands import Command, DestroyCommand
from agent.runtime.vm.console_watch import ConsoleObserver, ConsoleWatch
from agent.runtime.vm.driver import OperationDriver, OperationObserver
from agent.runtime.vm.guest_poll import GuestPolling
from agent.runtime.vm.state import VmState, exit_for_stop
from agent.runtime.vm.subtasks import Subtasks
from agent.runtime.vm.tickets import Consoles
from agent.status import ExitInfo, VmStatus
from agent.virt.port import DomainEvent, DomainState, Hypervisor, StopCause

log = logging.getLogger(__name__)


class OwnerObserver(ConsoleObserver, OperationObserver, Protocol):
    """Who counts operations and console state (metrics.instruments.Instruments)."""


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
        records: DownRecords | None = None,
        payload_dir: str | None = None,
        sampled: Callable[[], Snapshot] | None = None,
        channels: ChannelsConfig | None = None,
        fd_keeper: Keeper | None = None,
        guest_agent: GuestAgentConfig | None = None,  # None: no guest-agent poller
        virt: VirtConfig | None = None,  # None: console sockets are left as QEMU made them
    ) -> None:
        self.vm_id: uuid.UUID = facts.vm_id
        self._sampled = sampled  # the sampler's latest round (VM stats fragments)
        self.records = records or DownRecords(None)
        self.port = port
        self.power_config = power_config or PowerConfig()
        self.clock: Clock = clock or RealClock(asyncio.sleep)
        self.state = VmState(port, facts, status, exit_info)
        watch = ConsoleWatch(
            str(self.vm_id), observer, self.power_config.console_disconnect_grace_s
        )
        self.tickets = Consoles(self, facts.consoles, watch)
        self.subtasks = Subtasks()
        self.ops = OperationDriver(self, observer)
        self._bus = bus
        self._inbox: asyncio.Queue[Command | DomainEvent] = asyncio.Queue()
        self._get: asyncio.Task[Command | DomainEvent] | None = None
        self._gone = False
        self._payload_dir = payload_dir
        self._console_socket = (
            (virt.console_socket_path(self.vm_id), virt.console_socket_group) if virt else None
        )
        self.guest = GuestPolling(port, self.vm_id, guest_agent)
        self.channels = VmChannels(
            self.vm_id, () if facts.metadata is None else facts.channels, channels,
            lambda ch, m: bus.publish(
                marker_notification(self.vm_id, ch.name, m.marker, m.offset, m.time)
            ), fd_keeper,
        )  # fmt: skip

    @classmethod
    def adopt(
        cls,
        port: Hypervisor,
        bus: StatusBus,
        facts: DomainFacts,
        state: DomainState,
        cause: StopCause | None,
        **kw: Any,
    ) -> VmOwner:
        """An owner for a domain found in libvirt (recovery or a domain defined outside).

        An operation recorded in the metadata of a running domain is resumed by `run` with
        the time that remains until its persisted deadlines."""
        if state is DomainState.SHUTOFF:
            recorded = facts.metadata.exit if facts.metadata else None
            exit_info = recorded or exit_for_stop(cause, None)
            return cls(port, bus, facts, VmStatus.DOWN, exit_info=exit_info, **kw)
        status = VmStatus.PAUSED if state is DomainState.PAUSED else VmStatus.UP
        owner = cls(port, bus, facts, status, **kw)
        recorded_op = facts.metadata.operation if facts.metadata else None
        if recorded_op is not None:
            owner.ops.current = operations.resume(recorded_op, status)
        return owner

    # -- called by the registry and the verbs (event-loop thread) -------------------------

    async def submit(self, cmd: Command) -> None:
        """Queue a command; returns once the owner finished it (or accepted it early)."""
        self._inbox.put_nowait(cmd)
        await cmd.done

    def post(self, cmd: Command) -> None:
        """Queue a command nobody waits for (VM.create's launch)."""
        self._inbox.put_nowait(cmd)

    def post_event(self, event: DomainEvent) -> None:
        self._inbox.put_nowait(event)

    @property
    def status(self) -> VmStatus:
        return self.state.status

    @property
    def exit_info(self) -> ExitInfo | None:
        return self.state.exit_info

    @property
    def facts(self) -> DomainFacts:
        return self.state.facts

    @property
    def external(self) -> bool:
        return self.state.external

    @property
    def console_watch(self) -> ConsoleWatch:
        return self.tickets.watch

    @property
    def power_operation(self) -> str | None:
        """The running (or to be resumed) operation's kind, else None."""
        op = self.ops.running
        return op.kind if op is not None else None

    @property
    def gone(self) -> bool:
        return self._gone

    def short(self) -> dict[str, Any]:
        return reporting.short(self.state)

    def stats(self, sampled: Mapping[str, Any] | None = None, guest: bool = True) -> dict:
        w = self.tickets.watch  # `sampled` None: this VM's fragment of the latest round
        if sampled is None and self._sampled is not None:
            sampled = self._sampled().vm_stats.get(self.vm_id)
        return reporting.stats(
            self.state, self.tickets.ports, w.sessions.count, w.sessions.client_ip,
            self.ops.report, sampled, self.guest.report() if guest else None,
            self.channels.report(),
        )  # fmt: skip

    def stats_json(self) -> str:
        """stats() as JSON text, the round's and the guest's parts as serialized once."""
        snap, base = self._sampled() if self._sampled else None, self.stats({}, guest=False)
        g = self.guest
        return reporting.stats_json(g.memo, self.state, base, snap, g.report_json())

    def info(self) -> dict[str, Any]:
        return reporting.info(self.state, self.tickets.ports)

    # -- for commands and operations (the owner's task) ------------------------------------

    def require_managed(self, consequence: str = "") -> None:
        if self.state.external:
            reason = "the VM is not managed by hvagent (foreign domain)"
            raise errors.Unsupported(
                f"{reason}; {consequence}" if consequence else reason, vmId=str(self.vm_id)
            )

    def require_running(self) -> None:
        if self.state.status in (VmStatus.DOWN, VmStatus.WAIT_FOR_LAUNCH):
            raise errors.WrongState(f"the VM is {self.state.status}", vmId=str(self.vm_id))

    def forget(self) -> None:
        """The domain is gone (undefined): the loop ends after this command."""
        self._gone = True

    async def domain_started(self, live_xml: str = "") -> None:
        """The domain (re)started: reset the clock and the pending stop, read the live XML
        (console ports, device facts, the devices hash) unless the caller has it."""
        self.state.started()
        if self.state.balloon_target_kib is not None:  # a new QEMU starts with a full balloon
            await self.state.persist(balloon_target_kib=None)
        self.channels.start(self.subtasks)
        self.guest.start(self.subtasks, foreign=self.external, fresh=True)
        xml = live_xml
        if not xml:
            try:
                xml = await self.port.domain_xml(self.vm_id)
            except errors.AgentError as exc:
                log.warning("could not read the live XML: %s", exc.reason)
                return
        self.state.read_live(xml)
        self.tickets.read_ports(xml)
        if self._console_socket and self._console_socket[0] in xml and not self.external:
            await asyncio.to_thread(console_socket.share, *self._console_socket)

    async def drop_payloads(self) -> None:
        """Remove this VM's payload images (runtime/payloads.py), off the loop."""
        if self._payload_dir is not None and not self.state.external:
            await asyncio.to_thread(payloads.remove_for, self._payload_dir, self.vm_id)

    def set_status(self, status: VmStatus, exit_info: ExitInfo | None = None) -> None:
        old = self.state.change(status, exit_info)
        if status is VmStatus.DOWN:
            self.tickets.watch.clients_gone()
        self._publish_consoles()
        if exit_info is not None:
            why = f" (exitReason {exit_info.reason}: {exit_info.message})"
            log.info("status %s -> %s%s", old, status, why)
        else:
            log.info("status %s -> %s", old, status)
        self._bus.publish_status(self.vm_id, self.stats())

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        vm_id_var.set(str(self.vm_id))
        self._publish_consoles()
        try:
            if self.state.status is VmStatus.DOWN:  # went down while hvagent was away
                await self._contained("removing payloads", self.drop_payloads())
                self.channels.release_kept()
            elif self.state.status is not VmStatus.WAIT_FOR_LAUNCH:  # adopted, running
                self.channels.start(self.subtasks)
                self.guest.start(self.subtasks, foreign=self.external)
            await self._contained("resuming the operation", self.ops.resume())
            while not self._gone:
                item = await self._next_item()
                if item is None:
                    await self._contained("a deadline", self._on_deadline())
                elif isinstance(item, DomainEvent):
                    await self._contained(f"event {item.kind}", domain_events.on_event(self, item))
                else:
                    await self._settle(item)
        finally:
            await self.subtasks.close()
            self.channels.close()
            if self._get is not None:
                self._get.cancel()
        # Anything still queued refers to a VM that no longer exists.
        self._publish_consoles()
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, DestroyCommand):
                item.done.set_result(None)
            elif isinstance(item, Command) and not item.done.done():
                item.done.set_exception(errors.NoSuchVM(vmId=str(self.vm_id)))

    async def _settle(self, cmd: Command) -> None:
        """Run one command: an error fails that command only, and the loop goes on.

        A command may have answered already (VM.shutdown answers once accepted); a later
        error is then logged, since nobody waits for it any more."""
        try:
            await cmd.execute(self)
        except errors.AgentError as exc:
            failure: errors.AgentError = exc
        except Exception as exc:
            failure = errors.internal_error(log, f"{type(cmd).__name__} failed unexpectedly", exc)
        else:
            if not cmd.done.done():
                cmd.done.set_result(None)
            return
        if cmd.done.done():
            log.warning("after the command was answered: %s", failure.reason)
        else:
            cmd.done.set_exception(failure)

    @staticmethod
    async def _contained(what: str, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            errors.internal_error(log, f"{what} failed unexpectedly", exc)

    async def _next_item(self) -> Command | DomainEvent | None:
        """The next inbox item, or None when a deadline (the operation's, the console
        disconnect action's) comes first."""
        if self._get is None:
            if not self._inbox.empty():  # no task, no extra turn of the loop
                return self._inbox.get_nowait()
            self._get = asyncio.ensure_future(self._inbox.get())
        deadlines = [self.tickets.action_at, self.ops.deadline]
        deadline = min((d for d in deadlines if d is not None), default=None)
        if deadline is not None and not self._get.done():
            sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
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
        now = self.clock.time()
        await self.tickets.on_deadline(now)
        await self.ops.on_deadline(now)

    def _publish_consoles(self) -> None:
        running = self.state.status is not VmStatus.DOWN and not self._gone
        self.tickets.publish(running=running)
