"""Promotion through environments: which environment a run is in, what it needs to enter the next one. Pure.

A run climbs its pipeline's environments in order. Entering one is recorded once (a `PromotionRecord`, kept for the
environment's history, and in the run's effect ledger under `environment:<name>`, which is how the run knows where it
stands after a crash). Before a run rolls out into an environment after the first, `entry` decides, from values only,
whether it waits for an approval, waits out the bake in the environment before, or may go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from relaunch.domain.health import assess
from relaunch.domain.model import EndpointHealth
from relaunch.domain.spec_environments import EnvironmentSpec

PromotionKind = Literal["promoted", "rolled_back"]


class PromotionRecord(BaseModel):
    """One entry of an environment's history: a version promoted into it, or put back by a rollback."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    pipeline: str
    environment: str
    kind: PromotionKind = "promoted"
    version: str = Field(description="The version serving the environment from `at` on")
    replaced: str | None = Field(default=None, description="The version it replaced there (None: the first)")
    run_id: str
    sha: str | None = None
    approved_by: str = Field(default="", description="Who or what let it in: a person, or the policy that did")
    checks: list[str] = Field(default_factory=list, description="The checks it passed to get in, in words")
    at: float


def record_key(environment: str) -> str:
    """The effect-ledger step holding the run's promotion into `environment` (`environment:<name>`)."""
    return f"environment:{environment}"


def approval_key(environment: str) -> str:
    """The effect-ledger step holding the approval of the run's entry into `environment`."""
    return f"approval:environment:{environment}"


def entry_timeout(environments: list[EnvironmentSpec], name: str, gate_timeout: float | None) -> float | None:
    """How long a run may wait to be approved into `name`: the environment's approval_timeout, else the gate's."""
    env = next((e for e in environments if e.name == name), None)
    return env.approval_timeout if env is not None and env.approval_timeout is not None else gate_timeout


def position(environments: list[EnvironmentSpec], reached: set[str]) -> int:
    """The index of the first environment the run has not entered yet (len(environments): it reached the last)."""
    for index, env in enumerate(environments):
        if env.name not in reached:
            return index
    return len(environments)


@dataclass(frozen=True)
class Entry:
    """What entering an environment needs now: go, wait for an approval, wait until `until`, or stop (`reason`)."""

    kind: Literal["go", "approval", "bake", "unhealthy"]
    reason: str = ""
    until: float | None = None
    checks: tuple[str, ...] = ()


def entry(
    env: EnvironmentSpec,
    before: PromotionRecord | None,
    *,
    now: float,
    approved: bool,
    health: EndpointHealth | None,
) -> Entry:
    """Whether a run may roll out into `env`, given its promotion into the environment before (None: `env` is first).

    The bake is judged before the approval is asked for: nobody is asked to approve a model that is still baking.
    Smoke predictions are the caller's (they need the endpoint); `go` lists the checks passed so far.
    """
    checks: list[str] = []
    if before is not None and env.min_bake_s > 0:
        verdict = assess(health, env.bake_health)
        if verdict.state == "unhealthy":
            return Entry("unhealthy", f"unhealthy in {before.environment} while baking: {verdict.detail}")
        ready_at = before.at + env.min_bake_s
        if now < ready_at:
            return Entry("bake", f"baking in {before.environment} until {env.min_bake_s:.0f} s have passed", ready_at)
        checks.append(f"served {before.environment} {env.min_bake_s:.0f} s ({verdict.detail})")
    if env.approval == "required" and not approved:
        return Entry("approval", f"waiting for an approval to enter {env.name}")
    return Entry("go", checks=tuple(checks))
