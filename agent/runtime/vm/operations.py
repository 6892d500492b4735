"""The operations a restarted hvagent can resume from a domain's metadata, by `kind`.

A new long-running operation (a migration, a payload clean-up) that persists itself adds
one line here; the owner does not change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.runtime.vm.operation import Operation
from agent.runtime.vm.power_op import PowerLadder
from agent.status import VmStatus

log = logging.getLogger(__name__)

RESUMABLE: dict[str, Callable[[dict[str, str], VmStatus], Operation]] = {
    "shutdown": PowerLadder.from_metadata,
    "reboot": PowerLadder.from_metadata,
}


def resume(data: dict[str, str], status: VmStatus) -> Operation | None:
    """The operation recorded in metadata, or None (logged) when it cannot be read."""
    factory = RESUMABLE.get(data.get("kind", ""))
    if factory is None:
        log.warning("unknown operation in metadata: %r", data.get("kind", "")[:40])
        return None
    try:
        return factory(data, status)
    except (KeyError, ValueError) as exc:
        log.warning("unreadable %s operation in metadata: %s", data.get("kind"), exc)
        return None
