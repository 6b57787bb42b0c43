"""What a person may do to a run from outside the CLI (GitHub's check-run buttons, the dashboard), and why not. Pure.

The policy, decided here:
- Promote: a run waiting to roll out (after the gate, or before its next environment) is approved; a run the gate
  itself rejected may be promoted anyway, as an override that is recorded as such. An override stays refused when
  its verdict no longer means anything: the champion it was compared with is gone, or a newer run was promoted.
- Reject: a run waiting to roll out is refused, with a reason.
- Rollback: a promoted run is rolled back only when its model is the one the pipeline's rollback would undo (it
  serves, and no other rollout is under way); anything else is refused with what does serve.
- Evaluation-only runs (pull requests), superseded and failed runs are never acted on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from relaunch.domain.approval import awaited
from relaunch.domain.model import PipelineRun, RunState

S = RunState
Action = Literal["promote", "reject", "rollback"]
ACTIONS: tuple[Action, ...] = ("promote", "reject", "rollback")


def waits_to_roll_out(run: PipelineRun) -> bool:
    """Whether the run waits for a person before rolling out (after the gate, or into its next environment)."""
    return run.state is S.AWAITING_APPROVAL and awaited(run) != "build"


def gate_rejected(run: PipelineRun) -> bool:
    """Whether the run ended rejected by its gate's own checks (not by a person, a deadline or a moved champion)."""
    return (
        run.state is S.REJECTED
        and run.decision is not None
        and not run.decision.promote
        and not run.trigger.evaluate_only
    )


def offered(run: PipelineRun) -> tuple[Action, ...]:
    """The buttons the run's check run shows now, in the order they are shown."""
    if run.trigger.evaluate_only:
        return ()
    if waits_to_roll_out(run):
        return ("promote", "reject")
    if gate_rejected(run):
        return ("promote",)
    if run.state is S.PROMOTED:
        return ("rollback",)
    return ()


def promote_refusal(run: PipelineRun, *, champion: str | None, newer: Iterable[PipelineRun]) -> str | None:
    """Why the run may not be promoted (None: it may). `champion`: the version serving now; `newer`: other runs."""
    if run.trigger.evaluate_only:
        return f"run {run.id} evaluates a pull request: it is never promoted"
    if waits_to_roll_out(run):
        return None
    if run.state is S.REJECTED:
        return override_refusal(run, champion=champion, newer=newer)
    if run.state is S.AWAITING_APPROVAL:
        return f"run {run.id} waits for approval to build a fork's code, not to roll out (`relaunch approve {run.id}`)"
    if run.state in (S.ROLLING_OUT, S.PROMOTED):
        return f"run {run.id} is already {run.state.value}"
    if run.state.terminal:
        return f"run {run.id} is {run.state.value}" + (f": {run.reason}" if run.reason else "")
    return f"run {run.id} is still {run.state.value}: there is no verdict to promote yet"


def override_refusal(run: PipelineRun, *, champion: str | None, newer: Iterable[PipelineRun]) -> str | None:
    """Why a rejected run may not be promoted over its gate's verdict (None: it may)."""
    if not gate_rejected(run):
        why = f": {run.reason}" if run.reason else ""
        return f"run {run.id} was not rejected by its gate{why}; only a gate's verdict can be overridden"
    if champion != run.champion_version:
        return (
            f"run {run.id} was evaluated against {run.champion_version or 'no champion'}, and {champion or 'none'} "
            "serves now: re-run it to evaluate against the current champion"
        )
    promoted = [r for r in newer if r.state is S.PROMOTED and (r.created_at, r.id) > (run.created_at, run.id)]
    if promoted:
        latest = max(promoted, key=lambda r: (r.created_at, r.id))
        return f"a newer run ({latest.id}) was already promoted ({latest.model_version}): run {run.id} is older"
    return None


def override_record(by: str, via: str, permission: str, run: PipelineRun, *, at: float) -> dict[str, Any]:
    """What is kept of an override: who, how, with which permission, when, and what the gate had said."""
    reasons = run.decision.reasons if run.decision is not None else []
    return {"by": by, "via": via, "permission": permission, "at": at, "gate": "; ".join(reasons)}


def override_line(record: dict[str, Any]) -> str:
    """The timeline's line: "gate overridden by alice (GitHub check run): the gate had said no: accuracy ..."."""
    return f"gate overridden by {record.get('by')} ({record.get('via')}): the gate had said no: {record.get('gate')}"


def rollback_refusal(run: PipelineRun, *, champion: str | None, active: Iterable[PipelineRun]) -> str | None:
    """Why rolling the pipeline back would not undo this run's model (None: it would)."""
    if run.trigger.evaluate_only:
        return f"run {run.id} evaluates a pull request: it never served"
    if run.state is S.ROLLED_BACK:
        return f"run {run.id} is already rolled back" + (f": {run.reason}" if run.reason else "")
    if run.state is not S.PROMOTED:
        return f"run {run.id} is {run.state.value}, not promoted: there is nothing of it to roll back"
    rolling = [r for r in active if r.state is S.ROLLING_OUT and r.id != run.id]
    if rolling:
        return f"run {rolling[0].id} is rolling out now: a rollback would undo that rollout, not run {run.id}'s"
    if champion != run.model_version:
        return f"run {run.id}'s {run.model_version} no longer serves ({champion or 'nothing'} does): nothing to undo"
    return None


def buttons_note(run: PipelineRun, override: dict[str, Any] | None = None) -> str:
    """What the check run's title says once its buttons changed: where the run stands and what a button does."""
    if waits_to_roll_out(run):
        return "Waiting for approval: Promote rolls this model out, Reject ends the run"
    if gate_rejected(run):
        return "Gate failed: Promote overrides it (recorded as an override), by someone with write access"
    overridden = f" (gate overridden by {override.get('by')})" if override else ""
    if run.state is S.PROMOTED:
        return f"{run.model_version} promoted{overridden}: Rollback puts the previous model back"
    if run.state is S.ROLLING_OUT:
        return f"Rolling out{overridden}"
    return f"{run.state.value}{overridden}" + (f": {run.reason}" if run.reason else "")
