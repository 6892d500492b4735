"""PowerOperation: the pure, sans-I/O shutdown/reboot ladder (shared/design/STYLE.md B.6).

One operation per VM, driven by its owner (`runtime/owner.py`). Inputs are plain calls with
the current wall-clock time (`start`, `on_event`, `on_action_failed`, `on_deadline`,
`update`); each returns a `Step`: the actions to execute (in order), the next absolute
deadline, the status to publish, whether to persist the operation before acting, and, when
the operation ended, its outcome. No I/O, no clock reads: tests drive it in milliseconds.

The ladder (reference/vdsm.md §6, peers.md):
1. AGENT: only when the QEMU guest agent is known connected; waits `delay + timeout`.
2. ACPI: only when the VM has ACPI; power button (or ACPI reboot), re-sent every
   `acpi_retry_s`; waits `timeout`.
3. FORCE: only when `force`: destroy (shutdown) or reset (reboot).
A stage whose command fails moves on at once. Without force, when the last stage times out the
operation ends GAVE_UP and the VM stays Up. A shutdown completes when the domain stops; a
reboot completes on libvirt's REBOOT event or a start after a stop, never on a mere stop.

Deadlines are absolute epoch seconds so `to_metadata()` can persist them and a restarted
hvagent continues the ladder with the time that remains (`from_metadata` + `resume`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from agent.clock import iso, parse_iso
from agent.status import VmStatus


class Kind(StrEnum):
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"


class Stage(StrEnum):
    AGENT = "agent"
    ACPI = "acpi"
    FORCE = "force"  # the force action was sent; waiting for the domain to react
    ENDED = "ended"


class Outcome(StrEnum):
    COMPLETED = "completed"  # graceful: the guest did it
    FORCED = "forced"  # destroyed / reset
    GAVE_UP = "gave-up"  # every stage timed out without force; the VM stays Up
    STOPPED = "stopped"  # a reboot during which the domain stopped (and did not restart)
    FAILED = "failed"  # the force action itself failed


class Do(StrEnum):
    AGENT = "agent"  # shutdown/reboot through the guest agent
    ACPI = "acpi"  # ACPI power button / ACPI reboot
    DESTROY = "destroy"
    RESET = "reset"


class Event(StrEnum):
    STOPPED = "stopped"
    STARTED = "started"
    REBOOTED = "rebooted"


# How long after a force action the machine waits for its effect before declaring FAILED.
FORCE_SETTLE_S = 30.0


@dataclass(frozen=True)
class Plan:
    kind: Kind
    delay_s: float
    timeout_s: float
    force: bool
    message: str
    acpi_retry_s: float
    agent: bool  # the guest agent is known connected at start
    acpi: bool  # the VM has ACPI


@dataclass(frozen=True)
class Step:
    actions: tuple[Do, ...] = ()
    deadline: float | None = None
    status: VmStatus | None = None
    reason: str = ""
    persist: bool = False  # write to_metadata() (or clear it when ended) before acting
    outcome: Outcome | None = None
    escalated: bool = False  # a stage timed out and the ladder moved on (log at WARNING)


class PowerOperation:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stage = Stage.ENDED
        self.stage_started = 0.0
        self.stage_deadline = 0.0
        self.next_retry: float | None = None
        self.outcome: Outcome | None = None
        self._stopped = False  # reboot: the domain stopped, waiting for it to start again

    # -- inputs ----------------------------------------------------------------------------

    def start(self, now: float) -> Step:
        first = self._stages_after(None)
        if first is None:
            return self._end(Outcome.GAVE_UP, "no way to ask the guest (no agent, no ACPI)")
        return self._enter(first, now, "started")

    def on_event(self, event: Event, now: float) -> Step:
        if self.outcome is not None:
            return Step()
        if self.plan.kind is Kind.SHUTDOWN:
            if event is Event.STOPPED:
                forced = self.stage is Stage.FORCE
                return self._end(
                    Outcome.FORCED if forced else Outcome.COMPLETED,
                    "destroyed" if forced else f"the guest shut down ({self.stage} stage)",
                    status=VmStatus.DOWN,
                )
            return self._wait_step()
        match event:
            case Event.REBOOTED:
                forced = self.stage is Stage.FORCE
                return self._end(
                    Outcome.FORCED if forced else Outcome.COMPLETED,
                    "reset" if forced else f"the guest rebooted ({self.stage} stage)",
                    status=VmStatus.UP,
                )
            case Event.STARTED if self._stopped:
                return self._end(Outcome.COMPLETED, "the domain restarted", status=VmStatus.UP)
            case Event.STOPPED:
                self._stopped = True
                return self._end(
                    Outcome.STOPPED, "the domain stopped during the reboot", status=VmStatus.DOWN
                )
        return self._wait_step()

    def on_action_failed(self, action: Do, now: float, reason: str) -> Step:
        if self.outcome is not None:
            return Step()
        if action in (Do.DESTROY, Do.RESET):
            return self._end(Outcome.FAILED, f"{action} failed: {reason}", status=VmStatus.UP)
        if action is Do.ACPI and self.stage is Stage.ACPI and self.next_retry is not None:
            # A booting guest may refuse; keep re-sending until the stage times out.
            return self._wait_step(reason=f"ACPI request failed: {reason}")
        return self._advance(now, f"{action} request failed: {reason}")

    def on_deadline(self, now: float) -> Step:
        if self.outcome is not None:
            return Step()
        if now >= self.stage_deadline:
            if self.stage is Stage.FORCE:
                return self._end(
                    Outcome.FAILED,
                    f"the domain did not react to {self._force_action()} in time",
                    status=VmStatus.UP,
                )
            return self._advance(now, f"{self.stage} stage timed out")
        if self.next_retry is not None and now >= self.next_retry:
            self.next_retry = min(now + self.plan.acpi_retry_s, self.stage_deadline)
            if self.next_retry >= self.stage_deadline:
                self.next_retry = None
            return replace(self._wait_step(reason="ACPI request re-sent"), actions=(Do.ACPI,))
        return self._wait_step()

    def resume(self, now: float) -> Step:
        """After a restart (from_metadata): publish the status, act on what is due."""
        if self.stage is Stage.FORCE and now < self.stage_deadline:
            # hvagent may have died between persisting the force stage and acting: act again
            # (destroy and reset of a domain already handled are harmless).
            step = replace(self._wait_step(), actions=(self._force_action(),))
        elif now >= (self.deadline or now):
            step = self.on_deadline(now)
        else:
            step = self._wait_step()
        return replace(step, status=step.status or self._running_status())

    def update(self, plan: Plan, now: float) -> Step:
        """A second VM.shutdown while this one runs: it may shorten, never lengthen.

        `force` is only ever added. `delay`/`timeout` become the smaller of old and new, and
        the running stage's deadline the earlier of the old one and the deadline the new
        request gives the stage from `now` (so "force within 3 s" after a pending 60 s
        graceful shutdown escalates after 3 s, and a later, slower request changes nothing).
        """
        old = self.plan
        self.plan = replace(
            old,
            force=old.force or plan.force,
            delay_s=min(old.delay_s, plan.delay_s),
            timeout_s=min(old.timeout_s, plan.timeout_s),
            message=plan.message or old.message,
        )
        if self.stage in (Stage.AGENT, Stage.ACPI):
            wait = plan.timeout_s + (plan.delay_s if self.stage is Stage.AGENT else 0.0)
            self.stage_deadline = min(self.stage_deadline, now + wait)
            if self.next_retry is not None and self.next_retry >= self.stage_deadline:
                self.next_retry = None
        return replace(self._wait_step(reason="plan updated"), persist=True)

    # -- state -----------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        if self.outcome is not None:
            return None
        if self.next_retry is not None:
            return min(self.next_retry, self.stage_deadline)
        return self.stage_deadline

    @property
    def running(self) -> bool:
        return self.outcome is None

    def to_metadata(self) -> dict[str, str]:
        p = self.plan
        out = {
            "kind": str(p.kind),
            "stage": str(self.stage),
            "delay": repr(float(p.delay_s)),
            "timeout": repr(float(p.timeout_s)),
            "force": "true" if p.force else "false",
            "acpiRetry": repr(float(p.acpi_retry_s)),
            "agent": "true" if p.agent else "false",
            "acpi": "true" if p.acpi else "false",
            "message": p.message,
            "stageStarted": iso(self.stage_started),
            "stageDeadline": iso(self.stage_deadline),
        }
        if self.next_retry is not None:
            out["nextRetry"] = iso(self.next_retry)
        return out

    @classmethod
    def from_metadata(cls, data: dict[str, str]) -> PowerOperation:
        """Inverse of to_metadata; ValueError/KeyError on a malformed record."""
        plan = Plan(
            kind=Kind(data["kind"]),
            delay_s=float(data["delay"]),
            timeout_s=float(data["timeout"]),
            force=data["force"] == "true",
            message=data.get("message", ""),
            acpi_retry_s=float(data["acpiRetry"]),
            agent=data["agent"] == "true",
            acpi=data["acpi"] == "true",
        )
        op = cls(plan)
        op.stage = Stage(data["stage"])
        op.stage_started = parse_iso(data["stageStarted"])
        op.stage_deadline = parse_iso(data["stageDeadline"])
        op.next_retry = parse_iso(data["nextRetry"]) if "nextRetry" in data else None
        return op

    # -- internals -------------------------------------------------------------------------

    def _running_status(self) -> VmStatus:
        if self.plan.kind is Kind.SHUTDOWN:
            return VmStatus.POWERING_DOWN
        return VmStatus.REBOOT_IN_PROGRESS

    def _force_action(self) -> Do:
        return Do.DESTROY if self.plan.kind is Kind.SHUTDOWN else Do.RESET

    def _stages_after(self, stage: Stage | None) -> Stage | None:
        order = [Stage.AGENT, Stage.ACPI, Stage.FORCE]
        enabled = {
            Stage.AGENT: self.plan.agent,
            Stage.ACPI: self.plan.acpi,
            Stage.FORCE: self.plan.force,
        }
        start = 0 if stage is None else order.index(stage) + 1
        for s in order[start:]:
            if enabled[s]:
                return s
        return None

    def _enter(self, stage: Stage, now: float, why: str) -> Step:
        self.stage = stage
        self.stage_started = now
        self.next_retry = None
        p = self.plan
        match stage:
            case Stage.AGENT:
                self.stage_deadline = now + p.delay_s + p.timeout_s
                action = Do.AGENT
            case Stage.ACPI:
                self.stage_deadline = now + p.timeout_s
                if p.acpi_retry_s > 0 and now + p.acpi_retry_s < self.stage_deadline:
                    self.next_retry = now + p.acpi_retry_s
                action = Do.ACPI
            case _:
                self.stage_deadline = now + FORCE_SETTLE_S
                action = self._force_action()
        return Step(
            actions=(action,),
            deadline=self.deadline,
            status=self._running_status(),
            reason=f"{why}: {stage} stage until {iso(self.stage_deadline)}",
            persist=True,
            escalated=why != "started",
        )

    def _advance(self, now: float, why: str) -> Step:
        nxt = self._stages_after(self.stage)
        if nxt is None:
            return self._end(
                Outcome.GAVE_UP, f"{why}; no stage left (force=false)", status=VmStatus.UP
            )
        return self._enter(nxt, now, why)

    def _end(self, outcome: Outcome, why: str, status: VmStatus | None = None) -> Step:
        self.outcome = outcome
        self.stage = Stage.ENDED
        self.next_retry = None
        return Step(status=status, reason=why, persist=True, outcome=outcome)

    def _wait_step(self, reason: str = "") -> Step:
        return Step(deadline=self.deadline, reason=reason)
