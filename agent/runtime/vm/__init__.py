"""One VM's owner, split by responsibility:

- `actor.py`: VmOwner, the actor shell: inbox, run loop, deadlines, lifecycle events,
  driving the operation, crash containment.
- `state.py`: status, exit info and the one metadata-persist helper.
- `commands.py`: what verbs send the owner, each with its own handling; `devices_cmd.py`
  the commands on a running VM's hardware (pause/cont, hot-plug, vCPUs, balloon).
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
from agent.runtime.vm.devices_cmd import (
    BalloonCommand,
    ContCommand,
    HotplugDiskCommand,
    HotplugNicCommand,
    HotunplugDiskCommand,
    HotunplugNicCommand,
    PauseCommand,
    SetCpusCommand,
)

__all__ = [
    "BalloonCommand",
    "Command",
    "ContCommand",
    "DestroyCommand",
    "DestroyOnRebootCommand",
    "HotplugDiskCommand",
    "HotplugNicCommand",
    "HotunplugDiskCommand",
    "HotunplugNicCommand",
    "LaunchCommand",
    "OwnerObserver",
    "PauseCommand",
    "PowerCommand",
    "ResetCommand",
    "SetCpusCommand",
    "TicketCommand",
    "VmOwner",
]
