"""A sweep spec as a W&B sweep configuration, and a W&B sweep and its runs back (parameters, states). Pure.

The mapping, and why:
- method: grid, random and bayes are W&B's own names. A grid lists values, so an int range becomes its `values`.
- objective -> `metric: {name, goal}`; W&B scores a run by that key of its summary.
- float -> `uniform` (`log_uniform_values` when `log`: W&B's log distribution taking the range itself, not its
  logarithms); int with step 1 -> `int_uniform` (`q_log_uniform_values` with q 1 when `log`); int with a step and
  categoricals -> `values`.
- early stopping: hyperband -> W&B's `hyperband` (min_iter = min_resource, eta = reduction_factor, max_iter when
  set). W&B has no median rule; median -> hyperband with eta 2, min_iter at the warm-up: halving at each milestone
  keeps the better half, which is the median rule (a trial worse than the median at its step stops).
- run_cap = the trial budget; the W&B scheduler's `num_workers` = parallel_trials.

Names W&B would misread are refused before anything is sent: W&B reads a dotted summary key as a nested path (a
metric `val.acc` would be looked up as summary["val"]["acc"]), keeps keys starting with "_" for itself (`_wandb`,
`_step`, `_runtime`), and a parameter named like relaunch's own run-config keys (`relaunch_*`) would overwrite them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from relaunch.domain.spec_sweep import CategoricalParam, FloatParam, IntParam, Scalar, SweepSpec
from relaunch.domain.sweep import SweepState, Trial, TrialState, ended, outcome

RESERVED_PREFIX = "relaunch_"  # relaunch's own keys in a W&B run's config
Param = FloatParam | IntParam | CategoricalParam
TRIAL_STATES: dict[str, TrialState] = {
    "pending": "running",
    "running": "running",
    "preempting": "running",
    "preempted": "running",
    "finished": "succeeded",
    "failed": "failed",
    "crashed": "failed",
    "killed": "cancelled",
}


def check_names(spec: SweepSpec) -> None:
    """ValueError naming the first metric or parameter name a W&B sweep cannot carry."""
    names = [("sweep.objective.metric", spec.objective.metric)]
    names += [(f"sweep.parameters.{name}", name) for name in spec.parameters]
    for field, name in names:
        if "." in name:
            raise ValueError(f"{field}: W&B reads a dotted name as a nested key; {name!r} cannot be a W&B sweep's")
        if name.startswith("_"):
            raise ValueError(f"{field}: W&B keeps names starting with '_' for itself; {name!r} cannot be used")
        if name.startswith(RESERVED_PREFIX) and field != "sweep.objective.metric":
            raise ValueError(f"{field}: {name!r} would overwrite relaunch's own run-config key")


def sweep_config(spec: SweepSpec, *, name: str, description: str, image: str) -> dict[str, Any]:
    """The W&B sweep configuration of a sweep spec (without the launch-sweep `scheduler` section)."""
    check_names(spec)
    config: dict[str, Any] = {
        "name": name,
        "description": description,
        "method": spec.method,
        "metric": {"name": spec.objective.metric, "goal": spec.objective.direction},
        "parameters": {key: parameter(param, grid=spec.method == "grid") for key, param in spec.parameters.items()},
        "run_cap": spec.trial_budget(),
        "image_uri": image,
    }
    if spec.early_stopping is not None:
        config["early_terminate"] = early_terminate(spec)
    return config


def parameter(param: Param, *, grid: bool) -> dict[str, Any]:
    """One parameter of a W&B sweep configuration."""
    if isinstance(param, FloatParam):
        distribution = "log_uniform_values" if param.log else "uniform"
        return {"distribution": distribution, "min": param.low, "max": param.high}
    if isinstance(param, IntParam) and param.step == 1 and not grid:
        if param.log:
            return {"distribution": "q_log_uniform_values", "min": param.low, "max": param.high, "q": 1}
        return {"distribution": "int_uniform", "min": param.low, "max": param.high}
    values = list(param.values()) if isinstance(param, IntParam) else list(param.values)
    return {"values": values}


def early_terminate(spec: SweepSpec) -> dict[str, Any]:
    """W&B's early_terminate section (hyperband, the only rule W&B has)."""
    rule = spec.early_stopping
    if rule is None:
        return {}
    if rule.type == "median":
        return {"type": "hyperband", "min_iter": max(1, rule.warmup_steps), "eta": 2}
    section: dict[str, Any] = {"type": "hyperband", "min_iter": rule.min_resource, "eta": rule.reduction_factor}
    if rule.max_resource is not None:
        section["max_iter"] = rule.max_resource
    return section


def trial_params(spec: SweepSpec, config: dict[str, Any]) -> dict[str, Scalar]:
    """A trial's parameters from its W&B run's config (`{name: {"value": v}}` or `{name: v}`); ValueError for a
    value the spec does not allow: the run's config is input from outside."""
    params: dict[str, Scalar] = {}
    for name, param in spec.parameters.items():
        if name not in config:
            continue
        raw = config[name]
        value = raw.get("value") if isinstance(raw, dict) else raw
        params[name] = decode(name, param, value)
    return params


def decode(name: str, param: Param, value: Any) -> Scalar:
    """A value W&B chose, in the spec's type; ValueError if it is not one the spec allows."""
    refused = ValueError(f"parameter {name}: W&B sent {value!r:.60}, not one of the spec's values")
    if isinstance(param, CategoricalParam):
        for allowed in param.values:
            if type(allowed) is type(value) and allowed == value:
                return allowed
        raise refused
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refused
    if not param.low <= value <= param.high:
        raise refused
    if isinstance(param, FloatParam):
        return float(value)
    if value != round(value) or (int(value) - param.low) % param.step:
        raise refused
    return int(value)


def about(sweep: dict[str, Any]) -> tuple[SweepSpec, str]:
    """The sweep spec and trial output base relaunch wrote in the sweep's description; ValueError if absent."""
    name = str(sweep.get("name"))[:40]
    config = sweep.get("config")
    try:
        loaded = yaml.safe_load(config) if isinstance(config, str) else None
        note = json.loads(str((loaded or {}).get("description") or sweep.get("description") or ""))
        return SweepSpec.model_validate(note["sweep"]), str(note["trial_output"])
    except (ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ValueError(
            f"W&B sweep {name} was not started by relaunch: its description is no relaunch note ({first})"
        ) from None


def sweep_state(spec: SweepSpec, wandb_state: str, trials: list[Trial]) -> tuple[SweepState, str]:
    """The sweep's state: cancelled when W&B says so, else outcome(); once W&B's scheduler finished the sweep with
    fewer trials than the budget (nothing left to suggest), the budget is what ran."""
    if wandb_state == "CANCELED":
        return "cancelled", "the sweep was cancelled"
    state, message = outcome(spec, trials)
    if wandb_state == "FINISHED" and state == "running" and trials and not any(t.state == "running" for t in trials):
        return ended(spec, trials)
    return state, message


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object W&B sent as text (or already parsed); anything else is empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}
