"""Promotion through environments: the `environments:` spec section and the pure entry decision."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from relaunch.domain.environments import PromotionRecord, entry, position
from relaunch.domain.model import EndpointHealth
from relaunch.domain.rollout import CanaryRollout, DirectRollout
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.spec_environments import EnvironmentSpec

BASE: dict[str, Any] = {
    "name": "digits",
    "source": {"repo": "relaunch-demo/digits"},
    "train": {"command": ["python", "train.py"]},
    "evaluate": {"command": ["python", "evaluate.py"]},
}
TWO = [
    {"name": "staging", "endpoint": "digits-staging"},
    {
        "name": "production",
        "endpoint": "digits",
        "approval": "required",
        "min_bake_s": 60,
        "smoke": [[0.0] * 64],
        "rollout": {"strategy": "canary", "percent": 20, "bake_s": 30},
    },
]


def test_a_spec_lists_environments_and_its_endpoint_and_rollout_are_the_last_ones() -> None:
    spec = PipelineSpec.model_validate({**BASE, "environments": TWO})
    assert [e.name for e in spec.environments] == ["staging", "production"]
    assert spec.endpoint == "digits" and isinstance(spec.rollout, CanaryRollout)
    staging, production = spec.environments
    assert (staging.approval, staging.min_bake_s, isinstance(staging.rollout, DirectRollout)) == ("none", 0, True)
    assert (production.approval, production.min_bake_s, len(production.smoke)) == ("required", 60, 1)


def test_a_spec_without_environments_is_unchanged() -> None:
    spec = PipelineSpec.model_validate({**BASE, "endpoint": "digits"})
    assert spec.environments == [] and spec.endpoint == "digits" and isinstance(spec.rollout, DirectRollout)


@pytest.mark.parametrize(
    ("environments", "extra", "words"),
    [
        ([{"name": "staging", "endpoint": "a"}, {"name": "staging", "endpoint": "b"}], {}, "staging repeated"),
        ([{"name": "staging", "endpoint": "a"}, {"name": "production", "endpoint": "a"}], {}, "own endpoint"),
        ([{"name": "staging", "endpoint": "a", "min_bake_s": 5}], {}, "first environment"),
        ([{"name": "staging", "endpoint": "a", "smoke": [[1]]}], {}, "first environment"),
        ([{"name": "Staging!", "endpoint": "a"}], {}, "pattern"),
        ([{"name": "champion", "endpoint": "a"}], {}, "reserved"),
        ([{"name": "staging", "endpoint": "a", "approval": "maybe"}], {}, "required"),
        ([{"name": "staging", "endpoint": "a", "typo": 1}], {}, "Extra inputs"),
        (TWO, {"endpoint": "elsewhere"}, "last environment"),
        (TWO, {"rollout": {"strategy": "direct"}}, "its own rollout"),
    ],
)
def test_a_bad_environments_section_is_one_clear_error(
    environments: list[dict[str, Any]], extra: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        PipelineSpec.model_validate({**BASE, **extra, "environments": environments})


STAGING = EnvironmentSpec(name="staging", endpoint="digits-staging")
PRODUCTION = EnvironmentSpec(name="production", endpoint="digits", approval="required", min_bake_s=60)
PROMOTED = PromotionRecord(pipeline="digits", environment="staging", version="v2", run_id="r", at=1000.0)


def test_position_is_the_first_environment_not_entered() -> None:
    assert position([STAGING, PRODUCTION], set()) == 0
    assert position([STAGING, PRODUCTION], {"staging"}) == 1
    assert position([STAGING, PRODUCTION], {"staging", "production"}) == 2


def test_entry_waits_out_the_bake_before_asking_for_an_approval() -> None:
    baking = entry(PRODUCTION, PROMOTED, now=1030.0, approved=False, health=None)
    assert (baking.kind, baking.until) == ("bake", 1060.0)
    asked = entry(PRODUCTION, PROMOTED, now=1060.0, approved=False, health=None)
    assert asked.kind == "approval" and "production" in asked.reason
    went = entry(PRODUCTION, PROMOTED, now=1060.0, approved=True, health=None)
    assert went.kind == "go" and "served staging 60 s" in went.checks[0]


def test_entry_stops_a_model_that_turned_unhealthy_while_baking() -> None:
    sick = EndpointHealth(version="v2", requests=40, errors=20, error_rate=0.5)
    stopped = entry(PRODUCTION, PROMOTED, now=1010.0, approved=True, health=sick)
    assert stopped.kind == "unhealthy" and "error rate" in stopped.reason


def test_the_first_environment_without_approval_is_entered_at_once() -> None:
    assert entry(STAGING, None, now=0.0, approved=False, health=None).kind == "go"


def test_a_climbing_run_is_not_stuck_while_it_bakes_in_staging() -> None:
    from relaunch.domain.model import RunState
    from relaunch.service.reconcile import stage_timeout

    plain = PipelineSpec.model_validate({**BASE, "endpoint": "digits"})
    envs = [{"name": "staging", "endpoint": "s"}, {"name": "production", "endpoint": "p", "min_bake_s": 7200}]
    climbing = PipelineSpec.model_validate({**BASE, "environments": envs})
    one, two = stage_timeout(RunState.ROLLING_OUT, plain), stage_timeout(RunState.ROLLING_OUT, climbing)
    assert one is not None and two is not None and two >= 7200 + 2 * one
