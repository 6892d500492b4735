"""The VM owner's shell: crash containment, owned subtasks, and an Operation that is not the
power ladder plugging in without any change to the shell. Fake port, fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

import pytest

from agent import errors
from agent.config import PowerConfig
from agent.domxml.live import DomainFacts
from agent.domxml.metadata import VmMetadata
from agent.runtime.bus import StatusBus
from agent.runtime.vm import Command, DestroyCommand, PowerCommand, VmOwner
from agent.runtime.vm import operations as resumable
from agent.runtime.vm.operation import ActionContext, OpStep
from agent.status import ExitReason, VmStatus
from agent.virt.port import DomainEvent, DomainState, EventKind, PowerMethod, StopCause
from tests.fakes import FakeClock, FakeGuest, FakeHypervisor, settle

VM = uuid.UUID("9d1f3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6")


class Rig:
    def __init__(self, *, meta: VmMetadata | None = None, state=DomainState.RUNNING) -> None:
        self.clock = FakeClock()
        self.port = FakeHypervisor(self.clock)
        self.port.guests[VM] = FakeGuest(obeys={PowerMethod.ACPI})
        self.bus = StatusBus()
        self.events = self.bus.subscribe()
        facts = DomainFacts(VM, "vm", "qemu", True, 1, 64, meta or VmMetadata())
        self.owner = VmOwner.adopt(
            self.port,
            self.bus,
            facts,
            state,
            None,
            power_config=PowerConfig(),
            clock=self.clock,
        )
        self.port.sink = self.owner.post_event
        self.task = asyncio.create_task(self.owner.run())

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@dataclass
class Boom(Command):
    async def execute(self, vm: VmOwner) -> None:
        raise KeyError("a bug in a command")


async def test_a_failing_command_fails_alone_and_the_owner_goes_on(caplog):
    rig = Rig()
    await settle()
    with pytest.raises(errors.InternalError) as err:
        async with asyncio.timeout(5):  # an owner that died would never answer
            await rig.owner.submit(Boom())
    wire = err.value.to_wire()
    assert wire["code"] == -32603 and set(wire["data"]) == {"error_id"}
    assert wire["data"]["error_id"] in caplog.text and "a bug in a command" in caplog.text
    # the owner is alive and serves the next command
    await rig.owner.submit(PowerCommand(force=True, timeout_s=0, delay_s=0))
    await settle()
    assert rig.owner.status is VmStatus.DOWN
    assert not rig.task.done()
    await rig.stop()


async def test_an_exception_while_handling_an_event_is_contained(caplog, monkeypatch):
    rig = Rig()
    await settle()

    def broken(*_):
        raise RuntimeError("bug in the session bookkeeping")

    monkeypatch.setattr(rig.owner.tickets, "on_client", broken)
    rig.owner.post_event(DomainEvent(VM, EventKind.GRAPHICS_INITIALIZE))
    await settle()
    assert "failed unexpectedly, error_id=" in caplog.text and not rig.task.done()
    rig.owner.post_event(DomainEvent(VM, EventKind.SUSPENDED))
    await settle()
    assert rig.owner.status is VmStatus.PAUSED
    await rig.stop()


async def test_running_subtasks_end_when_the_domain_stops_the_others_with_the_owner():
    rig = Rig()
    await settle()
    ran = {"reader": asyncio.Event(), "janitor": asyncio.Event()}

    async def forever(name: str) -> None:
        ran[name].set()
        await asyncio.Event().wait()

    reader = rig.owner.subtasks.start("reader", lambda: forever("reader"), while_running=True)
    janitor = rig.owner.subtasks.start("janitor", lambda: forever("janitor"), while_running=False)
    await settle()
    assert ran["reader"].is_set() and ran["janitor"].is_set()
    assert rig.owner.subtasks.names == ["janitor", "reader"]
    rig.owner.post_event(DomainEvent(VM, EventKind.STOPPED, StopCause.SHUTDOWN))
    await settle()
    assert reader.cancelled() and not janitor.done()
    await rig.owner.submit(DestroyCommand(0))
    await settle()
    assert janitor.cancelled() and rig.task.done() and rig.owner.subtasks.names == []


async def test_hvagent_stopping_ends_every_subtask_and_leaves_the_guest():
    rig = Rig()
    await settle()
    task = rig.owner.subtasks.start("poller", asyncio.Event().wait, while_running=True)
    await rig.stop()
    assert task.cancelled()
    assert rig.port.guests[VM].running  # the guest is untouched


async def test_a_failing_subtask_is_logged_and_forgotten(caplog):
    rig = Rig()

    async def bad() -> None:
        raise ValueError("reader broke")

    rig.owner.subtasks.start("reader", bad, while_running=True)
    await settle()
    assert "subtask reader failed" in caplog.text and rig.owner.subtasks.names == []
    assert not rig.task.done()
    await rig.stop()


# -- an Operation that is not the power ladder -------------------------------------------


@dataclass(frozen=True)
class Note:
    """An action that records itself on the port's call log."""

    text: str

    @property
    def name(self) -> str:
        return f"note:{self.text}"

    async def run(self, ctx: ActionContext) -> None:
        await ctx.port.set_metadata(ctx.vm_id, "<vm xmlns='https://hvagent.org/xmlns/vm/1.0'/>")


class Cleanup:
    """A two-stage operation with a deadline: it proves the shell needs no change for a new
    kind (it only speaks the Operation protocol)."""

    kind = "cleanup"

    def __init__(self, at: float, stage: str = "waiting") -> None:
        self.stage = stage
        self.deadline: float | None = at
        self.running = True
        self.expected_exit: ExitReason | None = None
        self.seen: list[str] = []

    @classmethod
    def from_metadata(cls, data: dict[str, str], status: VmStatus) -> Cleanup:
        return cls(float(data["at"]), data["stage"])

    def _step(self, **kw) -> OpStep:
        return OpStep(report={"kind": self.kind, "stage": self.stage}, **kw)

    def start(self, now: float) -> OpStep:
        return self._step(persist=True, log="started")

    def resume(self, now: float) -> OpStep:
        self.seen.append("resume")
        return self._step()

    def on_event(self, event: DomainEvent, now: float) -> OpStep:
        self.seen.append(str(event.kind))
        return self._step()

    def on_deadline(self, now: float) -> OpStep:
        self.stage, self.deadline, self.running = "done", None, False
        return self._step(actions=(Note("bye"),), persist=True, outcome="completed")

    def on_action_failed(self, action, now: float, reason: str) -> OpStep:
        return self._step()

    def after_action(self, action, now: float) -> OpStep | None:
        self.seen.append(f"after {action.name}")
        return None

    def cancel(self) -> None:
        self.running = False

    def to_metadata(self) -> dict[str, str]:
        return {"kind": self.kind, "stage": self.stage, "at": repr(self.deadline)}


async def test_a_new_operation_kind_plugs_into_the_shell(monkeypatch):
    rig = Rig()
    await settle()
    op = Cleanup(rig.clock.t + 30)
    await rig.owner.ops.begin(op)
    assert rig.port.meta[VM].operation == op.to_metadata() | {"stage": "waiting"}
    rig.owner.post_event(DomainEvent(VM, EventKind.AGENT_CONNECTED))
    await settle()
    assert op.seen == ["agent-connected"] and rig.owner.power_operation == "cleanup"
    await rig.clock.advance(30)
    assert op.seen[-1] == "after note:bye" and not op.running
    assert rig.port.meta[VM].operation is None  # ended: cleared in the metadata
    assert rig.owner.stats()["powerOperation"] == {"kind": "cleanup", "stage": "done"}
    await rig.stop()

    # resumed after a restart through the table of resumable kinds: one line per kind
    monkeypatch.setitem(resumable.RESUMABLE, "cleanup", Cleanup.from_metadata)
    meta = VmMetadata(operation={"kind": "cleanup", "stage": "waiting", "at": "1e12"})
    again = Rig(meta=meta)
    await settle()
    resumed = again.owner.ops.current
    assert isinstance(resumed, Cleanup) and resumed.seen == ["resume"]
    await again.stop()


@pytest.mark.parametrize(
    ("cause", "reason", "code"),
    [
        (StopCause.FAILED, ExitReason.LOST_QEMU_CONNECTION, 1),  # QEMU killed under the guest
        (StopCause.CRASHED, ExitReason.LOST_QEMU_CONNECTION, 1),
        (StopCause.DESTROYED, ExitReason.LOST_QEMU_CONNECTION, 1),  # virsh destroy
        (StopCause.SHUTDOWN, ExitReason.USER_SHUTDOWN, 0),
    ],
)
async def test_a_stop_outside_hvagent_reports_vdsm_exit_reason(cause, reason, code):
    rig = Rig()
    await settle()
    rig.owner.post_event(DomainEvent(VM, EventKind.STOPPED, cause))
    await settle()
    stats = rig.owner.stats()
    assert (stats["status"], stats["exitReason"], stats["exitCode"]) == ("Down", reason, code)
    assert rig.port.meta[VM].exit.reason is reason  # persisted for a restarted hvagent
    await rig.stop()


@pytest.mark.parametrize(
    ("status", "state", "cause", "kinds"),
    [
        (VmStatus.UP, DomainState.RUNNING, None, []),
        (VmStatus.UP, DomainState.SHUTOFF, StopCause.CRASHED, [EventKind.STOPPED]),
        (VmStatus.UP, DomainState.PAUSED, None, [EventKind.SUSPENDED]),
        (VmStatus.PAUSED, DomainState.RUNNING, None, [EventKind.RESUMED]),
        (VmStatus.DOWN, DomainState.RUNNING, None, [EventKind.STARTED]),
        (VmStatus.DOWN, DomainState.PAUSED, None, [EventKind.STARTED, EventKind.SUSPENDED]),
        (VmStatus.DOWN, DomainState.SHUTOFF, StopCause.SHUTDOWN, []),
    ],
)
def test_missed_events_bring_an_owner_to_the_domain_state(status, state, cause, kinds):
    from agent.runtime.registry import missed_events
    from agent.virt.port import DomainRecord

    events = missed_events(status, DomainRecord(VM, state, cause, ""))
    assert [e.kind for e in events] == kinds
    assert all(e.vm_id == VM for e in events)
    if kinds == [EventKind.STOPPED]:
        assert events[0].stop_cause is cause


async def test_reconcile_after_a_reconnect_updates_adopts_and_stops():
    """The registry after a lost connection: the owner of a domain that stopped meanwhile
    goes Down, a domain defined meanwhile is adopted, an owner whose domain vanished is
    stopped (crash containment and events as usual)."""
    from agent.runtime.registry import VmRegistry
    from agent.virt.port import DomainRecord

    clock = FakeClock()
    port = FakeHypervisor(clock)
    registry = VmRegistry(port, StatusBus(), reconnect=True, clock=clock)
    task = asyncio.create_task(registry.run())
    await registry.wait_started()
    stopped, vanished, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    meta = "<metadata><vm xmlns='https://hvagent.org/xmlns/vm/1.0'/></metadata>"

    def xml(vm_id: uuid.UUID) -> str:
        return (
            f"<domain type='qemu'><name>n{vm_id.hex[:6]}</name><uuid>{vm_id}</uuid>{meta}</domain>"
        )

    for vm_id in (stopped, vanished):
        port.guests[vm_id] = FakeGuest()
        registry.adopt(DomainRecord(vm_id, DomainState.RUNNING, None, xml(vm_id)))
    registry.recovered.set()
    await settle()
    registry.reconcile(
        [
            DomainRecord(stopped, DomainState.SHUTOFF, StopCause.CRASHED, xml(stopped)),
            DomainRecord(new, DomainState.RUNNING, None, xml(new)),
        ]
    )
    await settle()
    assert registry.get(stopped).stats()["exitReason"] == ExitReason.LOST_QEMU_CONNECTION
    assert registry.get(vanished).status is VmStatus.DOWN
    assert registry.get(new).status is VmStatus.UP
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
