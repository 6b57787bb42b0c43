"""Rollout strategies and the pure planner, driven against the in-memory endpoint (each action applied twice)."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter, ValidationError

from relaunch.domain.health import HealthLimits, assess
from relaunch.domain.model import EndpointHealth, ModelVersion, RolloutProgress
from relaunch.domain.rollout import (
    BlueGreenRollout,
    CanaryRollout,
    DirectRollout,
    Rollout,
    RolloutAction,
    advance,
    health_since,
    plan,
    start,
)
from relaunch.domain.smoke import smoke_instances, smoke_verdict
from tests.fakes import FakeEndpoint

EP = "digits"
Strategy = DirectRollout | CanaryRollout | BlueGreenRollout


def version(name: str) -> ModelVersion:
    return ModelVersion(pipeline="digits", version=name, artifact_uri=f"/models/{name}", run_id=f"run-{name}")


def serving(*versions: str) -> FakeEndpoint:
    """An endpoint whose first version takes all traffic."""
    endpoint = FakeEndpoint()
    for v in versions:
        endpoint.deploy(EP, version(v))
    return endpoint


def healthy(requests: int = 100) -> EndpointHealth:
    return EndpointHealth(version="v2", requests=requests, errors=0, error_rate=0.0, p50_ms=5, p95_ms=20, window_s=60)


def failing(requests: int, errors: int, p95: float = 20) -> EndpointHealth:
    return EndpointHealth(
        version="v2", requests=requests, errors=errors, error_rate=errors / requests, p50_ms=5, p95_ms=p95, window_s=60
    )


def apply(endpoint: FakeEndpoint, action: RolloutAction) -> None:
    """What the orchestrator does with an action; applied twice here, as after a crash before saving progress."""
    for _ in range(2):
        if action.kind == "deploy":
            endpoint.deploy(EP, version(action.version or ""))
        elif action.kind in ("set_traffic", "promote"):
            endpoint.set_traffic(EP, action.traffic)
        elif action.kind == "undeploy_previous":
            endpoint.undeploy(EP, action.version or "")
        elif action.kind == "roll_back":
            if action.traffic:
                endpoint.set_traffic(EP, action.traffic)
            endpoint.undeploy(EP, action.version or "")


def step(
    strategy: Strategy,
    progress: RolloutProgress,
    endpoint: FakeEndpoint,
    now: float,
    health: EndpointHealth | None = None,
    smoke: tuple[bool, str] = (True, "3 instances predicted"),
) -> tuple[RolloutProgress, RolloutAction]:
    action = plan(strategy, progress, now, health, deployed=endpoint.traffic(EP).keys())
    assert plan(strategy, progress, now, health, deployed=endpoint.traffic(EP).keys()) == action  # pure
    apply(endpoint, action)
    return advance(progress, action, now, smoke if action.kind == "smoke_test" else None), action


def test_direct_first_model_deploys_and_promotes() -> None:
    endpoint = FakeEndpoint()
    progress = start("v1", None, now=0)
    kinds = []
    for now in (1, 2, 3):
        progress, action = step(DirectRollout(), progress, endpoint, now)
        kinds.append(action.kind)
    assert kinds == ["deploy", "promote", "done"]
    assert action.outcome == "promoted" and progress.phase == "done"
    assert endpoint.traffic(EP) == {"v1": 100}


def test_direct_replaces_the_previous_version() -> None:
    endpoint = serving("v1")
    progress = start("v2", "v1", now=0)
    actions = []
    for now in (1, 2, 3, 4):
        progress, action = step(DirectRollout(), progress, endpoint, now)
        actions.append(action)
    assert [a.kind for a in actions] == ["deploy", "promote", "undeploy_previous", "done"]
    assert actions[1].traffic == {"v2": 100, "v1": 0} and actions[2].version == "v1"
    assert endpoint.traffic(EP) == {"v2": 100}


def test_canary_passes_its_bake_and_is_promoted() -> None:
    strategy = CanaryRollout(percent=10, bake_s=600)
    endpoint = serving("v1")
    progress, deploy = step(strategy, start("v2", "v1", now=0), endpoint, now=1)
    progress, canary = step(strategy, progress, endpoint, now=10)
    assert (deploy.kind, canary.kind, canary.traffic) == ("deploy", "set_traffic", {"v2": 10, "v1": 90})
    assert endpoint.traffic(EP) == {"v1": 90, "v2": 10}
    assert progress.phase == "baking" and health_since(progress) == 10

    progress, wait = step(strategy, progress, endpoint, now=300, health=healthy())
    assert wait.kind == "wait" and wait.until == 610 and progress.phase == "baking"

    progress, promote = step(strategy, progress, endpoint, now=611, health=healthy())
    assert promote.kind == "promote" and "canary healthy" in promote.reason
    progress, undeploy = step(strategy, progress, endpoint, now=612)
    progress, done = step(strategy, progress, endpoint, now=613)
    assert (undeploy.kind, undeploy.version, done.outcome) == ("undeploy_previous", "v1", "promoted")
    assert endpoint.traffic(EP) == {"v2": 100}


def baking(strategy: CanaryRollout) -> tuple[RolloutProgress, FakeEndpoint]:
    endpoint = serving("v1")
    progress, _ = step(strategy, start("v2", "v1", now=0), endpoint, now=0)
    progress, _ = step(strategy, progress, endpoint, now=0)
    assert progress.phase == "baking"
    return progress, endpoint


def test_canary_failing_during_bake_rolls_back_at_once() -> None:
    strategy = CanaryRollout(bake_s=600)
    progress, endpoint = baking(strategy)
    progress, rollback = step(strategy, progress, endpoint, now=60, health=failing(requests=40, errors=4))
    assert rollback.kind == "roll_back" and rollback.traffic == {"v1": 100} and rollback.version == "v2"
    assert "error rate 10.0% > 1.0%" in rollback.reason and rollback.reason.endswith("back to v1")
    assert endpoint.traffic(EP) == {"v1": 100}
    assert progress.phase == "rolled_back" and progress.reason == rollback.reason
    _, done = step(strategy, progress, endpoint, now=61)
    assert done.kind == "done" and done.outcome == "rolled_back"


def test_canary_fails_early_when_errors_exceed_what_min_requests_allows() -> None:
    strategy = CanaryRollout(health=HealthLimits(max_error_rate=0.05, min_requests=40))
    progress, endpoint = baking(strategy)
    # 2 errors: even if the next 34 requests all succeed, 2/40 = 5% is allowed; 3 errors would not be.
    _, action = step(strategy, progress, endpoint, now=5, health=failing(requests=6, errors=2))
    assert action.kind == "wait"
    _, action = step(strategy, progress, endpoint, now=5, health=failing(requests=6, errors=3))
    assert action.kind == "roll_back"


def test_canary_slow_p95_rolls_back() -> None:
    strategy = CanaryRollout()
    progress, endpoint = baking(strategy)
    _, action = step(strategy, progress, endpoint, now=30, health=failing(requests=50, errors=0, p95=900))
    assert action.kind == "roll_back" and "p95 latency 900 ms > 500 ms" in action.reason


def test_canary_with_too_little_traffic_is_held_then_rolled_back() -> None:
    strategy = CanaryRollout(bake_s=600)  # on_no_traffic: hold, for up to 4 x 600 s
    progress, endpoint = baking(strategy)
    quiet = failing(requests=5, errors=0)
    progress, action = step(strategy, progress, endpoint, now=700, health=quiet)
    assert action.kind == "hold" and "too little traffic in 700 s (5 requests, 20 needed): held" in action.reason
    assert action.until == 2400
    assert endpoint.traffic(EP) == {"v1": 90, "v2": 10}
    progress, action = step(strategy, progress, endpoint, now=2400, health=quiet)
    assert action.kind == "roll_back" and "held until max_bake_s (2400 s), then rolled back" in action.reason
    assert endpoint.traffic(EP) == {"v1": 100}


def test_canary_without_traffic_promotes_only_when_the_spec_says_so() -> None:
    strategy = CanaryRollout(bake_s=60, on_no_traffic="promote")
    progress, endpoint = baking(strategy)
    _, early = step(strategy, progress, endpoint, now=30, health=None)
    assert early.kind == "wait"
    _, action = step(strategy, progress, endpoint, now=61, health=None)
    assert action.kind == "promote" and "no health figures in 61 s: promoted (on_no_traffic: promote)" in action.reason


def test_canary_of_a_first_model_goes_straight_to_full_traffic() -> None:
    strategy = CanaryRollout()
    endpoint = FakeEndpoint()
    progress, _ = step(strategy, start("v1", None, now=0), endpoint, now=0)
    progress, action = step(strategy, progress, endpoint, now=1)
    assert action.kind == "promote" and action.traffic == {"v1": 100}
    _, done = step(strategy, progress, endpoint, now=2)
    assert done.outcome == "promoted"


BLUE_GREEN = BlueGreenRollout(smoke=[[0.0] * 64], rollback_window_s=1800)


def switched(endpoint: FakeEndpoint, previous: str | None = "v1") -> RolloutProgress:
    progress, deploy = step(BLUE_GREEN, start("v2", previous, now=0), endpoint, now=0)
    if previous is not None:
        assert endpoint.traffic(EP) == {previous: 100, "v2": 0}  # beside the champion, at 0%
    progress, smoke = step(BLUE_GREEN, progress, endpoint, now=1)
    assert (deploy.kind, smoke.kind, smoke.version) == ("deploy", "smoke_test", "v2")
    assert progress.phase == "smoke_passed" and progress.smoke_detail == "3 instances predicted"
    progress, switch = step(BLUE_GREEN, progress, endpoint, now=2)
    assert switch.kind == "promote" and progress.phase == "holding" and health_since(progress) == 2
    return progress


def test_blue_green_smoke_switch_hold_undeploy() -> None:
    endpoint = serving("v1")
    progress = switched(endpoint)
    assert endpoint.traffic(EP) == {"v1": 0, "v2": 100}
    progress, hold = step(BLUE_GREEN, progress, endpoint, now=900, health=healthy())
    assert hold.kind == "wait" and hold.until == 1802
    progress, undeploy = step(BLUE_GREEN, progress, endpoint, now=1802, health=healthy())
    assert undeploy.kind == "undeploy_previous" and undeploy.version == "v1"
    _, done = step(BLUE_GREEN, progress, endpoint, now=1803)
    assert done.outcome == "promoted" and endpoint.traffic(EP) == {"v2": 100}


def test_blue_green_failed_smoke_test_never_switches() -> None:
    endpoint = serving("v1")
    progress, _ = step(BLUE_GREEN, start("v2", "v1", now=0), endpoint, now=0)
    progress, _ = step(BLUE_GREEN, progress, endpoint, now=1, smoke=(False, "prediction failed: 500"))
    assert progress.phase == "smoke_failed"
    progress, rollback = step(BLUE_GREEN, progress, endpoint, now=2)
    assert rollback.kind == "roll_back" and "smoke test of v2 failed: prediction failed: 500" in rollback.reason
    assert endpoint.traffic(EP) == {"v1": 100}
    assert step(BLUE_GREEN, progress, endpoint, now=3)[1].outcome == "rolled_back"


def test_blue_green_failure_in_the_rollback_window_rolls_back() -> None:
    endpoint = serving("v1")
    progress = switched(endpoint)
    assert endpoint.traffic(EP) == {"v1": 0, "v2": 100}
    progress, rollback = step(BLUE_GREEN, progress, endpoint, now=600, health=failing(requests=200, errors=30))
    assert rollback.kind == "roll_back" and "unhealthy in the rollback window" in rollback.reason
    assert endpoint.traffic(EP) == {"v1": 100}
    assert progress.phase == "rolled_back"


def test_rollback_of_a_first_model_undeploys_it_and_fails() -> None:
    endpoint = FakeEndpoint()
    progress = switched(endpoint, previous=None)
    assert endpoint.traffic(EP) == {"v2": 100}
    progress, rollback = step(BLUE_GREEN, progress, endpoint, now=60, health=failing(requests=50, errors=50))
    assert rollback.kind == "roll_back" and rollback.traffic == {} and rollback.version == "v2"
    assert "nothing to roll back to (first model)" in rollback.reason
    assert endpoint.traffic(EP) == {} and progress.phase == "failed"
    assert step(BLUE_GREEN, progress, endpoint, now=61)[1].outcome == "failed"


def test_rollback_when_the_previous_version_is_gone_fails() -> None:
    endpoint = serving("v1")
    progress = switched(endpoint)
    endpoint.undeploy(EP, "v1")  # someone removed it by hand during the window
    _, rollback = step(BLUE_GREEN, progress, endpoint, now=60, health=failing(requests=50, errors=50))
    assert rollback.traffic == {} and "v1 is no longer deployed" in rollback.reason
    assert endpoint.traffic(EP) == {}


def test_a_replanned_step_after_a_crash_repeats_the_same_action() -> None:
    strategy = CanaryRollout()
    endpoint = serving("v1")
    saved = start("v2", "v1", now=0)
    first = plan(strategy, saved, 5)
    apply(endpoint, first)  # ...and the process dies before saving the progress
    again = plan(strategy, saved, 7, deployed=endpoint.traffic(EP).keys())
    assert again == first
    apply(endpoint, again)
    assert endpoint.traffic(EP) == {"v1": 100, "v2": 0}
    assert [c[0] for c in endpoint.calls].count("deploy") == 5  # serving() once, then 2 x 2: all no-ops


def test_advance_keeps_the_phase_clock_on_waits_and_needs_a_smoke_verdict() -> None:
    progress = start("v2", "v1", now=0).model_copy(update={"phase": "baking", "phase_started_at": 10})
    wait = plan(CanaryRollout(), progress, 20, healthy())
    assert advance(progress, wait, 20) == progress
    with pytest.raises(ValueError, match="smoke"):
        deployed = progress.model_copy(update={"phase": "deployed"})
        advance(deployed, plan(BLUE_GREEN, deployed, 1), 1)


def test_assess_reports_unknown_without_figures() -> None:
    assert assess(None, HealthLimits()).state == "unknown"
    assert assess(healthy(20), HealthLimits()).state == "healthy"
    assert assess(healthy(19), HealthLimits()).state == "unknown"


def test_specs_are_strict_and_discriminated_on_strategy() -> None:
    adapter: TypeAdapter[Strategy] = TypeAdapter(Rollout)
    canary = adapter.validate_python({"strategy": "canary", "percent": 25, "health": {"max_error_rate": 0.02}})
    assert isinstance(canary, CanaryRollout) and canary.bake_s == 600 and canary.health.min_requests == 20
    assert isinstance(adapter.validate_python({"strategy": "direct"}), DirectRollout)
    bad = [
        ({"strategy": "canary", "percnt": 5}, "percnt"),
        ({"strategy": "canary", "percent": 100}, "percent"),
        ({"strategy": "blue-green", "smoke": []}, "smoke"),
        ({"strategy": "blue-green", "smoke": "../secrets.json"}, "smoke"),
        ({"strategy": "blue-green"}, "smoke"),
        ({"strategy": "rainbow"}, "strategy"),
    ]
    for raw, field in bad:
        with pytest.raises(ValidationError, match=field):
            adapter.validate_python(raw)


def test_smoke_instances_come_inline_or_from_a_repo_file() -> None:
    assert smoke_instances(BLUE_GREEN, lambda path: "unused") == [[0.0] * 64]
    files = {"smoke/instances.json": json.dumps({"instances": [[1, 2], [3, 4]]}), "bad.json": "{nope", "e.json": "[]"}
    assert smoke_instances(BlueGreenRollout(smoke="smoke/instances.json"), files.__getitem__) == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        smoke_instances(BlueGreenRollout(smoke="bad.json"), files.__getitem__)
    with pytest.raises(ValueError, match="non-empty list"):
        smoke_instances(BlueGreenRollout(smoke="e.json"), files.__getitem__)


def test_smoke_verdict_wants_one_prediction_per_instance() -> None:
    assert smoke_verdict(2, {"predictions": [1, 2]}) == (True, "2 instances predicted")
    assert smoke_verdict(2, {"predictions": [1]}) == (False, "1 predictions for 2 instances")
    assert smoke_verdict(2, None, error="500 internal") == (False, "prediction failed: 500 internal")
