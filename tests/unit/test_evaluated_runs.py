"""Evaluation-only runs (pull requests) end `evaluated`, with the gate's verdict beside the state, never `rejected`."""

from __future__ import annotations

import pytest

from relaunch.domain.model import Check, Decision, PipelineRun, RunState, Trigger
from relaunch.domain.reporting import check_run, commit_status, state_label
from relaunch.domain.states import TRANSITIONS, can_transition, transition
from tests.unit.test_orchestrator import GOOD, World

S = RunState
PR = {"kind": "pull_request", "evaluate_only": True, "head_repo": "relaunch-demo/digits", "base_sha": "b" * 40}


def _pr_run(w: World, candidate: dict[str, float], champion: dict[str, float] | None = None) -> PipelineRun:
    run = w.new_run(7, sha="a" * 40, **PR)
    w.start(run)
    w.finish(run, "train")
    return w.evaluate(run, candidate, champion)


def test_evaluated_is_terminal_and_reached_from_gated_only() -> None:
    assert S.EVALUATED.terminal and TRANSITIONS[S.EVALUATED] == frozenset()
    assert can_transition(S.GATED, S.EVALUATED)
    assert [s for s in S if can_transition(s, S.EVALUATED)] == [S.GATED]
    assert RunState("evaluated") is S.EVALUATED  # what a store reads back from its text column


def test_a_pull_request_whose_gate_passed_ends_evaluated_and_github_hears_success() -> None:
    w = World()
    done = _pr_run(w, GOOD)
    assert done.state is S.EVALUATED and done.decision is not None and done.decision.promote
    assert done.reason == "gate passed (evaluation only: not promoted)"
    assert state_label(done) == "evaluated (gate passed)"
    gate = [n for n in w.notifier.sent if n.stage == "gate" and n.state != "pending"]
    assert len(gate) == 1 and gate[0].state == "success"
    status = commit_status(gate[0])
    assert status["state"] == "success"
    assert status["description"].startswith("Gate passed (evaluation only: not promoted)")
    check = check_run(gate[0])
    assert check is not None and check["conclusion"] == "success"
    assert w.endpoint.calls == [] and w.registry.versions == {} and "digits" not in w.registry.champions


def test_a_pull_request_whose_gate_failed_ends_evaluated_with_the_reasons_and_github_hears_failure() -> None:
    w = World()
    done = _pr_run(w, {"accuracy": 0.80, "macro_f1": 0.79})
    assert done.state is S.EVALUATED and done.decision is not None and not done.decision.promote
    assert done.reason.startswith("gate failed: ") and "accuracy 0.8000 < floor 0.9000" in done.reason
    assert state_label(done) == "evaluated (gate failed)"
    gate = [n for n in w.notifier.sent if n.stage == "gate" and n.state != "pending"]
    assert [n.state for n in gate] == ["failure"]
    check = check_run(gate[0])
    assert check is not None and check["conclusion"] == "failure"
    assert commit_status(gate[0])["description"].startswith("Gate failed (evaluation only)")


def test_a_push_whose_gate_failed_is_still_rejected() -> None:
    w = World()
    w.promote(1)
    run = w.new_run(2)
    w.start(run)
    w.finish(run, "train")
    done = w.evaluate(run, {"accuracy": 0.80, "macro_f1": 0.79}, GOOD)
    assert done.state is S.REJECTED and state_label(done) == "rejected"


@pytest.mark.parametrize(
    ("state", "promote", "label"),
    [
        (S.PROMOTED, True, "promoted"),
        (S.EVALUATED, True, "evaluated (gate passed)"),
        (S.EVALUATED, False, "evaluated (gate failed)"),
        (S.EVALUATED, None, "evaluated"),  # a stored run without its decision still has a label
        (S.TRAINING, None, "training"),
    ],
)
def test_state_label_puts_the_verdict_beside_an_evaluated_state(
    state: RunState, promote: bool | None, label: str
) -> None:
    decision = (
        None
        if promote is None
        else Decision(promote=promote, checks=[Check(name="c", passed=promote, detail="d")], candidate={})
    )
    run = PipelineRun(id="r", pipeline="p", trigger=Trigger(kind="pull_request", delivery_key="k"), state=state)
    assert state_label(run.model_copy(update={"decision": decision})) == label


def test_a_transition_to_evaluated_keeps_its_reason() -> None:
    run = PipelineRun(id="r", pipeline="p", trigger=Trigger(kind="pull_request", delivery_key="k"), state=S.GATED)
    moved, entry = transition(run, S.EVALUATED, "gate passed (evaluation only: not promoted)", now=1.0)
    assert moved.reason.startswith("gate passed") and entry.data == {"from": "gated", "to": "evaluated"}
