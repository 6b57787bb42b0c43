"""Promote, reject and roll back one run by hand: what GitHub's check-run buttons and the dashboard both do.

The rules are domain/run_actions'; this module applies them through the store and the orchestrator. Every action is
safe to repeat: an approval or a rejection is recorded once (the first verdict stands), an override moves the run out
of `rejected` once (the store's optimistic save lets one writer through), and a rollback is asked once per run, by
whoever asked first; a second press finds the run moved on and is refused with where it stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relaunch.domain.effects import Effect
from relaunch.domain.model import PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import ConflictError, StepStore
from relaunch.domain.run_actions import (
    override_line,
    override_record,
    promote_refusal,
    rollback_refusal,
    waits_to_roll_out,
)
from relaunch.domain.states import transition
from relaunch.service.approval_step import NotAwaiting, approve_by_operator, reject_by_operator

S = RunState


class ActionRefused(Exception):
    """An action the run does not allow now; the message is one line for the person who asked."""


@dataclass
class RunActions:
    """Acts on one run: approves or overrides it (promote), refuses its wait (reject), or undoes its rollout."""

    store: StepStore
    nudge: Callable[[str], object]  # publishes StartRun(run_id) on the commands topic: the orchestrator goes on
    roll_back: Callable[[str], PipelineRun]  # the orchestrator's roll_back(pipeline): undo the latest rollout
    champion: Callable[[str], str | None]  # the version the pipeline serves now (the registry's champion)
    clock: Callable[[], float] = time.time

    def promote(self, run_id: str, *, by: str, via: str = "operator", permission: str = "operator") -> PipelineRun:
        """Approve a run waiting to roll out, or override its gate's rejection; ActionRefused otherwise."""
        run = self._run(run_id)
        why = promote_refusal(
            run, champion=self.champion(run.pipeline), newer=self.store.runs_since(run.pipeline, run.created_at)
        )
        if why is not None:
            raise ActionRefused(why)
        if waits_to_roll_out(run):
            try:
                approve_by_operator(self.store, run.id, by=by, at=self.clock(), via=via, permission=permission)
            except NotAwaiting as exc:  # approved or rejected a moment ago
                raise ActionRefused(str(exc)) from None
        else:
            self._override(run, override_record(by, via, permission, run, at=self.clock()))
        self.nudge(run.id)
        return self.store.get_run(run.id) or run

    def reject(
        self, run_id: str, *, by: str, reason: str, via: str = "operator", permission: str = "operator"
    ) -> PipelineRun:
        """Refuse a run waiting to roll out (it ends rejected with `reason`); ActionRefused otherwise."""
        run = self._run(run_id)
        if not waits_to_roll_out(run):
            raise ActionRefused(f"run {run.id} is {run.state.value}: only a run waiting for approval can be rejected")
        try:
            reject_by_operator(
                self.store, run.id, by=by, reason=reason, at=self.clock(), via=via, permission=permission
            )
        except NotAwaiting as exc:
            raise ActionRefused(str(exc)) from None
        self.nudge(run.id)
        return self.store.get_run(run.id) or run

    def rollback(self, run_id: str, *, by: str, via: str = "operator", permission: str = "operator") -> PipelineRun:
        """Roll the run's pipeline back, if that undoes this run's model; ActionRefused otherwise."""
        run = self._run(run_id)
        why = rollback_refusal(run, champion=self.champion(run.pipeline), active=self.store.active_runs(run.pipeline))
        if why is not None:
            raise ActionRefused(why)
        asked = {"by": by, "via": via, "permission": permission, "at": self.clock()}
        self.store.put_effect(run.id, Effect.ROLLBACK_ASKED, asked)  # first write wins: one rollback per run
        kept = self.store.get_effect(run.id, Effect.ROLLBACK_ASKED) or asked
        if (kept.get("by"), kept.get("via")) != (by, via):
            raise ActionRefused(f"run {run.id}: a rollback was already asked by {kept.get('by')} ({kept.get('via')})")
        self.store.append_timeline(run.id, TimelineEntry(kind="rollback", message=_asked(kept), data=dict(kept)))
        try:
            ended = self.roll_back(run.pipeline)
        except ValueError as exc:  # NothingToRollBack, or the endpoint or registry refused
            raise ActionRefused(f"rollback of run {run.id} refused: {exc}") from None
        return ended

    def _run(self, run_id: str) -> PipelineRun:
        run = self.store.get_run(run_id)
        if run is None:
            raise ActionRefused(f"no run {run_id[:100]!r}")
        return run

    def _override(self, run: PipelineRun, record: dict[str, Any]) -> PipelineRun:
        """rejected -> rolling_out, with who overrode what the gate had said on the timeline and in the ledger."""
        moved, entry = transition(run, S.ROLLING_OUT, f"override by {record['by']}", now=self.clock())
        note = TimelineEntry(kind="override", message=override_line(record), data=record)
        try:
            saved = self.store.save_run(moved.model_copy(update={"reason": ""}), [entry, note])
        except ConflictError:  # another press (or the orchestrator) moved the run first
            raise ActionRefused(f"run {run.id} changed while it was being promoted; look at it again") from None
        self.store.put_effect(run.id, Effect.OVERRIDE, record)
        return saved


def _asked(record: dict[str, Any]) -> str:
    return f"rollback asked by {record.get('by')} ({record.get('via')}, {record.get('permission')})"
