"""The owner follows console clients and runs the disconnect action: fake port, fake clock.

Graphics events are the port's DomainEvents as the libvirt adapter emits them; the e2e suite
shows the same with a real VNC client on QEMU.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid

import pytest
from prometheus_client import CollectorRegistry

from agent import errors
from agent.config import PowerConfig
from agent.consoles import GraphicsInfo
from agent.domxml.live import DomainFacts
from agent.domxml.metadata import VmMetadata
from agent.logs import Secret
from agent.metrics.instruments import Instruments
from agent.runtime.bus import StatusBus
from agent.runtime.vm import PowerCommand, TicketCommand, VmOwner
from agent.sessions import DisconnectAction, DisconnectPolicy
from agent.status import VmStatus
from agent.virt.port import DomainEvent, EventKind, GraphicsClient, PowerMethod
from tests.fakes import FakeClock, FakeGuest, FakeHypervisor, settle

VM = uuid.UUID("0b7c5e1e-3a51-4b3e-9d4e-5f2b8c9d0a11")
CFG = PowerConfig(agent_command_timeout_s=0.05, console_disconnect_grace_s=5.0)
SPICE, SPICE_TLS, VNC = 5900, 5901, 5902
CONSOLES = (
    GraphicsInfo("spice", SPICE, SPICE_TLS, "127.0.0.1"),
    GraphicsInfo("vnc", VNC, None, "127.0.0.1"),
)
LIVE = f"""<domain type='qemu'><name>vm</name><uuid>{VM}</uuid><devices>
  <graphics type='spice' port='{SPICE}' tlsPort='{SPICE_TLS}' autoport='yes'>
    <listen type='address' address='127.0.0.1'/></graphics>
  <graphics type='vnc' port='{VNC}' autoport='yes'>
    <listen type='address' address='127.0.0.1'/></graphics>
</devices></domain>"""


class Rig:
    def __init__(self, *, consoles=CONSOLES, guest: FakeGuest | None = None) -> None:
        self.clock = FakeClock()
        self.t0 = self.clock.t
        self.port = FakeHypervisor(self.clock)
        self.port.guests[VM] = guest or FakeGuest(obeys={PowerMethod.ACPI})
        self.port.xml[VM] = LIVE
        self.registry = CollectorRegistry(auto_describe=False)
        facts = DomainFacts(VM, "vm", "qemu", True, 1, 64, VmMetadata(), consoles)
        self.owner = VmOwner(
            self.port,
            StatusBus(),
            facts,
            VmStatus.UP,
            power_config=CFG,
            clock=self.clock,
            observer=Instruments(self.registry),
        )
        self.port.sink = self.owner.post_event
        self.task = asyncio.create_task(self.owner.run())

    async def client(self, kind: EventKind, local: int, host: str, port: int) -> None:
        self.owner.post_event(DomainEvent(VM, kind, client=GraphicsClient(local, host, port)))
        await settle()

    async def login(self, local: int, host: str, port: int) -> None:
        await self.client(EventKind.GRAPHICS_CONNECT, local, host, port)
        await self.client(EventKind.GRAPHICS_INITIALIZE, local, host, port)

    async def logout(self, local: int, host: str, port: int) -> None:
        await self.client(EventKind.GRAPHICS_DISCONNECT, local, host, port)

    async def ticket(self, ttl: int = 60, policy: DisconnectPolicy | None = None, **kw) -> None:
        cmd = TicketCommand(Secret("pw"), ttl, **kw)
        if policy is not None:
            cmd.disconnect = policy
            cmd.failure = errors.UpdateDeviceFailed
        await self.owner.submit(cmd)
        await settle()

    def metric(self, name: str, console: str) -> float | None:
        return self.registry.get_sample_value(name, {"vm": str(VM), "console": console})

    def sessions(self, console: str) -> float | None:
        return self.metric("hvagent_console_sessions", console)

    def power_calls(self) -> list[tuple[str, float]]:
        return [
            (c.name, round(c.t - self.t0, 3))
            for c in self.port.calls
            if c.name.startswith(("shutdown", "reboot", "destroy", "reset"))
        ]

    async def kill(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_sessions_client_ip_and_metrics_follow_graphics_events():
    rig = Rig()
    await settle()
    assert (rig.sessions("spice"), rig.sessions("vnc")) == (0, 0)
    assert rig.owner.stats()["clientIp"] == ""
    # One SPICE client: main channel on the plain port, the rest on the TLS port.
    for n, local in enumerate((SPICE, SPICE_TLS, SPICE_TLS, SPICE_TLS)):
        await rig.login(local, "10.0.0.7", 40000 + n)
    assert rig.sessions("spice") == 1
    assert rig.owner.stats()["clientIp"] == "10.0.0.7"
    # Two VNC viewers from another host are two sessions; the latest client is reported.
    await rig.login(VNC, "10.0.0.9", 50001)
    await rig.login(VNC, "10.0.0.9", 50002)
    stats = rig.owner.stats()
    assert stats["clientIp"] == "10.0.0.9"
    assert [(d["type"], d["sessions"]) for d in stats["displayInfo"]] == [("spice", 1), ("vnc", 2)]
    assert rig.sessions("vnc") == 2
    # A client that never authenticated (wrong password) changes nothing.
    await rig.client(EventKind.GRAPHICS_CONNECT, VNC, "10.0.0.66", 50100)
    await rig.logout(VNC, "10.0.0.66", 50100)
    assert rig.sessions("vnc") == 2
    for port in (50001, 50002):
        await rig.logout(VNC, "10.0.0.9", port)
    assert rig.sessions("vnc") == 0
    assert rig.owner.stats()["clientIp"] == "10.0.0.7"
    for n, local in enumerate((SPICE, SPICE_TLS, SPICE_TLS)):
        await rig.logout(local, "10.0.0.7", 40000 + n)
    assert rig.sessions("spice") == 1  # one channel still open: still a session
    await rig.logout(SPICE_TLS, "10.0.0.7", 40003)
    assert rig.sessions("spice") == 0 and rig.owner.stats()["clientIp"] == ""
    await rig.kill()


async def test_shutdown_runs_after_the_delay_when_nobody_comes_back():
    rig = Rig()
    await rig.ticket(policy=DisconnectPolicy(DisconnectAction.SHUTDOWN, 1), graphics_type="vnc")
    await rig.login(VNC, "10.0.0.9", 50001)
    await rig.logout(VNC, "10.0.0.9", 50001)
    await rig.clock.advance(59.9)
    assert rig.power_calls() == []
    await rig.clock.advance(0.1)
    assert rig.power_calls() == [("shutdown:acpi", 60.0)]
    stats = rig.owner.stats()
    assert stats["status"] == "Down" and stats["exitReason"] == 6
    assert stats["powerOperation"]["message"] == "Scheduled shutdown on console disconnect"
    assert stats["powerOperation"]["force"] is True
    # Down: the VM's console series are gone.
    assert rig.sessions("vnc") is None and rig.sessions("spice") is None
    assert rig.metric("hvagent_console_ticket_expiry_timestamp_seconds", "vnc") is None
    await rig.kill()


async def test_a_client_coming_back_cancels_the_action():
    rig = Rig()
    await rig.ticket(policy=DisconnectPolicy(DisconnectAction.SHUTDOWN, 1))
    await rig.login(SPICE, "10.0.0.7", 40000)
    await rig.logout(SPICE, "10.0.0.7", 40000)
    await rig.clock.advance(30)
    await rig.login(SPICE_TLS, "10.0.0.8", 40001)
    await rig.clock.advance(600)
    assert rig.power_calls() == []
    # The next departure arms it afresh, from its own time.
    await rig.logout(SPICE_TLS, "10.0.0.8", 40001)
    await rig.clock.advance(60)
    assert rig.power_calls() == [("shutdown:acpi", 690.0)]
    await rig.kill()


async def test_zero_delay_waits_the_grace_period_and_reboot_goes_through_the_ladder():
    rig = Rig(guest=FakeGuest())  # ignores ACPI: force resets it
    await rig.ticket(policy=DisconnectPolicy(DisconnectAction.REBOOT, 0))
    await rig.login(SPICE, "10.0.0.7", 40000)
    await rig.logout(SPICE, "10.0.0.7", 40000)
    # spice-gtk closes the plain main channel and reopens it on the TLS port.
    await rig.clock.advance(1)
    await rig.login(SPICE_TLS, "10.0.0.7", 40001)
    await rig.logout(SPICE_TLS, "10.0.0.7", 40001)
    await rig.clock.advance(4.999)
    assert rig.power_calls() == []
    await rig.clock.advance(0.001)
    assert rig.power_calls() == [("reboot:acpi", 6.0)]
    assert rig.owner.stats()["status"] == "RebootInProgress"
    await rig.clock.advance(CFG.shutdown_timeout_s + 1)
    assert [name for name, _ in rig.power_calls()][-1] == "reset"
    await rig.kill()


@pytest.mark.parametrize(
    "policy",
    [
        DisconnectPolicy(DisconnectAction.NONE),
        DisconnectPolicy(DisconnectAction.LOCK_SCREEN),
        DisconnectPolicy(DisconnectAction.LOGOUT, 1),
        None,  # VM.setTicket after updateDevice(SHUTDOWN): reset to NONE, as VDSM
    ],
)
async def test_no_action_without_a_runnable_policy(policy):
    rig = Rig()
    await rig.ticket(policy=DisconnectPolicy(DisconnectAction.SHUTDOWN, 0))
    await rig.ticket(policy=policy)
    await rig.login(VNC, "10.0.0.9", 50001)
    await rig.logout(VNC, "10.0.0.9", 50001)
    await rig.clock.advance(3600)
    assert rig.power_calls() == []
    await rig.kill()


async def test_an_explicit_shutdown_in_progress_is_not_disturbed_by_the_action():
    rig = Rig(guest=FakeGuest())
    await rig.ticket(policy=DisconnectPolicy(DisconnectAction.REBOOT, 0))
    await rig.login(VNC, "10.0.0.9", 50001)
    await rig.owner.submit(PowerCommand(timeout_s=100))
    await rig.logout(VNC, "10.0.0.9", 50001)
    await rig.clock.advance(6)
    # the reboot was refused (a shutdown is in progress); the shutdown goes on
    assert [n for n, _ in rig.power_calls()] == ["shutdown:acpi"]
    assert rig.owner.stats()["powerOperation"]["kind"] == "shutdown"
    await rig.kill()


async def test_guest_stopping_forgets_clients_and_the_pending_action():
    rig = Rig()
    await rig.ticket(policy=DisconnectPolicy(DisconnectAction.SHUTDOWN, 1))
    await rig.login(VNC, "10.0.0.9", 50001)
    await rig.login(VNC, "10.0.0.9", 50002)
    await rig.logout(VNC, "10.0.0.9", 50002)
    rig.port.guests[VM].running = False
    rig.owner.post_event(DomainEvent(VM, EventKind.STOPPED))
    await settle()
    assert rig.owner.console_watch.sessions.total == 0 and rig.sessions("vnc") is None
    rig.owner.post_event(DomainEvent(VM, EventKind.STARTED))
    await settle()
    assert rig.sessions("vnc") == 0 and rig.owner.stats()["clientIp"] == ""
    await rig.clock.advance(3600)
    assert rig.power_calls() == []
    await rig.kill()


async def test_ticket_expiry_metric():
    rig = Rig()
    await rig.ticket(ttl=120, graphics_type="vnc")
    expiry = rig.metric("hvagent_console_ticket_expiry_timestamp_seconds", "vnc")
    assert expiry == rig.clock.time() + 120
    await rig.ticket(ttl=0)  # the first console: SPICE, no expiry
    assert rig.metric("hvagent_console_ticket_expiry_timestamp_seconds", "spice") == math.inf
    # the password went to libvirt and nowhere else
    sent = [c.arg for c in rig.port.calls if c.name == "update_graphics"]
    assert len(sent) == 2 and all('passwd="pw"' in x for x in sent)
    await rig.kill()


async def test_update_device_refusals_are_56_and_libvirt_refusing_is_18():
    headless = Rig(consoles=())
    with pytest.raises(errors.UpdateDeviceFailed, match="headless"):
        await headless.ticket(policy=DisconnectPolicy())
    with pytest.raises(errors.TicketFailed, match="headless"):
        await headless.ticket()
    await headless.kill()

    rig = Rig(consoles=(CONSOLES[1],))
    rig.port.xml[VM] = LIVE.replace("type='spice'", "type='sdl'")
    with pytest.raises(errors.UpdateDeviceFailed) as exc:
        await rig.ticket(policy=DisconnectPolicy(DisconnectAction.SHUTDOWN), graphics_type="spice")
    assert exc.value.data["param"] == "graphicsType"

    async def refuse(vm_id, element_xml):
        raise errors.TicketFailed("libvirt said no", libvirt={"code": 3})

    rig.port.update_graphics = refuse
    with pytest.raises(errors.TicketFailed) as exc:  # VDSM: ticketErr from updateDevice too
        await rig.ticket(policy=DisconnectPolicy(DisconnectAction.SHUTDOWN), graphics_type="vnc")
    assert exc.value.data["libvirt"] == {"code": 3}
    # a refused update leaves the previous policy (none) in force
    await rig.login(VNC, "10.0.0.9", 50001)
    await rig.logout(VNC, "10.0.0.9", 50001)
    await rig.clock.advance(600)
    assert rig.power_calls() == []
    await rig.kill()
