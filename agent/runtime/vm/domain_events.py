"""How one routed libvirt event changes a VM (called by the owner's loop, in its task).

The running operation (runtime/vm/driver.py) sees every event first; then the event moves
the VM's status, its console clients, its pause code, its guest-agent state, or its clock
offset. A domain that stopped goes Down here: its channels read to the end, its subtasks
stopped, the exit info persisted in the metadata before it is published.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent import errors
from agent.runtime.vm.state import exit_for_stop
from agent.status import ExitInfo, ExitReason, VmStatus
from agent.virt.port import DomainEvent, EventKind

if TYPE_CHECKING:
    from agent.runtime.vm.actor import VmOwner

log = logging.getLogger(__name__)

_GRAPHICS = (
    EventKind.GRAPHICS_CONNECT,
    EventKind.GRAPHICS_INITIALIZE,
    EventKind.GRAPHICS_DISCONNECT,
)


async def on_event(vm: VmOwner, event: DomainEvent) -> None:
    state = vm.state
    if event.kind is EventKind.REBOOT and state.meta.destroy_on_reboot and not state.external:
        log.info("the guest rebooted and destroy-on-reboot is set: destroying")
        vm.ops.cancel("destroy on reboot")
        state.stop_reason = ExitReason.DESTROYED_ON_REBOOT
        try:
            await vm.port.destroy(vm.vm_id, graceful_attempts=0)
        except errors.AgentError as exc:
            log.warning("destroy on reboot failed: %s", exc.reason)
        return
    op = vm.ops.running
    requested = (op.expected_exit if op is not None else None) or state.stop_reason
    await vm.ops.on_event(event)
    match event.kind:
        case kind if kind in _GRAPHICS:
            vm.tickets.on_client(event, vm.clock.time())
        case EventKind.STOPPED if state.status is not VmStatus.DOWN:
            await went_down(vm, exit_for_stop(event.stop_cause, requested))
        case EventKind.STARTED if state.status is VmStatus.DOWN:
            await vm.domain_started()  # a restarted QEMU may have new ports
            vm.set_status(VmStatus.UP)
        case EventKind.IO_ERROR:
            state.io_error = event.pause_code  # libvirt sends it before SUSPENDED
        case EventKind.SUSPENDED if state.status is not VmStatus.DOWN:
            code = event.pause_code or "NOERR"
            code = state.io_error if code == "EIO" and state.io_error else code
            if state.status is not VmStatus.PAUSED or state.pause_code != code:
                state.pause_code = code  # VM.pause set it already: no second report
                vm.set_status(VmStatus.PAUSED)
        case EventKind.RESUMED if state.status is VmStatus.PAUSED:
            state.pause_code = state.io_error = None
            vm.set_status(VmStatus.UP)
        case EventKind.REBOOT:
            state.rebooted()
        case EventKind.RTC_CHANGE if event.utc_offset is not None:
            await state.persist(time_offset=event.utc_offset)
        case EventKind.AGENT_CONNECTED:
            state.agent_connected = True
            vm.guest.wake()
        case EventKind.AGENT_DISCONNECTED:
            state.agent_connected = False
        case EventKind.UNDEFINED if state.external:
            vm.forget()  # a foreign domain undefined outside hvagent
        case _:
            log.debug(
                "event %s (%s) in status %s: nothing to do",
                event.kind,
                event.stop_cause,
                state.status,
            )


async def went_down(vm: VmOwner, exit_info: ExitInfo) -> None:
    """The domain stopped: end the operation, read the channels to the end, stop the
    subtasks, persist the exit info, remove the payloads, then publish Down."""
    vm.ops.cancel("the domain stopped")
    await vm.channels.domain_stopped()
    await vm.subtasks.stop_running()
    await vm.state.persist(exit=exit_info, operation=None)
    await vm.drop_payloads()
    vm.set_status(VmStatus.DOWN, exit_info)
