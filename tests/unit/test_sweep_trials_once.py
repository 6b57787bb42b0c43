"""A sweep's ended trials go on the run's timeline once, even when two handlers of the run look at the same moment.

Seen in CI (test_kill9_mid_sweep_loses_no_finished_trial_and_runs_none_twice): after a kill -9, a redelivered command
and the reconcile tick both read the timeline, both found trials 3 and 4 unshown, and both appended them. The entries
now go in with the run's own versioned save, so the handler holding a stale run loses (ConflictError) and writes
nothing; its retry reads the timeline again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.jobs import RunPaths
from relaunch.domain.model import Delivery, PipelineRun, RunState, TimelineEntry, Trigger
from relaunch.domain.ports import ConflictError
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepStatus, Trial
from relaunch.service.sweep_step import JobsAndSweeps, SweepStep
from tests.fakes import FakeBackend, FakeBlobs, FakeStore

ROOT = Path(__file__).resolve().parents[2]
SPEC = SweepSpec.model_validate(
    {
        "method": "grid",
        "parameters": {"C": {"type": "categorical", "values": [0.1, 1.0]}},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "max_trials": 2,
    }
)
SWEEP_ID = "sweep-1"


class OneSweep:
    """A sweep backend that owns one sweep: trial 0 ended, trial 1 still running."""

    def owns(self, job_id: str) -> bool:
        return job_id == SWEEP_ID

    def status(self, sweep_id: str) -> SweepStatus:
        trials = [
            Trial(number=0, state="succeeded", objective=0.9, output_dir="/out/0", params={"C": 0.1}),
            Trial(number=1, state="running", output_dir="/out/1", params={"C": 1.0}),
        ]
        return SweepStatus(id=sweep_id, state="running", spec=SPEC, trials=trials)

    def start(self, request: object) -> str:
        return SWEEP_ID

    def cancel(self, sweep_id: str) -> None:
        pass


class SameMoment(FakeStore):
    """Both handlers read the timeline before either wrote: each read answers what the first one saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[TimelineEntry] | None = None

    def timeline(self, run_id: str) -> list[TimelineEntry]:
        if self.seen is None:
            self.seen = super().timeline(run_id)
        return list(self.seen)


def test_two_handlers_looking_at_once_put_an_ended_trial_on_the_timeline_once() -> None:
    store = SameMoment()
    trigger = Trigger(kind="push", delivery_key="d1", sha="a" * 40)
    run = PipelineRun(id="digits-1", pipeline="digits", trigger=trigger, state=RunState.TRAINING)
    store.record_delivery(Delivery(key="d1", source="github", run_ids=[run.id]), [run])
    run = (store.get_run(run.id) or run).model_copy(update={"jobs": {"train": SWEEP_ID}})
    run = store.save_run(run)
    spec = load_spec(ROOT / "pipelines" / "digits.yaml").model_copy(update={"sweep": SPEC})
    step = SweepStep(store, JobsAndSweeps(FakeBackend(), OneSweep()), FakeBlobs())  # type: ignore[arg-type]
    paths = RunPaths("/out", "/out/evaluation")

    first, _ = step.status(run, spec, paths)  # the first handler
    with pytest.raises(ConflictError):
        step.status(run, spec, paths)  # the second, holding the same (now stale) run

    store.seen = None
    trials = [e.data["trial"] for e in store.timeline(run.id) if e.kind == "trial"]
    assert first.state == "running" and trials == [0]
