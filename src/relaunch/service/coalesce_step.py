"""The RECEIVED step's coalescing: supersede older runs of the lane, close a redundant run, hold a waiting one.

Race safety rests on the store's optimistic versions. Superseding another run re-reads it and retries on a conflict
(the other run may have moved on: its new jobs are cancelled too). The policy only ever supersedes *older* runs
(by created_at, then id), so two runs racing to supersede each other cannot both die: the newest wins. A handler that
submitted a job and then lost the race to save its run (it was superseded meanwhile) cancels that job itself
(`save_after_submit`), so no job outlives its superseded run.
A held run stays in `received` with `waiting_for`/`hold_until` set; advancing it again re-plans from the facts and
writes nothing when nothing changed, so the reconcile tick (or a nudge) can call it any number of times. A run held
until a time (its lane's quiet window) asks `look_at` for a nudge then, so it builds when the window ends rather than
on the next reconcile tick; the tick still releases it if that nudge is lost (a crash, or Pub/Sub's horizon).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from relaunch.domain.coalescing import (
    Supersession,
    arbitrate,
    duplicate_reason,
    lane,
    lane_name,
    quiet_until,
    supersedable,
)
from relaunch.domain.model import PipelineRun, RunState, Stage, StatusState, TimelineEntry
from relaunch.domain.ports import CoalesceStore, ConflictError, Runs, TrainingBackend
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.states import transition

log = logging.getLogger(__name__)
MAX_RACES = 5  # re-reads of a run that keeps changing under a supersession before giving up (transient)
_STAGE_OF = {RunState.RECEIVED: "build", RunState.BUILDING: "build", RunState.TRAINING: "train"}

Notify = Callable[[PipelineRun, Stage, StatusState, str], None]
Ended = Callable[[PipelineRun], None]


@dataclass
class Coalescer:
    """Applies `coalesce` to a received run through the store and the training backend."""

    store: CoalesceStore
    backend: TrainingBackend
    notify: Notify
    ended: Ended  # a run this step ended (ledger)
    clock: Callable[[], float] = time.time
    look_at: Callable[[str, float], bool] | None = None  # schedules a nudge of a held run at its time (rollout_looks)

    def admit(self, run: PipelineRun, spec: PipelineSpec) -> tuple[PipelineRun, bool]:
        """(the run, whether it may build now): closed as redundant, held in `received`, or free to build."""
        key = lane(run)
        for _ in range(MAX_RACES):
            head_id = self.store.lane_head(lane_name(key)) if key else None
            head = self.store.get_run(head_id) if head_id else None
            active = self.store.active_runs(run.pipeline)
            move = arbitrate(run, active, head)
            if move.action == "close":
                return self._close(run, self._close_reason(run, move.other or "")), False
            if move.action == "wait":
                return self._hold(run, move.other, None), False
            if move.action == "take" and not self.store.take_lane(lane_name(key), head_id, run.id):
                continue  # another run of the lane moved its head first: decide again on the new facts
            for supersession in move.plan.supersede:
                self.supersede(supersession.run_id, supersession.reason, by=run)
            return self._go(run, spec, active, move.plan.supersede)
        raise ConflictError(f"the lane of run {run.id} kept changing while it was admitted")

    def _go(
        self, run: PipelineRun, spec: PipelineSpec, active: list[PipelineRun], superseded: list[Supersession]
    ) -> tuple[PipelineRun, bool]:
        policy = spec.coalesce
        now = self.clock()
        until = quiet_until(
            run, active, superseded, debounce_s=policy.debounce_s, burst_quiet_s=policy.burst_quiet_s, now=now
        )
        if until is not None:
            return self._hold(run, None, until), False
        if run.waiting_for or run.hold_until:
            run = run.model_copy(update={"waiting_for": None, "hold_until": None})  # saved with the next move
        return run, True

    def _close_reason(self, run: PipelineRun, other_id: str) -> str:
        other = self.store.get_run(other_id)
        if other is not None and other.trigger.sha and other.trigger.sha == run.trigger.sha:
            return duplicate_reason(other)
        return f"superseded by {(other.trigger.sha or 'its branch head')[:7] if other else other_id}"

    def supersede(self, run_id: str, reason: str, *, by: PipelineRun) -> PipelineRun | None:
        """Cancel the older run's jobs and move it to `superseded`; None if it is gone, done, or not older."""
        for _ in range(MAX_RACES):
            other = self.store.get_run(run_id)
            if other is None or not supersedable(other) or (other.created_at, other.id) >= _age(by):
                return None
            durations = self._cancel_jobs(other)
            moved, entry = transition(other, RunState.SUPERSEDED, reason, now=self.clock())
            try:
                saved = self.store.save_run(moved.model_copy(update={"stage_durations": durations}), [entry])
            except ConflictError:
                continue  # it moved on (maybe with a new job): look again
            self._report(other.state, saved, reason)
            self.ended(saved)
            return saved
        raise ConflictError(f"run {run_id} kept changing while run {by.id} superseded it")

    def _close(self, run: PipelineRun, reason: str) -> PipelineRun:
        moved, entry = transition(run, RunState.SUPERSEDED, reason, now=self.clock())
        saved = self.store.save_run(moved, [entry])
        self._report(run.state, saved, reason)
        self.ended(saved)
        return saved

    def _hold(self, run: PipelineRun, wait_for: str | None, until: float | None) -> PipelineRun:
        if (run.waiting_for, run.hold_until) == (wait_for, until):
            return run  # nothing new: a repeated nudge writes nothing
        why = f"waiting for run {wait_for} of the same branch" if wait_for else ""
        if until is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(until))
            why = "; ".join(filter(None, [why, f"held until {stamp}, for its branch to be quiet (a newer push wins)"]))
        note = TimelineEntry(kind="info", message=why, data={"waiting_for": wait_for, "hold_until": until})
        saved = self.store.save_run(run.model_copy(update={"waiting_for": wait_for, "hold_until": until}), [note])
        if until is not None and self.look_at is not None:
            self.look_at(saved.id, until)  # False (too far ahead for the bus): the reconcile tick releases it
        return saved

    def _cancel_jobs(self, run: PipelineRun) -> dict[str, float]:
        """Cancel every job of the run; the durations with the seconds each cancelled attempt did run."""
        durations = dict(run.stage_durations)
        for step, job_id in run.jobs.items():
            try:
                self.backend.cancel(job_id)
                status = self.backend.status(job_id)
            except (KeyError, ValueError) as exc:  # unknown or already gone: nothing left to stop
                log.warning("cancel of %s (run %s) refused: %s", job_id, run.id, exc)
                continue
            if status.started_at is not None and status.finished_at is not None:
                durations[step] = durations.get(step, 0.0) + max(0.0, status.finished_at - status.started_at)
        return durations

    def _report(self, was: RunState, run: PipelineRun, reason: str) -> None:
        stage: Stage = _STAGE_OF.get(was, "gate")  # type: ignore[assignment]
        for pending in dict.fromkeys([stage, "gate"]):
            self.notify(run, pending, "error", reason)  # type: ignore[arg-type]


def save_after_submit(
    store: Runs, backend: TrainingBackend, run_id: str, job_id: str, save: Callable[[], PipelineRun]
) -> PipelineRun:
    """Save a run that just submitted `job_id`; if a supersession won the race meanwhile, cancel that orphan job."""
    try:
        return save()
    except ConflictError:
        current = store.get_run(run_id)
        if current is not None and current.state is RunState.SUPERSEDED and job_id not in current.jobs.values():
            backend.cancel(job_id)
        raise


def _age(run: PipelineRun) -> tuple[float, str]:
    return (run.created_at, run.id)
