"""The owner runs the power ladder: FakeHypervisor + FakeClock, no real time, no libvirt."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from agent import errors
from agent.config import PowerConfig
from agent.domxml.live import DomainFacts
from agent.domxml.metadata import VmMetadata
from agent.power import Kind
from agent.runtime.bus import StatusBus
from agent.runtime.vm import (
    DestroyCommand,
    DestroyOnRebootCommand,
    PowerCommand,
    ResetCommand,
    VmOwner,
)
from agent.status import VmStatus
from agent.virt.port import DomainEvent, DomainState, EventKind, PowerMethod
from tests.fakes import FakeClock, FakeGuest, FakeHypervisor, settle

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
CFG = PowerConfig(agent_command_timeout_s=0.05)


class Rig:
    def __init__(
        self, guest: FakeGuest, *, acpi: bool = True, status=VmStatus.UP, observer=None
    ) -> None:
        self.clock = FakeClock()
        self.t0 = self.clock.t
        self.port = FakeHypervisor(self.clock)
        self.port.guests[VM] = guest
        self.bus = StatusBus()
        self.events = self.bus.subscribe()
        self.facts = DomainFacts(VM, "vm", "qemu", acpi, 1, 64, VmMetadata())
        self.owner = VmOwner(
            self.port,
            self.bus,
            self.facts,
            status,
            power_config=CFG,
            clock=self.clock,
            observer=observer,
        )
        self._attach(self.owner)

    def _attach(self, owner: VmOwner) -> None:
        self.owner = owner
        self.port.sink = owner.post_event
        self.task = asyncio.create_task(owner.run())

    async def kill(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def restart(self) -> None:
        """A new hvagent adopting the running domain with the metadata libvirt kept."""
        await self.kill()
        facts = DomainFacts(VM, "vm", "qemu", self.facts.acpi, 1, 64, self.port.meta[VM])
        owner = VmOwner.adopt(
            self.port,
            self.bus,
            facts,
            DomainState.RUNNING,
            None,
            power_config=CFG,
            clock=self.clock,
        )
        self._attach(owner)
        await settle()

    async def shutdown(self, **kw) -> None:
        kind = Kind.REBOOT if kw.pop("reboot", False) else Kind.SHUTDOWN
        await self.owner.submit(PowerCommand(kind=kind, **kw))
        await settle()

    def at(self, name: str) -> list[float]:
        return [round(c.t - self.t0, 3) for c in self.port.calls if c.name == name]

    def statuses(self) -> list[tuple[str, dict]]:
        out = []
        while not self.events.empty():
            d = self.events.get_nowait()["params"][str(VM)]
            out.append((d["status"], d))
        return out


async def test_uncooperative_vm_is_destroyed_exactly_at_the_acpi_deadline():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=5, force=True, message="maintenance")
    acpi = "shutdown:acpi"
    assert rig.at(acpi) == [0.0]
    # the operation was persisted before the ACPI request went out
    first = next(c for c in rig.port.calls if c.name == acpi)
    assert first.meta.operation is not None and first.meta.operation["stage"] == "acpi"
    await rig.clock.advance(4.999)
    assert rig.at("destroy") == []
    await rig.clock.advance(0.001)
    assert rig.at("destroy") == [5.0]
    assert rig.owner.status is VmStatus.DOWN
    assert rig.owner.exit_info.reason == 6
    seen = rig.statuses()
    assert [s for s, _ in seen] == ["Powering down", "Down"]
    assert seen[0][1]["powerOperation"]["message"] == "maintenance"
    assert rig.port.meta[VM].operation is None
    await rig.kill()


async def test_agent_shutdown_completes_with_exit_6():
    rig = Rig(FakeGuest(obeys={PowerMethod.AGENT}))
    rig.owner.post_event(DomainEvent(VM, EventKind.AGENT_CONNECTED))
    await settle()
    await rig.shutdown()
    assert rig.port.names() == ["shutdown:agent"]
    assert rig.owner.status is VmStatus.DOWN and rig.owner.exit_info.reason == 6
    await rig.kill()


async def test_hanging_agent_does_not_eat_the_grace_period():
    rig = Rig(FakeGuest(agent_hangs=True, obeys={PowerMethod.ACPI}))
    rig.owner.post_event(DomainEvent(VM, EventKind.AGENT_CONNECTED))
    await settle()
    await rig.owner.submit(PowerCommand())
    # the agent call times out after agent_command_timeout_s of real time; ACPI follows
    async with asyncio.timeout(5):
        while rig.owner.status is not VmStatus.DOWN:
            await asyncio.sleep(0.01)
    assert rig.port.names() == ["shutdown:agent", "shutdown:acpi"]
    assert rig.owner.exit_info.reason == 6
    await rig.kill()


async def test_without_force_it_gives_up_and_stays_up():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=25)
    await rig.clock.advance(30)
    assert rig.at("shutdown:acpi") == [0.0, 10.0, 20.0]  # re-sent every acpi_retry_s
    assert rig.at("destroy") == []
    assert rig.owner.status is VmStatus.UP
    seen = rig.statuses()
    assert [s for s, _ in seen] == ["Powering down", "Up"]
    assert seen[-1][1]["powerOperation"]["outcome"] == "gave-up"
    assert rig.port.meta[VM].operation is None
    await rig.kill()


async def test_explicit_zero_timeout_means_zero():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=0, delay_s=0, force=True)
    assert rig.at("destroy") == [0.0]
    await rig.kill()


async def test_second_shutdown_adds_force_to_the_running_ladder():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=8)
    await rig.clock.advance(3)
    await rig.shutdown(timeout_s=100, force=True)
    await rig.clock.advance(10)
    assert rig.at("destroy") == [8.0]  # the original deadline, not a new ladder
    assert rig.at("shutdown:acpi") == [0.0]
    await rig.kill()


async def test_destroy_cancels_the_ladder():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=8, force=True)
    await rig.owner.submit(DestroyCommand(1))
    await rig.clock.advance(20)
    assert rig.port.names() == ["shutdown:acpi", "destroy", "undefine"]
    assert rig.owner.gone
    await rig.kill()


async def test_paused_vm_is_refused_unless_forced():
    rig = Rig(FakeGuest(), status=VmStatus.PAUSED)
    with pytest.raises(errors.WrongState) as exc:
        await rig.owner.submit(PowerCommand())
    assert "paused" in exc.value.data["reason"]
    await rig.shutdown(force=True, timeout_s=1)
    await rig.clock.advance(1)
    assert rig.at("destroy") == [1.0]
    await rig.kill()


async def test_restart_continues_the_ladder_to_the_original_deadline():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=20, force=True)
    await rig.clock.advance(7)
    await rig.restart()  # hvagent killed and started again 7 s into the ACPI stage
    assert rig.owner.status is VmStatus.POWERING_DOWN
    await rig.clock.advance(12.9)
    assert rig.at("destroy") == []
    await rig.clock.advance(0.1)
    assert rig.at("destroy") == [20.0]
    assert rig.owner.exit_info.reason == 6
    await rig.kill()


async def test_restart_after_the_deadline_destroys_at_once():
    rig = Rig(FakeGuest())
    await rig.shutdown(timeout_s=20, force=True)
    await rig.kill()
    await rig.clock.advance(30)
    await rig.restart()
    assert rig.at("destroy") == [30.0]
    await rig.kill()


async def test_reboot_completes_on_the_reboot_event():
    rig = Rig(FakeGuest(obeys={PowerMethod.ACPI}))
    await rig.shutdown(reboot=True)
    assert rig.owner.status is VmStatus.UP
    assert [s for s, _ in rig.statuses()] == ["RebootInProgress", "Up"]
    await rig.kill()


async def test_forced_reboot_resets_an_uncooperative_guest():
    rig = Rig(FakeGuest())
    await rig.shutdown(reboot=True, timeout_s=5, force=True)
    await rig.clock.advance(5)
    assert rig.at("reset") == [5.0]
    assert rig.owner.status is VmStatus.UP
    await rig.kill()


async def test_destroy_on_reboot_turns_a_reboot_into_down_13():
    rig = Rig(FakeGuest(obeys={PowerMethod.ACPI}))
    await rig.owner.submit(DestroyOnRebootCommand())
    assert rig.port.meta[VM].destroy_on_reboot
    await rig.shutdown(reboot=True)
    assert rig.owner.status is VmStatus.DOWN
    assert rig.owner.exit_info.reason == 13
    await rig.kill()


async def test_reset_failure_is_error_90_and_down_vm_is_wrong_state():
    rig = Rig(FakeGuest(reset_fails=True))
    with pytest.raises(errors.ResetFailed):
        await rig.owner.submit(ResetCommand())
    await rig.kill()
    rig = Rig(FakeGuest(), status=VmStatus.DOWN)
    with pytest.raises(errors.WrongState):
        await rig.owner.submit(ResetCommand())
    await rig.kill()


async def test_guest_shutting_itself_down_is_exit_7():
    rig = Rig(FakeGuest(obeys={PowerMethod.ACPI}))
    await rig.port.shutdown(VM, PowerMethod.ACPI)  # as if from inside the guest
    await settle()
    assert rig.owner.exit_info.reason == 7
    await rig.kill()


async def test_paused_vm_whose_destroy_fails_stays_paused():
    rig = Rig(FakeGuest(), status=VmStatus.PAUSED, acpi=False)

    async def refuse(vm_id, *, graceful_attempts):
        raise errors.DestroyFailed("refused", vmId=str(vm_id))

    rig.port.destroy = refuse
    await rig.shutdown(force=True)
    assert rig.owner.status is VmStatus.PAUSED
    seen = rig.statuses()
    assert [s for s, _ in seen] == ["Powering down", "Paused"]
    assert seen[-1][1]["powerOperation"]["outcome"] == "failed"
    await rig.kill()


async def test_power_operations_are_counted_in_metrics():
    from prometheus_client import CollectorRegistry

    from agent.metrics.instruments import Instruments

    reg = CollectorRegistry(auto_describe=False)
    metrics = Instruments(reg)

    def value(name, **labels):
        return reg.get_sample_value(name, labels) or 0.0

    forced = Rig(FakeGuest(), observer=metrics)
    await forced.shutdown(timeout_s=5, force=True)
    assert value("hvagent_pending_power_operations") == 1
    await forced.clock.advance(5)
    assert forced.owner.status is VmStatus.DOWN
    await forced.kill()
    gave_up = Rig(FakeGuest(), observer=metrics)
    await gave_up.shutdown(timeout_s=5)
    await gave_up.clock.advance(6)
    await gave_up.kill()

    assert value("hvagent_pending_power_operations") == 0
    assert (
        value("hvagent_power_operations_total", kind="shutdown", outcome="forced", stage="force")
        == 1
    )
    assert (
        value("hvagent_power_operations_total", kind="shutdown", outcome="gave-up", stage="acpi")
        == 1
    )
    assert value("hvagent_power_operation_duration_seconds_count") == 2
