"""What a run waiting to enter an environment says it waits for, where its verdict is kept, and how it is worded."""

from __future__ import annotations

import pytest

from relaunch.domain.approval import (
    approval_record,
    awaited,
    awaited_environment,
    expiry_reason,
    verdict_key,
    verdict_line,
)
from relaunch.domain.environments import entry_timeout
from relaunch.domain.model import PipelineRun, Trigger
from relaunch.domain.spec_environments import EnvironmentSpec


def waiting(awaiting: str | None) -> PipelineRun:
    return PipelineRun(
        id="r1", pipeline="p", trigger=Trigger(kind="push", delivery_key="d", sha="a" * 40), awaiting=awaiting
    )


@pytest.mark.parametrize(
    ("awaiting", "kind", "environment", "key"),
    [
        (None, "build", None, "approval"),
        ("build", "build", None, "approval"),
        ("promotion", "promotion", None, "approval:promotion"),
        ("environment:production", "environment", "production", "approval:environment:production"),
        ("environment:staging", "environment", "staging", "approval:environment:staging"),
    ],
)
def test_each_wait_keeps_its_verdict_apart(awaiting: str | None, kind: str, environment: str | None, key: str) -> None:
    run = waiting(awaiting)
    assert (awaited(run), awaited_environment(run), verdict_key(run)) == (kind, environment, key)


@pytest.mark.parametrize("hostile", ["environment:", "environment:Prod", "environment:a b", "promotion\n", "build;rm"])
def test_an_awaiting_value_that_names_no_wait_is_refused(hostile: str) -> None:
    with pytest.raises(ValueError, match="awaiting"):
        waiting(hostile)


def test_verdicts_and_expiries_name_the_environment() -> None:
    approved = approval_record("ada", "cli", "a" * 40, "operator", at=1.0)
    rejected = approval_record(
        "bob", "label relaunch:reject", "a" * 40, "write", at=1.0, verdict="rejected", reason="no"
    )
    assert verdict_line(approved, "production") == "approved into production by ada (cli)"
    assert verdict_line(rejected, "production") == "entry into production rejected by bob (label relaunch:reject): no"
    assert verdict_line(approved) == "approved by ada (cli)"
    assert expiry_reason(5400.0, "production") == "approval to enter production expired after 90 min"
    assert expiry_reason(None, "staging") == "approval to enter staging expired"


def test_an_environment_waits_for_its_own_timeout_else_the_gates() -> None:
    envs = [
        EnvironmentSpec(name="staging", endpoint="s"),
        EnvironmentSpec.model_validate(
            {"name": "production", "endpoint": "p", "approval": "required", "approval_timeout": "2d"}
        ),
    ]
    assert entry_timeout(envs, "production", 60.0) == 172800.0
    assert entry_timeout(envs, "staging", 60.0) == 60.0
    assert entry_timeout(envs, "staging", None) is None
