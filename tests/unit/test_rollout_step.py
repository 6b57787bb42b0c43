"""The rolling_out step: plan -> apply through the ports -> advance -> save, with fakes of every port."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaunch.config_files import load_spec
from relaunch.domain.health import HealthLimits
from relaunch.domain.model import Check, Decision, Delivery, EndpointHealth, PipelineRun, RunState, Trigger
from relaunch.domain.ports import TransientError
from relaunch.domain.rollout import BlueGreenRollout, CanaryRollout, RolloutAction
from relaunch.domain.spec import PipelineSpec
from relaunch.service.rollout_step import NothingToRollBack, RolloutStep, report_for
from tests.fakes import FakeBlobs, FakeEndpoint, FakeNotifier, FakeRegistry, FakeStore

DIRECT = load_spec(Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml")
LIMITS = HealthLimits(min_requests=10, max_error_rate=0.05)
CANARY = DIRECT.model_copy(update={"rollout": CanaryRollout(percent=20, bake_s=60, health=LIMITS)})
BLUE_GREEN = DIRECT.model_copy(
    update={"rollout": BlueGreenRollout(smoke=[[0.0] * 64], rollback_window_s=300, health=LIMITS)}
)


class World:
    def __init__(self) -> None:
        self.now = 1000.0
        self.store, self.registry, self.endpoint = FakeStore(), FakeRegistry(), FakeEndpoint()
        self.notifier = FakeNotifier()
        self.step = RolloutStep(
            self.store, self.registry, self.endpoint, self.notifier, FakeBlobs(), lambda: self.now, artifact_root="/art"
        )

    def gated(self, n: int) -> PipelineRun:
        """A run that passed the gate against the current champion and entered rolling_out."""
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

    def roll(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        current = self.store.get_run(run.id)
        assert current is not None
        return self.step.run(current, spec)

    def deploy_statuses(self, run_id: str) -> list[tuple[str, str]]:
        return [(n.state, n.description) for n in self.notifier.sent if n.run_id == run_id and n.stage == "deploy"]


def promoted_v1(w: World) -> None:
    done = w.roll(w.gated(1), DIRECT)
    assert done is not None and done.state is RunState.PROMOTED


def healthy(requests: int = 50) -> EndpointHealth:
    return EndpointHealth(version="v2", requests=requests, errors=0, error_rate=0.0, p50_ms=3, p95_ms=9, window_s=60)


def test_direct_first_model_takes_all_traffic_and_the_champion_alias() -> None:
    w = World()
    done = w.roll(w.gated(1), DIRECT)
    assert done is not None and done.state is RunState.PROMOTED and done.model_version == "v1"
    assert w.endpoint.deployed["digits"] == {"v1": 100} and w.registry.champions["digits"] == "v1"
    assert done.rollout is not None and done.rollout.phase == "done" and done.rollout.previous_version is None
    assert [s for s, _ in w.deploy_statuses(done.id)] == ["pending", "success"]


def test_direct_second_model_replaces_and_undeploys_the_previous() -> None:
    w = World()
    promoted_v1(w)
    done = w.roll(w.gated(2), DIRECT)
    assert done is not None and done.state is RunState.PROMOTED
    assert w.endpoint.deployed["digits"] == {"v2": 100} and w.registry.champions["digits"] == "v2"
    assert ("undeploy", "digits", "v1") in w.endpoint.calls


def test_canary_bakes_then_promotes_once_the_bake_time_passed_healthy() -> None:
    w = World()
    promoted_v1(w)
    run = w.gated(2)
    assert w.roll(run, CANARY) is None  # baking: waits for the reconcile tick
    assert w.endpoint.deployed["digits"] == {"v1": 80, "v2": 20} and w.registry.champions["digits"] == "v1"
    w.endpoint.healths["v2"] = healthy()
    w.now += 30
    assert w.roll(run, CANARY) is None  # healthy but the bake is not over
    w.now += 31
    done = w.roll(run, CANARY)
    assert done is not None and done.state is RunState.PROMOTED and done.model_version == "v2"
    assert w.endpoint.deployed["digits"] == {"v2": 100} and w.registry.champions["digits"] == "v2"
    states = [s for s, _ in w.deploy_statuses(run.id)]
    assert states == ["pending", "pending", "success"]
    assert "takes 20%" in w.deploy_statuses(run.id)[1][1]


def test_an_unhealthy_canary_is_rolled_back_before_its_bake_ends() -> None:
    w = World()
    promoted_v1(w)
    run = w.gated(2)
    w.roll(run, CANARY)
    w.endpoint.healths["v2"] = EndpointHealth(version="v2", requests=12, errors=6, error_rate=0.5)
    w.now += 5
    done = w.roll(run, CANARY)
    assert done is not None and done.state is RunState.ROLLED_BACK and "unhealthy" in done.reason
    assert w.endpoint.deployed["digits"] == {"v1": 100} and w.registry.champions["digits"] == "v1"
    assert w.deploy_statuses(run.id)[-1][0] == "failure" and "back to v1" in w.deploy_statuses(run.id)[-1][1]


def test_re_running_a_waiting_rollout_repeats_no_action_and_no_report() -> None:
    w = World()
    promoted_v1(w)
    run = w.gated(2)
    w.roll(run, CANARY)
    acted = [c for c in w.endpoint.calls if c[0] != "predict"]
    sent, timeline = len(w.notifier.sent), len(w.store.timeline(run.id))
    for _ in range(3):
        assert w.roll(run, CANARY) is None
    assert [c for c in w.endpoint.calls if c[0] != "predict"] == acted
    assert len(w.notifier.sent) == sent and len(w.store.timeline(run.id)) == timeline


def test_blue_green_smoke_tests_switches_and_undeploys_after_the_window() -> None:
    w = World()
    promoted_v1(w)
    run = w.gated(2)
    assert w.roll(run, BLUE_GREEN) is None  # holding through the rollback window
    assert ("predict", "digits", "v2") in w.endpoint.calls
    assert w.endpoint.deployed["digits"] == {"v1": 0, "v2": 100} and w.registry.champions["digits"] == "v2"
    w.endpoint.healths["v2"] = healthy()
    w.now += 301
    done = w.roll(run, BLUE_GREEN)
    assert done is not None and done.state is RunState.PROMOTED
    assert w.endpoint.deployed["digits"] == {"v2": 100}
    assert [s for s, _ in w.deploy_statuses(run.id)] == ["pending", "pending", "pending", "success"]


def test_blue_green_failed_smoke_test_never_switches() -> None:
    w = World()
    promoted_v1(w)
    w.endpoint.predict_error = "model raised: bad input shape"
    done = w.roll(w.gated(2), BLUE_GREEN)
    assert done is not None and done.state is RunState.ROLLED_BACK and "bad input shape" in done.reason
    assert w.endpoint.deployed["digits"] == {"v1": 100} and w.registry.champions["digits"] == "v1"
    assert not any(c[0] == "set_traffic" and "v2" in c[2] and '"v2": 100' in c[2] for c in w.endpoint.calls)


def test_one_rollout_per_pipeline_at_a_time() -> None:
    w = World()
    promoted_v1(w)
    first, second = w.gated(2), w.gated(3)
    w.roll(first, CANARY)
    assert w.roll(second, CANARY) is None
    assert "v3" not in str(w.endpoint.calls) and w.store.runs[second.id].rollout is None
    assert any("waiting for the rollout of digits-2" in e.message for e in w.store.timeline(second.id))


def test_rollback_by_hand_of_a_promoted_model_redeploys_the_previous_one() -> None:
    w = World()
    promoted_v1(w)
    w.roll(w.gated(2), DIRECT)
    assert w.endpoint.deployed["digits"] == {"v2": 100}
    back = w.step.roll_back_by_hand("digits", DIRECT)
    assert back.id == "digits-2" and "rolled back by hand to v1" in back.reason
    assert w.endpoint.deployed["digits"] == {"v1": 100} and w.registry.champions["digits"] == "v1"
    assert w.deploy_statuses("digits-2")[-1][0] == "failure"
    with pytest.raises(NothingToRollBack, match="v1 was its first model"):
        w.step.roll_back_by_hand("digits", DIRECT)


def test_rollback_by_hand_aborts_a_rollout_in_progress() -> None:
    w = World()
    promoted_v1(w)
    run = w.gated(2)
    w.roll(run, CANARY)
    back = w.step.roll_back_by_hand("digits", CANARY)
    assert back.id == run.id and back.state is RunState.ROLLED_BACK and "by hand" in back.reason
    assert w.endpoint.deployed["digits"] == {"v1": 100} and w.registry.champions["digits"] == "v1"


def test_nothing_to_roll_back_is_a_clear_error() -> None:
    with pytest.raises(NothingToRollBack, match="no promoted rollout"):
        World().step.roll_back_by_hand("digits", DIRECT)


def test_a_refused_deploy_fails_the_rollout_and_reports_it() -> None:
    w = World()
    w.endpoint.refuse = "bad model"
    done = w.roll(w.gated(1), DIRECT)
    assert done is not None and done.state is RunState.FAILED and "bad model" in done.reason
    assert w.deploy_statuses(done.id)[-1][0] == "failure" and "digits" not in w.registry.champions


def test_each_report_says_what_the_action_did() -> None:
    promote = RolloutAction(kind="promote", next_phase="holding", version="v2", traffic={"v2": 100}, reason="w")
    assert report_for(promote, "smoke_passed", "digits") == ("pending", "v2 serves 100% of digits: w")
    done = RolloutAction(kind="done", next_phase="done", outcome="promoted")
    assert report_for(done, "promoted", "digits") is None and report_for(done, "holding", "digits") is not None


def test_slow_endpoint_operations_are_recorded_and_polled_never_started_twice() -> None:
    w = World()
    promoted_v1(w)
    w.endpoint.slow = 2  # each deploy and undeploy is done on the second poll of its operation
    run = w.gated(2)
    assert w.roll(run, DIRECT) is None  # the deployment runs: the run waits, its operation recorded
    assert w.store.get_effect(run.id, "endpoint-op:deploy:v2") == {"operation": "operations/deploy-v2-0"}
    assert w.roll(run, DIRECT) is None  # a redelivery polls it
    assert w.roll(run, DIRECT) is None  # ... done now; the switch is made, the old version's undeploy runs
    assert w.endpoint.deployed["digits"]["v2"] == 100 and w.registry.champions["digits"] == "v2"
    assert w.roll(run, DIRECT) is None
    done = w.roll(run, DIRECT)
    assert done is not None and done.state is RunState.PROMOTED and w.endpoint.deployed["digits"] == {"v2": 100}
    assert w.endpoint.starts == ["operations/deploy-v2-0", "operations/undeploy-v1-1"]
    waits = [e.message for e in w.store.timelines[run.id] if e.message.startswith("waiting")]
    assert waits == [
        "waiting: deploy of v2 still running on the endpoint (operations/deploy-v2-0)",
        "waiting: undeploy of v1 still running on the endpoint (operations/undeploy-v1-1)",
    ]


def test_a_rollback_by_hand_whose_deployment_runs_asks_to_be_run_again() -> None:
    w = World()
    promoted_v1(w)
    w.roll(w.gated(2), DIRECT)
    w.endpoint.slow = 1
    with pytest.raises(TransientError, match="deploy of v1 still running .*; run the rollback again"):
        w.step.roll_back_by_hand("digits", DIRECT)
    with pytest.raises(TransientError, match="undeploy of v2 still running"):  # v1 deployed: switched, v2 leaving
        w.step.roll_back_by_hand("digits", DIRECT)
    assert w.endpoint.deployed["digits"]["v1"] == 100 and w.registry.champions["digits"] == "v1"
    back = w.step.roll_back_by_hand("digits", DIRECT)
    assert "rolled back by hand to v1" in back.reason and w.endpoint.deployed["digits"] == {"v1": 100}
    assert w.endpoint.starts == ["operations/deploy-v1-0", "operations/undeploy-v2-1"]


def test_blue_green_fails_before_any_side_effect_on_an_endpoint_that_cannot_address_a_version() -> None:
    w = World()
    w.endpoint.can_address_versions = False  # as on Vertex AI
    done = w.roll(w.gated(1), BLUE_GREEN)
    assert done is not None and done.state is RunState.FAILED and done.reason.startswith("rollout.strategy: blue-green")
    assert w.endpoint.calls == [] and w.registry.champions == {} and not w.registry.versions
    assert w.deploy_statuses(done.id)[-1][0] == "failure"
