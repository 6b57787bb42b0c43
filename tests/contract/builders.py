"""The runs and deliveries the contract suites record."""

from __future__ import annotations

from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger


def make_run(
    run_id: str, pipeline: str = "churn", created_at: float = 1000.0, state: RunState = RunState.RECEIVED
) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d-{run_id}", repo="acme/churn", sha="abc123")
    return PipelineRun(
        id=run_id, pipeline=pipeline, trigger=trigger, state=state, created_at=created_at, updated_at=created_at
    )


def make_delivery(key: str) -> Delivery:
    return Delivery(key=key, source="github", headers={"X-GitHub-Event": "push"}, body='{"ref": "refs/heads/main"}')
