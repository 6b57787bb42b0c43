"""A rollout window without enough traffic to judge: one rule (`on_no_traffic`) for canary and blue-green alike,
said in plain words on the timeline and in the commit status."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relaunch.config_files import load_spec
from relaunch.domain.health import HealthLimits
from relaunch.domain.model import EndpointHealth, RolloutProgress, RunState
from relaunch.domain.rollout import BlueGreenRollout, CanaryRollout, plan, start
from relaunch.domain.spec import SpecError
from relaunch.service.reconcile import Timeouts, stage_timeout
from relaunch.service.rollout_step import report_for
from tests.unit.test_rollout_step import DIRECT, World, promoted_v1

LIMITS = HealthLimits(min_requests=5)
QUIET = EndpointHealth(version="v2", requests=0, errors=0, error_rate=0.0)


def canary(**extra: object) -> CanaryRollout:
    return CanaryRollout(bake_s=12, max_bake_s=48, health=LIMITS, **extra)  # type: ignore[arg-type]


def blue_green(**extra: object) -> BlueGreenRollout:
    return BlueGreenRollout(smoke=[[0.0]], rollback_window_s=12, max_window_s=48, health=LIMITS, **extra)  # type: ignore[arg-type]


def judging(strategy: CanaryRollout | BlueGreenRollout) -> RolloutProgress:
    """The rollout in its judged window (canary baking, blue-green holding), begun at t=0."""
    phase = "baking" if isinstance(strategy, CanaryRollout) else "holding"
    return start("v2", "v1", now=0).model_copy(update={"phase": phase, "phase_started_at": 0.0})


@pytest.mark.parametrize("make", [canary, blue_green], ids=["canary", "blue-green"])
def test_a_quiet_window_is_held_by_default_then_rolled_back_at_its_max(make) -> None:  # type: ignore[no-untyped-def]
    strategy = make()
    assert strategy.on_no_traffic == "hold"
    progress, deployed = judging(strategy), {"v1", "v2"}
    inside = plan(strategy, progress, 6, QUIET, deployed=deployed)
    assert inside.kind == "wait" and inside.until == 12
    held = plan(strategy, progress, 12, QUIET, deployed=deployed)
    assert held.kind == "hold" and held.until == 48
    assert held.reason.startswith("no traffic in 12 s: held (on_no_traffic: hold)"), held.reason
    healthy = EndpointHealth(version="v2", requests=9, errors=0, error_rate=0.0, p95_ms=5)
    assert plan(strategy, progress, 30, healthy, deployed=deployed).kind in ("promote", "undeploy_previous")
    expired = plan(strategy, progress, 48, QUIET, deployed=deployed)
    assert expired.kind == "roll_back" and expired.traffic == {"v1": 100}
    assert expired.reason.startswith("no traffic in 48 s: held until max"), expired.reason
    assert "then rolled back (on_no_traffic: hold)" in expired.reason


@pytest.mark.parametrize("make", [canary, blue_green], ids=["canary", "blue-green"])
def test_promote_and_roll_back_decide_when_the_window_ends(make) -> None:  # type: ignore[no-untyped-def]
    deployed = {"v1", "v2"}
    some = EndpointHealth(version="v2", requests=3, errors=0, error_rate=0.0)
    promoted = plan(make(on_no_traffic="promote"), judging(make()), 12, some, deployed=deployed)
    assert promoted.kind in ("promote", "undeploy_previous")
    assert "too little traffic in 12 s (3 requests, 5 needed): promoted (on_no_traffic: promote)" in promoted.reason
    rolled = plan(make(on_no_traffic="roll_back"), judging(make()), 12, QUIET, deployed=deployed)
    assert rolled.kind == "roll_back" and rolled.reason.startswith("no traffic in 12 s (on_no_traffic: roll_back)")


def spec_file(tmp_path: Path, rollout: dict[str, object]) -> Path:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "pipelines" / "digits.yaml").read_text())
    raw["rollout"] = rollout
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_unknown_on_no_traffic_is_a_spec_error_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"rollout\.canary\.on_no_traffic: Input should be 'promote', 'hold'"):
        load_spec(spec_file(tmp_path, {"strategy": "canary", "on_no_traffic": "wait"}))
    health = {"allow_no_traffic": True}
    with pytest.raises(SpecError, match=r"allow_no_traffic.*replaced by rollout\.on_no_traffic"):
        load_spec(spec_file(tmp_path, {"strategy": "canary", "health": health}))
    spec = load_spec(spec_file(tmp_path, {"strategy": "blue-green", "smoke": [[0]], "on_no_traffic": "promote"}))
    assert isinstance(spec.rollout, BlueGreenRollout) and spec.rollout.on_no_traffic == "promote"


def test_a_held_rollout_says_so_on_the_timeline_and_in_the_commit_status() -> None:
    w = World()
    promoted_v1(w)
    spec = DIRECT.model_copy(update={"rollout": canary()})
    run = w.gated(2)
    assert w.roll(run, spec) is None
    w.endpoint.healths["v2"] = QUIET
    w.now += 12
    assert w.roll(run, spec) is None and w.roll(run, spec) is None  # held, noted once
    notes = [e.message for e in w.store.timeline(run.id) if "on_no_traffic" in e.message]
    assert notes == ["no traffic in 12 s: held (on_no_traffic: hold) for up to 48 s, while v2 keeps 10%"], notes
    assert w.deploy_statuses(run.id)[-1] == ("pending", notes[0])
    w.now += 36
    done = w.roll(run, spec)
    assert done is not None and done.reason.startswith("no traffic in 48 s: held until max_bake_s (48 s)")
    state, text = w.deploy_statuses(run.id)[-1]
    assert state == "failure" and "then rolled back (on_no_traffic: hold); back to v1" in text


def test_an_unjudged_promotion_says_why_in_its_success_status() -> None:
    action = plan(canary(on_no_traffic="promote"), judging(canary()), 12, QUIET, deployed={"v1", "v2"})
    state, text = report_for(action, "baking", "digits") or ("", "")
    assert state == "success" and text.endswith("no traffic in 12 s: promoted (on_no_traffic: promote)"), text


def test_blue_green_and_canary_treat_a_quiet_window_alike_by_default() -> None:
    """Seen in the first hour: blue-green promoted after "only 0 requests (< 5 to judge)" while canary rolled back."""
    deployed = {"v1", "v2"}
    bg = BlueGreenRollout(smoke=[[0.0]], rollback_window_s=12, health=LIMITS)
    cn = CanaryRollout(bake_s=12, health=LIMITS)
    bg_end = plan(bg, judging(bg), 12, QUIET, deployed=deployed)
    cn_end = plan(cn, judging(cn), 12, QUIET, deployed=deployed)
    assert bg_end.kind == cn_end.kind and bg_end.kind != "undeploy_previous", (bg_end, cn_end)
    bg_last = plan(bg, judging(bg), 10_000, QUIET, deployed=deployed)
    cn_last = plan(cn, judging(cn), 10_000, QUIET, deployed=deployed)
    assert bg_last.kind == cn_last.kind == "roll_back", (bg_last, cn_last)


def test_reconcile_gives_a_held_blue_green_window_until_its_max() -> None:
    t = Timeouts()
    spec = DIRECT.model_copy(update={"rollout": blue_green()})
    assert stage_timeout(RunState.ROLLING_OUT, spec, t) == 48 + t.deploying_s + t.margin_s
