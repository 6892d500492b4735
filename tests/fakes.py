"""Test doubles: FakeClock (time moves only when told) and FakeHypervisor (virt.port.Hypervisor).

FakeHypervisor models guests by behaviour: which power methods a guest obeys, whether the
guest agent hangs. Domain events it causes go to `sink` (the owner's post_event) and to
`events()`, as libvirt's would. Every call is recorded with the clock time and the metadata
at that moment. tests/integration/test_port_contract.py runs the same scenarios against it
and against the real adapter on libvirt's test driver, so it cannot drift from libvirt.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from agent import errors
from agent.domxml import metadata, parse, to_string
from agent.domxml.metadata import VmMetadata
from agent.virt.port import (
    DomainEvent,
    DomainRecord,
    DomainState,
    EventKind,
    GuestInfo,
    HostFacts,
    PowerMethod,
    StopCause,
)

SYSINFO = """<sysinfo type='smbios'>
  <bios><entry name='vendor'>SeaBIOS</entry></bios>
  <system>
    <entry name='manufacturer'>Fake Iron</entry>
    <entry name='product'>FI-2000</entry>
    <entry name='version'>1.2</entry>
    <entry name='serial'>SN-0042</entry>
    <entry name='uuid'>4c4c4544-0042-3010-8054-b4c04f4e3232</entry>
    <entry name='sku'>SKU1</entry>
    <entry name='family'>Rack</entry>
  </system>
</sysinfo>
"""


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    async def sleep_until(self, deadline: float) -> None:
        if self.t >= deadline:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((deadline, fut))
        try:
            await fut
        finally:
            self._waiters = [(d, f) for d, f in self._waiters if f is not fut]

    async def advance_to(self, t: float) -> None:
        """Move time to `t`, waking each sleeper at its own deadline, in order."""
        while True:
            await settle()
            due = [d for d, f in self._waiters if d <= t and not f.done()]
            if not due:
                break
            self.t = max(self.t, min(due))
            for d, f in self._waiters:
                if d <= self.t and not f.done():
                    f.set_result(None)
        self.t = max(self.t, t)
        await settle()

    async def advance(self, dt: float) -> None:
        await self.advance_to(self.t + dt)


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@dataclass
class Call:
    vm_id: uuid.UUID
    t: float
    name: str
    arg: object
    meta: VmMetadata


@dataclass
class FakeGuest:
    obeys: set[PowerMethod] = field(default_factory=set)  # methods the guest acts on
    agent_hangs: bool = False
    reset_fails: bool = False
    running: bool = True
    # What guest_info answers; the default is what libvirt's test driver answers for a
    # domain without NICs (it has no guest-info or guest vCPU query).
    agent_info: GuestInfo = field(
        default_factory=lambda: GuestInfo(info={}, missing=("info", "cpu_count"))
    )
    agent_fails: errors.AgentError | None = None  # raised by guest_info instead
    info_hangs: bool = False  # guest_info never returns (a hung agent)
    paused: bool = False
    refuses_devices: bool = False  # libvirt refuses hot-plug and unplug (QEMU said no)
    keeps_unplugged: bool = False  # the guest never releases a device asked to unplug
    balloon_kib: int | None = None  # the last balloon target set


class FakeHypervisor:
    def __init__(self, clock: FakeClock | Any) -> None:
        self.clock = clock
        self.guests: dict[uuid.UUID, FakeGuest] = {}
        self.meta: dict[uuid.UUID, VmMetadata] = {}
        self.xml: dict[uuid.UUID, str] = {}  # live XML, for domain_xml
        self.calls: list[Call] = []
        self.sink: Callable[[DomainEvent], None] = lambda e: None
        self.alive = True
        self._queue: asyncio.Queue[DomainEvent] = asyncio.Queue()
        # The host's SMBIOS as libvirt's getSysinfo gives it; None: the host has none.
        self.sysinfo: str | None = SYSINFO

    def emit(self, event: DomainEvent) -> None:
        self._queue.put_nowait(event)
        self.sink(event)

    def _record(self, vm_id: uuid.UUID, name: str, arg: object = None) -> FakeGuest:
        meta = self.meta.get(vm_id, VmMetadata())
        self.calls.append(Call(vm_id, self.clock.time(), name, arg, meta))
        guest = self.guests.get(vm_id)
        if guest is None:
            raise errors.NoSuchVM(vmId=str(vm_id))
        return guest

    def names(self) -> list[str]:
        return [c.name for c in self.calls if c.name != "set_metadata"]

    async def shutdown(self, vm_id: uuid.UUID, method: PowerMethod) -> None:
        guest = self._record(vm_id, f"shutdown:{method}")
        if method is PowerMethod.AGENT and guest.agent_hangs:
            await asyncio.Event().wait()
        if guest.running and method in guest.obeys:
            guest.running = False
            self.emit(DomainEvent(vm_id, EventKind.STOPPED, StopCause.SHUTDOWN))

    async def reboot(self, vm_id: uuid.UUID, method: PowerMethod) -> None:
        guest = self._record(vm_id, f"reboot:{method}")
        if method is PowerMethod.AGENT and guest.agent_hangs:
            await asyncio.Event().wait()
        if guest.running and method in guest.obeys:
            self.emit(DomainEvent(vm_id, EventKind.REBOOT))

    async def reset(self, vm_id: uuid.UUID) -> None:
        guest = self._record(vm_id, "reset")
        if not guest.running:
            raise errors.ResetFailed("domain is not running", vmId=str(vm_id))
        if guest.reset_fails:
            raise errors.ResetFailed("reset refused", vmId=str(vm_id))

    async def destroy(self, vm_id: uuid.UUID, *, graceful_attempts: int) -> None:
        guest = self._record(vm_id, "destroy", graceful_attempts)
        if guest.running:
            guest.running = False
            self.emit(DomainEvent(vm_id, EventKind.STOPPED, StopCause.DESTROYED))

    async def undefine(self, vm_id: uuid.UUID) -> None:
        if vm_id not in self.guests:
            return  # like the adapter: a domain already gone is not an error
        self._record(vm_id, "undefine")
        del self.guests[vm_id]
        self.xml.pop(vm_id, None)
        self.emit(DomainEvent(vm_id, EventKind.UNDEFINED))

    async def set_metadata(self, vm_id: uuid.UUID, element_xml: str) -> None:
        self.meta[vm_id] = metadata.read(parse(element_xml))
        self._record(vm_id, "set_metadata")

    async def domain_xml(self, vm_id: uuid.UUID) -> str:
        self._record(vm_id, "domain_xml")
        return self._live_xml(vm_id)

    def _live_xml(self, vm_id: uuid.UUID) -> str:
        root = parse(self.xml[vm_id])
        meta = self.meta.get(vm_id)
        if meta is not None:
            old = metadata.find(root)
            if old is not None:
                old.getparent().remove(old)
            block = root.find("metadata")
            if block is None:
                block = etree.SubElement(root, "metadata")
            block.append(metadata.build(meta))
        return to_string(root)

    async def update_graphics(self, vm_id: uuid.UUID, element_xml: str) -> None:
        self._record(vm_id, "update_graphics", element_xml)
        update = parse(element_xml)
        root = parse(self.xml[vm_id])
        current = root.find(f"devices/graphics[@type='{update.get('type')}']")
        if current is None:
            raise errors.TicketFailed("no such graphics device", vmId=str(vm_id))
        for key in ("passwdValidTo", "connected"):
            if update.get(key) is None:
                current.attrib.pop(key, None)
            else:
                current.set(key, update.get(key))
        self.xml[vm_id] = to_string(root)  # like libvirt, never shows `passwd`

    def _state(self, vm_id: uuid.UUID) -> DomainRecord:
        guest = self.guests[vm_id]
        state = DomainState.RUNNING if guest.running else DomainState.SHUTOFF
        if guest.running and guest.paused:
            state = DomainState.PAUSED
        cause = None if guest.running else StopCause.UNKNOWN
        return DomainRecord(vm_id, state, cause, self._live_xml(vm_id))

    async def list_domains(self) -> list[DomainRecord]:
        return [self._state(v) for v in self.guests]

    async def domain(self, vm_id: uuid.UUID) -> DomainRecord:
        if vm_id not in self.guests:
            raise errors.NoSuchVM(vmId=str(vm_id))
        return self._state(vm_id)

    async def has_domain(self, vm_id: uuid.UUID) -> bool:
        return vm_id in self.guests

    async def define_and_start(self, xml: str, *, paused: bool) -> str:
        """A domain that starts (paused when asked): DEFINED, STARTED (+ SUSPENDED). Like
        the real call (a trip to libvirt's threads), it leaves the loop before it starts."""
        await asyncio.sleep(0)
        root = parse(xml)
        vm_id = uuid.UUID(root.findtext("uuid", ""))
        if vm_id in self.guests:
            raise errors.CreateFailed("domain already exists", vmId=str(vm_id))
        for g in root.iterfind("devices/graphics"):
            g.attrib.pop("passwd", None)
            if g.get("autoport") == "yes":
                g.set("port", str(5900 + len(self.guests)))
        self.xml[vm_id] = to_string(root)
        self.guests[vm_id] = FakeGuest(obeys={PowerMethod.ACPI, PowerMethod.AGENT})
        meta_el = metadata.find(root)
        if meta_el is not None:
            self.meta[vm_id] = metadata.read(meta_el)
        self._record(vm_id, "define_and_start", paused)
        self.emit(DomainEvent(vm_id, EventKind.DEFINED))
        self.emit(DomainEvent(vm_id, EventKind.STARTED))
        if paused:
            self.emit(DomainEvent(vm_id, EventKind.SUSPENDED))
        return self._live_xml(vm_id)

    async def guest_info(self, vm_id: uuid.UUID, *, timeout_s: int) -> GuestInfo:
        guest = self._record(vm_id, "guest_info", timeout_s)
        if not guest.running:
            raise errors.WrongState("the domain is not running", vmId=str(vm_id))
        if guest.info_hangs:
            await asyncio.Event().wait()
        if guest.agent_fails is not None:
            raise guest.agent_fails
        return guest.agent_info

    # -- a running domain (virt/running.py), refusing as libvirt's QEMU driver does --------

    def _running(self, vm_id: uuid.UUID, name: str, arg: object = None) -> FakeGuest:
        guest = self._record(vm_id, name, arg)
        if not guest.running:
            raise errors.WrongState(
                "Requested operation is not valid: domain is not running",
                vmId=str(vm_id),
                libvirt={"code": 55, "domain": 10, "message": "domain is not running"},
            )
        return guest

    async def suspend(self, vm_id: uuid.UUID) -> None:
        guest = self._running(vm_id, "suspend")
        if not guest.paused:
            guest.paused = True
            self.emit(DomainEvent(vm_id, EventKind.SUSPENDED, pause_code="NOERR"))

    async def resume(self, vm_id: uuid.UUID) -> None:
        guest = self._running(vm_id, "resume")
        if guest.paused:
            guest.paused = False
            self.emit(DomainEvent(vm_id, EventKind.RESUMED))

    def _refuse(self, guest: FakeGuest, vm_id: uuid.UUID, why: str) -> None:
        if guest.refuses_devices or why:
            message = why or "internal error: unable to execute QEMU command 'device_add'"
            raise errors.HypervisorError(
                message, vmId=str(vm_id), libvirt={"code": 1, "domain": 10, "message": message}
            )

    async def attach_device(self, vm_id: uuid.UUID, element_xml: str) -> None:
        guest = self._running(vm_id, "attach_device", element_xml)
        el = parse(element_xml)
        root = parse(self.xml[vm_id])
        devices = root.find("devices")
        why = ""
        if el.tag == "disk":
            target = el.find("target").get("dev")
            if root.find(f"devices/disk/target[@dev='{target}']") is not None:
                why = f"Requested operation is not valid: target {target} already exists"
        self._refuse(guest, vm_id, why)
        if el.tag == "interface":
            n = len(root.findall("devices/interface"))
            if el.find("mac") is None:
                el.insert(0, etree.Element("mac", address=f"52:54:00:00:ff:{n:02x}"))
            etree.SubElement(el, "target", dev=f"vnet{n + 100}")
        devices.append(el)
        self.xml[vm_id] = to_string(root)

    async def detach_device(self, vm_id: uuid.UUID, element_xml: str) -> None:
        guest = self._running(vm_id, "detach_device", element_xml)
        el = parse(element_xml)
        root = parse(self.xml[vm_id])
        if el.tag == "disk":
            path = f"devices/disk/target[@dev='{el.find('target').get('dev')}']/.."
        else:
            path = f"devices/interface/mac[@address='{el.find('mac').get('address')}']/.."
        found = root.find(path)
        self._refuse(guest, vm_id, "" if found is not None else "device not found")
        if not guest.keeps_unplugged:
            found.getparent().remove(found)
            self.xml[vm_id] = to_string(root)

    async def set_vcpus(self, vm_id: uuid.UUID, count: int) -> None:
        self._running(vm_id, "set_vcpus", count)
        root = parse(self.xml[vm_id])
        vcpu = root.find("vcpu")
        if count > int(vcpu.text):
            message = (
                "invalid argument: requested vcpus is greater than max allowable vcpus "
                f"for the live domain: {count} > {vcpu.text}"
            )
            raise errors.HypervisorError(
                message, vmId=str(vm_id), libvirt={"code": 8, "domain": 10, "message": message}
            )
        vcpu.set("current", str(count))
        self.xml[vm_id] = to_string(root)

    async def set_balloon(self, vm_id: uuid.UUID, kib: int) -> None:
        guest = self._running(vm_id, "set_balloon", kib)
        memory = int(parse(self.xml[vm_id]).findtext("memory"))
        if kib > memory:
            message = "invalid argument: cannot set memory higher than max memory"
            raise errors.HypervisorError(
                message, vmId=str(vm_id), libvirt={"code": 8, "domain": 10, "message": message}
            )
        guest.balloon_kib = kib

    async def host_sysinfo(self) -> str:
        self.calls.append(
            Call(uuid.UUID(int=0), self.clock.time(), "host_sysinfo", None, VmMetadata())
        )
        if self.sysinfo is None:
            message = "unsupported configuration: Host SMBIOS information is not available"
            raise errors.HardwareInfoFailed(
                message, libvirt={"code": 67, "domain": 10, "message": message}
            )
        return self.sysinfo

    async def host_facts(self) -> HostFacts:
        """A small host, shaped as the test driver's (its emulator included)."""
        caps = (
            "<capabilities><host><cpu><arch>x86_64</arch></cpu></host><guest><os_type>hvm"
            "</os_type><arch name='x86_64'><emulator>/usr/bin/test-hv</emulator></arch></guest>"
            "</capabilities>"
        )
        return HostFacts(
            "fake", caps, "x86_64", 4096, 2, 2000, 1, 1, 2, 1, "9.0.0", "9.0.0", "Test"
        )

    async def events(self) -> AsyncIterator[DomainEvent]:
        while True:
            yield await self._queue.get()

    async def reconnect(self) -> None:
        self.alive = True

    async def close(self) -> None:
        self.alive = False
