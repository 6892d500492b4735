"""A VM's consoles as its owner runs them: ports read back from libvirt, tickets set live,
client sessions followed, and the action when the last client leaves.

Owned by the VM's owner and called on its task only. The rules are pure (agent/consoles.py
for tickets and ports, agent/sessions.py for sessions and the disconnect policy); the
bookkeeping and console metrics are `ConsoleWatch`. The disconnect action itself is a power
ladder with force, started through the owner like VM.shutdown.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from agent import consoles, domxml, errors, power
from agent.consoles import GraphicsInfo
from agent.domxml import to_string
from agent.runtime.vm.commands import PowerCommand, TicketCommand
from agent.runtime.vm.console_watch import ConsoleWatch
from agent.sessions import DisconnectAction
from agent.status import VmStatus
from agent.virt.port import DomainEvent

if TYPE_CHECKING:
    from agent.runtime.vm.actor import VmOwner

log = logging.getLogger(__name__)


class Consoles:
    def __init__(self, vm: VmOwner, ports: tuple[GraphicsInfo, ...], watch: ConsoleWatch) -> None:
        self._vm = vm
        self.ports = ports  # as last read from libvirt's live XML (None before start)
        self.watch = watch

    def read_ports(self, live_xml: str) -> None:
        """Console ports as libvirt assigned them (autoport); hvagent never picks ports."""
        if self.ports:
            self.ports = tuple(consoles.read_graphics(domxml.parse(live_xml)))

    def publish(self, *, running: bool) -> None:
        self.watch.publish(self.ports, running=running)

    def on_client(self, event: DomainEvent, now: float) -> None:
        if event.client is not None:
            self.watch.on_client(event.kind, event.client, self.ports, now)

    async def set_ticket(self, cmd: TicketCommand) -> None:
        """Set a console password live, on the element libvirt runs (reference §5), then
        the disconnect policy. A console that is not there is the command's error class
        (18 setTicket, 56 updateDevice); libvirt refusing the update is 18 for both, as VDSM
        answers `ticketErr` from either verb."""
        kind = await self._update_ticket(cmd)
        now = self._vm.clock.time()
        self.watch.ticket_set(kind, now + cmd.ttl_s if cmd.ttl_s > 0 else math.inf)
        self.watch.set_policy(cmd.disconnect)

    async def _update_ticket(self, cmd: TicketCommand) -> str:
        vm = self._vm
        vm.require_managed("its consoles are left as they are")
        if not self.ports:
            raise cmd.failure("the VM is headless: it has no graphics console", vmId=str(vm.vm_id))
        if vm.state.status is VmStatus.DOWN:
            raise cmd.failure("the VM is not running", vmId=str(vm.vm_id))
        kind = cmd.graphics_type or self.ports[0].type
        consoles.check_password(kind, cmd.password)
        live = domxml.parse(await vm.port.domain_xml(vm.vm_id))
        element = live.find(f"devices/graphics[@type='{kind}']")
        if element is None:
            raise cmd.failure(
                f"the VM has no {kind} console", vmId=str(vm.vm_id), param="graphicsType"
            )
        expiry = consoles.valid_to(vm.clock.utcnow(), cmd.ttl_s)
        update = consoles.ticket_element(
            element, cmd.password, expiry, consoles.connected_policy(kind, cmd.conn_action)
        )
        await vm.port.update_graphics(vm.vm_id, to_string(update))
        log.info("%s ticket set, valid until %s", kind, expiry or "no expiry")
        return kind

    @property
    def action_at(self) -> float | None:
        return self.watch.action_at

    async def on_deadline(self, now: float) -> None:
        """Run the disconnect action if it is due and still nobody came back."""
        action = self.watch.action_due(now)
        if action is None:
            return
        reboot = action is DisconnectAction.REBOOT
        kind = power.Kind.REBOOT if reboot else power.Kind.SHUTDOWN
        log.info("no console client came back: disconnect action %s", action)
        cmd = PowerCommand(kind=kind, force=True, message=f"Scheduled {kind} on console disconnect")
        try:
            await cmd.execute(self._vm)
        except errors.AgentError as exc:
            log.warning("disconnect action %s not run: %s", action, exc.reason)
