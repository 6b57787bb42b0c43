"""The run state machine: which transitions are legal. An illegal one raises."""

from __future__ import annotations

from relaunch.domain.model import PipelineRun, RunState, TimelineEntry

S = RunState

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    S.RECEIVED: frozenset({S.AWAITING_APPROVAL, S.BUILDING, S.TRAINING, S.EVALUATING, S.FAILED, S.SUPERSEDED}),
    # approved (a fork: build; a gated run: roll out), refused or expired, a newer head or a newer gated run
    S.AWAITING_APPROVAL: frozenset({S.BUILDING, S.ROLLING_OUT, S.REJECTED, S.SUPERSEDED}),
    S.BUILDING: frozenset({S.TRAINING, S.EVALUATING, S.FAILED, S.SUPERSEDED}),  # evaluating: W&B runs
    S.TRAINING: frozenset({S.EVALUATING, S.FAILED, S.SUPERSEDED}),
    S.EVALUATING: frozenset({S.GATED, S.FAILED, S.SUPERSEDED}),
    # evaluated: evaluation-only runs; awaiting_approval: gate.approval: required
    S.GATED: frozenset({S.ROLLING_OUT, S.AWAITING_APPROVAL, S.REJECTED, S.EVALUATED, S.FAILED}),
    # awaiting_approval: promoted into an environment, the next one needs an approval
    S.ROLLING_OUT: frozenset({S.PROMOTED, S.ROLLED_BACK, S.FAILED, S.AWAITING_APPROVAL}),
    S.PROMOTED: frozenset({S.ROLLED_BACK}),  # `relaunch rollback` of the serving version, by hand
    S.REJECTED: frozenset({S.ROLLING_OUT}),  # a gate's rejection overridden by a person (domain/run_actions)
    S.EVALUATED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.FAILED: frozenset(),
    S.SUPERSEDED: frozenset(),
}


class IllegalTransition(Exception):
    """A run was asked to move somewhere its state machine does not allow."""

    def __init__(self, run_id: str, current: RunState, target: RunState) -> None:
        super().__init__(f"run {run_id}: illegal transition {current.value} -> {target.value}")
        self.current = current
        self.target = target


def can_transition(current: RunState, target: RunState) -> bool:
    """Whether `current -> target` is a legal move."""
    return target in TRANSITIONS[current]


def transition(
    run: PipelineRun, target: RunState, reason: str = "", *, now: float
) -> tuple[PipelineRun, TimelineEntry]:
    """The run moved to `target` at `now` and the timeline entry recording it; raise IllegalTransition otherwise."""
    if not can_transition(run.state, target):
        raise IllegalTransition(run.id, run.state, target)
    update: dict[str, object] = {"state": target, "updated_at": now}
    if target.terminal and reason:
        update["reason"] = reason
    moved = run.model_copy(update=update)
    message = f"{run.state.value} -> {target.value}" + (f": {reason}" if reason else "")
    entry = TimelineEntry(at=now, kind="state", message=message, data={"from": run.state.value, "to": target.value})
    return moved, entry
