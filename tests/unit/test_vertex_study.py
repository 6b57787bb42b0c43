"""How a sweep spec becomes a Vertex AI StudySpec, and how Vertex's trials come back as Trials."""

from __future__ import annotations

from typing import Any

import pytest

from relaunch.adapters.gcp.vertex_study import decode, study_spec, sweep_state, trial_of
from relaunch.domain.spec_sweep import SweepSpec


def sweep(**fields: Any) -> SweepSpec:
    base: dict[str, Any] = {
        "method": "random",
        "parameters": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "max_trials": 4,
        "parallel_trials": 2,
    }
    return SweepSpec.model_validate(base | fields)


@pytest.mark.parametrize(
    ("method", "algorithm"),
    [("grid", "GRID_SEARCH"), ("random", "RANDOM_SEARCH"), ("bayes", "ALGORITHM_UNSPECIFIED")],
)
def test_each_method_maps_to_its_vertex_algorithm(method: str, algorithm: str) -> None:
    spec = sweep(method=method, parameters={"n": {"type": "int", "low": 1, "high": 3}})

    assert study_spec(spec)["algorithm"] == algorithm


def test_objective_parameters_and_measurement_selection() -> None:
    spec = sweep(
        objective={"metric": "val_loss", "direction": "minimize"},
        parameters={
            "C": {"type": "float", "low": 0.01, "high": 10, "log": True},
            "lr": {"type": "float", "low": 0.1, "high": 0.5},
            "depth": {"type": "int", "low": 2, "high": 64, "log": True},
            "max_iter": {"type": "int", "low": 200, "high": 1000, "step": 400},
            "solver": {"type": "categorical", "values": ["lbfgs", "saga"]},
            "batch": {"type": "categorical", "values": [64, 16, 32]},
            "flag": {"type": "categorical", "values": [True, False]},
        },
    )

    study = study_spec(spec)

    assert study["metrics"] == [{"metric_id": "val_loss", "goal": "MINIMIZE"}]
    assert study["measurement_selection_type"] == "LAST_MEASUREMENT"
    by_id = {p["parameter_id"]: p for p in study["parameters"]}
    assert by_id["C"] == {
        "parameter_id": "C",
        "double_value_spec": {"min_value": 0.01, "max_value": 10.0},
        "scale_type": "UNIT_LOG_SCALE",
    }
    assert by_id["lr"]["scale_type"] == "UNIT_LINEAR_SCALE"
    assert by_id["depth"] == {
        "parameter_id": "depth",
        "integer_value_spec": {"min_value": 2, "max_value": 64},
        "scale_type": "UNIT_LOG_SCALE",
    }
    assert by_id["max_iter"]["discrete_value_spec"] == {"values": [200.0, 600.0, 1000.0]}
    assert by_id["solver"] == {"parameter_id": "solver", "categorical_value_spec": {"values": ["lbfgs", "saga"]}}
    assert by_id["batch"]["discrete_value_spec"] == {"values": [16.0, 32.0, 64.0]}  # Vertex wants them increasing
    assert by_id["flag"]["categorical_value_spec"] == {"values": ["true", "false"]}
    assert "median_automated_stopping_spec" not in study and "decay_curve_stopping_spec" not in study


def test_early_stopping_maps_median_to_the_median_rule_and_hyperband_to_the_decay_curve() -> None:
    median = study_spec(sweep(early_stopping={"type": "median", "startup_trials": 2}))
    hyperband = study_spec(sweep(early_stopping={"type": "hyperband", "max_resource": 9}))

    assert median["median_automated_stopping_spec"] == {"use_elapsed_duration": False}
    assert "decay_curve_stopping_spec" not in median
    assert hyperband["decay_curve_stopping_spec"] == {"use_elapsed_duration": False}
    assert "median_automated_stopping_spec" not in hyperband


def test_values_vertex_sends_back_decode_to_the_spec_types() -> None:
    spec = sweep(
        parameters={
            "max_iter": {"type": "int", "low": 200, "high": 1000, "step": 400},
            "flag": {"type": "categorical", "values": [True, False]},
            "batch": {"type": "categorical", "values": [16, 32]},
            "C": {"type": "float", "low": 0.01, "high": 10},
        }
    )
    params = spec.parameters

    assert decode("max_iter", params["max_iter"], 600.0) == 600
    assert isinstance(decode("max_iter", params["max_iter"], 600.0), int)
    assert decode("flag", params["flag"], "false") is False
    assert decode("batch", params["batch"], 32.0) == 32 and isinstance(decode("batch", params["batch"], 32.0), int)
    assert decode("C", params["C"], 0.5) == 0.5
    with pytest.raises(ValueError, match=r"^parameter flag: Vertex AI sent 'maybe', not one of the spec's values$"):
        decode("flag", params["flag"], "maybe")
    with pytest.raises(ValueError, match="parameter C: Vertex AI sent 11"):
        decode("C", params["C"], 11.0)


def trial_json(**fields: Any) -> dict[str, Any]:
    return {
        "id": "3",
        "state": "SUCCEEDED",
        "parameters": [{"parameterId": "C", "value": 0.5}],
        "finalMeasurement": {"stepCount": "1", "metrics": [{"metricId": "val_accuracy", "value": 0.93}]},
        "startTime": "2026-12-07T10:00:00Z",
        "endTime": "2026-12-07T10:00:30Z",
        "customJob": "projects/1/locations/r/customJobs/9",
    } | fields


def as_proto(fields: dict[str, Any]) -> Any:
    import json

    from google.cloud import aiplatform_v1 as v1

    return v1.Trial.from_json(json.dumps(fields))


def test_a_vertex_trial_becomes_a_trial_whose_model_is_under_its_id() -> None:
    spec = sweep()

    trial = trial_of(spec, as_proto(trial_json()), base="gs://b/runs/r1", job_state="JOB_STATE_RUNNING")

    assert trial.number == 3 and trial.params == {"C": 0.5} and trial.state == "succeeded"
    assert trial.objective == pytest.approx(0.93)
    assert trial.output_dir == "gs://b/runs/r1/3"  # Vertex sets AIP_MODEL_DIR=<base>/<trial id>/model
    assert trial.seconds == pytest.approx(30.0)
    assert trial.job_id == "projects/1/locations/r/customJobs/9"


def test_trial_states_infeasible_no_metric_and_cancelled() -> None:
    spec = sweep()
    infeasible = as_proto(trial_json(state="INFEASIBLE", finalMeasurement={}, infeasibleReason="OOM"))
    silent = as_proto(trial_json(finalMeasurement={"metrics": [{"metricId": "loss", "value": 1.0}]}))
    active = as_proto(trial_json(state="ACTIVE", finalMeasurement={}, endTime=None))

    assert trial_of(spec, infeasible, "gs://b/o", "JOB_STATE_RUNNING").state == "failed"
    assert trial_of(spec, infeasible, "gs://b/o", "JOB_STATE_RUNNING").message == "OOM"
    reported_none = trial_of(spec, silent, "gs://b/o", "JOB_STATE_RUNNING")
    assert (reported_none.state, reported_none.message) == ("failed", "the trial reported no val_accuracy")
    assert trial_of(spec, active, "gs://b/o", "JOB_STATE_RUNNING").state == "running"
    assert trial_of(spec, active, "gs://b/o", "JOB_STATE_CANCELLED").state == "cancelled"
    with pytest.raises(ValueError, match="trial id"):
        trial_of(spec, as_proto(trial_json(id="../x")), "gs://b/o", "JOB_STATE_RUNNING")


def test_the_sweep_state_follows_the_job_and_names_the_winner() -> None:
    spec = sweep()
    won = trial_of(spec, as_proto(trial_json()), "gs://b/o", "JOB_STATE_SUCCEEDED")
    lost = trial_of(spec, as_proto(trial_json(id="4", state="INFEASIBLE")), "gs://b/o", "JOB_STATE_SUCCEEDED")

    assert sweep_state(spec, "JOB_STATE_RUNNING", "", [won]) == ("running", "1 of 4 trials done")
    assert sweep_state(spec, "JOB_STATE_SUCCEEDED", "", [won, lost]) == (
        "succeeded",
        "trial 3 won: val_accuracy 0.9300 (2 trials)",
    )
    assert sweep_state(spec, "JOB_STATE_SUCCEEDED", "", [lost])[0] == "failed"
    assert sweep_state(spec, "JOB_STATE_FAILED", "quota", [won]) == ("failed", "quota")
    assert sweep_state(spec, "JOB_STATE_CANCELLED", "", [won])[0] == "cancelled"


def test_what_vertex_cannot_carry_or_did_not_ask_for_is_refused() -> None:
    spec = sweep()
    with pytest.raises(ValueError, match="1 and '1' read alike"):  # refused with the spec, before any sweep starts
        sweep(parameters={"k": {"type": "categorical", "values": [1, "1", "a"]}})
    stranger = as_proto(trial_json(parameters=[{"parameterId": "gamma", "value": 1.0}]))
    with pytest.raises(ValueError, match="Vertex AI sent a parameter 'gamma' the sweep does not have"):
        trial_of(spec, stranger, "gs://b/o", "JOB_STATE_RUNNING")
