"""Why a job failed: infrastructure (retry with backoff) or code (fail fast with the log tail). Pure.

Decisions:
- Out-of-memory is *code*: the same program on the same machine runs out again; the fix is a bigger machine or a
  smaller batch. Checked first, so "OOMKilled" or "CUDA out of memory" wins over a generic "killed".
- A job killed by a signal with no sign of memory exhaustion is *infrastructure* (the local agent's view: its jobs are
  killed by an operator, a restart, or the machine going away). On Vertex, exit status 143 (SIGTERM) comes with VM
  maintenance and preemption: infrastructure; 137 (SIGKILL) there is the OOM killer: code.
- A job past its own timeout is *code*: the spec's timeout is the owner's budget, a retry would spend it again.
- Anything unrecognised is *code*: failing fast with the log tail is cheaper than retrying a real bug.
- Infrastructure is recognised in the platform's message (and Vertex's google.rpc code), never in the log tail;
  out-of-memory is recognised in both (a program that says it ran out of memory did).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from relaunch.domain.model import JobStatus

Kind = Literal["infrastructure", "code", "cancelled"]

# google.rpc.Code values a Vertex job's `error.code` carries when the platform, not the program, failed.
INFRA_RPC_CODES = {4: "DEADLINE_EXCEEDED", 8: "RESOURCE_EXHAUSTED", 10: "ABORTED", 13: "INTERNAL", 14: "UNAVAILABLE"}

_OOM = re.compile(
    r"out[ -]of[ -]memory|oomkilled|\bMemoryError\b|cannot allocate memory|ran out of memory|oom[- ]killer"
    r"|non-zero status of 137\b",
    re.IGNORECASE,
)
_TIMEOUT = re.compile(r"\btimed out after\b|exceeded (its|the) (maximum )?(run ?time|timeout)", re.IGNORECASE)
_INFRA: list[tuple[str, re.Pattern[str]]] = [
    ("preempted", re.compile(r"preempt", re.IGNORECASE)),
    ("evicted", re.compile(r"\bevict", re.IGNORECASE)),
    (
        "quota",
        re.compile(
            r"RESOURCE_EXHAUSTED|\b429\b|quota|resources are insufficient|insufficient resources"
            r"|ZONE_RESOURCE_POOL_EXHAUSTED|stockout|too many requests",
            re.IGNORECASE,
        ),
    ),
    (
        "node failure",
        re.compile(
            r"node (failure|failed|was (terminated|deleted|lost))|NodeFailure|host (error|maintenance)|"
            r"machine (failure|was lost)|worker (vm|machine) (was )?(lost|terminated)|non-zero status of 143\b",
            re.IGNORECASE,
        ),
    ),
    ("unavailable", re.compile(r"\bUNAVAILABLE\b|internal error (has )?occurred|service unavailable", re.IGNORECASE)),
    ("agent", re.compile(r"infrastructure failure|killed by signal|agent restarted", re.IGNORECASE)),
]


@dataclass(frozen=True)
class Failure:
    """A classified failure: kind, the cause recognised, and the line it was recognised from."""

    kind: Kind
    cause: str
    detail: str

    @property
    def retryable(self) -> bool:
        return self.kind == "infrastructure"


def classify(status: JobStatus, rpc_code: int | None = None) -> Failure:
    """Classify a finished, unsuccessful job from its state, message, log tail and (Vertex) google.rpc code."""
    if status.state == "cancelled":
        return Failure("cancelled", "cancelled", status.message or "cancelled")
    if status.state == "succeeded":
        raise ValueError(f"job {status.id} succeeded: there is no failure to classify")
    text = f"{status.message}\n{status.log_tail}"
    if (match := _OOM.search(text)) is not None:
        return Failure("code", "out of memory", _line(text, match))
    if (match := _TIMEOUT.search(status.message)) is not None:
        return Failure("code", "timeout", _line(text, match))
    if rpc_code in INFRA_RPC_CODES:
        return Failure("infrastructure", INFRA_RPC_CODES[rpc_code].lower(), status.message or INFRA_RPC_CODES[rpc_code])
    for cause, pattern in _INFRA:
        # Only the platform's message counts here: the log tail is the program's own output and may print anything
        # ("retrying after 429", "preemption-safe checkpoint saved") without the platform having failed.
        if (match := pattern.search(status.message)) is not None:
            return Failure("infrastructure", cause, _line(status.message, match))
    return Failure("code", "error", status.message.strip().splitlines()[-1] if status.message.strip() else "failed")


def retry_delay(attempt: int, base_s: float = 30.0, cap_s: float = 900.0, *, rand: Callable[[], float]) -> float:
    """Seconds before retry number `attempt` (1 = first retry): exponential, capped, with "equal jitter"
    (half fixed, half uniform from `rand()` in [0, 1)), so retries of many jobs do not arrive together."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, not {attempt}")
    ceiling: float = min(cap_s, base_s * 2.0 ** min(attempt - 1, 32))
    return ceiling / 2 + rand() * ceiling / 2


def should_retry(failure: Failure, attempts: int, max_retries: int) -> bool:
    """Retry infrastructure failures while `attempts` made so far do not exceed `max_retries` retries."""
    return failure.retryable and attempts <= max_retries


def _line(text: str, match: re.Match[str]) -> str:
    """The line of `text` the match is on, trimmed."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : end if end != -1 else len(text)].strip()[:300]
