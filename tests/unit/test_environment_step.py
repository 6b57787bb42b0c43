"""A run climbs staging then production: bake, approval, smoke, per-environment aliases, history and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.environments import PromotionRecord
from relaunch.domain.model import (
    Check,
    Decision,
    Delivery,
    EndpointHealth,
    ModelVersion,
    PipelineRun,
    RunState,
    Trigger,
)
from relaunch.domain.spec import PipelineSpec
from relaunch.service.approval_step import NotAwaiting, approve_by_operator
from relaunch.service.environment_step import EnvironmentRollouts
from relaunch.service.rollout_step import NothingToRollBack
from tests.fakes import FakeBlobs, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore

DIGITS = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
RAW = DIGITS.model_dump(exclude={"endpoint", "rollout", "environments"})
STAGING = {"name": "staging", "endpoint": "digits-staging"}


def climbing(**production: object) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {**RAW, "environments": [STAGING, {"name": "production", "endpoint": "digits", **production}]}
    )


class HistoryStore(FakeStore):
    """The fake store, keeping promotion records as the SQLite and Firestore stores do."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[PromotionRecord] = []

    def record_promotion(self, record: PromotionRecord) -> None:
        key = (record.environment, record.run_id, record.kind, record.version)
        if all((r.environment, r.run_id, r.kind, r.version) != key for r in self.records):
            self.records.append(record)

    def promotions(self, pipeline: str, environment: str | None = None, limit: int = 50) -> list[PromotionRecord]:
        mine = [r for r in self.records if r.pipeline == pipeline and environment in (None, r.environment)]
        return mine[::-1][:limit]  # newest first: records are kept in the order they happened


class AliasRegistry(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.aliases: dict[tuple[str, str], str] = {}

    def alias(self, pipeline: str, name: str) -> ModelVersion | None:
        held = self.aliases.get((pipeline, name))
        return self.get(pipeline, held) if held else None

    def set_alias(self, pipeline: str, name: str, version: str) -> None:
        if self.get(pipeline, version) is None:
            raise KeyError(version)
        self.aliases[(pipeline, name)] = version


class World:
    def __init__(self) -> None:
        self.now = 1000.0
        self.store, self.registry, self.endpoint = HistoryStore(), AliasRegistry(), FakeEndpoint()
        self.notifier = FakeNotifier()
        self.looks: list[float] = []
        self.step = EnvironmentRollouts(
            self.store,
            self.registry,
            self.endpoint,
            self.notifier,
            FakeBlobs(),
            lambda: self.now,
            artifact_root="/art",
            look_at=self.look,
        )

    def look(self, run_id: str, at: float) -> bool:
        self.looks.append(at)
        return True

    def gated(self, n: int) -> PipelineRun:
        champion = self.registry.champion("digits")
        trigger = Trigger(kind="push", delivery_key=f"d{n}", repo="relaunch-demo/digits", sha=f"{n:040d}")
        decision = Decision(promote=True, checks=[Check(name="floor", passed=True, detail="ok")], candidate={})
        run = PipelineRun(
            id=f"digits-{n}",
            pipeline="digits",
            trigger=trigger,
            state=RunState.ROLLING_OUT,
            decision=decision,
            model_uri=f"/art/runs/digits-{n}/model",
            champion_version=champion.version if champion else None,
        )
        self.store.record_delivery(Delivery(key=f"d{n}", source="github"), [run])
        return run

    def roll(self, run_id: str, spec: PipelineSpec) -> PipelineRun | None:
        current = self.store.get_run(run_id)
        assert current is not None
        return self.step.run(current, spec)

    def serving(self, endpoint: str) -> dict[str, int]:
        return self.endpoint.deployed.get(endpoint, {})


def test_a_model_reaches_production_only_after_baking_in_staging_and_an_approval() -> None:
    w, spec = World(), climbing(approval="required", min_bake_s=60)
    run = w.gated(1)
    assert w.roll(run.id, spec) is None  # promoted into staging, baking there
    assert w.serving("digits-staging") == {"v1": 100} and w.serving("digits") == {}
    assert w.registry.aliases[("digits", "staging")] == "v1" and "digits" not in w.registry.champions
    assert w.looks == [1060.0]  # looked at again when the bake ends
    w.now += 30
    assert w.roll(run.id, spec) is None  # still baking: no approval asked for yet
    assert w.store.runs[run.id].state is RunState.ROLLING_OUT
    w.now += 30
    assert w.roll(run.id, spec) is None
    assert w.store.runs[run.id].state is RunState.AWAITING_APPROVAL and w.serving("digits") == {}
    assert w.store.runs[run.id].awaiting == "environment:production"
    approve_by_operator(w.store, run.id, by="ada", at=w.now)
    done = w.roll(run.id, spec)
    assert done is not None and done.state is RunState.PROMOTED and done.model_version == "v1"
    assert w.serving("digits") == {"v1": 100} and w.registry.champions["digits"] == "v1"
    assert w.registry.aliases[("digits", "production")] == "v1"
    production, staging = w.store.promotions("digits")
    assert (staging.environment, staging.version, staging.approved_by) == (
        "staging",
        "v1",
        "gate (no approval required)",
    )
    assert (production.environment, production.approved_by, production.sha) == ("production", "ada", f"{1:040d}")
    assert "served staging 60 s" in production.checks[0]


def test_approving_a_run_that_waits_for_nothing_is_refused() -> None:
    w = World()
    run = w.gated(1)
    with pytest.raises(NotAwaiting, match="rolling_out, not awaiting approval"):
        approve_by_operator(w.store, run.id, by="ada", at=w.now)


def test_each_environment_reports_its_own_deploy() -> None:
    w, spec = World(), climbing()
    done = w.roll(w.gated(1).id, spec)
    assert done is not None and done.state is RunState.PROMOTED
    deploys = [n.description for n in w.notifier.sent if n.stage == "deploy" and n.state == "success"]
    assert [d.split(":")[0] for d in deploys] == ["v1 serves 100% of digits-staging", "v1 serves 100% of digits"]


def test_a_failed_smoke_test_in_staging_stops_the_climb_and_rolls_staging_back() -> None:
    w, spec = World(), climbing(smoke=[[0.0] * 64])
    w.endpoint.predict_error = "500 model crashed"
    done = w.roll(w.gated(1).id, spec)
    assert done is not None and done.state is RunState.ROLLED_BACK and "smoke test in staging failed" in done.reason
    assert w.serving("digits") == {}


def test_an_unhealthy_model_in_staging_never_reaches_production() -> None:
    w, spec = World(), climbing(min_bake_s=60)
    run = w.gated(1)
    assert w.roll(run.id, spec) is None
    w.endpoint.healths["v1"] = EndpointHealth(version="v1", requests=40, errors=20, error_rate=0.5)
    w.now += 10
    done = w.roll(run.id, spec)
    assert done is not None and done.state is RunState.ROLLED_BACK and "unhealthy in staging" in done.reason
    assert w.serving("digits") == {}


def test_a_rollback_in_staging_leaves_production_untouched() -> None:
    w, spec = World(), climbing()
    for n in (1, 2):
        w.now += 100
        done = w.roll(w.gated(n).id, spec)
        assert done is not None and done.state is RunState.PROMOTED
    assert w.serving("digits-staging") == {"v2": 100} and w.serving("digits") == {"v2": 100}
    back = w.step.roll_back_named("digits", {"digits": spec}, "staging")
    assert back.id == "digits-2" and back.state is RunState.PROMOTED  # still serving production
    assert w.serving("digits-staging") == {"v1": 100} and w.registry.aliases[("digits", "staging")] == "v1"
    assert w.serving("digits") == {"v2": 100} and w.registry.champions["digits"] == "v2"
    latest = w.store.promotions("digits", "staging")[0]
    assert (latest.kind, latest.version, latest.replaced) == ("rolled_back", "v1", "v2")
    w.now += 100
    with pytest.raises(NothingToRollBack, match="no promotion into staging"):
        w.step.roll_back_named("digits", {"digits": spec}, "staging")
    ended = w.step.roll_back_named("digits", {"digits": spec}, None)  # no --env: the last environment
    assert ended.state is RunState.ROLLED_BACK and w.serving("digits") == {"v1": 100}
    assert w.registry.champions["digits"] == "v1" and w.registry.aliases[("digits", "production")] == "v1"


def test_rollback_names_the_environments_it_knows() -> None:
    w = World()
    with pytest.raises(NothingToRollBack, match=r"no environment 'qa' \(environments: staging, production\)"):
        w.step.roll_back_named("digits", {"digits": climbing()}, "qa")
    with pytest.raises(NothingToRollBack, match="has no environments: leave out --env"):
        w.step.roll_back_named("digits", {"digits": DIGITS}, "staging")
    with pytest.raises(NothingToRollBack, match="no pipeline 'nope'"):
        w.step.roll_back_named("nope", {"digits": DIGITS}, None)


def test_the_orchestrator_holds_a_climbing_run_for_approval_then_promotes_it_after_the_approval() -> None:
    from relaunch.domain.commands import StartRun
    from relaunch.service.orchestrator import Deps, Orchestrator
    from tests.fakes import FakeBackend, FakeBuilder

    w, spec = World(), climbing(approval="required")
    deps = Deps(
        w.store,
        FakeBuilder(),
        FakeBackend(),
        FakeBlobs(),
        w.registry,
        w.endpoint,
        w.notifier,
        lambda: {"digits": spec},
        "/art",
    )
    orch = Orchestrator(deps)
    run = w.gated(1)
    waiting = orch.handle(StartRun(run_id=run.id))
    assert waiting is not None and waiting.state is RunState.AWAITING_APPROVAL
    assert w.serving("digits-staging") == {"v1": 100} and w.serving("digits") == {}
    again = orch.handle(StartRun(run_id=run.id))  # a nudge without an approval changes nothing
    assert again is not None and again.state is RunState.AWAITING_APPROVAL
    approve_by_operator(w.store, run.id, by="ada", at=w.now)
    done = orch.handle(StartRun(run_id=run.id))
    assert done is not None and done.state is RunState.PROMOTED and w.serving("digits") == {"v1": 100}
    assert [r.environment for r in w.store.promotions("digits")] == ["production", "staging"]
    with pytest.raises(NothingToRollBack, match="v1 was the first model in staging"):
        orch.roll_back("digits", "staging")


def test_an_approval_given_at_the_gate_is_named_by_the_first_environments_record() -> None:
    """gate.approval: required, approved by ada at the gate: the records named "gate (no approval required)"."""
    from relaunch.domain.approval import approval_record
    from relaunch.domain.effects import Effect

    w = World()
    envs = [STAGING, {"name": "production", "endpoint": "digits"}]
    spec = PipelineSpec.model_validate({**RAW, "gate": {**RAW["gate"], "approval": "required"}, "environments": envs})
    run = w.gated(1)
    w.store.put_effect(run.id, Effect.PROMOTION_APPROVAL, approval_record("ada", "cli", f"{1:040d}", "operator", at=1))
    done = w.roll(run.id, spec)
    assert done is not None and done.state is RunState.PROMOTED
    production, staging = w.store.promotions("digits")
    assert (staging.approved_by, production.approved_by) == ("ada (at the gate)", "ada (at the gate)")
