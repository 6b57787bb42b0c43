"""Failed training and evaluation jobs: one policy (domain/failures.py) for every backend, local agent and Vertex.

An infrastructure failure (preempted, evicted, quota, node lost, the agent killed or restarted) is retried while the
step's `max_retries` allows: the next attempt is submitted at once under the key `<run>:<step>:<n>` with `not_before`
set `retry_delay(n - 1)` seconds ahead (a backend that honours it holds the job; `retry_at` on the run says when), so
a crash after the submit and before the save repeats nothing. A code error, a timeout, or running out of memory fails
the run at once, with the job log's last lines in the failure report (GitHub check/status, Slack, timeline).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from relaunch.domain import effects
from relaunch.domain.failures import Failure, classify, retry_delay, should_retry
from relaunch.domain.model import JobRequest, JobStatus, JobStep, PipelineRun, Stage, TimelineEntry
from relaunch.domain.ports import Runs, TrainingBackend
from relaunch.domain.spec import PipelineSpec
from relaunch.service.coalesce_step import save_after_submit

TAIL_IN_REPORT = 20  # log lines in the markdown report
Fail = Callable[[PipelineRun, Stage, str, str, "str | None"], PipelineRun]


# Per step: the label in reports, the stage its failure is reported on, and the run field counting its attempts.
STEP_LABEL: dict[str, str] = {"train": "training", "evaluate": "evaluation"}
STEP_STAGE: dict[str, Stage] = {"train": "train", "evaluate": "gate"}
ATTEMPT_FIELD: dict[str, str] = {"train": "attempt", "evaluate": "eval_attempt"}


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key`: jitter that spreads retries yet is the same on every recomputation."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def attempt_of(run: PipelineRun, step: JobStep) -> int:
    """Which attempt of `step` the run is on."""
    return int(getattr(run, ATTEMPT_FIELD[step]))


def with_attempt_seconds(run: PipelineRun, step: str, status: JobStatus) -> dict[str, float]:
    """The run's durations with this finished attempt's seconds added (a step's total covers all its attempts)."""
    durations = dict(run.stage_durations)
    seconds = 0.0
    if status.started_at is not None and status.finished_at is not None:
        seconds = max(0.0, status.finished_at - status.started_at)
    durations[step] = durations.get(step, 0.0) + seconds
    return durations


def failure_report(failure: Failure, status: JobStatus, attempts: int, step: JobStep = "train") -> tuple[str, str]:
    """(one-line reason, markdown report with the log tail) of a job that failed for good."""
    kind = "infrastructure" if failure.retryable else failure.kind
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    label = STEP_LABEL[step]
    reason = f"{label} failed{tries} ({kind}: {failure.cause}): {failure.detail}"
    last = next((line.strip() for line in reversed(status.log_tail.splitlines()) if line.strip()), "")
    if last and last not in reason:
        reason += f" | log: {last}"
    tail = "\n".join(status.log_tail.splitlines()[-TAIL_IN_REPORT:])
    title = f"### {label.capitalize()} failed"
    report = f"{title}\n\n{reason}\n\n```\n{tail}\n```\n" if tail else f"{title}\n\n{reason}\n"
    return reason, report


@dataclass
class Retrier:
    """Decides a failed training attempt: submit the next attempt, or fail the run with the report."""

    store: Runs
    backend: TrainingBackend
    fail: Fail
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] | None = None  # jitter source; by default a stable fraction per run and attempt

    def failed(
        self, run: PipelineRun, spec: PipelineSpec, status: JobStatus, request: JobRequest, step: JobStep = "train"
    ) -> PipelineRun:
        """Act on a finished, unsuccessful attempt of `step`; `request` is the step's first job request."""
        failure = classify(status)
        durations = with_attempt_seconds(run, step, status)
        spent = run.model_copy(update={"stage_durations": durations})
        stage, attempt = STEP_STAGE[step], attempt_of(run, step)
        if failure.kind == "cancelled":
            return self.fail(spent, stage, f"{STEP_LABEL[step]} cancelled: {status.message or 'cancelled'}", "", None)
        max_retries = spec.train.max_retries if step == "train" else spec.evaluate.max_retries
        if not should_retry(failure, attempt, max_retries):
            reason, report = failure_report(failure, status, attempt, step)
            return self.fail(spent, stage, reason, status.log_tail, report)
        return self._retry(spent, failure, request, step, status)

    def _retry(
        self, run: PipelineRun, failure: Failure, request: JobRequest, step: JobStep, status: JobStatus
    ) -> PipelineRun:
        current = attempt_of(run, step)
        attempt = current + 1
        # The same retry time however often this failure is handled (redelivered events, reconcile ticks), so a
        # backend that refuses a job before it is due (Vertex) gets it once the time has come, not never.
        jitter = self.rand or (lambda: stable_fraction(effects.job(run.id, step, attempt)))
        retry_at = (status.finished_at or self.clock()) + retry_delay(current, rand=jitter)
        retry = request.model_copy(update={"key": effects.job(run.id, step, attempt), "not_before": retry_at})
        job_id = self.backend.submit(retry)
        stamp = time.strftime("%H:%M:%S", time.localtime(retry_at))
        note = TimelineEntry(
            kind="info",
            message=f"{STEP_LABEL[step]} attempt {current} failed ({failure.cause}: {failure.detail}); "
            f"attempt {attempt} at {stamp}",
            data={"cause": failure.cause, "step": step, "attempt": attempt, "retry_at": retry_at, "job": job_id},
        )
        update = {"jobs": {**run.jobs, step: job_id}, ATTEMPT_FIELD[step]: attempt, "retry_at": retry_at}
        retried = run.model_copy(update=update)
        return save_after_submit(self.store, self.backend, run.id, job_id, lambda: self.store.save_run(retried, [note]))
