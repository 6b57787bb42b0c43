"""A sweep spec as a Vertex AI StudySpec, and Vertex's trials back as Trials (no API calls here).

The mapping, and why:
- method: grid -> GRID_SEARCH, random -> RANDOM_SEARCH, bayes -> ALGORITHM_UNSPECIFIED, which Vertex documents as
  its default Bayesian optimisation (Vizier).
- float -> DOUBLE (UNIT_LOG_SCALE when `log`), int with step 1 -> INTEGER (log likewise), int with a step ->
  DISCRETE (its values), a categorical of numbers -> DISCRETE (Vertex wants them increasing), any other categorical
  -> CATEGORICAL of strings (booleans as "true"/"false"). Values Vertex sends back are decoded to the spec's types,
  and one outside the spec is refused: the trial list is input from outside.
- objective -> one metric spec (id, MAXIMIZE/MINIMIZE), measured by LAST_MEASUREMENT, the value a trial reported
  last, as the local backend scores a trial.
- early stopping: median -> Vertex's median automated stopping rule, the same rule (a trial worse than the median of
  earlier trials at its step stops); hyperband -> Vertex's decay-curve automated stopping, since Vertex runs no
  successive halving and the decay curve is its stopping rule on learning curves. Both on step counts, not elapsed
  time; startup_trials, warmup_steps and hyperband's resources have no Vertex field: Vertex decides them itself.
"""

from __future__ import annotations

import math
from typing import Any

from relaunch.domain.spec_sweep import CategoricalParam, FloatParam, IntParam, Scalar, SweepSpec, argument_text
from relaunch.domain.sweep import FINISHED, SweepState, Trial, TrialState, ended

ALGORITHMS = {"grid": "GRID_SEARCH", "random": "RANDOM_SEARCH", "bayes": "ALGORITHM_UNSPECIFIED"}
GOALS = {"maximize": "MAXIMIZE", "minimize": "MINIMIZE"}
TRIAL_STATES: dict[str, TrialState] = {
    "STATE_UNSPECIFIED": "running",
    "REQUESTED": "running",
    "ACTIVE": "running",
    "STOPPING": "running",
    "SUCCEEDED": "succeeded",
    "INFEASIBLE": "failed",
}
ENDED_JOB = {"JOB_STATE_FAILED", "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
CANCELLED_JOB = {"JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"}
Param = FloatParam | IntParam | CategoricalParam


def study_spec(spec: SweepSpec) -> dict[str, Any]:
    """The StudySpec (as a proto-plus mapping) of a sweep."""
    study: dict[str, Any] = {
        "metrics": [{"metric_id": spec.objective.metric, "goal": GOALS[spec.objective.direction]}],
        "parameters": [parameter_spec(name, param) for name, param in spec.parameters.items()],
        "algorithm": ALGORITHMS[spec.method],
        "measurement_selection_type": "LAST_MEASUREMENT",
    }
    if spec.early_stopping is not None:
        rule = "median_automated_stopping_spec" if spec.early_stopping.type == "median" else "decay_curve_stopping_spec"
        study[rule] = {"use_elapsed_duration": False}
    return study


def parameter_spec(name: str, param: Param) -> dict[str, Any]:
    """One ParameterSpec."""
    if isinstance(param, FloatParam):
        return {
            "parameter_id": name,
            "double_value_spec": {"min_value": param.low, "max_value": param.high},
            "scale_type": _scale(param.log),
        }
    if isinstance(param, IntParam) and param.step == 1:
        return {
            "parameter_id": name,
            "integer_value_spec": {"min_value": param.low, "max_value": param.high},
            "scale_type": _scale(param.log),
        }
    numbers = _numbers(param)
    if numbers is not None:
        return {"parameter_id": name, "discrete_value_spec": {"values": sorted(float(v) for v in numbers)}}
    assert isinstance(param, CategoricalParam)
    texts = [argument_text(v) for v in param.values]  # distinct: the spec refuses values that read alike
    return {"parameter_id": name, "categorical_value_spec": {"values": texts}}


def decode(name: str, param: Param, value: Any) -> Scalar:
    """A value Vertex chose, in the spec's type; ValueError if it is not one the spec allows."""
    refused = ValueError(f"parameter {name}: Vertex AI sent {value!r:.60}, not one of the spec's values")
    if isinstance(param, CategoricalParam) and _numbers(param) is None:
        found = {argument_text(v): v for v in param.values}
        if not isinstance(value, str) or value not in found:
            raise refused
        return found[value]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refused
    if isinstance(param, FloatParam):
        if not param.low <= value <= param.high:
            raise refused
        return float(value)
    if isinstance(param, IntParam) and param.step == 1:
        if value != round(value) or not param.low <= value <= param.high:
            raise refused
        return int(value)
    for allowed in _numbers(param) or []:
        if math.isclose(float(allowed), value, rel_tol=1e-9, abs_tol=1e-12):
            return allowed
    raise refused


def trial_of(spec: SweepSpec, trial: Any, base: str, job_state: str) -> Trial:
    """A Vertex Trial (proto) as a Trial; its output is <base>/<trial id>, where Vertex points its AIP_MODEL_DIR."""
    if not trial.id.isdigit() or len(trial.id) > 9:
        raise ValueError(f"Vertex AI sent a trial id {trial.id[:40]!r}; a trial id is a number")
    params: dict[str, Scalar] = {}
    for item in trial.parameters:
        if item.parameter_id not in spec.parameters:
            raise ValueError(f"Vertex AI sent a parameter {item.parameter_id[:40]!r} the sweep does not have")
        params[item.parameter_id] = decode(item.parameter_id, spec.parameters[item.parameter_id], item.value)
    state = TRIAL_STATES.get(trial.state.name, "running")
    message = trial.infeasible_reason
    metric = spec.objective.metric
    values = [m.value for m in trial.final_measurement.metrics if m.metric_id == metric]
    objective = values[-1] if values and math.isfinite(values[-1]) else None
    if state == "succeeded" and objective is None:
        state, message = "failed", f"the trial reported no {metric}"
    if state == "running" and (job_state in CANCELLED_JOB or job_state in ENDED_JOB):
        state = "cancelled"
    return Trial(
        number=int(trial.id),
        params=params,
        state=state,
        objective=objective if state == "succeeded" else None,
        output_dir=f"{base.rstrip('/')}/{trial.id}",
        job_id=trial.custom_job or None,
        started_at=_seconds(trial.start_time),
        finished_at=_seconds(trial.end_time),
        message=message,
    )


def sweep_state(spec: SweepSpec, job_state: str, error: str, trials: list[Trial]) -> tuple[SweepState, str]:
    """The sweep's state and message from the tuning job's state: Vertex decides when the sweep is over (a grid
    or Vizier may end it before max_trial_count)."""
    if job_state in CANCELLED_JOB:
        return "cancelled", "the sweep was cancelled"
    if job_state in ENDED_JOB:
        return "failed", error or job_state
    if job_state != "JOB_STATE_SUCCEEDED":
        return "running", f"{sum(t.state in FINISHED for t in trials)} of {spec.trial_budget()} trials done"
    return ended(spec, trials)


def _numbers(param: Param) -> list[int | float] | None:
    """The values of a parameter Vertex takes as DISCRETE (numbers, not booleans), else None."""
    if isinstance(param, IntParam):
        return list(param.values())
    if isinstance(param, CategoricalParam):
        values = param.values
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return [v for v in values if isinstance(v, int | float)]
    return None


def _scale(log: bool) -> str:
    return "UNIT_LOG_SCALE" if log else "UNIT_LINEAR_SCALE"


def _seconds(stamp: Any) -> float | None:
    return float(stamp.timestamp()) if stamp else None
