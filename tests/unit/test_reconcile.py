"""The reconcile pass: bakes that ended, lost job events, stuck runs; and reconciling twice changes nothing."""

from __future__ import annotations

import copy
import time
from typing import Any

from relaunch.adapters.local import stack
from relaunch.domain.health import HealthLimits
from relaunch.domain.model import EndpointHealth, RunState
from relaunch.domain.rollout import BlueGreenRollout, CanaryRollout
from relaunch.service import reconcile
from relaunch.service.reconcile import ReconcileService, Timeouts, stage_timeout
from tests.unit.test_orchestrator import GOOD, SPEC, World

CANARY = SPEC.model_copy(
    update={"rollout": CanaryRollout(percent=10, bake_s=120, health=HealthLimits(min_requests=10))}
)


class Clocked(World):
    """The orchestrator's world with one clock for the reconciler and the rollout step."""

    def __init__(self, spec: Any = CANARY) -> None:
        super().__init__()
        self.now = time.time()
        self.orch.d.specs = lambda: {"digits": spec}
        self.orch.rollout.clock = lambda: self.now
        self.orch._coalescer.clock = lambda: self.now  # a held run's window ends by the tick's clock
        self.reconciler = ReconcileService.over(self.orch, clock=lambda: self.now, timeouts=Timeouts(poll_after_s=60))

    def state(self) -> tuple[Any, ...]:
        """Everything a reconcile pass could change."""
        s = self.store
        return copy.deepcopy((s.runs, s.timelines, s.effects, self.endpoint.calls, self.notifier.sent))


def baking(w: Clocked) -> str:
    w.promote(1)  # the first model has nothing to compare a canary with: promoted at once
    run = w.promote(2, champion=GOOD)
    assert run.state is RunState.ROLLING_OUT and w.endpoint.deployed["digits"] == {"v1": 90, "v2": 10}
    return run.id


def test_a_canary_whose_bake_ended_healthy_is_promoted_by_the_tick() -> None:
    w = Clocked()
    run_id = baking(w)
    w.endpoint.healths["v2"] = EndpointHealth(version="v2", requests=40, errors=0, p95_ms=10)
    w.now += 60
    assert w.reconciler.run().advanced == []  # still baking
    w.now += 61
    report = w.reconciler.run()
    assert report.advanced == [f"{run_id}: rolling_out -> promoted"] and report.errors == []
    assert w.store.runs[run_id].state is RunState.PROMOTED and w.registry.champions["digits"] == "v2"
    assert w.endpoint.deployed["digits"] == {"v2": 100}


def test_a_failing_canary_is_rolled_back_by_the_tick_before_its_bake_ends() -> None:
    w = Clocked()
    run_id = baking(w)
    w.endpoint.healths["v2"] = EndpointHealth(version="v2", requests=10, errors=5, error_rate=0.5)
    w.now += 1
    w.reconciler.run()
    assert w.store.runs[run_id].state is RunState.ROLLED_BACK and w.endpoint.deployed["digits"] == {"v1": 100}


def test_reconciling_twice_changes_nothing() -> None:
    w = Clocked()
    run_id = baking(w)
    w.endpoint.healths["v2"] = EndpointHealth(version="v2", requests=40, errors=0, p95_ms=10)
    w.now += 121
    w.reconciler.run()
    assert w.store.runs[run_id].state is RunState.PROMOTED
    before = w.state()
    second = w.reconciler.run()
    assert w.state() == before and second.advanced == second.timed_out == []


def test_a_lost_job_event_is_found_by_polling_once_the_run_went_quiet() -> None:
    w = Clocked()
    run = w.new_run(1)
    w.start(run)
    w.backend.finish(w.store.runs[run.id].jobs["train"])  # the job_finished command never arrives
    assert w.reconciler.run().advanced == [] and w.store.runs[run.id].state is RunState.TRAINING  # not quiet yet
    w.now += 61
    assert w.reconciler.run().advanced == [f"{run.id}: training -> evaluating"]
    assert w.store.runs[run.id].state is RunState.EVALUATING


def test_a_received_run_whose_start_command_was_lost_is_started_once_it_went_quiet() -> None:
    w = Clocked()
    run = w.new_run(1)
    w.store.runs[run.id] = run  # written by the webhook, which died before publishing StartRun
    w.now = run.created_at + 30
    w.reconciler.run()
    assert w.store.runs[run.id].state is RunState.RECEIVED  # not quiet for long enough yet
    w.now = run.created_at + 61
    w.reconciler.run()
    assert w.store.runs[run.id].state is RunState.TRAINING


def test_a_tick_takes_up_no_run_once_its_budget_is_spent_and_the_next_tick_starts_with_those() -> None:
    w = Clocked()
    runs = [w.new_run(n) for n in range(1, 5)]
    for run in runs:
        w.store.runs[run.id] = run  # four runs whose start command was lost
    w.now = max(r.created_at for r in runs) + 61
    taken: list[str] = []

    def slow_advance(run: Any) -> Any:  # each run costs the tick 50 s (a slow dependency)
        taken.append(run.id)
        w.now += 50
        return run

    w.orch.advance = slow_advance  # type: ignore[method-assign]
    report = w.reconciler.run()  # the default budget: 120 s

    assert taken == [r.id for r in runs[:3]] and report.deferred == [runs[3].id] and report.examined == 3
    taken.clear()
    assert w.reconciler.run().deferred == [runs[2].id] and taken == [runs[3].id, runs[0].id, runs[1].id]


def test_a_debounced_run_is_released_as_soon_as_its_window_ends() -> None:
    w = Clocked()
    run = w.new_run(1).model_copy(update={"hold_until": w.now + 5})
    w.store.runs[run.id] = run
    w.now += 4
    w.reconciler.run()
    assert w.store.runs[run.id].state is RunState.RECEIVED
    w.now += 2  # past hold_until, well before the 60 s a quiet run waits
    w.reconciler.run()
    assert w.store.runs[run.id].state is RunState.TRAINING


def test_a_run_stuck_past_its_stage_timeout_fails_with_the_reason_and_its_job_is_cancelled() -> None:
    w = Clocked()
    run = w.new_run(1)
    w.start(run)
    job = w.store.runs[run.id].jobs["train"]
    w.now += SPEC.train.timeout_s * (1 + SPEC.train.max_retries) + 601
    report = w.reconciler.run()
    failed = w.store.runs[run.id]
    assert report.timed_out == [run.id] and failed.state is RunState.FAILED
    assert "stuck in training" in failed.reason and w.backend.status(job).state == "cancelled"
    assert (w.notifier.sent[-1].stage, w.notifier.sent[-1].state) == ("train", "failure")


def test_a_stuck_rollout_is_rolled_back_not_left_half_way() -> None:
    w = Clocked()
    run_id = baking(w)
    w.now += CANARY.rollout.give_up_s + Timeouts().deploying_s + 601  # type: ignore[union-attr]
    w.reconciler.run()
    ended = w.store.runs[run_id]
    assert ended.state is RunState.ROLLED_BACK and w.endpoint.deployed["digits"] == {"v1": 100}


def test_a_deployment_that_takes_vertexs_usual_quarter_hour_is_waited_for_not_rolled_back() -> None:
    w = Clocked(spec=SPEC)  # direct: no bake to wait for, only the deployment
    w.promote(1)
    w.endpoint.slow = 1000  # the endpoint's deployment keeps running
    run = w.promote(2, champion=GOOD)
    assert run.state is RunState.ROLLING_OUT
    w.now += 15 * 60
    report = w.reconciler.run()
    assert report.timed_out == [] and w.store.runs[run.id].state is RunState.ROLLING_OUT
    assert len(w.endpoint.starts) == 1  # polled on every tick, started once


def test_per_stage_timeouts_follow_the_spec() -> None:
    t = Timeouts(building_s=3600, margin_s=600)
    assert stage_timeout(RunState.BUILDING, SPEC, t) == 3600
    assert stage_timeout(RunState.TRAINING, SPEC, t) == SPEC.train.timeout_s * (1 + SPEC.train.max_retries) + 600
    rolling = CANARY.rollout.give_up_s + t.deploying_s + 600  # type: ignore[union-attr]
    assert stage_timeout(RunState.ROLLING_OUT, CANARY, t) == rolling
    blue_green = SPEC.model_copy(update={"rollout": BlueGreenRollout(smoke=[[0]], rollback_window_s=900)})
    held = 4 * 900  # on_no_traffic: hold may keep the window open up to max_window_s (default 4 x the window)
    assert stage_timeout(RunState.ROLLING_OUT, blue_green, t) == held + t.deploying_s + 600
    assert stage_timeout(RunState.RECEIVED, SPEC, t) is None and stage_timeout(RunState.PROMOTED, SPEC, t) is None


def test_the_embedded_timer_publishes_on_the_reconcile_topic() -> None:
    assert stack.RECONCILE_TOPIC == reconcile.RECONCILE_TOPIC
    # Looked up by the plain name, as the embedded stack's routes spell it (a StrEnum key equals its string).
    subscribed = stack.SUBSCRIPTIONS["reconcile"]  # type: ignore[index]
    assert subscribed == reconcile.RECONCILE_TOPIC and "reconcile" in stack.FUNCTIONS


def test_the_embedded_timer_ticks_until_stopped() -> None:
    from tests.fakes import FakeBus

    bus = FakeBus()
    timer = stack.ReconcileTimer(bus, interval_s=0.01)
    timer.start()
    deadline = time.monotonic() + 10
    while not bus.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    timer.stop()
    count = len(bus.messages)
    assert count >= 1 and bus.messages[0][0] == reconcile.RECONCILE_TOPIC
    time.sleep(0.05)
    assert len(bus.messages) == count  # stopped means stopped


def test_a_tick_builds_the_orchestrator_only_once_it_finds_an_active_run() -> None:
    """A quiet project's ticks (no active run) load and build no orchestrator; a run in flight has it built."""
    w = Clocked()
    built: list[int] = []

    def orchestrator() -> Any:
        built.append(1)
        return w.orch

    reconciler = ReconcileService(w.orch.d.specs, w.store, orchestrator, clock=lambda: w.now)
    assert reconciler.run().examined == 0 and built == []
    baking(w)
    w.now += 61  # past the poll interval: the tick takes the rolling-out run up
    report = reconciler.run()
    assert report.examined == 1 and built != [] and report.errors == []
