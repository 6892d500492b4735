"""The pure power ladder, driven by tables of (t in ms, input) -> expected step."""

from __future__ import annotations

import pytest

from agent.power import Do, Event, Kind, Outcome, Plan, PowerOperation, Stage
from agent.status import VmStatus

T0 = 1_800_000_000.0  # an epoch instant; times below are milliseconds after it


def plan(kind=Kind.SHUTDOWN, *, delay=30, timeout=120, force=False, agent=True, acpi=True):
    return Plan(kind, delay, timeout, force, "bye", 10.0, agent, acpi)


def at(ms: int) -> float:
    return T0 + ms / 1000


def run(op: PowerOperation, table):
    for ms, inp, want in table:
        now = at(ms)
        match inp:
            case "start":
                step = op.start(now)
            case "deadline":
                step = op.on_deadline(now)
            case ("failed", action):
                step = op.on_action_failed(action, now, "boom")
            case Event():
                step = op.on_event(inp, now)
        for key, value in want.items():
            got = getattr(step, key)
            if key == "deadline" and value is not None:
                value = at(value)
            assert got == value, (ms, inp, key, got, value)
    return op


def test_shutdown_full_ladder_with_force_destroys_at_the_acpi_deadline():
    op = PowerOperation(plan(force=True, delay=1, timeout=5))
    run(
        op,
        [
            (
                0,
                "start",
                dict(
                    actions=(Do.AGENT,),
                    deadline=6000,
                    persist=True,
                    status=VmStatus.POWERING_DOWN,
                    escalated=False,
                ),
            ),
            (
                6000,
                "deadline",
                dict(actions=(Do.ACPI,), deadline=11000, persist=True, escalated=True),
            ),
            (11000, "deadline", dict(actions=(Do.DESTROY,), persist=True, escalated=True)),
            (
                11050,
                Event.STOPPED,
                dict(outcome=Outcome.FORCED, status=VmStatus.DOWN, persist=True, deadline=None),
            ),
        ],
    )
    assert op.stage is Stage.ENDED and op.deadline is None


def test_acpi_is_resent_every_retry_until_the_stage_times_out():
    op = PowerOperation(plan(agent=False, timeout=25))
    run(
        op,
        [
            (0, "start", dict(actions=(Do.ACPI,), deadline=10000)),
            (10000, "deadline", dict(actions=(Do.ACPI,), deadline=20000, persist=False)),
            (20000, "deadline", dict(actions=(Do.ACPI,), deadline=25000)),
            (25000, "deadline", dict(actions=(), outcome=Outcome.GAVE_UP, status=VmStatus.UP)),
        ],
    )


def test_early_wakeup_does_nothing():
    op = PowerOperation(plan(agent=False, timeout=25))
    run(op, [(0, "start", {}), (9999, "deadline", dict(actions=(), deadline=10000))])


def test_without_force_every_stage_times_out_and_it_gives_up():
    op = PowerOperation(plan(delay=0, timeout=2))
    run(
        op,
        [
            (0, "start", dict(actions=(Do.AGENT,), deadline=2000)),
            (2000, "deadline", dict(actions=(Do.ACPI,), deadline=4000)),
            (4000, "deadline", dict(outcome=Outcome.GAVE_UP, status=VmStatus.UP, persist=True)),
            (5000, Event.STOPPED, dict(outcome=None, actions=())),
        ],
    )
    assert op.outcome is Outcome.GAVE_UP


def test_agent_failure_moves_to_acpi_at_once():
    op = PowerOperation(plan(timeout=5))
    run(
        op,
        [
            (0, "start", dict(actions=(Do.AGENT,), deadline=35000)),
            (300, ("failed", Do.AGENT), dict(actions=(Do.ACPI,), deadline=5300)),
            (2000, Event.STOPPED, dict(outcome=Outcome.COMPLETED, status=VmStatus.DOWN)),
        ],
    )


def test_acpi_failure_keeps_retrying_then_force():
    op = PowerOperation(plan(agent=False, timeout=15, force=True))
    run(
        op,
        [
            (0, "start", dict(actions=(Do.ACPI,), deadline=10000)),
            (10, ("failed", Do.ACPI), dict(actions=(), deadline=10000)),
            (10000, "deadline", dict(actions=(Do.ACPI,), deadline=15000)),
            (10010, ("failed", Do.ACPI), dict(actions=(Do.DESTROY,))),
        ],
    )


def test_no_agent_no_acpi_force_goes_straight_to_destroy():
    op = PowerOperation(plan(agent=False, acpi=False, force=True))
    run(op, [(0, "start", dict(actions=(Do.DESTROY,), status=VmStatus.POWERING_DOWN))])


def test_no_agent_no_acpi_no_force_gives_up_at_once():
    op = PowerOperation(plan(agent=False, acpi=False))
    run(op, [(0, "start", dict(actions=(), outcome=Outcome.GAVE_UP))])


def test_failed_destroy_ends_failed():
    op = PowerOperation(plan(agent=False, acpi=False, force=True))
    run(op, [(0, "start", {}), (5, ("failed", Do.DESTROY), dict(outcome=Outcome.FAILED))])


def test_force_without_effect_times_out_failed():
    op = PowerOperation(plan(agent=False, acpi=False, force=True))
    run(op, [(0, "start", {}), (30000, "deadline", dict(outcome=Outcome.FAILED))])


def test_reboot_completes_on_reboot_event_not_on_stop():
    op = PowerOperation(plan(Kind.REBOOT))
    run(
        op,
        [
            (0, "start", dict(actions=(Do.AGENT,), status=VmStatus.REBOOT_IN_PROGRESS)),
            (4000, Event.REBOOTED, dict(outcome=Outcome.COMPLETED, status=VmStatus.UP)),
        ],
    )
    op = PowerOperation(plan(Kind.REBOOT))
    run(
        op,
        [
            (0, "start", {}),
            (4000, Event.STOPPED, dict(outcome=Outcome.STOPPED, status=VmStatus.DOWN)),
        ],
    )


def test_forced_reboot_resets():
    op = PowerOperation(plan(Kind.REBOOT, agent=False, timeout=5, force=True))
    run(
        op,
        [
            (0, "start", dict(actions=(Do.ACPI,), deadline=5000)),
            (5000, "deadline", dict(actions=(Do.RESET,))),
            (5100, Event.REBOOTED, dict(outcome=Outcome.FORCED, status=VmStatus.UP)),
        ],
    )


def test_update_adds_force_to_the_running_ladder():
    op = PowerOperation(plan(agent=False, timeout=5))
    run(op, [(0, "start", {})])
    step = op.update(plan(force=True, timeout=999), at(1000))
    assert step.persist and step.deadline == at(5000)  # a later deadline never lengthens
    run(op, [(5000, "deadline", dict(actions=(Do.DESTROY,)))])


def test_second_shutdown_shortens_the_running_stage():
    # "force within 3 s" after a pending 60 s graceful shutdown escalates after 3 s.
    op = PowerOperation(plan(agent=False, timeout=60))
    run(op, [(0, "start", dict(deadline=10000))])  # ACPI re-sent at 10 s
    step = op.update(plan(force=True, timeout=3), at(2000))
    assert step.persist and step.deadline == at(5000)
    assert op.plan.force and op.plan.timeout_s == 3
    run(op, [(5000, "deadline", dict(actions=(Do.DESTROY,)))])


def test_second_shutdown_shortens_the_agent_stage_and_later_ones():
    op = PowerOperation(plan(delay=30, timeout=60))
    run(op, [(0, "start", dict(actions=(Do.AGENT,), deadline=90000))])
    assert op.update(plan(delay=1, timeout=4), at(1000)).deadline == at(6000)
    # the ACPI stage that follows waits the shorter timeout too
    run(op, [(6000, "deadline", dict(actions=(Do.ACPI,), deadline=10000))])


def test_second_shutdown_never_removes_force_nor_lengthens():
    op = PowerOperation(plan(agent=False, timeout=5, force=True))
    run(op, [(0, "start", {})])
    op.update(plan(force=False, timeout=500, delay=500), at(1000))
    assert op.plan.force and op.plan.timeout_s == 5 and op.plan.delay_s == 30
    run(op, [(5000, "deadline", dict(actions=(Do.DESTROY,)))])


@pytest.mark.parametrize("stop_ms", [0, 3000, 10000, 12000])
def test_persisted_ladder_resumes_with_the_time_that_remains(stop_ms):
    op = PowerOperation(plan(agent=False, timeout=20, force=True))
    op.start(at(0))
    if stop_ms >= 10000:
        op.on_deadline(at(10000))
    again = PowerOperation.from_metadata(op.to_metadata())
    assert again.to_metadata() == op.to_metadata()
    assert again.deadline == op.deadline
    step = again.resume(at(stop_ms))
    assert step.status is VmStatus.POWERING_DOWN
    # whatever the restart time, the destroy happens at the original deadline
    t = stop_ms
    while Do.DESTROY not in step.actions:
        t = max(t, round((again.deadline - T0) * 1000))
        step = again.on_deadline(at(t))
    assert t == 20000


def test_resume_after_the_deadline_acts_at_once():
    op = PowerOperation(plan(agent=False, timeout=20, force=True))
    op.start(at(0))
    again = PowerOperation.from_metadata(op.to_metadata())
    assert again.resume(at(25000)).actions == (Do.DESTROY,)


def test_resume_in_the_force_stage_acts_again():
    op = PowerOperation(plan(agent=False, acpi=False, force=True))
    op.start(at(0))
    again = PowerOperation.from_metadata(op.to_metadata())
    assert again.resume(at(100)).actions == (Do.DESTROY,)
