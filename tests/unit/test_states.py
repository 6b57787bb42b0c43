"""The run state machine."""

from __future__ import annotations

import pytest

from relaunch.domain.model import PipelineRun, RunState, Trigger
from relaunch.domain.states import TRANSITIONS, IllegalTransition, can_transition, transition

S = RunState
RUN = PipelineRun(id="r1", pipeline="p", trigger=Trigger(kind="push", delivery_key="k"))


def test_the_happy_path_is_legal_and_recorded() -> None:
    run = RUN
    for target in (S.BUILDING, S.TRAINING, S.EVALUATING, S.GATED, S.ROLLING_OUT, S.PROMOTED):
        run, entry = transition(run, target, now=1.0)
        assert run.state is target and entry.data["to"] == target.value
    assert run.state.terminal


@pytest.mark.parametrize("terminal", [s for s in S if s.terminal])
def test_terminal_states_go_nowhere_but_a_rollback_or_an_override_by_hand(terminal: RunState) -> None:
    # The ways out of a terminal state: `relaunch rollback` of the version a promoted run put in service, and a
    # person's override of a gate's rejection (Promote on the check run), which rolls the rejected run out.
    ways_out = {S.PROMOTED: frozenset({S.ROLLED_BACK}), S.REJECTED: frozenset({S.ROLLING_OUT})}
    assert TRANSITIONS[terminal] == ways_out.get(terminal, frozenset())
    with pytest.raises(IllegalTransition):
        transition(RUN.model_copy(update={"state": terminal}), S.BUILDING, now=1.0)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S.RECEIVED, S.PROMOTED),
        (S.TRAINING, S.GATED),
        (S.GATED, S.TRAINING),
        (S.EVALUATING, S.ROLLING_OUT),
        (S.ROLLING_OUT, S.REJECTED),
    ],
)
def test_skipping_steps_raises(a: RunState, b: RunState) -> None:
    assert not can_transition(a, b)
    with pytest.raises(IllegalTransition, match=f"{a.value} -> {b.value}"):
        transition(RUN.model_copy(update={"state": a}), b, now=1.0)


def test_a_terminal_reason_is_kept() -> None:
    run, entry = transition(RUN, S.FAILED, "checkout failed", now=1.0)
    assert run.reason == "checkout failed" and "checkout failed" in entry.message


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)
