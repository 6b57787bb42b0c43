"""The pure translation of a sweep spec into a W&B sweep configuration, and of a W&B run's config back."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from relaunch.adapters.wandb.sweep_config import about, check_names, sweep_config, sweep_state, trial_params
from relaunch.domain.spec_sweep import SweepSpec
from relaunch.domain.sweep import Trial

IMAGE = "europe-west1-docker.pkg.dev/p/r/digits@sha256:" + "0" * 64


def spec(**fields: Any) -> SweepSpec:
    values: dict[str, Any] = {
        "method": "random",
        "parameters": {
            "C": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "max_iter": {"type": "int", "low": 100, "high": 400},
            "layers": {"type": "int", "low": 1, "high": 64, "log": True},
            "batch": {"type": "int", "low": 16, "high": 64, "step": 16},
            "solver": {"type": "categorical", "values": ["lbfgs", "saga"]},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "max_trials": 12,
        "parallel_trials": 3,
    }
    values.update(fields)
    return SweepSpec.model_validate(values)


def config(s: SweepSpec) -> dict[str, Any]:
    return sweep_config(s, name="relaunch-abc", description="why", image=IMAGE)


def test_a_random_sweep_maps_every_parameter_kind_onto_wandb_distributions() -> None:
    got = config(spec())

    assert got["method"] == "random"
    assert got["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert got["parameters"] == {
        "C": {"distribution": "log_uniform_values", "min": 0.01, "max": 10.0},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
        "max_iter": {"distribution": "int_uniform", "min": 100, "max": 400},
        "layers": {"distribution": "q_log_uniform_values", "min": 1, "max": 64, "q": 1},
        "batch": {"values": [16, 32, 48, 64]},
        "solver": {"values": ["lbfgs", "saga"]},
    }
    assert (got["run_cap"], got["image_uri"], got["name"], got["description"]) == (12, IMAGE, "relaunch-abc", "why")
    assert "early_terminate" not in got


def test_a_grid_lists_int_ranges_and_caps_runs_at_its_size() -> None:
    grid = spec(
        method="grid",
        parameters={
            "max_iter": {"type": "int", "low": 1, "high": 3},
            "solver": {"type": "categorical", "values": ["a"]},
        },
        max_trials=50,
    )
    got = config(grid)

    assert got["parameters"] == {"max_iter": {"values": [1, 2, 3]}, "solver": {"values": ["a"]}}
    assert got["run_cap"] == 3  # a grid of 3 points, not max_trials


def test_hyperband_keeps_its_resources_and_median_becomes_halving_by_two() -> None:
    hyper = config(
        spec(early_stopping={"type": "hyperband", "min_resource": 2, "max_resource": 27, "reduction_factor": 3})
    )
    median = config(spec(early_stopping={"type": "median", "warmup_steps": 4}))

    assert hyper["early_terminate"] == {"type": "hyperband", "min_iter": 2, "eta": 3, "max_iter": 27}
    assert median["early_terminate"] == {"type": "hyperband", "min_iter": 4, "eta": 2}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("metric", "val.accuracy", "dotted name"),
        ("metric", "_runtime", "starting with '_'"),
        ("parameter", "opt.lr", "dotted name"),
        ("parameter", "_wandb", "starting with '_'"),
        ("parameter", "relaunch_key", "relaunch's own"),
    ],
)
def test_names_wandb_would_misread_are_refused_in_one_line(field: str, value: str, says: str) -> None:
    if field == "metric":
        bad = spec(objective={"metric": value, "direction": "minimize"})
    else:
        bad = spec(parameters={value: {"type": "float", "low": 0.0, "high": 1.0}})

    with pytest.raises(ValueError, match=says) as caught:
        check_names(bad)
    assert "\n" not in str(caught.value) and value in str(caught.value)
    with pytest.raises(ValueError):
        config(bad)


def test_a_runs_config_is_read_back_in_the_specs_types() -> None:
    s = spec()
    run_config = {
        "C": {"value": 0.5},
        "max_iter": {"value": 200.0},  # JSON may carry an int as a float
        "batch": 32,
        "solver": {"value": "saga"},
        "relaunch_key": {"value": "run-1:sweep"},
        "_wandb": {"value": {}},
    }

    params = trial_params(s, run_config)

    assert params == {"C": 0.5, "max_iter": 200, "batch": 32, "solver": "saga"}
    assert isinstance(params["max_iter"], int) and isinstance(params["C"], float)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("C", 50.0),  # outside the range
        ("C", "0.5"),
        ("C", float("nan")),
        ("max_iter", 100.5),
        ("batch", 20),  # not on the step
        ("solver", "sgd"),
        ("solver", True),
        ("dropout", True),
    ],
)
def test_a_value_outside_the_spec_is_refused(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"parameter {name}: W&B sent"):
        trial_params(spec(), {name: {"value": value}})


def trial(number: int, state: str, objective: float | None = None) -> Trial:
    return Trial(number=number, state=state, objective=objective, output_dir=f"gs://b/trials/r{number}")  # type: ignore[arg-type]


def test_the_sweeps_state_follows_outcome_until_wandb_cancels_or_finishes_it_early() -> None:
    s = spec(max_trials=4, parallel_trials=2)
    two = [trial(0, "succeeded", 0.8), trial(1, "failed")]

    assert sweep_state(s, "RUNNING", two)[0] == "running"  # two of four: more to start
    assert sweep_state(s, "CANCELED", two) == ("cancelled", "the sweep was cancelled")
    finished = sweep_state(s, "FINISHED", two)  # the scheduler suggested no more: what ran is the budget
    assert finished[0] == "succeeded" and "trial 0 won" in finished[1]
    assert sweep_state(s, "FINISHED", [trial(0, "failed"), trial(1, "failed")])[0] == "failed"
    assert sweep_state(s, "FINISHED", [trial(0, "running")])[0] == "running"
    done = [trial(n, "succeeded", 0.1 * n) for n in range(4)]
    assert sweep_state(s, "RUNNING", done)[0] == "succeeded"  # every trial of the budget ended


def test_a_sweep_relaunch_did_not_start_is_refused_in_one_line() -> None:
    note = {"relaunch_key": "k", "trial_output": "gs://b/t", "sweep": spec().model_dump(mode="json")}
    ours = {"name": "sw000001", "config": yaml.safe_dump({"description": json.dumps(note)})}

    assert about(ours) == (spec(), "gs://b/t")
    for config in ("method: grid\n", yaml.safe_dump({"description": "a person's sweep"}), ": :", None):
        with pytest.raises(ValueError, match="was not started by relaunch") as caught:
            about({"name": "sw000002", "config": config})
        assert "\n" not in str(caught.value)
