"""The `sweep:` section of a pipeline spec: a hyperparameter search instead of one training. Pure.

The fields are those every sweep backend shares (Optuna on the local agent, Vertex AI's HyperparameterTuningJob, a
W&B sweep): a search method, typed parameter ranges, one objective with its direction, a trial budget, a parallelism
and an optional early-stopping rule. Nothing backend-specific lives here, so one spec runs on any of them.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"  # a parameter or metric name: no spaces, quotes or shell characters
MAX_TRIALS = 1000
MAX_PARALLEL = 32


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class FloatParam(_Strict):
    """A real-valued parameter drawn from [low, high], on a log scale if `log`."""

    type: Literal["float"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    log: bool = Field(default=False, description="Sample on a log scale (low must then be > 0)")

    @model_validator(mode="after")
    def _ordered(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, not {self.low:g}")
        return self


class IntParam(_Strict):
    """An integer parameter in [low, high] by `step` (or on a log scale)."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = Field(default=False, description="Sample on a log scale (low must then be >= 1, step 1)")

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("a log scale needs low >= 1 and step 1")
        return self

    def values(self) -> list[int]:
        """Every value a grid visits."""
        return list(range(self.low, self.high + 1, self.step))


Scalar = Annotated[str, Field(max_length=200)] | bool | int | float


def argument_text(value: Scalar) -> str:
    """A value as a trial's command line carries it (`--NAME=VALUE`, Vertex AI's categorical values are text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class CategoricalParam(_Strict):
    """A parameter taking one of a list of values."""

    type: Literal["categorical"]
    values: list[Scalar] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _finite_and_distinct(self) -> CategoricalParam:
        if any(isinstance(v, float) and not math.isfinite(v) for v in self.values):
            raise ValueError("values must be finite")
        if len(set(map(repr, self.values))) != len(self.values):
            raise ValueError("values must be distinct")
        texts = [argument_text(v) for v in self.values]  # how Vertex AI carries them, and a trial reads them
        alike = [v for v in self.values if texts.count(argument_text(v)) > 1]
        if alike:
            shown = " and ".join(repr(v) for v in alike[:2])
            raise ValueError(f"values must differ as text: {shown} read alike on a trial's command line")
        return self


Parameter = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class Objective(_Strict):
    """The metric each trial reports on its validation split, and whether higher or lower is better."""

    metric: str = Field(pattern=NAME, description="Name the training reports, e.g. val_accuracy")
    direction: Literal["maximize", "minimize"]


class MedianStopping(_Strict):
    """Stop a trial whose intermediate objective is worse than the median of earlier trials at the same step."""

    type: Literal["median"]
    startup_trials: int = Field(default=5, ge=0, le=MAX_TRIALS, description="Trials that always run to the end")
    warmup_steps: int = Field(default=0, ge=0, description="Steps of each trial never stopped")


class Hyperband(_Strict):
    """Hyperband: successive halving over brackets of a resource (the step a trial reports)."""

    type: Literal["hyperband"]
    min_resource: int = Field(default=1, ge=1)
    max_resource: int | None = Field(default=None, ge=1, description="Steps of a full trial (default: learnt)")
    reduction_factor: int = Field(default=3, ge=2, le=10)


EarlyStopping = Annotated[MedianStopping | Hyperband, Field(discriminator="type")]


class SweepSpec(_Strict):
    """A hyperparameter search: trials of the training job, each with parameters the method chose."""

    method: Literal["grid", "random", "bayes"] = Field(description="grid: every combination; bayes: TPE / Vizier")
    parameters: dict[Annotated[str, Field(pattern=NAME)], Parameter] = Field(min_length=1, max_length=50)
    objective: Objective
    max_trials: int = Field(ge=1, le=MAX_TRIALS, description="Trials started at most (a grid stops when visited)")
    parallel_trials: int = Field(default=1, ge=1, le=MAX_PARALLEL, description="Trials running at once at most")
    early_stopping: EarlyStopping | None = Field(default=None, description="Stop unpromising trials early")

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.parallel_trials > self.max_trials:
            raise ValueError(f"parallel_trials ({self.parallel_trials}) exceeds max_trials ({self.max_trials})")
        if self.method == "grid":
            for name, param in self.parameters.items():
                if isinstance(param, FloatParam):
                    raise ValueError(f"parameters.{name}: a grid needs values it can list: use categorical values")
        return self

    def grid_size(self) -> int:
        """How many points a grid over these parameters has."""
        size = 1
        for param in self.parameters.values():
            size *= len(grid_values(param))
        return size

    def trial_budget(self) -> int:
        """Trials the sweep runs at most: max_trials, or fewer when a grid has fewer points."""
        return min(self.max_trials, self.grid_size()) if self.method == "grid" else self.max_trials


def grid_values(param: FloatParam | IntParam | CategoricalParam) -> list[Scalar]:
    """The values a grid visits for one parameter (a float range has none: the spec refuses it in a grid)."""
    if isinstance(param, CategoricalParam):
        return list(param.values)
    return list(param.values()) if isinstance(param, IntParam) else []
