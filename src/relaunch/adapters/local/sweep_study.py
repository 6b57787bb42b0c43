"""The Optuna side of a local sweep: the study in a journal file, its sampler and pruner, and the trial's report.

Why Optuna: it has the three methods a spec names (GridSampler, RandomSampler, TPESampler for bayes) and both
early-stopping rules (MedianPruner, HyperbandPruner), and its ask-and-tell interface lets trials run as separate agent
jobs rather than as functions in this process. Its journal storage is an append-only file written under a file lock,
so the study survives a kill -9 of the stack, and several processes asking at once see one study. No database server.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial

from relaunch.domain.spec_sweep import CategoricalParam, FloatParam, Hyperband, IntParam, SweepSpec, grid_values

optuna.logging.set_verbosity(optuna.logging.WARNING)  # a trial's result goes to the run's timeline, not stderr

MAX_REPORT_BYTES = 1 << 20  # a trial's metrics file is read up to this much: it is the job's, so untrusted
STUDY = "sweep"


def open_study(folder: Path, spec: SweepSpec, seed_key: str) -> optuna.Study:
    """The sweep's study in `folder`/journal.log (created on first use), with a sampler seeded for this moment.

    The sampler is built anew on each call (every poll may be another process), so its seed comes from `seed_key`
    and the number of trials so far: a restarted stack does not draw the same parameters again.
    """
    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    direction = spec.objective.direction
    study = optuna.create_study(storage=storage, study_name=STUDY, direction=direction, load_if_exists=True)
    seed = _seed(f"{seed_key}:{len(study.get_trials(deepcopy=False))}")
    return optuna.load_study(study_name=STUDY, storage=storage, sampler=_sampler(spec, seed), pruner=_pruner(spec))


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """Optuna's distribution of each parameter."""
    return {name: _distribution(param) for name, param in spec.parameters.items()}


def _distribution(param: FloatParam | IntParam | CategoricalParam) -> BaseDistribution:
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    return CategoricalDistribution(param.values)


def _sampler(spec: SweepSpec, seed: int) -> optuna.samplers.BaseSampler:
    if spec.method == "grid":
        space = {name: grid_values(param) for name, param in spec.parameters.items()}
        return _Grid(space)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


class _Grid(optuna.samplers.BaseSampler):
    """Every point of the grid once, in order: the n-th trial that got parameters takes the n-th point.

    Not Optuna's GridSampler: it picks points at random per process (two pollers may pick one twice) and calls
    `study.stop()` once they are all visited, which only `Study.optimize` may do. Points are decoded from their
    index, so a large grid is never listed.
    """

    def __init__(self, space: dict[str, list[Any]]) -> None:
        self.space = space

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        names = set(self.space)
        index = sum(1 for t in study.get_trials(deepcopy=False) if t.number < trial.number and set(t.params) == names)
        for name, values in self.space.items():  # mixed radix: the first parameter varies fastest
            index, digit = divmod(index, len(values))
            if name == param_name:
                return values[digit]
        raise KeyError(param_name)


def _pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    rule = spec.early_stopping
    if rule is None:
        return optuna.pruners.NopPruner()
    if isinstance(rule, Hyperband):
        top = rule.max_resource if rule.max_resource is not None else "auto"
        return optuna.pruners.HyperbandPruner(rule.min_resource, top, rule.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=rule.startup_trials, n_warmup_steps=rule.warmup_steps)


def _seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def read_report(path: Path, metric: str) -> dict[int, float]:
    """The objective a trial reported, by step: its metrics file, one JSON object a line, `{"step": N, metric: x}`.

    The file is the job's own output, so it is read as hostile: bounded, every line an object with an integer step
    and a finite number, else ValueError naming the line. A missing file is an empty report.
    """
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        raw = f.read(MAX_REPORT_BYTES + 1)
    if len(raw) > MAX_REPORT_BYTES:
        raise ValueError(f"{path.name} is over {MAX_REPORT_BYTES} bytes")
    values: dict[int, float] = {}
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            step, value = _report_line(line, metric, f"{path.name} line {n}")
            values[step] = value
    return values


def _report_line(line: str, metric: str, where: str) -> tuple[int, float]:
    try:
        entry: Any = json.loads(line)
    except ValueError:
        raise ValueError(f"{where}: not JSON") from None
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not a JSON object")
    step, value = entry.get("step"), entry.get(metric)
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**31:
        raise ValueError(f"{where}: step must be an integer >= 0")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{where}: {metric} must be a finite number")
    return step, float(value)
