"""W&B's registry follows the environments: a W&B-triggered run that enters staging puts the `staging` alias on its
pinned artifact version, and `production` once it enters production, each alias moved once; a spec that retrains on an
environment's alias (relaunch's own move coming back as a W&B automation) is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relaunch.domain.model import PipelineRun
from relaunch.domain.spec import PipelineSpec
from relaunch.service.approval_step import approve_by_operator
from tests.fakes import FakeArtifacts
from tests.integration.test_environment_approvals import RAW, World, climbing

PINNED = "acme/digits/digits-model:v2"


class WandbWorld(World):
    """Staging, then production behind an approval; the run was started by a W&B event for `artifact`."""

    def __init__(self) -> None:
        super().__init__(climbing(approval="required"))
        self.artifacts = FakeArtifacts({PINNED: {}})
        self.orch.d.artifacts = lambda: self.artifacts

    def wandb_run(self, artifact: str) -> PipelineRun:
        run = self.gated(1)
        trigger = run.trigger.model_copy(update={"kind": "wandb", "artifact": artifact})
        self.store.runs[run.id] = run.model_copy(update={"trigger": trigger})
        return self.store.runs[run.id]

    def lines(self, prefix: str) -> list[str]:
        return [e.message for e in self.store.timeline("digits-1") if e.message.startswith(prefix)]


def test_each_environment_entered_moves_its_alias_on_the_pinned_version_once() -> None:
    w = WandbWorld()
    run = w.wandb_run(PINNED)
    assert w.nudge(run.id).awaiting == "environment:production"  # in staging, waiting to enter production
    assert w.artifacts.aliases == {"staging": PINNED}
    w.nudge(run.id)
    assert w.lines("W&B alias") == [f"W&B alias staging -> {PINNED}"]  # once, however often the run is nudged
    approve_by_operator(w.store, run.id, by="ada", at=w.now)
    assert w.nudge(run.id).state.value == "promoted"
    assert w.artifacts.aliases == {"staging": PINNED, "production": PINNED}
    assert w.lines("W&B alias") == [f"W&B alias staging -> {PINNED}", f"W&B alias production -> {PINNED}"]


def test_an_unpinned_artifact_is_noted_once_and_moves_no_alias() -> None:
    w = WandbWorld()
    loose = "acme/digits/digits-model:candidate"
    run = w.wandb_run(loose)
    w.nudge(run.id)
    w.nudge(run.id)
    assert w.lines("alias not moved") == [
        f"alias not moved: {loose} names no concrete version (the run was never pinned)"
    ]
    assert w.artifacts.aliases == {}


def test_a_spec_acting_on_an_environments_alias_is_refused() -> None:
    """relaunch moves `staging` itself: a spec that retrains when `staging` is added would loop on its own move."""
    wandb = {"entity": "acme", "project": "digits", "collection": "digits-model", "aliases": ["candidate", "staging"]}
    raw = {**RAW, "source": {**RAW["source"], "wandb": wandb}}
    envs = [{"name": "staging", "endpoint": "digits-staging"}, {"name": "production", "endpoint": "digits"}]
    with pytest.raises(ValidationError, match="source.wandb.aliases: staging is the alias relaunch moves"):
        PipelineSpec.model_validate({**raw, "environments": envs})
