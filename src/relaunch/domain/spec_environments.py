"""The `environments:` section of a pipeline spec: an ordered list a model climbs, e.g. staging then production.

Each environment has its own endpoint and rollout strategy, an approval rule, and optional checks the model must
pass *in the environment before it* to enter this one: a minimum bake time there and smoke predictions sent to its
version there. The first environment has no environment before it, so those checks are refused on it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relaunch.domain.health import HealthLimits
from relaunch.domain.rollout import DirectRollout, Rollout
from relaunch.domain.spec_approval import parse_duration


class EnvironmentSpec(BaseModel):
    """One environment: where a model serves, how it takes traffic there, and what it needs to get in."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Lower-case id (`staging`), also the registry alias it moves"
    )
    endpoint: str = Field(min_length=1, max_length=128, description="Name of this environment's serving endpoint")
    rollout: Rollout = Field(default_factory=DirectRollout, description="How the model takes traffic here")
    approval: Literal["required", "none"] = Field(
        default="none", description="required: the run waits in awaiting_approval before rolling out here"
    )
    approval_timeout: float | None = Field(
        default=None,
        description="How long a run waits to be approved into this environment before it is rejected ('72h', "
        "'90m', '2d', '30s' or seconds); none: the gate's approval_timeout",
    )
    min_bake_s: float = Field(
        default=0.0,
        ge=0,
        le=30 * 86400,
        description="Seconds the model must have served, healthy, in the previous "
        "environment before it enters this one",
    )
    bake_health: HealthLimits = Field(
        default_factory=lambda: HealthLimits(min_requests=0),
        description="What counts as unhealthy in the previous environment during min_bake_s (too little traffic "
        "is not a failure)",
    )
    smoke: list[Any] = Field(
        default_factory=list,
        max_length=1000,
        description="Instances the model must predict (2xx, one prediction each) in the previous environment "
        "before it enters this one",
    )

    @field_validator("approval_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)


_RESERVED = frozenset({"champion", "default", "latest"})  # the champion alias, and Vertex's own aliases


def check_environments(environments: list[EnvironmentSpec]) -> list[EnvironmentSpec]:
    """Names and endpoints are unique, and the first environment asks nothing of an environment before it."""
    names = [e.name for e in environments]
    if reserved := sorted(_RESERVED.intersection(names)):
        raise ValueError(f"{', '.join(reserved)} is a reserved alias name, not an environment name")
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"environment names must be unique: {', '.join(dupes)} repeated")
    endpoints = [e.endpoint for e in environments]
    if dupes := sorted({n for n in endpoints if endpoints.count(n) > 1}):
        raise ValueError(f"each environment needs its own endpoint: {', '.join(dupes)} repeated")
    if environments and (environments[0].min_bake_s or environments[0].smoke):
        first = environments[0].name
        raise ValueError(f"{first} is the first environment: min_bake_s and smoke check the one before, it has none")
    return environments


class WithEnvironments(BaseModel):
    """Mixin of PipelineSpec: `environments`, and the top-level endpoint/rollout read as the last environment's."""

    model_config = ConfigDict(defer_build=True)  # its validator is built on first use (cold start)

    environments: list[EnvironmentSpec] = Field(
        default_factory=list,
        max_length=10,
        description="Environments a promoted model climbs in order (none: `endpoint` and `rollout` are the only one)",
    )

    @field_validator("environments")
    @classmethod
    def _coherent(cls, value: list[EnvironmentSpec]) -> list[EnvironmentSpec]:
        return check_environments(value)

    @model_validator(mode="after")
    def _no_run_on_an_environments_alias(self) -> WithEnvironments:
        """relaunch moves each environment's W&B alias itself: a spec that starts a run when one is added would loop."""
        wandb = getattr(getattr(self, "source", None), "wandb", None)
        looping = [e.name for e in self.environments if wandb is not None and e.name in wandb.aliases]
        if looping:
            raise ValueError(
                f"source.wandb.aliases: {looping[0]} is the alias relaunch moves when a model enters environment "
                f"{looping[0]}: a run started by it would start again on its own move"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _last_environment_is_the_endpoint(cls, data: Any) -> Any:
        """With environments, `endpoint` and `rollout` default to the last one's; a different `endpoint` is refused."""
        if not isinstance(data, dict) or not isinstance(envs := data.get("environments"), list) or not envs:
            return data
        last = envs[-1]
        if not isinstance(last, dict) or not isinstance(last.get("endpoint"), str):
            return data  # the environment's own validation names what is wrong
        if data.get("endpoint") not in (None, last["endpoint"]):
            raise ValueError(
                f"endpoint {data['endpoint']!r} is not the last environment's ({last['endpoint']!r}): "
                "with environments, leave endpoint out"
            )
        if "rollout" in data:
            raise ValueError("with environments, each environment has its own rollout: move it there")
        return {**data, "endpoint": last["endpoint"], "rollout": last.get("rollout", {"strategy": "direct"})}
