"""Reconciliation: on every scheduler tick, move what events alone would leave behind.

For every run not yet in a terminal state:
- a run stuck in its state past that stage's timeout ends, with the reason (a rollout is rolled back first; a job
  still running is cancelled so it stops costing);
- a rolling-out run is re-planned (a failing canary is rolled back before its bake ends; a bake that ended is
  decided here only if its own look, scheduled at its end, was lost);
- a run that has heard nothing for `poll_after_s` is advanced, which asks the ports (job and build status) what
  happened: events do get lost.

Everything here goes through the orchestrator's own idempotent steps, so reconciling twice changes nothing.
A tick never blocks the ones behind it (the function lives 300 s, one instance at a time): no step waits long on a
port (a long endpoint operation is recorded and polled on the next tick), and a tick takes up no further run once
`tick_budget_s` is spent; the runs it deferred go first on the next tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relaunch.domain.commands import RECONCILE_TOPIC  # noqa: F401  (re-exported)
from relaunch.domain.model import PipelineRun, RunState, Stage, TimelineEntry
from relaunch.domain.rollout import BlueGreenRollout, CanaryRollout, Rollout
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.sweep import rounds

if TYPE_CHECKING:  # built only by a tick that finds a run to move (most ticks of a quiet project find none)
    from relaunch.domain.ports import OrchestratorStore
    from relaunch.service.orchestrator import Orchestrator

log = logging.getLogger(__name__)
S = RunState

STAGES: dict[RunState, Stage] = {
    S.RECEIVED: "build",
    S.BUILDING: "build",
    S.TRAINING: "train",
    S.EVALUATING: "gate",  # the evaluation's verdict is the gate's status
    S.GATED: "gate",
    S.ROLLING_OUT: "deploy",
}


@dataclass(frozen=True)
class Timeouts:
    """How long a run may stay in a stage; `margin_s` covers queueing and the tick's own period."""

    building_s: float = 3600.0
    margin_s: float = 600.0
    poll_after_s: float = 60.0
    deploying_s: float = 1800.0  # a rollout's endpoint operations: a Vertex deployment takes up to tens of minutes
    tick_budget_s: float = 120.0  # well under the reconcile function's 300 s, with room for the run in hand


def stage_timeout(state: RunState, spec: PipelineSpec, t: Timeouts = Timeouts()) -> float | None:
    """Seconds a run may spend in `state` before it counts as stuck (None: no limit). Pure.

    Training and evaluation allow every retry the spec grants its job (a retried job keeps the run in its state).
    A received run may legitimately wait for its lane or its debounce window: it has no limit.
    """
    if state is S.BUILDING:
        return t.building_s
    if state is S.TRAINING:
        return spec.train.timeout_s * (1 + spec.train.max_retries) * rounds(spec.sweep) + t.margin_s  # per trial
    if state is S.EVALUATING:
        return spec.evaluate.timeout_s * (1 + spec.evaluate.max_retries) + t.margin_s
    if state is S.GATED:
        return t.margin_s
    if state is S.ROLLING_OUT:  # a climb through environments rolls out in each and bakes before the next
        rollouts = [e.rollout for e in spec.environments] or [spec.rollout]
        return sum(e.min_bake_s for e in spec.environments) + sum(_rollout_s(r, t) for r in rollouts)
    return None


def _rollout_s(strategy: Rollout, t: Timeouts) -> float:
    if isinstance(strategy, CanaryRollout | BlueGreenRollout):  # a quiet window may be held up to its max
        return strategy.give_up_s + t.deploying_s + t.margin_s
    return t.deploying_s + t.margin_s


def entered_at(run: PipelineRun, timeline: Sequence[TimelineEntry]) -> float:
    """When the run entered its current state: its last transition there, else its creation."""
    moves = [e.at for e in timeline if e.kind == "state" and e.data.get("to") == run.state.value]
    return max(moves) if moves else run.created_at


@dataclass
class ReconcileReport:
    """What one tick did, for the log."""

    examined: int = 0
    advanced: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # not taken up: the tick's budget was spent
    housekeeping: str | None = None  # what this tick's housekeeping pass did (most ticks run none)


class ReconcileService:
    """Runs one reconcile pass over every pipeline's active runs."""

    def __init__(
        self,
        specs: Callable[[], Mapping[str, PipelineSpec]],
        store: OrchestratorStore,
        orchestrator: Callable[[], Orchestrator],
        clock: Callable[[], float] = time.time,
        timeouts: Timeouts = Timeouts(),
        housekeeping: Callable[[float], str | None] | None = None,
    ) -> None:
        """`orchestrator()` builds (or gives) the orchestrator: called only once a tick finds an active run.
        `housekeeping(budget_s)` runs after the runs, at most once per its interval; it says what it did."""
        self.specs, self.store, self._orchestrator = specs, store, orchestrator
        self.clock, self.timeouts, self.housekeeping = clock, timeouts, housekeeping
        self._deferred: list[str] = []  # what the last tick left for lack of time: first in line on this one

    @classmethod
    def over(cls, orchestrator: Orchestrator, **options: Any) -> ReconcileService:
        """The service over an orchestrator already built, reading its specs (as they are at each tick) and store."""
        return cls(lambda: orchestrator.d.specs(), orchestrator.d.store, lambda: orchestrator, **options)

    @property
    def orch(self) -> Orchestrator:
        return self._orchestrator()

    def run(self) -> ReconcileReport:
        """One pass; a run that cannot be reconciled now (a race, a dependency down) is retried next tick."""
        report = ReconcileReport()
        began = self.clock()
        runs = [run for pipeline in sorted(self.specs()) for run in self.store.active_runs(pipeline)]
        first = {run_id: i for i, run_id in enumerate(self._deferred)}
        runs.sort(key=lambda run: first.get(run.id, len(first)))  # stable: the rest keep their order
        for run in runs:
            if self.clock() - began >= self.timeouts.tick_budget_s:
                report.deferred.append(run.id)
                continue
            report.examined += 1
            try:
                self._reconcile(run, report)
            except Exception as exc:  # one run's trouble never stops the others
                log.warning("reconcile of %s failed: %s: %s", run.id, type(exc).__name__, exc)
                report.errors.append(f"{run.id}: {type(exc).__name__}: {exc}")
        self._deferred = report.deferred
        if report.deferred:
            log.warning("reconcile tick out of time: %d runs left for the next tick", len(report.deferred))
        self._keep_house(report, self.timeouts.tick_budget_s - (self.clock() - began))
        return report

    def _keep_house(self, report: ReconcileReport, budget_s: float) -> None:
        """Housekeeping in what is left of the tick's budget; its trouble never fails the tick."""
        if self.housekeeping is None or budget_s <= 0:
            return
        try:
            report.housekeeping = self.housekeeping(budget_s)
        except Exception as exc:  # noqa: BLE001 (the next interval tries again)
            report.housekeeping = f"failed: {type(exc).__name__}: {exc}"
        if report.housekeeping:
            log.info("housekeeping: %s", report.housekeeping)

    def _reconcile(self, run: PipelineRun, report: ReconcileReport) -> None:
        spec = self.specs().get(run.pipeline)
        now = self.clock()
        if spec is not None:
            limit = stage_timeout(run.state, spec, self.timeouts)
            stuck_for = now - entered_at(run, self.store.timeline(run.id))
            if limit is not None and stuck_for > limit:
                self._give_up(run, spec, f"stuck in {run.state.value} for {stuck_for:.0f}s (limit {limit:.0f}s)")
                report.timed_out.append(run.id)
                return
        released = run.hold_until is not None and now >= run.hold_until  # its debounce window is over
        if run.state is S.ROLLING_OUT or released or now - run.updated_at >= self.timeouts.poll_after_s:
            moved = self.orch.advance(run)
            if moved.state is not run.state or moved.version != run.version:
                report.advanced.append(f"{run.id}: {run.state.value} -> {moved.state.value}")

    def _give_up(self, run: PipelineRun, spec: PipelineSpec, reason: str) -> None:
        step = {S.TRAINING: "train", S.EVALUATING: "evaluate"}.get(run.state)
        if step is not None and step in run.jobs:
            self.orch.d.backend.cancel(run.jobs[step])  # a stuck job must stop costing
        self.orch.give_up(run, spec, STAGES[run.state], reason)
