"""Guest-agent queries (virDomainGetGuestInfo, interface addresses from the agent, the
guest's vCPU count) on threads of their own, so a guest agent that hangs never holds one of
the verbs' libvirt threads.

Each query sets libvirt's agent response timeout for the domain first, so libvirt itself
gives up on a silent agent after `timeout_s`; an outer deadline covers a libvirt that does
not. At most one query per VM is on a thread: while one still runs (past its deadline),
the next is refused at once with GuestAgentUnresponsive instead of queueing behind it.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import libvirt

from agent import errors
from agent.virt.errors import translate
from agent.virt.liveness import Liveness
from agent.virt.port import GuestAddress, GuestInfo, GuestInterface

_FAMILY = {libvirt.VIR_IP_ADDR_TYPE_IPV4: "ipv4", libvirt.VIR_IP_ADDR_TYPE_IPV6: "ipv6"}
# Errors after which the other parts are not asked: the agent is silent or gone.
_AGENT_SILENT = (errors.GuestAgentUnresponsive, errors.OperationTimeout, errors.NoSuchVM)


def _interfaces(raw: dict) -> tuple[GuestInterface, ...]:
    out = []
    for name, iface in sorted(raw.items()):
        addrs = tuple(
            GuestAddress(_FAMILY.get(a.get("type"), "ipv4"), str(a["addr"]), int(a["prefix"]))
            for a in iface.get("addrs") or ()
            if a.get("addr")
        )
        out.append(GuestInterface(str(name), str(iface.get("hwaddr") or ""), addrs))
    return tuple(out)


def query(conn: libvirt.virConnect, vm_id: uuid.UUID, timeout_s: int) -> GuestInfo:
    """Blocking: every part the agent answers; raises when none did."""
    try:
        dom = conn.lookupByUUIDString(str(vm_id))
        active = dom.isActive()
    except libvirt.libvirtError as exc:
        raise translate(exc, vmId=str(vm_id)) from exc
    if not active:
        raise errors.WrongState("the domain is not running", vmId=str(vm_id))
    try:
        dom.agentSetResponseTimeout(max(1, int(timeout_s)), 0)
    except libvirt.libvirtError as exc:  # drivers without agents (the test driver)
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise translate(exc, vmId=str(vm_id)) from exc
    parts = {
        "info": lambda: {str(k): v for k, v in dom.guestInfo(0, 0).items()},
        "interfaces": lambda: _interfaces(
            dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0)
        ),
        "cpu_count": lambda: int(dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_GUEST)),
    }
    got: dict[str, object] = {}
    failures: list[errors.AgentError] = []
    for name, ask in parts.items():
        if failures and isinstance(failures[0], _AGENT_SILENT):
            break
        try:
            got[name] = ask()
        except libvirt.libvirtError as exc:
            failures.append(translate(exc, vmId=str(vm_id), part=name))
        except (UnicodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # the guest's answer did not decode (e.g. invalid UTF-8 from the agent)
            reason = f"unreadable guest-agent answer: {type(exc).__name__}"
            failures.append(errors.HypervisorError(reason, vmId=str(vm_id), part=name))
    if not got:
        raise failures[0]
    return GuestInfo(
        info=got.get("info", {}),  # type: ignore[arg-type]
        interfaces=got.get("interfaces", ()),  # type: ignore[arg-type]
        cpu_count=got.get("cpu_count"),  # type: ignore[arg-type]
        missing=tuple(n for n in parts if n not in got),
    )


class AgentQueries:
    """The guest-agent threads of one LibvirtHypervisor."""

    def __init__(self, liveness: Liveness, threads: int = 4) -> None:
        self._liveness = liveness
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="libvirt-agent")
        self._running: dict[uuid.UUID, Future[GuestInfo]] = {}

    async def info(self, conn: libvirt.virConnect, vm_id: uuid.UUID, timeout_s: int) -> GuestInfo:
        if not self._liveness.answering:
            raise errors.HypervisorUnavailable("libvirt is not answering", call="guest_info")
        running = self._running.get(vm_id)
        if running is not None and not running.done():
            raise errors.GuestAgentUnresponsive(
                "the previous guest-agent query has not returned yet", vmId=str(vm_id)
            )
        job = self._pool.submit(functools.partial(query, conn, vm_id, timeout_s))
        self._running[vm_id] = job
        job.add_done_callback(lambda f: self._forget(vm_id, f))
        # libvirt's agent timeout applies per part (up to three) plus the lookup.
        deadline = 3 * max(1, timeout_s) + 2
        try:
            async with asyncio.timeout(deadline):
                return await asyncio.wrap_future(job)
        except TimeoutError:
            raise errors.GuestAgentUnresponsive(
                f"no answer from the guest agent within {deadline} s", vmId=str(vm_id)
            ) from None

    def _forget(self, vm_id: uuid.UUID, job: Future[GuestInfo]) -> None:
        if self._running.get(vm_id) is job:
            del self._running[vm_id]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
