"""WandbLaunchSweeps through the real wandb SDK against the W&B stand-in, which plays W&B's sweep scheduler."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
import yaml

from relaunch.adapters.wandb.launch import WandbLaunchBackend
from relaunch.adapters.wandb.launch_sweep import OUTPUT_VARIABLE, WandbLaunchSweeps
from relaunch.domain.model import JobRequest, MachineSpec
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import SweepRequest, SweepStatus, as_job, best_trial
from relaunch.emulated.wandb_sweeps import TRIAL_SECONDS, run_trials
from tests.integration.wandb.conftest import API_KEY
from tests.wandb_server import FakeWandb

IMAGE = "europe-west1-docker.pkg.dev/proj-1/relaunch/digits@sha256:" + "0" * 64
OUTPUT = "gs://bucket/runs/run-7"


def make_sweeps(fake: FakeWandb) -> WandbLaunchSweeps:
    launch = WandbLaunchBackend(
        api_key=API_KEY,
        base_url=fake.url,
        entity="team",
        project="digits",
        queue="vertex-gpu",
        staging_bucket="gs://proj-1-relaunch/wandb-launch",
    )
    return WandbLaunchSweeps(launch)


def make_spec(**fields: Any) -> SweepSpec:
    values: dict[str, Any] = {
        "method": "grid",
        "parameters": {
            "C": {"type": "categorical", "values": [0.1, 1.0, 10.0]},
            "max_iter": {"type": "int", "low": 100, "high": 200, "step": 100},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "max_trials": 6,
        "parallel_trials": 2,
    }
    values.update(fields)
    return SweepSpec.model_validate(values)


def make_request(spec: SweepSpec | None = None, key: str = "run-7:sweep") -> SweepRequest:
    trial = JobRequest(
        key="run-7:train",
        run_id="run-7",
        step="train",
        image=IMAGE,
        command=["python", "train.py"],
        env={"RELAUNCH_RUN_ID": "run-7"},
        output_dir=OUTPUT,
        machine=MachineSpec(machine_type="n1-standard-4"),
    )
    return SweepRequest(key=key, trial=trial, sweep=spec or make_spec())


def accuracy(params: dict[str, Any]) -> float:
    """A validation accuracy peaking at C=1, max_iter=200."""
    return round(0.9 - abs(math.log10(params["C"])) * 0.1 + params["max_iter"] / 10000, 4)


def drive(sweeps: WandbLaunchSweeps, fake: FakeWandb, sweep_id: str, score: Any, rounds: int = 20) -> SweepStatus:
    """Read the sweep (W&B's scheduler moves) and let the agent run its trials until it ends."""
    most = 0
    for _ in range(rounds):
        status = sweeps.status(sweep_id)
        most = max(most, sum(t.state == "running" for t in status.trials))
        if status.state != "running":
            assert most <= status.spec.parallel_trials
            return status
        run_trials(fake, score)
    raise AssertionError(f"the sweep did not end: {status}")


def test_starting_twice_creates_one_sweep_whose_scheduler_is_queued_as_launch_sweep_does(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    first = sweeps.start(make_request())
    again = make_sweeps(fake).start(make_request())

    assert again == first and sweeps.owns(first)
    assert "WANDB_PROJECT" not in os.environ and "WANDB_ENTITY" not in os.environ  # the SDK's defaults undone
    (upsert,) = fake.called("UpsertSweep")
    variables = upsert.variables
    assert (variables["entityName"], variables["projectName"], variables["state"]) == ("team", "digits", "PENDING")
    config = yaml.safe_load(variables["config"])
    assert config["method"] == "grid" and config["run_cap"] == 6 and config["image_uri"] == IMAGE
    assert config["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert config["command"] == ["python", "train.py", "${args}"]
    scheduler = json.loads(variables["launchScheduler"])
    assert (scheduler["queue"], scheduler["run_queue_project"]) == ("vertex-gpu", "model-registry")
    spec = json.loads(scheduler["run_spec"])
    assert spec["uri"] == "placeholder-uri-scheduler" and spec["resource"] == "local-process"
    assert spec["overrides"]["entry_point"] == ["wandb", "scheduler", "WANDB_SWEEP_ID"]
    run_config = spec["overrides"]["run_config"]
    assert run_config["scheduler"] == {"num_workers": 2}
    assert run_config["relaunch_key"] == "run-7:sweep" and run_config["launch"]["queue"] == "vertex-gpu"
    pool = run_config["launch"]["resource_args"]["vertex"]["spec"]["worker_pool_specs"][0]
    assert {"name": OUTPUT_VARIABLE, "value": f"{OUTPUT}/trials"} in pool["container_spec"]["env"]
    assert len(fake.items) == 1  # the scheduler, put on the queue by W&B, once
    assert make_sweeps(fake).start(make_request(key="run-8:sweep")) != first
    assert fake.refused == []


def test_trials_run_with_their_params_and_the_best_on_validation_wins(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request())

    waiting = sweeps.status(sweep_id)
    assert waiting.state == "running" and waiting.trials == []
    trial_items = [i for i in fake.items.values() if "sweep_id" in json.loads(i["runSpec"])]
    assert len(trial_items) == 2  # num_workers at a time
    entry = json.loads(trial_items[0]["runSpec"])["overrides"]["entry_point"]
    assert entry == ["python", "train.py", "--C=0.1", "--max_iter=100"]  # ${args}, as W&B expands it

    run_trials(fake, accuracy)
    started = sweeps.status(sweep_id)
    assert [(t.number, t.state, t.params) for t in started.trials] == [
        (0, "running", {"C": 0.1, "max_iter": 100}),
        (1, "running", {"C": 0.1, "max_iter": 200}),
    ]

    done = drive(sweeps, fake, sweep_id, accuracy)
    assert done.state == "succeeded" and len(done.trials) == 6
    assert [t.number for t in done.trials] == list(range(6))
    assert all(t.state == "succeeded" and t.objective == accuracy(t.params) for t in done.trials)
    best = best_trial(done.spec, done.trials)
    assert best is not None and best.params == {"C": 1.0, "max_iter": 200}
    assert "won" in done.message and f"trial {best.number}" in done.message
    assert best.output_dir == f"{OUTPUT}/trials/{str(best.job_id).rsplit('/', 1)[1]}"
    job = as_job(done)
    assert job.finished_at is not None and job.started_at is not None
    assert job.finished_at - job.started_at == 6 * TRIAL_SECONDS  # cost: the sum of its trials
    assert fake.refused == []


def test_failed_trials_leave_the_best_of_the_rest(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request())

    done = drive(sweeps, fake, sweep_id, lambda p: None if p["C"] == 1.0 else accuracy(p))

    assert done.state == "succeeded"
    assert [t.state for t in done.trials].count("failed") == 2
    best = best_trial(done.spec, done.trials)
    assert best is not None and best.params == {"C": 0.1, "max_iter": 200}  # ties C=10: the lower number wins
    assert all(t.objective is None and "W&B run" in t.message for t in done.trials if t.state == "failed")


def test_a_sweep_whose_trials_all_fail_fails(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request(make_spec(max_trials=2, parallel_trials=1, method="random")))

    done = drive(sweeps, fake, sweep_id, lambda p: None)

    assert done.state == "failed" and "no trial of the sweep succeeded (2 ended)" in done.message
    assert all(t.state == "failed" for t in done.trials)
    assert "failed" in done.log_tail


def test_a_random_sweep_draws_within_the_ranges(fake: FakeWandb) -> None:
    spec = make_spec(
        method="random",
        parameters={
            "C": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
            "max_iter": {"type": "int", "low": 50, "high": 500},
        },
        max_trials=4,
    )
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request(spec))

    done = drive(sweeps, fake, sweep_id, lambda p: 1.0 / (1.0 + abs(math.log10(p["C"]))))

    assert done.state == "succeeded" and len(done.trials) == 4
    drawn = [(float(t.params["C"]), int(t.params["max_iter"])) for t in done.trials]
    assert all(0.01 <= c <= 10.0 and 50 <= m <= 500 for c, m in drawn)
    assert len({t.params["C"] for t in done.trials}) == 4


def test_cancel_stops_the_scheduler_removes_waiting_trials_and_stops_running_ones(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request(make_spec(parallel_trials=3)))
    sweeps.status(sweep_id)  # three trials queued
    run_trials(fake, accuracy)  # ... and running
    sweeps.status(sweep_id)
    run_trials(fake, accuracy)  # three finished, three more queued
    assert sweeps.status(sweep_id).state == "running"
    run_trials(fake, accuracy)  # three running
    sweeps.status(sweep_id)

    before = len(fake.items)
    sweeps.cancel(sweep_id)

    (upsert,) = [c for c in fake.called("UpsertSweep") if c.variables.get("id")]
    assert upsert.variables["state"] == "CANCELED"
    status = sweeps.status(sweep_id)
    assert status.state == "cancelled"
    assert [t.state for t in status.trials] == ["succeeded"] * 3 + ["cancelled"] * 3
    assert len(fake.stopped) == 3  # the running runs were asked to stop
    assert len(fake.items) == before  # nothing was waiting: the running items stay, their runs stopped
    sweeps.cancel(sweep_id)  # a cancelled sweep: nothing more to do
    assert len([c for c in fake.called("UpsertSweep") if c.variables.get("id")]) == 1
    assert fake.refused == []


def test_cancel_removes_trials_still_waiting_on_the_queue(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request())
    sweeps.status(sweep_id)  # the scheduler is running, two trials wait on the queue

    sweeps.cancel(sweep_id)

    assert [i for i in fake.items.values() if "sweep_id" in json.loads(i["runSpec"])] == []
    assert sweeps.status(sweep_id).state == "cancelled"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"objective": {"metric": "val.accuracy", "direction": "maximize"}}, "dotted name"),
        ({"parameters": {"_wandb": {"type": "categorical", "values": [1]}}}, "starting with '_'"),
        ({"parameters": {"relaunch_key": {"type": "categorical", "values": [1]}}}, "relaunch's own"),
    ],
)
def test_names_the_config_cannot_carry_are_refused_before_any_request(
    fake: FakeWandb, fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        make_sweeps(fake).start(make_request(make_spec(**fields)))

    assert "\n" not in str(caught.value)
    assert fake.calls == []


def test_a_run_config_outside_the_spec_is_a_one_line_error(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)
    sweep_id = sweeps.start(make_request())
    sweeps.status(sweep_id)
    run_trials(fake, accuracy)
    run = next(r for r in fake.runs.values() if r.get("sweepName"))
    run["config"] = json.dumps({"C": {"value": "0.1; rm -rf /"}})

    with pytest.raises(ValueError, match="parameter C: W&B sent") as caught:
        sweeps.status(sweep_id)
    assert "\n" not in str(caught.value)


def test_ids_it_does_not_own(fake: FakeWandb) -> None:
    sweeps = make_sweeps(fake)

    assert not sweeps.owns("team/digits/vertex-gpu/UnVuUXVldWVJdGVtOjE=")  # a Launch job
    assert not sweeps.owns("other/digits/sw000001") and not sweeps.owns("team/digits/../x")
    with pytest.raises(KeyError):
        sweeps.status("team/digits/vertex-gpu/UnVuUXVldWVJdGVtOjE=")
    with pytest.raises(KeyError):
        sweeps.status("team/digits/zz999999")  # ours in form, unknown to W&B
