"""Sweeps: the trials of a hyperparameter search, the port every sweep backend implements, and the pure decisions
about them (how many trials to start, which one won, what the run's timeline and gate report say). Pure.

The port is shaped after what the three backends share: Vertex AI's HyperparameterTuningJob takes a trial job spec, a
study spec (parameters, metric, goal, algorithm, early stopping) and max/parallel trial counts, and lists its trials
with their parameters, final measurement and state; a W&B sweep takes the same configuration and its runs are the
trials; the local backend keeps an Optuna study. So a backend gets the whole sweep at once (`start`), is asked what
its trials did (`status`), and stops them all (`cancel`); the orchestrator never schedules trials itself.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from relaunch.domain.cost import estimate
from relaunch.domain.model import JobRequest, JobStatus, MachineSpec, TimelineEntry
from relaunch.domain.spec_sweep import Scalar, SweepSpec

TrialState = Literal["running", "succeeded", "failed", "pruned", "cancelled"]
SweepState = Literal["running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "pruned", "cancelled"})
PARAMS_VARIABLE = "RELAUNCH_TRIAL_PARAMS"  # the trial's parameters, a JSON object
METRICS_VARIABLE = "RELAUNCH_TRIAL_METRICS"  # where the trial appends its objective, one JSON object a line
NUMBER_VARIABLE = "RELAUNCH_TRIAL_NUMBER"


class SweepRequest(BaseModel):
    """A sweep for a SweepBackend: the training job every trial runs, and the search. `key` makes it idempotent."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    key: str
    trial: JobRequest = Field(description="The training job; each trial adds its parameters and its own output")
    sweep: SweepSpec


class Trial(BaseModel):
    """One trial as its backend reports it."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    number: int = Field(ge=0)
    params: dict[str, Scalar] = Field(default_factory=dict)
    state: TrialState
    objective: float | None = Field(default=None, description="The final objective on the validation split")
    output_dir: str = Field(description="The trial's output base; its model is in <output_dir>/model")
    job_id: str | None = None
    attempts: int = 1
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""

    @property
    def seconds(self) -> float:
        """How long the trial ran (all its attempts' last span; 0 if it never started)."""
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return max(0.0, self.finished_at - self.started_at)


class SweepStatus(BaseModel):
    """What a backend knows of a sweep: its state and every trial started so far."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str
    state: SweepState
    spec: SweepSpec = Field(description="The search the sweep was started with (the pipeline's spec may change)")
    trials: list[Trial] = Field(default_factory=list)
    message: str = ""
    log_tail: str = Field(default="", description="The last failed trial's log tail")


class SweepBackend(Protocol):
    """Runs a sweep's trials (local agent + Optuna, Vertex AI hyperparameter tuning, a W&B sweep on Launch)."""

    def start(self, request: SweepRequest) -> str:
        """Start the sweep, idempotent on request.key; returns the sweep's id."""
        ...

    def status(self, sweep_id: str) -> SweepStatus:
        """The sweep and its trials; asking may move it on (start trials, record results). KeyError if unknown."""
        ...

    def cancel(self, sweep_id: str) -> None:
        """Stop every trial of the sweep and end it `cancelled` (KeyError if unknown)."""
        ...

    def owns(self, job_id: str) -> bool:
        """Whether an id a run holds is one of this backend's sweeps (rather than a training backend's job)."""
        ...


def to_start(spec: SweepSpec, trials: list[Trial]) -> int:
    """How many new trials to start now: up to `parallel_trials` running, `trial_budget()` in all."""
    running = sum(1 for t in trials if t.state == "running")
    return max(0, min(spec.parallel_trials - running, spec.trial_budget() - len(trials)))


def rounds(spec: SweepSpec | None) -> int:
    """How many trial jobs one after another a sweep may take at most (1 for a training without a sweep)."""
    return 1 if spec is None else math.ceil(spec.trial_budget() / spec.parallel_trials)


def best_trial(spec: SweepSpec, trials: list[Trial]) -> Trial | None:
    """The succeeded trial with the best validation objective (the lowest number among equals); None if none."""
    scored = [t for t in trials if t.state == "succeeded" and t.objective is not None and math.isfinite(t.objective)]
    if not scored:
        return None
    sign = -1.0 if spec.objective.direction == "maximize" else 1.0
    return min(scored, key=lambda t: (sign * (t.objective or 0.0), t.number))


def outcome(spec: SweepSpec, trials: list[Trial]) -> tuple[SweepState, str]:
    """The sweep's state once no trial is left to start or running: succeeded with a best trial, else failed."""
    if any(t.state == "running" for t in trials) or to_start(spec, trials) > 0:
        return "running", f"{sum(t.state in FINISHED for t in trials)} of {spec.trial_budget()} trials done"
    return ended(spec, trials)


def ended(spec: SweepSpec, trials: list[Trial]) -> tuple[SweepState, str]:
    """The verdict on a sweep that is over (by its own count, or as its backend says): its best trial won, or none
    succeeded."""
    best = best_trial(spec, trials)
    if best is None:
        last = next((t.message for t in reversed(trials) if t.message), "")
        return (
            "failed",
            f"no trial of the sweep succeeded ({len(trials)} ended){': the last said ' + last if last else ''}",
        )
    return "succeeded", f"trial {best.number} won: {spec.objective.metric} {best.objective:.4f} ({len(trials)} trials)"


def as_job(status: SweepStatus) -> JobStatus:
    """The sweep as one training job: done when the sweep is, and its span is the trials' summed run time, so the
    run's training seconds, and therefore its cost, are the sum of its trials'."""
    starts = [t.started_at for t in status.trials if t.started_at is not None]
    started = min(starts) if starts else None
    total = sum(t.seconds for t in status.trials)
    return JobStatus(
        id=status.id,
        state=status.state,
        message=status.message,
        log_tail=status.log_tail,
        started_at=started,
        finished_at=started + total if started is not None and status.state != "running" else None,
    )


def trial_entry(trial: Trial, metric: str, machine: MachineSpec, *, now: float) -> TimelineEntry:
    """A finished trial on the run's timeline: its parameters, objective and cost."""
    usd = estimate(machine, trial.seconds).usd
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(trial.params.items()))
    scored = f"{metric} {trial.objective:.4f}" if trial.objective is not None else trial.message or trial.state
    data = {
        "trial": trial.number,
        "params": dict(trial.params),
        "state": trial.state,
        "objective": trial.objective,
        "seconds": round(trial.seconds, 3),
        "usd": usd,
    }
    message = f"trial {trial.number} {trial.state} ({shown}): {scored}, {trial.seconds:.1f}s, ${usd:.4f}"
    return TimelineEntry(at=now, kind="trial", message=message, data=data)


def report_section(spec: SweepSpec, trials: list[Trial]) -> str:
    """The gate report's sweep section: how many trials ran and which won, chosen on the validation split only."""
    best = best_trial(spec, trials)
    if best is None:
        return ""
    counts = {s: sum(t.state == s for t in trials) for s in ("succeeded", "pruned", "failed", "cancelled")}
    ran = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    params = ", ".join(f"`{k}={v}`" for k, v in sorted(best.params.items()))
    return (
        f"\n\n### Sweep\n\n{len(trials)} trials ran ({ran}). Trial {best.number} won on the validation split "
        f"({spec.objective.metric} {best.objective:.4f}, {spec.objective.direction}) with {params}; the gate scored "
        "its model on the held-out evaluation split, which no trial saw.\n"
    )
