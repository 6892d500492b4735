"""The port's calls on a running domain, as a mixin of `adapter.LibvirtHypervisor`: pause and
resume, device hot-plug and unplug, vCPU count, balloon target, and the host's sysinfo.

Each call is one trip to the libvirt threads (`_call`); a libvirt refusal becomes an
AgentError through `virt/errors.py`, with libvirt's code and message in `data.libvirt`. Device
changes and the vCPU and balloon calls affect the live domain only, as VDSM's do (its domains
are transient): a hot-plugged device lasts as long as the QEMU process, guest reboots included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from agent import errors
from agent.virt.errors import is_not_running, translate

T = TypeVar("T")
_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


class RunningDomainCalls:
    """Needs the host class's `_call(name, fn, *args)` and `_conn`."""

    _conn: libvirt.virConnect

    async def _call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def _on_domain(self, name: str, vm_id: uuid.UUID, op: Callable[[Any], T]) -> T:
        """Look the domain up and run `op(dom)` in one trip to the libvirt threads."""

        def work() -> T:
            return op(self._conn.lookupByUUIDString(str(vm_id)))

        try:
            return await self._call(name, work)
        except libvirt.libvirtError as exc:
            # "not running" is wrong state, however the driver spells it (A.8)
            stopped = is_not_running(exc) and exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN
            fallback = errors.WrongState if stopped else errors.HypervisorError
            raise translate(exc, fallback, vmId=str(vm_id)) from exc

    async def suspend(self, vm_id: uuid.UUID) -> None:
        await self._on_domain("suspend", vm_id, lambda dom: dom.suspend())

    async def resume(self, vm_id: uuid.UUID) -> None:
        await self._on_domain("resume", vm_id, lambda dom: dom.resume())

    async def attach_device(self, vm_id: uuid.UUID, element_xml: str) -> None:
        await self._on_domain(
            "attach_device", vm_id, lambda dom: dom.attachDeviceFlags(element_xml, _LIVE)
        )

    async def detach_device(self, vm_id: uuid.UUID, element_xml: str) -> None:
        await self._on_domain(
            "detach_device", vm_id, lambda dom: dom.detachDeviceFlags(element_xml, _LIVE)
        )

    async def set_vcpus(self, vm_id: uuid.UUID, count: int) -> None:
        await self._on_domain("set_vcpus", vm_id, lambda dom: dom.setVcpusFlags(count, _LIVE))

    async def set_balloon(self, vm_id: uuid.UUID, kib: int) -> None:
        await self._on_domain("set_balloon", vm_id, lambda dom: dom.setMemoryFlags(kib, _LIVE))

    async def host_sysinfo(self) -> str:
        try:
            return await self._call("host_sysinfo", self._conn.getSysinfo, 0)
        except libvirt.libvirtError as exc:
            err = translate(exc, errors.HardwareInfoFailed)
            if isinstance(err, errors.HypervisorUnavailable):
                raise err from exc
            detail = {k: v for k, v in err.data.items() if k != "reason"}
            raise errors.HardwareInfoFailed(err.reason, **detail) from exc
