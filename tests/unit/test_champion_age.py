"""The champion never gets older by accident: the age check between the gate and the rollout."""

from __future__ import annotations

import pytest

from relaunch.domain.champion_age import as_relation, judge
from relaunch.domain.model import Delivery, PipelineRun, RunState, Trigger
from relaunch.domain.ports import CommitHistory, TransientError
from relaunch.domain.spec import PipelineSpec
from tests.fakes import FakeHistory
from tests.unit.test_orchestrator import GOOD, SPEC, World

A, B, C, D = (f"{n:040d}" for n in (1, 2, 3, 4))  # World.new_run(n) builds commit f"{n:040d}"


def world(history: CommitHistory, spec: PipelineSpec = SPEC) -> World:
    w = World()
    w.orch.d.history = history  # set on the built Deps, as bootstrap does through the constructor
    w.orch.d.specs = lambda: {"digits": spec}
    return w


def gate(w: World, n: int, **trigger_fields: object) -> PipelineRun:
    """Run commit n through training and a passing gate, against the current champion when there is one."""
    run = w.new_run(n, **trigger_fields)
    w.start(run)
    w.finish(run, "train")
    return w.evaluate(run, GOOD, GOOD if w.registry.champion("digits") else None)


def test_a_replayed_ancestor_is_not_promoted_over_a_newer_champion() -> None:
    w = world(FakeHistory(line=[A, B, C]))
    assert gate(w, 3).state is RunState.PROMOTED
    old = gate(w, 1)
    assert old.state is RunState.REJECTED
    assert old.reason.startswith(f"commit {A[:7]} is older than the champion's {C[:7]} (an ancestor of it)")
    assert "needs force" in old.reason and w.registry.champions["digits"] == "v1"
    assert (w.notifier.sent[-1].stage, w.notifier.sent[-1].state) == ("deploy", "failure")
    assert w.orch.d.history.asked[-1] == ("relaunch-demo/digits", "file:///repo", C, A)  # type: ignore[union-attr]


def test_force_promotes_an_older_commit_and_says_so_on_the_timeline() -> None:
    w = world(FakeHistory(line=[A, B, C]))
    gate(w, 3)
    forced = gate(w, 1, force=True)
    assert forced.state is RunState.PROMOTED and w.registry.champions["digits"] == "v2"
    notes = [e.message for e in w.store.timeline(forced.id) if e.kind == "warning"]
    assert any(n.startswith("promoting an older commit on purpose (force)") for n in notes)


def test_a_newer_commit_goes_on() -> None:
    w = world(FakeHistory(line=[A, B, C]))
    gate(w, 1)
    assert gate(w, 3).state is RunState.PROMOTED and w.registry.champions["digits"] == "v2"


def test_a_scheduled_retrain_of_the_champions_own_commit_goes_on() -> None:
    w = world(FakeHistory(line=[A, B, C]))
    gate(w, 3)
    trigger = Trigger(kind="schedule", delivery_key="tick", repo="relaunch-demo/digits", sha=C, clone_url="file:///r")
    retrain = PipelineRun(id="digits-tick", pipeline="digits", trigger=trigger)
    w.store.record_delivery(Delivery(key="tick", source="scheduler"), [retrain])
    w.start(retrain)
    w.finish(retrain, "train")
    assert w.evaluate(retrain, GOOD, GOOD).state is RunState.PROMOTED and w.registry.champions["digits"] == "v2"


def test_a_force_pushed_commit_is_refused_by_default_and_allowed_when_the_spec_says_so() -> None:
    w = world(FakeHistory(line=[A, B, C], off=[D]))
    gate(w, 3)
    refused = gate(w, 4)
    assert refused.state is RunState.REJECTED
    assert f"commit {D[:7]} is not on the champion's {C[:7]} line of history" in refused.reason
    assert "gate.on_force_push: allow" in refused.reason
    allowing = SPEC.model_copy(update={"gate": SPEC.gate.model_copy(update={"on_force_push": "allow"})})
    w = world(FakeHistory(line=[A, B, C], off=[D]), allowing)
    gate(w, 3)
    allowed = gate(w, 4)
    assert allowed.state is RunState.PROMOTED and w.registry.champions["digits"] == "v2"
    notes = [e.message for e in w.store.timeline(allowed.id) if e.kind == "warning"]
    assert any(D[:7] in n and C[:7] in n and "on_force_push: allow" in n for n in notes)


def test_unknown_history_fails_safe_with_a_reason_that_says_how_to_force() -> None:
    w = world(FakeHistory(line=[C]))  # A is neither on the line nor off it: the adapter cannot tell
    gate(w, 3)
    refused = gate(w, 1)
    assert refused.state is RunState.REJECTED and "cannot tell whether commit" in refused.reason
    assert "--force" in refused.reason and w.registry.champions["digits"] == "v1"


def test_a_host_refusal_is_unknown_and_an_outage_is_retried() -> None:
    history = FakeHistory(line=[A, C])
    w = world(history)
    gate(w, 1)
    history.fail = ValueError("GitHub refused the comparison with HTTP 403")
    refused = gate(w, 3)
    assert refused.state is RunState.REJECTED and "HTTP 403" in refused.reason
    history.fail = TransientError("GitHub unreachable")
    with pytest.raises(TransientError):
        gate(w, 2)
    assert w.store.runs["digits-2"].state is RunState.GATED  # the redelivered command decides again


def test_a_champion_from_another_repository_cannot_be_compared() -> None:
    w = world(FakeHistory(line=[A, B, C]))
    gate(w, 1)
    other = gate(w, 3, repo="someone/else")
    assert other.state is RunState.REJECTED and "another repository" in other.reason


def test_the_decision_itself_is_a_function_of_values() -> None:
    assert judge(C, A, "ahead", force=False, on_force_push="refuse").allowed
    assert not judge(A, C, "behind", force=False, on_force_push="allow").allowed  # allow is about force pushes only
    assert judge(D, C, "diverged", force=True, on_force_push="refuse").note.startswith("promoting a force-pushed")
    assert {as_relation("sideways"), as_relation(None), as_relation("\ud800")} == {"unknown"}
