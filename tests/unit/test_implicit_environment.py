"""A pipeline without `environments:` has one, implicitly: its endpoint. Its promotions and rollbacks are recorded too,
so `relaunch history` and `relaunch status` answer for every pipeline."""

from __future__ import annotations

from pathlib import Path

from relaunch.config_files import load_spec
from relaunch.domain.model import Check, Decision, Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.spec import PipelineSpec
from relaunch.service.environment_step import EnvironmentRollouts
from tests.fakes import FakeBlobs, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore

DIGITS = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
DIRECT = PipelineSpec.model_validate({**DIGITS.model_dump(), "rollout": {"strategy": "direct"}})


def promote(step: EnvironmentRollouts, store: FakeStore, registry: FakeRegistry, n: int) -> PipelineRun:
    trigger = Trigger(kind="push", delivery_key=f"d{n}", repo="relaunch-demo/digits", sha=f"{n:040d}")
    decision = Decision(promote=True, checks=[Check(name="floor", passed=True, detail="ok")], candidate={})
    champion = registry.champion("digits")
    run = PipelineRun(
        id=f"digits-{n}",
        pipeline="digits",
        trigger=trigger,
        state=RunState.ROLLING_OUT,
        decision=decision,
        model_uri=f"/art/runs/digits-{n}/model",
        champion_version=champion.version if champion else None,
        created_at=float(n),
    )
    store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
    done = step.run(run, DIRECT)
    assert done is not None and done.state is RunState.PROMOTED
    return done


def test_promotions_and_a_rollback_of_a_pipeline_without_environments_are_recorded_under_its_endpoint() -> None:
    now = [1000.0]
    store, registry, endpoint = FakeStore(), FakeRegistry(), FakeEndpoint()
    step = EnvironmentRollouts(
        store, registry, endpoint, FakeNotifier(), FakeBlobs(), lambda: now[0], artifact_root="/art"
    )
    promote(step, store, registry, 1)
    now[0] = 2000.0
    promote(step, store, registry, 2)
    second, first = store.promotions("digits")
    assert (first.environment, first.version, first.replaced, first.run_id) == ("digits", "v1", None, "digits-1")
    assert (second.version, second.replaced, second.sha, second.at) == ("v2", "v1", f"{2:040d}", 2000.0)
    assert second.approved_by == "gate (no approval required)"
    now[0] = 3000.0
    back = step.roll_back_named("digits", {"digits": DIRECT}, None)
    assert back.state is RunState.ROLLED_BACK and endpoint.deployed["digits"] == {"v1": 100}
    latest = store.promotions("digits", "digits", limit=1)[0]
    assert (latest.kind, latest.version, latest.replaced, latest.at) == ("rolled_back", "v1", "v2", 3000.0)
    assert latest.approved_by == "relaunch rollback"
