"""One VM's owner, split by responsibility:

- `actor.py`: VmOwner, the actor shell: inbox, run loop, deadlines, lifecycle events,
  driving the operation, crash containment.
- `state.py`: status, exit info and the one metadata-persist helper.
- `commands.py`: what verbs send the owner, each with its own handling.
- `operation.py`: the Operation protocol; `power_op.py` the power ladder as one;
  `operations.py` the kinds that resume from metadata.
- `tickets.py` + `console_watch.py`: console ports, tickets, sessions, disconnect action.
- `reporting.py`: VDSM's result shapes; `subtasks.py`: per-VM tasks the owner ends.
"""

from agent.runtime.vm.actor import OwnerObserver, VmOwner
from agent.runtime.vm.commands import (
    Command,
    DestroyCommand,
    DestroyOnRebootCommand,
    LaunchCommand,
    PowerCommand,
    ResetCommand,
    TicketCommand,
)

__all__ = [
    "Command",
    "DestroyCommand",
    "DestroyOnRebootCommand",
    "LaunchCommand",
    "OwnerObserver",
    "PowerCommand",
    "ResetCommand",
    "TicketCommand",
    "VmOwner",
]
