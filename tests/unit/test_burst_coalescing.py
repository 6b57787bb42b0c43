"""A burst of pushes to one branch, driven through the orchestrator with fakes and one clock: how many trainings start.

The storm benchmark's burst (20 pushes of consecutive commits, each start command delivered 10 times) in miniature:
with a debounce exactly one training is submitted, without one never more than two, and always the newest commit's.
"""

from __future__ import annotations

from dataclasses import replace

from relaunch.domain.coalescing import Supersession, arbitrate, quiet_until
from relaunch.domain.commands import LookAtRollout, StartRun
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.service.orchestrator import Orchestrator
from relaunch.service.reconcile import ReconcileService
from tests.unit.test_orchestrator import SPEC, World

S = RunState
MAIN = "refs/heads/main"


class Burst(World):
    """The orchestrator's world on a clock the test moves, with the delayed looks it asks for kept in a list."""

    def __init__(self, **coalesce: float) -> None:
        super().__init__()
        self.now = 1_000_000.0
        self.looks: list[tuple[float, str]] = []
        spec = SPEC.model_copy(update={"coalesce": SPEC.coalesce.model_copy(update=coalesce)})
        deps = replace(self.orch.d, specs=lambda: {"digits": spec}, clock=lambda: self.now, look_at=self._look)
        self.orch = Orchestrator(deps)
        self.reconciler = ReconcileService.over(self.orch, clock=lambda: self.now)

    def _look(self, run_id: str, at: float) -> bool:
        self.looks.append((at, run_id))
        return True

    def arrive(self, n: int) -> PipelineRun:
        """Push n (commit n) is ingested now; its run waits in `received` for its start command."""
        trigger = Trigger(kind="push", repo="relaunch-demo/digits", ref=MAIN, sha=f"{n:040x}", delivery_key=f"d{n}")
        run = PipelineRun(
            id=f"digits-{n}", pipeline="digits", trigger=trigger, created_at=self.now, updated_at=self.now
        )
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        return run

    def push(self, n: int, copies: int = 1) -> PipelineRun:
        """Push n arrives and its start command is delivered `copies` times (a sender's and the bus's retries)."""
        run = self.arrive(n)
        for _ in range(copies):
            self.orch.handle(StartRun(run_id=run.id))
        return self.store.runs[run.id]

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass, delivering each look when it falls due (the local bus's delayed messages)."""
        end = self.now + seconds
        while due := sorted(look for look in self.looks if look[0] <= end):
            self.looks.remove(due[0])
            self.now = max(self.now, due[0][0])
            self.orch.handle(LookAtRollout(run_id=due[0][1], not_before=due[0][0]))
        self.now = end

    def trainings(self) -> list[str]:
        """Run ids of the training jobs submitted, in order."""
        return [job.run_id for job in self.backend.submitted.values() if job.step == "train"]


def storm(w: Burst, pushes: int = 20, gap_s: float = 0.1) -> list[PipelineRun]:
    runs = []
    for n in range(1, pushes + 1):
        runs.append(w.push(n, copies=10))
        w.now += gap_s
    return runs


def test_a_burst_without_a_debounce_submits_at_most_two_trainings_and_the_newest_commit_trains() -> None:
    w = Burst()
    runs = storm(w)
    w.wait(3600)
    newest = w.store.runs[runs[-1].id]
    assert len(w.trainings()) <= 2, w.trainings()
    assert w.trainings()[-1] == newest.id and newest.state is S.TRAINING
    assert [r.id for r in w.store.runs.values() if not r.state.terminal] == [newest.id]
    first_job = w.store.runs[runs[0].id].jobs["train"]
    assert w.backend.states[first_job].state == "cancelled"  # the quiet lane's first push did start at once


def test_a_burst_with_a_debounce_submits_exactly_one_training_the_newest_commits() -> None:
    w = Burst(debounce_s=30)
    runs = storm(w)
    assert w.trainings() == [] and w.builder.builds == []
    w.wait(3600)
    assert w.trainings() == [runs[-1].id] and w.store.runs[runs[-1].id].state is S.TRAINING
    assert {w.store.runs[r.id].state for r in runs[:-1]} == {S.SUPERSEDED}


def test_a_single_push_on_a_quiet_lane_builds_at_once_and_asks_for_no_look() -> None:
    w = Burst()
    assert w.push(1).state is S.TRAINING and w.looks == []


def test_a_held_push_is_released_by_a_look_at_the_end_of_its_window_not_by_the_next_tick() -> None:
    w = Burst(debounce_s=5)
    held = w.push(1)
    assert held.state is S.RECEIVED and w.looks == [(w.now + 5, held.id)]
    w.wait(5)
    assert w.store.runs[held.id].state is S.TRAINING


def test_a_debounce_waits_for_quiet_even_when_the_newer_push_is_not_handled_yet() -> None:
    w = Burst(debounce_s=5)
    first = w.push(1)
    w.now += 3
    newer = w.arrive(2)  # ingested, its start command not delivered yet
    w.wait(2)  # the first run's own window is over, but the lane was not quiet for 5 s
    assert w.store.runs[first.id].state is S.RECEIVED and w.builder.builds == []
    assert w.store.runs[first.id].hold_until == newer.created_at + 5
    w.orch.handle(StartRun(run_id=newer.id))
    w.wait(3600)
    assert w.trainings() == [newer.id] and w.store.runs[first.id].state is S.SUPERSEDED


def test_a_burst_held_push_whose_look_was_lost_is_released_by_the_reconcile_tick() -> None:
    w = Burst()
    storm(w, pushes=3)
    w.looks.clear()  # the process that asked for the looks died (kill -9) before they were sent
    w.now += 3600
    w.reconciler.run()
    assert w.trainings() == ["digits-1", "digits-3"] and w.store.runs["digits-3"].state is S.TRAINING


# -- the decision itself, pure: `quiet_until` and the supersessions that mark a burst -------------------------------


def pushed(run_id: str, at: float, *, state: RunState = S.RECEIVED, **updates: object) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", ref=MAIN, sha=run_id.ljust(40, "0"))
    run = PipelineRun(id=run_id, pipeline="digits", trigger=trigger, state=state, created_at=at, updated_at=at)
    return run.model_copy(update=updates)


def quiet(
    run: PipelineRun,
    active: list[PipelineRun],
    superseded: list[Supersession],
    *,
    now: float,
    debounce_s: float = 0.0,
    burst_quiet_s: float = 10.0,
) -> float | None:
    return quiet_until(run, active, superseded, debounce_s=debounce_s, burst_quiet_s=burst_quiet_s, now=now)


def test_without_a_debounce_only_a_push_that_superseded_work_under_way_waits_for_quiet() -> None:
    new = pushed("b", 100)
    training, received, held = pushed("a", 90, state=S.TRAINING), pushed("a", 90), pushed("a", 90, hold_until=101.0)
    assert arbitrate(new, [training, new], None).plan.supersede[0].busy
    assert not arbitrate(new, [received, new], None).plan.supersede[0].busy
    assert arbitrate(new, [held, new], held).plan.supersede[0].busy  # superseding the live head marks it too
    busy = Supersession("a", "superseded by b", busy=True)
    assert quiet(new, [new], [], now=100) is None  # a quiet lane: the push builds at once
    assert quiet(new, [new], [Supersession("a", "superseded by b")], now=100) is None
    assert quiet(new, [new], [busy], now=100) == 110
    assert quiet(new, [new], [busy], now=110) is None
    assert quiet(new, [new], [busy], burst_quiet_s=0, now=100) is None  # opted out: every push builds at once


def test_a_newer_push_restarts_the_window_and_a_held_run_keeps_its_time_otherwise() -> None:
    held = pushed("a", 100, hold_until=130.0)
    newer = pushed("b", 125)
    assert quiet(held, [held], [], debounce_s=30, now=129) == 130
    assert quiet(held, [held, newer], [], debounce_s=30, now=131) == 155  # a newer push, handled or not
    assert quiet(held, [held], [], now=131) is None  # the window it was held for is over: it builds
    assert quiet(held, [held, newer], [], now=131) == 135  # a burst's hold keeps the burst's window
    other_branch = newer.model_copy(update={"trigger": newer.trigger.model_copy(update={"ref": "refs/heads/dev"})})
    manual = newer.model_copy(update={"trigger": newer.trigger.model_copy(update={"kind": "manual"})})
    assert quiet(held, [held, other_branch, manual], [], debounce_s=30, now=131) is None
    assert quiet(newer, [held, newer], [], debounce_s=30, now=131) == 155  # an older push changes nothing
