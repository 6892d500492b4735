"""The commands a VM's owner takes from verbs: one base with the verb's future, and each
command's own handling (`execute`), so the owner's loop runs them all the same way.

A command's `done` future is what the verb awaits: set when the owner finished the command,
or earlier when the command says so (VM.shutdown answers once the ladder is accepted). An
error fails that command only. Commands run on the owner's task, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent import consoles, errors, power
from agent.logs import Secret
from agent.runtime.records import DownRecord
from agent.runtime.vm.power_op import PowerLadder
from agent.sessions import DisconnectPolicy
from agent.status import ExitInfo, ExitReason, VmStatus

if TYPE_CHECKING:
    from agent.runtime.vm.actor import VmOwner

log = logging.getLogger(__name__)


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Command:
    done: asyncio.Future[None] = field(default_factory=_future, kw_only=True)

    async def execute(self, vm: VmOwner) -> None:
        raise NotImplementedError


@dataclass
class LaunchCommand(Command):
    """VM.create's second half: define and start the domain (the verb answered already)."""

    xml: str
    paused: bool

    async def execute(self, vm: VmOwner) -> None:
        try:
            await vm.channels.prepare()
            live = await vm.port.define_and_start(self.xml, paused=self.paused)
        except errors.AgentError as exc:
            log.warning("VM failed to start: %s", exc.reason)
            exit_info = ExitInfo.of(ExitReason.LIBVIRT_START_FAILED, exc.reason)
            # No domain is left to carry the exit info: keep it where a restart finds it.
            await vm.records.save(DownRecord(vm.vm_id, vm.state.facts.name, exit_info))
            await vm.drop_payloads()
            vm.set_status(VmStatus.DOWN, exit_info)
            return
        await vm.domain_started(live)
        vm.set_status(VmStatus.PAUSED if self.paused else VmStatus.UP)


@dataclass
class DestroyCommand(Command):
    """VM.destroy: stop the domain (graceful attempts first), undefine it, forget the VM."""

    graceful_attempts: int

    async def execute(self, vm: VmOwner) -> None:
        vm.require_managed("it is left untouched")
        vm.ops.cancel("VM.destroy")
        if vm.state.status is not VmStatus.DOWN:
            vm.state.stop_reason = ExitReason.ADMIN_SHUTDOWN
            await vm.port.destroy(vm.vm_id, graceful_attempts=self.graceful_attempts)
            await vm.channels.domain_stopped()  # read what QEMU left; logs stay on disk
            vm.set_status(VmStatus.DOWN, ExitInfo.of(ExitReason.ADMIN_SHUTDOWN))
        await vm.port.undefine(vm.vm_id)
        await vm.records.remove(vm.vm_id)  # a Down record, if its start had failed
        await vm.drop_payloads()
        await vm.channels.remove_sockets()
        log.info("VM destroyed and undefined")
        vm.forget()


@dataclass
class PowerCommand(Command):
    """VM.shutdown (kind shutdown/reboot): the power ladder as the VM's operation."""

    kind: power.Kind = power.Kind.SHUTDOWN
    delay_s: float | None = None
    timeout_s: float | None = None
    force: bool = False
    message: str = ""

    async def execute(self, vm: VmOwner) -> None:
        vm.require_managed()
        if vm.state.status is VmStatus.DOWN:  # VDSM answers noVM here (reference §6.1)
            raise errors.NoSuchVM("the VM is Down", vmId=str(vm.vm_id))
        vm.require_running()
        if vm.state.status is VmStatus.PAUSED and not self.force:
            raise errors.WrongState(
                "the VM is paused: a paused guest cannot shut down; use force=true",
                vmId=str(vm.vm_id),
            )
        cfg = vm.power_config
        plan = power.Plan(
            kind=self.kind,
            delay_s=cfg.shutdown_delay_s if self.delay_s is None else self.delay_s,
            timeout_s=cfg.shutdown_timeout_s if self.timeout_s is None else self.timeout_s,
            force=self.force,
            message=self.message,
            acpi_retry_s=cfg.acpi_retry_s,
            agent=vm.state.agent_connected,
            acpi=vm.state.facts.acpi,
        )
        current = vm.ops.running
        if isinstance(current, PowerLadder):
            if current.plan.kind is not self.kind:
                raise errors.WrongState(f"a {current.plan.kind} is in progress", vmId=str(vm.vm_id))
            log.info("%s in progress: plan updated (force=%s)", self.kind, self.force)
            self.done.set_result(None)
            await vm.ops.drive(current.update(plan, vm.clock.time()))
            return
        if current is not None:
            raise errors.OperationConflict(f"a {current.kind} is in progress", vmId=str(vm.vm_id))
        log.info(
            "%s requested (delay %s s, timeout %s s, force %s): %s",
            self.kind,
            plan.delay_s,
            plan.timeout_s,
            plan.force,
            plan.message,
        )
        self.done.set_result(None)  # accepted: the verb answers true now
        await vm.ops.begin(PowerLadder(plan, pre_status=vm.state.status))


@dataclass
class ResetCommand(Command):
    """VM.reset: the reset button, now."""

    async def execute(self, vm: VmOwner) -> None:
        vm.require_managed()
        vm.require_running()
        await vm.port.reset(vm.vm_id)  # errors.ResetFailed on refusal
        log.info("VM reset")


@dataclass
class DestroyOnRebootCommand(Command):
    """VM.setDestroyOnReboot: the guest's next reboot destroys the VM (kept in metadata)."""

    async def execute(self, vm: VmOwner) -> None:
        vm.require_managed()
        vm.require_running()
        await vm.state.persist(destroy_on_reboot=True)
        log.info("destroy on reboot set")


@dataclass
class TicketCommand(Command):
    """VM.setTicket / VM.updateDevice(graphics): a console password with its expiry, and
    what to do when the last console client leaves (setTicket resets it to NONE, as VDSM)."""

    password: Secret
    ttl_s: int
    conn_action: consoles.ConnAction | None = None
    graphics_type: str | None = None  # None: the first console, as VDSM
    disconnect: DisconnectPolicy = field(default_factory=DisconnectPolicy)
    failure: type[errors.AgentError] = errors.TicketFailed  # no console: 18 / updateDevice 56

    async def execute(self, vm: VmOwner) -> None:
        await vm.tickets.set_ticket(self)
