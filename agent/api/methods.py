"""The method table: every JSON-RPC verb hvagent serves, by its VDSM name.

`needs_recovery`: the verb answers `Recovering` (99) until startup recovery finished.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agent import errors, wirevalues
from agent.api import channels, host, vm
from agent.api.rpc import Verb, expose

VERBS: dict[str, tuple[Verb, bool]] = {
    "Host.ping2": (host.ping2, False),
    "Host.getCapabilities": (host.get_capabilities, False),
    "Host.getStats": (host.get_stats, False),
    "Host.getVMList": (host.get_vm_list, True),
    "Host.getVMFullList": (host.get_vm_full_list, True),
    "Host.getAllVmStats": (host.get_all_vm_stats, True),
    "Host.dumpxmls": (host.dumpxmls, True),
    "Host.getHardwareInfo": (host.get_hardware_info, False),
    "VM.create": (vm.create, True),
    "VM.destroy": (vm.destroy, True),
    "VM.getStats": (vm.get_stats, True),
    "VM.getInfo": (vm.get_info, True),
    "VM.shutdown": (vm.shutdown, True),
    "VM.reset": (vm.reset, True),
    "VM.setDestroyOnReboot": (vm.set_destroy_on_reboot, True),
    "VM.setTicket": (vm.set_ticket, True),
    "VM.updateDevice": (vm.update_device, True),
    "VM.pause": (vm.pause, True),
    "VM.cont": (vm.cont, True),
    "VM.hotplugDisk": (vm.hotplug_disk, True),
    "VM.hotunplugDisk": (vm.hotunplug_disk, True),
    "VM.hotplugNic": (vm.hotplug_nic, True),
    "VM.hotunplugNic": (vm.hotunplug_nic, True),
    "VM.setNumberOfCpus": (vm.set_number_of_cpus, True),
    "VM.setBalloonTarget": (vm.set_balloon_target, True),
    "VM.readChannel": (channels.read_channel, True),
}


UNKNOWN = "unknown"  # the method name in logs and metrics for every unknown verb


class MethodTable(dict[str, Callable[..., Awaitable[Any]]]):
    """The exposed verbs; an unknown name gets a handler answering -32601 with its name (cut
    to wirevalues.ECHO_LIMIT characters); it logs and counts as method UNKNOWN, one label value
    whatever the name."""

    def get(self, name: str, default: Any = None) -> Callable[..., Awaitable[Any]]:  # type: ignore[override]
        return self[name]

    def __missing__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def not_found(services: Any, *args: Any, **kwargs: Any) -> Any:
            raise errors.MethodNotFound(
                f"method {wirevalues.echo(name)} does not exist", method=wirevalues.cut(name)
            )

        return expose(UNKNOWN, not_found, needs_recovery=False)


def build() -> MethodTable:
    return MethodTable(
        (name, expose(name, fn, needs_recovery=rec)) for name, (fn, rec) in VERBS.items()
    )
