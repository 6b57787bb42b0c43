"""Local sweeps: an Optuna study in the stack's home, its trials real agent jobs (subprocesses)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaunch.adapters.local.agent import LocalAgent
from relaunch.adapters.local.sweep import LocalSweeps
from relaunch.domain.model import JobRequest
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepRequest, SweepStatus

# A training: its objective is a known function of its parameters, reported per step so a pruner has something to
# judge; SLOW_X (a value of x) makes that trial run long enough to be stopped; FAIL_X makes it exit 1.
TRAIN = """
import json, os, pathlib, sys, time
params = json.loads(os.environ["RELAUNCH_TRIAL_PARAMS"])
x = params["x"]
score = 1.0 - (x - 3) ** 2 / 100
report = pathlib.Path(os.environ["RELAUNCH_TRIAL_METRICS"])
report.parent.mkdir(parents=True, exist_ok=True)
steps = int(os.environ.get("STEPS", "1"))
for step in range(1, steps + 1):
    with report.open("a") as f:
        f.write(json.dumps({"step": step, "val_score": score * step / steps}) + "\\n")
    if str(x) == os.environ.get("SLOW_X"):
        time.sleep(0.5)
if str(x) == os.environ.get("FAIL_X"):
    sys.exit("bad parameters")
model = pathlib.Path(os.environ["AIP_MODEL_DIR"])
model.mkdir(parents=True, exist_ok=True)
(model / "model.txt").write_text(str(x))
"""


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.agent = LocalAgent(tmp_path / "agent.db", tmp_path / "logs", max_concurrent=4, poll_interval=0.02)
        self.sweeps = LocalSweeps(self.agent, tmp_path / "home" / "sweeps")
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "train.py").write_text(textwrap.dedent(TRAIN))

    def request(self, sweep: dict, env: dict | None = None, retries: int = 0) -> SweepRequest:
        trial = JobRequest(
            key="run-1:train",
            run_id="run-1",
            step="train",
            image=str(self.tmp / "src"),
            command=["python", "train.py"],
            env=env or {},
            max_retries=retries,
            output_dir=str(self.tmp / "artifacts" / "runs" / "run-1"),
        )
        spec = {"objective": {"metric": "val_score", "direction": "maximize"}, **sweep}
        return SweepRequest(key="run-1:sweep", trial=trial, sweep=SweepSpec.model_validate(spec))

    def run_until_done(self, sweep_id: str, *, timeout: float = 60) -> SweepStatus:
        """Drive agent and sweep by hand (one poll per agent tick), noting the most trials running at once."""
        self.most_running = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.agent.tick()
            status = self.sweeps.status(sweep_id)
            self.most_running = max(self.most_running, len(self.agent.list_jobs("running", "queued")))
            if status.state != "running":
                return status
            time.sleep(0.02)
        pytest.fail("the sweep did not finish")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.agent.stop()


GRID = {"method": "grid", "parameters": {"x": {"type": "categorical", "values": [1, 2, 3, 4, 5]}}}


def test_a_grid_sweep_runs_every_point_in_parallel_and_the_best_one_wins(world: World) -> None:
    sweep_id = world.sweeps.start(world.request({**GRID, "max_trials": 10, "parallel_trials": 2}))
    status = world.run_until_done(sweep_id)
    assert status.state == "succeeded", status.message
    assert sorted(t.params["x"] for t in status.trials) == [1, 2, 3, 4, 5]  # the grid's 5 points, not 10 trials
    assert world.most_running <= 2
    best = max(status.trials, key=lambda t: t.objective or 0)
    assert best.params["x"] == 3 and best.objective == 1.0 and "trial" in status.message
    assert (Path(best.output_dir) / "model" / "model.txt").read_text() == "3"
    assert all(t.seconds > 0 and t.job_id for t in status.trials)
    study = world.tmp / "home" / "sweeps" / sweep_id / "journal.log"
    assert study.is_file() and not list((world.tmp / "artifacts").rglob("journal.log"))  # no job can rewrite it


def test_a_restarted_stack_resumes_the_sweep_and_never_reruns_a_finished_trial(world: World) -> None:
    request = world.request({**GRID, "max_trials": 5, "parallel_trials": 2})
    sweep_id = world.sweeps.start(request)
    while sum(t.state == "succeeded" for t in world.sweeps.status(sweep_id).trials) < 2:
        world.agent.tick()
        time.sleep(0.02)
    again = LocalSweeps(world.agent, world.tmp / "home" / "sweeps")  # a new process: nothing kept in memory
    assert again.start(request) == sweep_id
    world.sweeps = again
    status = world.run_until_done(sweep_id)
    assert status.state == "succeeded" and len(status.trials) == 5
    keys = [r.key for r, _ in world.agent.list_jobs()]
    assert len(keys) == len(set(keys)) == 5  # each trial a job once
    assert sorted(t.params["x"] for t in status.trials) == [1, 2, 3, 4, 5]


def test_a_random_sweep_stops_at_max_trials_and_a_failed_trial_does_not_fail_the_sweep(world: World) -> None:
    space = {"x": {"type": "int", "low": 0, "high": 6}}
    sweep = {"method": "random", "parameters": space, "max_trials": 4, "parallel_trials": 3}
    status = world.run_until_done(world.sweeps.start(world.request(sweep, env={"FAIL_X": "3"})))
    assert len(status.trials) == 4 and world.most_running <= 3
    failed = [t for t in status.trials if t.params["x"] == 3]
    assert all(t.state == "failed" and "exited with code 1" in t.message for t in failed)
    assert status.state == ("succeeded" if len(failed) < 4 else "failed")


def test_every_trial_failing_fails_the_sweep_with_the_last_log(world: World) -> None:
    sweep = {"method": "grid", "parameters": {"x": {"type": "categorical", "values": [7]}}, "max_trials": 1}
    status = world.run_until_done(world.sweeps.start(world.request(sweep, env={"FAIL_X": "7"})))
    assert status.state == "failed" and "no trial of the sweep succeeded" in status.message
    assert "bad parameters" in status.log_tail


def test_median_stopping_prunes_a_trial_worse_than_the_median_so_far(world: World) -> None:
    sweep = {
        **GRID,
        "parameters": {"x": {"type": "categorical", "values": [3, 4, 20]}},
        "max_trials": 3,
        "parallel_trials": 1,
        "early_stopping": {"type": "median", "startup_trials": 2},
    }
    status = world.run_until_done(world.sweeps.start(world.request(sweep, env={"STEPS": "40", "SLOW_X": "20"})))
    states = {t.params["x"]: t.state for t in status.trials}
    assert states == {3: "succeeded", 4: "succeeded", 20: "pruned"}, states


def test_cancel_stops_every_running_trial_and_starts_no_more(world: World) -> None:
    sweep = {**GRID, "max_trials": 5, "parallel_trials": 2}
    sweep_id = world.sweeps.start(world.request(sweep, env={"STEPS": "100", "SLOW_X": "1"}))
    world.agent.tick()
    world.sweeps.cancel(sweep_id)
    status = world.sweeps.status(sweep_id)
    assert status.state == "cancelled" and len(status.trials) == 2
    assert all(t.state == "cancelled" for t in status.trials)
    assert {s.state for _, s in world.agent.list_jobs()} == {"cancelled"}


def test_a_hostile_report_fails_only_its_trial_with_a_one_line_reason(world: World) -> None:
    sweep = {"method": "grid", "parameters": {"x": {"type": "categorical", "values": [1]}}, "max_trials": 1}
    sweep_id = world.sweeps.start(world.request(sweep))
    report = world.tmp / "artifacts" / "runs" / "run-1" / "trials" / "0" / "trial_metrics.jsonl"
    report.parent.mkdir(parents=True)
    report.write_text('{"step": 1, "val_score": NaN}\n')
    status = world.sweeps.status(sweep_id)
    assert status.state == "failed" and "line 1: val_score must be a finite number" in status.trials[0].message


def test_an_unknown_sweep_is_a_key_error(world: World) -> None:
    for bad in ("sweep-0000", "sweep-../../etc", "job-1"):
        with pytest.raises(KeyError):
            world.sweeps.status(bad)


def test_a_lost_trial_job_is_found_on_the_next_poll_and_run_once(world: World) -> None:
    import sqlite3

    sweep = {**GRID, "max_trials": 2, "parallel_trials": 2}
    sweep_id = world.sweeps.start(world.request(sweep))
    with sqlite3.connect(world.tmp / "agent.db") as db:  # the agent's queue lost trial 1 (a restored backup, say)
        db.execute("DELETE FROM jobs WHERE key LIKE '%:trial:1'")
    assert len(world.agent.list_jobs()) == 1
    status = world.run_until_done(sweep_id)  # each poll (the reconcile tick's among them) looks for it
    assert status.state == "succeeded" and [t.state for t in status.trials] == ["succeeded", "succeeded"]
    assert sorted(r.key for r, _ in world.agent.list_jobs()) == ["run-1:train:trial:0", "run-1:train:trial:1"]


def test_a_trial_killed_with_its_agent_is_retried_once_under_a_new_key(world: World) -> None:
    sweep = {"method": "grid", "parameters": {"x": {"type": "categorical", "values": [2]}}, "max_trials": 1}
    sweep_id = world.sweeps.start(world.request(sweep, env={"STEPS": "100", "SLOW_X": "2"}, retries=1))
    world.agent.tick()  # running
    world.agent.stop()
    restarted = LocalAgent(world.tmp / "agent.db", world.tmp / "logs", max_concurrent=4, poll_interval=0.02)
    restarted.start()  # it first finds the interrupted attempt: failed, "the agent restarted" (infrastructure)
    world.agent = restarted
    world.sweeps = LocalSweeps(restarted, world.tmp / "home" / "sweeps")
    world.sweeps.status(sweep_id)
    keys = sorted(r.key for r, _ in restarted.list_jobs())
    assert keys == ["run-1:train:trial:0", "run-1:train:trial:0:2"]
    assert world.sweeps.status(sweep_id).trials[0].attempts == 2
