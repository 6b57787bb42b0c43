"""Failure classification, retry backoff and the retry decision. Pure values.

Messages are the shapes the platforms write: Vertex AI CustomJob `error.message` (google.rpc.Status) texts and the
local agent's own messages (adapters/local/agent.py).
"""

from __future__ import annotations

import random

import pytest

from relaunch.domain.failures import Failure, classify, retry_delay, should_retry
from relaunch.domain.model import JobStatus


def failed(message: str, log_tail: str = "", state: str = "failed") -> JobStatus:
    return JobStatus(id="job-1", state=state, message=message, log_tail=log_tail)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("The replica workerpool0-0 was preempted. Vertex AI will retry the job.", "preempted"),
        ("Job failed: the worker pod was evicted from its node.", "evicted"),
        (
            "RESOURCE_EXHAUSTED: The following quota metrics exceed quota limits: custom_model_training_nvidia_t4_gpus",
            "quota",
        ),
        ("Resources are insufficient in region: us-central1. Please try a different region.", "quota"),
        ("HTTP 429 Too Many Requests", "quota"),
        ("The replica workerpool0-0 exited with a non-zero status of 143. Termination reason: Error.", "node failure"),
        ("Node failure: the VM hosting replica workerpool0-0 was lost.", "node failure"),
        ("Internal error occurred. Please retry in a few minutes.", "unavailable"),
        ("infrastructure failure: killed by signal SIGKILL (attempt 2, no retries left)", "agent"),
        ("infrastructure failure: the agent restarted while the job was running (attempt 1); retrying", "agent"),
    ],
)
def test_infrastructure_failures(message: str, cause: str) -> None:
    failure = classify(failed(message))
    assert (failure.kind, failure.cause) == ("infrastructure", cause)
    assert failure.retryable and failure.detail


@pytest.mark.parametrize(
    ("message", "log_tail", "cause"),
    [
        ("code error: exited with code 1", "Traceback ...\nKeyError: 'label'", "error"),
        ("The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error.", "", "error"),
        ("The replica workerpool0-0 ran out-of-memory and exited with a non-zero status of 137.", "", "out of memory"),
        (
            "infrastructure failure: killed by signal SIGKILL",
            "torch.cuda.OutOfMemoryError: CUDA out of memory.",
            "out of memory",
        ),
        ("code error: exited with code 1", "MemoryError", "out of memory"),
        ("timed out after 3600s", "", "timeout"),
        ("", "", "error"),
    ],
)
def test_code_failures(message: str, log_tail: str, cause: str) -> None:
    failure = classify(failed(message, log_tail))
    assert (failure.kind, failure.cause) == ("code", cause)
    assert not failure.retryable


def test_the_log_tail_cannot_make_a_code_error_look_like_infrastructure() -> None:
    tail = "retrying download after HTTP 429\nsaving a preemption-safe checkpoint\nValueError: bad shape"
    assert classify(failed("code error: exited with code 1", tail)).kind == "code"


def test_vertex_rpc_codes_of_the_platform_are_infrastructure() -> None:
    assert classify(failed("Job failed."), rpc_code=14) == Failure("infrastructure", "unavailable", "Job failed.")
    assert classify(failed("Job failed."), rpc_code=8).cause == "resource_exhausted"
    assert classify(failed("The replica workerpool0-0 exited with a non-zero status of 1."), rpc_code=3).kind == "code"


def test_cancelled_is_neither_and_success_is_refused() -> None:
    assert classify(failed("cancelled by request", state="cancelled")).kind == "cancelled"
    assert not should_retry(classify(failed("cancelled", state="cancelled")), attempts=1, max_retries=3)
    with pytest.raises(ValueError, match="succeeded"):
        classify(failed("", state="succeeded"))


def test_retry_delay_doubles_up_to_the_cap_with_jitter_from_the_source() -> None:
    assert [retry_delay(n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [15, 30, 60, 120, 240, 450, 450]
    assert [retry_delay(n, rand=lambda: 0.999999) for n in (1, 6)] == pytest.approx([30, 900], rel=1e-5)
    seeded = random.Random(42)
    delays = [retry_delay(3, rand=seeded.random) for _ in range(100)]
    assert all(60 <= d < 120 for d in delays) and len(set(delays)) > 50
    assert retry_delay(100, base_s=1, cap_s=10, rand=lambda: 0.5) == 7.5
    with pytest.raises(ValueError, match="attempt"):
        retry_delay(0, rand=lambda: 0.0)


def test_should_retry_only_infrastructure_within_max_retries() -> None:
    infra = classify(failed("The replica workerpool0-0 was preempted."))
    code = classify(failed("code error: exited with code 2"))
    assert [should_retry(infra, attempts=n, max_retries=2) for n in (1, 2, 3)] == [True, True, False]
    assert not should_retry(infra, attempts=1, max_retries=0)
    assert not should_retry(code, attempts=1, max_retries=5)
