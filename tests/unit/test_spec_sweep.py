"""The `sweep:` section of a pipeline spec: what a sweep searches, and every mistake named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.spec import SpecError
from relaunch.domain.spec_sweep import CategoricalParam, FloatParam, IntParam

BASE = """
name: demo
source: {repo: acme/models}
train: {command: [python, train.py]}
evaluate: {command: [python, evaluate.py]}
endpoint: demo
"""
SWEEP = """
sweep:
  method: bayes
  parameters:
    C: {type: float, low: 0.001, high: 10, log: true}
    max_iter: {type: int, low: 50, high: 400, step: 50}
    solver: {type: categorical, values: [lbfgs, saga]}
  objective: {metric: val_accuracy, direction: maximize}
  max_trials: 8
  parallel_trials: 2
  early_stopping: {type: median, startup_trials: 2}
"""


def load(tmp_path: Path, sweep: str) -> object:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + sweep)
    return load_spec(path)


def test_a_sweep_section_loads_with_every_kind_of_parameter(tmp_path: Path) -> None:
    spec = load(tmp_path, SWEEP)
    sweep = spec.sweep  # type: ignore[attr-defined]
    assert sweep.method == "bayes" and sweep.max_trials == 8 and sweep.parallel_trials == 2
    params = sweep.parameters
    assert isinstance(params["C"], FloatParam) and params["C"].log
    assert isinstance(params["max_iter"], IntParam) and params["max_iter"].step == 50
    assert isinstance(params["solver"], CategoricalParam) and params["solver"].values == ["lbfgs", "saga"]
    assert sweep.objective.direction == "maximize" and sweep.early_stopping.type == "median"


def test_no_sweep_section_means_a_single_training(tmp_path: Path) -> None:
    assert load(tmp_path, "").sweep is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("method: bayes", "method: annealing", "sweep.method"),
        ("max_trials: 8", "max_trials: 0", "sweep.max_trials"),
        ("max_trials: 8", "max_trial: 8", "sweep.max_trial"),
        ("parallel_trials: 2", "parallel_trials: 9", "parallel_trials (9) exceeds max_trials"),
        ("direction: maximize", "direction: up", "sweep.objective.direction"),
        ("{metric: val_accuracy,", "{metric: 'val accuracy; rm',", "sweep.objective.metric"),
        ("low: 0.001, high: 10", "low: 10, high: 0.001", "sweep.parameters.C"),
        ("low: 0.001, high: 10, log: true", "low: 0, high: 10, log: true", "sweep.parameters.C"),
        ("low: 0.001, high: 10", "low: .nan, high: 10", "sweep.parameters.C"),
        ("step: 50}", "step: 50, stride: 2}", "sweep.parameters.max_iter.int.stride"),
        ("values: [lbfgs, saga]", "values: []", "sweep.parameters.solver.categorical.values"),
        ("{type: categorical,", "{type: choice,", "sweep.parameters.solver"),
        ("{type: median, startup_trials: 2}", "{type: asha}", "sweep.early_stopping"),
        ("    C: {", "    'C x': {", "sweep.parameters"),
    ],
)
def test_a_wrong_sweep_field_is_a_spec_error_naming_it(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in SWEEP
    with pytest.raises(SpecError) as err:
        load(tmp_path, SWEEP.replace(old, new))
    assert field in str(err.value), str(err.value)


def test_a_grid_sweep_needs_values_it_can_enumerate(tmp_path: Path) -> None:
    grid = SWEEP.replace("method: bayes", "method: grid")
    with pytest.raises(SpecError, match=r"sweep.*C.*grid"):
        load(tmp_path, grid)
    enumerable = grid.replace("{type: float, low: 0.001, high: 10, log: true}", "{type: categorical, values: [0.1, 1]}")
    spec = load(tmp_path, enumerable)
    assert spec.sweep.grid_size() == 2 * 8 * 2  # type: ignore[attr-defined]


def test_hyperband_early_stopping_has_its_resources(tmp_path: Path) -> None:
    spec = load(tmp_path, SWEEP.replace("{type: median, startup_trials: 2}", "{type: hyperband, max_resource: 9}"))
    stopping = spec.sweep.early_stopping  # type: ignore[attr-defined]
    assert stopping.type == "hyperband" and stopping.min_resource == 1 and stopping.reduction_factor == 3


def test_categorical_values_that_read_alike_on_a_command_line_are_refused_when_the_spec_loads(tmp_path: Path) -> None:
    """1 and "1" both reach a trial as `--depth=1` (Vertex passes arguments as text): one value, refused at load, not
    when a Vertex sweep starts."""
    text = SWEEP.replace("values: [lbfgs, saga]", "values: [1, '1']")
    with pytest.raises(SpecError, match=r"sweep\.parameters\.solver.*1 and '1' read alike"):
        load(tmp_path, text)


def test_a_boolean_and_its_text_read_alike_too(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="True and 'true' read alike"):
        load(tmp_path, SWEEP.replace("values: [lbfgs, saga]", "values: [true, 'true']"))
