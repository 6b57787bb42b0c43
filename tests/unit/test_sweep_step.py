"""A run whose spec has a sweep: its trials on the timeline, the winner evaluated, its cost their sum, superseded
sweeps cancelled. The orchestrator runs with fakes of every port, a fake sweep backend among them."""

from __future__ import annotations

import dataclasses
import time

import pytest

from relaunch.domain.commands import JobFinished
from relaunch.domain.model import PipelineRun, RunState
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepRequest, SweepStatus, Trial, best_trial, outcome
from relaunch.service.orchestrator import Orchestrator
from relaunch.service.sweep_step import JobsAndSweeps
from tests.unit.test_coalesce_step import push
from tests.unit.test_orchestrator import GOOD, SPEC, World

S = RunState
SWEEP = SweepSpec.model_validate(
    {
        "method": "random",
        "parameters": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "max_trials": 3,
        "parallel_trials": 2,
    }
)


class FakeSweeps:
    """Sweeps whose trials the test ends; every call is remembered."""

    def __init__(self) -> None:
        self.requests: dict[str, SweepRequest] = {}
        self.trials: dict[str, list[Trial]] = {}
        self.cancelled: list[str] = []

    def owns(self, job_id: str) -> bool:
        return job_id.startswith("sweep-")

    def start(self, request: SweepRequest) -> str:
        sweep_id = f"sweep-{request.key}"
        self.requests.setdefault(sweep_id, request)
        self.trials.setdefault(sweep_id, [])
        return sweep_id

    def end_trial(self, sweep_id: str, number: int, c: float, state: str = "succeeded", objective: float = 0.0) -> None:
        base = self.requests[sweep_id].trial.output_dir
        now = time.time()
        trial = Trial(
            number=number,
            params={"C": c},
            state=state,  # type: ignore[arg-type]
            objective=objective if state == "succeeded" else None,
            output_dir=f"{base}/trials/{number}",
            started_at=now - 10.0,
            finished_at=now,
            message="exited with code 1" if state == "failed" else "",
        )
        self.trials[sweep_id].append(trial)

    def status(self, sweep_id: str) -> SweepStatus:
        if sweep_id in self.cancelled:
            return SweepStatus(id=sweep_id, state="cancelled", spec=SWEEP, trials=self.trials[sweep_id])
        state, message = outcome(SWEEP, self.trials[sweep_id])
        return SweepStatus(id=sweep_id, state=state, spec=SWEEP, trials=self.trials[sweep_id], message=message)

    def cancel(self, sweep_id: str) -> None:
        self.cancelled.append(sweep_id)


def sweeping_world(sweeps: FakeSweeps | None = None) -> tuple[World, FakeSweeps]:
    w = World()
    fake = sweeps or FakeSweeps()
    spec = SPEC.model_copy(update={"sweep": SWEEP})
    deps = dataclasses.replace(w.orch.d, backend=JobsAndSweeps(w.backend, fake), specs=lambda: {"digits": spec})
    w.orch = Orchestrator(deps)
    return w, fake


def nudge(w: World, run: PipelineRun) -> PipelineRun:
    sweep_id = w.store.runs[run.id].jobs["train"]
    moved = w.orch.handle(JobFinished(run_id=run.id, step="train", job_id=sweep_id, state="succeeded"))
    assert moved is not None
    return moved


def test_a_sweep_run_evaluates_the_winner_shows_every_trial_and_costs_their_sum() -> None:
    w, sweeps = sweeping_world()
    run = w.new_run()
    assert w.start(run).state is S.TRAINING
    sweep_id = w.store.runs[run.id].jobs["train"]
    request = sweeps.requests[sweep_id]
    assert request.sweep == SWEEP and request.trial.output_dir == "/art/runs/digits-1"
    assert request.trial.env["RELAUNCH_COMMIT_SHA"] == run.trigger.sha and not w.backend.submitted
    for n, (c, score) in enumerate([(0.1, 0.95), (1.0, 0.97), (5.0, 0.96)]):
        w.blobs.files[f"/art/runs/digits-1/trials/{n}/model/model.joblib"] = f"model C={c}"
        sweeps.end_trial(sweep_id, n, c, objective=score)
        if n < 2:
            sweeps.trials[sweep_id].append(Trial(number=n + 10, state="running", output_dir="/x"))  # still going
            assert nudge(w, run).state is S.TRAINING
            sweeps.trials[sweep_id].pop()
    assert nudge(w, run).state is S.EVALUATING
    assert w.blobs.files["/art/runs/digits-1/model/model.joblib"] == "model C=1.0"  # the winner, where eval reads
    trials = [e for e in w.store.timeline(run.id) if e.kind == "trial"]
    assert [e.data["trial"] for e in trials] == [0, 1, 2]  # each once, though polled three times
    assert trials[1].data["params"] == {"C": 1.0} and trials[1].data["objective"] == 0.97
    assert trials[1].data["usd"] > 0 and "val_accuracy 0.9700" in trials[1].message
    done = w.evaluate(run, GOOD)
    assert done.state is S.PROMOTED
    report = next(n.report_markdown for n in w.notifier.sent if n.stage == "gate" and n.report_markdown)
    assert "trial 1 of 3 trials (best val_accuracy on the validation split: 0.9700)" in (report or "")
    cost = w.store.get_effect(run.id, "cost")
    assert cost is not None and cost["train_s"] == pytest.approx(30.0, abs=0.5)  # 3 trials of 10 s, not the wall


def test_superseding_a_sweep_run_cancels_the_whole_sweep() -> None:
    w, sweeps = sweeping_world()
    first = push(w, 1)
    assert w.start(first).state is S.TRAINING
    sweep_id = w.store.runs[first.id].jobs["train"]
    sweeps.end_trial(sweep_id, 0, 0.5, objective=0.9)
    w.start(push(w, 2))
    assert w.store.runs[first.id].state is S.SUPERSEDED and sweeps.cancelled == [sweep_id]
    cost = w.store.get_effect(first.id, "cost")
    assert cost is not None and cost["train_s"] == pytest.approx(10.0, abs=0.5)  # the trial that did run


def test_a_sweep_whose_every_trial_failed_fails_the_run_without_a_plain_retry() -> None:
    w, sweeps = sweeping_world()
    run = w.new_run()
    w.start(run)
    sweep_id = w.store.runs[run.id].jobs["train"]
    for n in range(3):
        sweeps.end_trial(sweep_id, n, 1.0, state="failed")
    failed = nudge(w, run)
    assert failed.state is S.FAILED and "no trial of the sweep succeeded" in (failed.reason or "")
    assert not w.backend.submitted  # a sweep is never retried as one plain training


def test_a_sweep_on_a_backend_without_sweeps_fails_the_run_saying_so() -> None:
    w = World()
    spec = SPEC.model_copy(update={"sweep": SWEEP})
    w.orch = Orchestrator(dataclasses.replace(w.orch.d, specs=lambda: {"digits": spec}))
    ended = w.start(w.new_run())
    assert ended.state is S.FAILED and "runs no sweeps" in (ended.reason or "")
    assert not w.backend.submitted


def test_the_best_trial_is_chosen_by_direction_and_ties_go_to_the_earlier() -> None:
    trials = [
        Trial(number=0, state="succeeded", objective=0.5, output_dir="a"),
        Trial(number=1, state="succeeded", objective=0.2, output_dir="b"),
        Trial(number=2, state="succeeded", objective=0.2, output_dir="c"),
        Trial(number=3, state="pruned", objective=None, output_dir="d"),
    ]
    minimize = SWEEP.model_copy(update={"objective": SWEEP.objective.model_copy(update={"direction": "minimize"})})
    assert best_trial(minimize, trials).number == 1  # type: ignore[union-attr]
    assert best_trial(SWEEP, trials).number == 0  # type: ignore[union-attr]
    assert best_trial(SWEEP, trials[3:]) is None


def test_a_sweep_may_train_for_as_many_rounds_of_trials_as_it_has_before_it_counts_as_stuck() -> None:
    from relaunch.service.reconcile import Timeouts, stage_timeout

    t = Timeouts()
    one = SPEC.train.timeout_s * (1 + SPEC.train.max_retries)
    assert stage_timeout(S.TRAINING, SPEC, t) == one + t.margin_s
    sweeping = SPEC.model_copy(update={"sweep": SWEEP})  # 3 trials, 2 at a time: two rounds
    assert stage_timeout(S.TRAINING, sweeping, t) == 2 * one + t.margin_s
