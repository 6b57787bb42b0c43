"""The TRAINING step's failures: one policy (pipelines/failures.py) for every backend, local agent and Vertex alike.

An infrastructure failure (preempted, evicted, quota, node lost, the agent killed or restarted) is retried while the
spec's `max_retries` allows: the next attempt is submitted at once under the key `<run>:train:<n>` with `not_before`
set `retry_delay(n - 1)` seconds ahead (a backend that honours it holds the job; `retry_at` on the run says when), so
a crash after the submit and before the save repeats nothing. A code error, a timeout, or running out of memory fails
the run at once, with the job log's last lines in the failure report (GitHub check/status, Slack, timeline).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from relaunch.pipelines.coalesce_step import save_after_submit
from relaunch.pipelines.failures import Failure, classify, retry_delay, should_retry
from relaunch.pipelines.model import JobRequest, JobStatus, PipelineRun, Stage, TimelineEntry
from relaunch.pipelines.spec import PipelineSpec
from relaunch.ports import RunStore, TrainingBackend

TAIL_IN_REPORT = 20  # log lines in the markdown report
Fail = Callable[[PipelineRun, Stage, str, str, "str | None"], PipelineRun]


def retry_key(run_id: str, attempt: int) -> str:
    """The idempotency key of a training attempt: the first keeps `<run>:train`, retries add their number."""
    return f"{run_id}:train" if attempt <= 1 else f"{run_id}:train:{attempt}"


def with_attempt_seconds(run: PipelineRun, step: str, status: JobStatus) -> dict[str, float]:
    """The run's durations with this finished attempt's seconds added (a step's total covers all its attempts)."""
    durations = dict(run.stage_durations)
    seconds = 0.0
    if status.started_at is not None and status.finished_at is not None:
        seconds = max(0.0, status.finished_at - status.started_at)
    durations[step] = durations.get(step, 0.0) + seconds
    return durations


def failure_report(failure: Failure, status: JobStatus, attempts: int) -> tuple[str, str]:
    """(one-line reason, markdown report with the log tail) of a training that failed for good."""
    kind = "infrastructure" if failure.retryable else failure.kind
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    reason = f"training failed{tries} ({kind}: {failure.cause}): {failure.detail}"
    last = next((line.strip() for line in reversed(status.log_tail.splitlines()) if line.strip()), "")
    if last and last not in reason:
        reason += f" | log: {last}"
    tail = "\n".join(status.log_tail.splitlines()[-TAIL_IN_REPORT:])
    report = f"### Training failed\n\n{reason}\n\n```\n{tail}\n```\n" if tail else f"### Training failed\n\n{reason}\n"
    return reason, report


@dataclass
class Retrier:
    """Decides a failed training attempt: submit the next attempt, or fail the run with the report."""

    store: RunStore
    backend: TrainingBackend
    fail: Fail
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = field(default=random.random)

    def failed(self, run: PipelineRun, spec: PipelineSpec, status: JobStatus, request: JobRequest) -> PipelineRun:
        """Act on a finished, unsuccessful attempt; `request` is the first attempt's job request."""
        failure = classify(status)
        durations = with_attempt_seconds(run, "train", status)
        spent = run.model_copy(update={"stage_durations": durations})
        if failure.kind == "cancelled":
            return self.fail(spent, "train", f"training cancelled: {status.message or 'cancelled'}", "", None)
        if not should_retry(failure, run.attempt, spec.train.max_retries):
            reason, report = failure_report(failure, status, run.attempt)
            return self.fail(spent, "train", reason, status.log_tail, report)
        return self._retry(spent, failure, request)

    def _retry(self, run: PipelineRun, failure: Failure, request: JobRequest) -> PipelineRun:
        attempt = run.attempt + 1
        retry_at = self.clock() + retry_delay(run.attempt, rand=self.rand)
        retry = request.model_copy(update={"key": retry_key(run.id, attempt), "not_before": retry_at})
        job_id = self.backend.submit(retry)
        stamp = time.strftime("%H:%M:%S", time.localtime(retry_at))
        note = TimelineEntry(
            kind="info",
            message=f"attempt {run.attempt} failed ({failure.cause}: {failure.detail}); attempt {attempt} at {stamp}",
            data={"cause": failure.cause, "attempt": attempt, "retry_at": retry_at, "job": job_id},
        )
        update = {"jobs": {**run.jobs, "train": job_id}, "attempt": attempt, "retry_at": retry_at}
        retried = run.model_copy(update=update)
        return save_after_submit(self.store, self.backend, run.id, job_id, lambda: self.store.save_run(retried, [note]))
