"""A new version's health against its rollout's limits: healthy, unhealthy, or unknown for want of traffic. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relaunch.domain.model import EndpointHealth


class HealthLimits(BaseModel):
    """When a new version counts as unhealthy; below `min_requests` its health is unknown."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    max_error_rate: float = Field(default=0.01, ge=0, le=1, description="Largest tolerated share of failed requests")
    max_p95_latency_ms: float = Field(default=500.0, gt=0, description="Largest tolerated 95th percentile latency")
    min_requests: int = Field(default=20, ge=0, description="Requests needed before health is judged at all")

    @model_validator(mode="before")
    @classmethod
    def _no_allow_no_traffic(cls, data: Any) -> Any:
        if isinstance(data, dict) and "allow_no_traffic" in data:  # a spec written before on_no_traffic existed
            raise ValueError("allow_no_traffic was replaced by rollout.on_no_traffic (promote | hold | roll_back)")
        return data


@dataclass(frozen=True)
class HealthVerdict:
    """Health of a version against the limits: healthy, unhealthy or unknown (too little traffic), with why."""

    state: Literal["healthy", "unhealthy", "unknown"]
    detail: str


def assess(health: EndpointHealth | None, limits: HealthLimits) -> HealthVerdict:
    """Judge a version's health; fail early once its errors exceed what `min_requests` could still absorb."""
    if health is None:
        return HealthVerdict("unknown", "no health figures")
    seen = f"{health.errors} errors in {health.requests} requests"
    allowed = limits.max_error_rate * max(health.requests, limits.min_requests)
    if health.errors > allowed:
        return HealthVerdict("unhealthy", f"error rate {health.error_rate:.1%} > {limits.max_error_rate:.1%} ({seen})")
    if health.requests < (needed := max(limits.min_requests, 1)):
        return HealthVerdict("unknown", f"only {health.requests} requests (< {needed} to judge)")
    if health.p95_ms is not None and health.p95_ms > limits.max_p95_latency_ms:
        return HealthVerdict(
            "unhealthy", f"p95 latency {health.p95_ms:.0f} ms > {limits.max_p95_latency_ms:.0f} ms ({seen})"
        )
    p95 = "n/a" if health.p95_ms is None else f"{health.p95_ms:.0f} ms"
    return HealthVerdict("healthy", f"error rate {health.error_rate:.1%}, p95 {p95} ({seen})")


def quiet_words(health: EndpointHealth | None, limits: HealthLimits, seconds: float) -> str:
    """A window too quiet to judge, in plain words: "no traffic in 12 s"."""
    if health is None:
        return f"no health figures in {seconds:.0f} s"
    if health.requests == 0:
        return f"no traffic in {seconds:.0f} s"
    return f"too little traffic in {seconds:.0f} s ({health.requests} requests, {limits.min_requests} needed)"
