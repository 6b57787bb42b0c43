"""The orchestrator's service layer: moves a run through its states by asking the ports what happened.

Every command is a nudge: the handler loads the run and advances it as far as the facts allow. A redelivered or
stale command therefore finds nothing to do, and every side effect is keyed by (run id, step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from relaunch import logs
from relaunch.domain import effects
from relaunch.domain.approval import awaited
from relaunch.domain.commands import CheckRunAction, Command, LabelApproval, ReportSkip
from relaunch.domain.gate import decide, report_markdown
from relaunch.domain.jobs import RunPaths, eval_request, train_request
from relaunch.domain.model import (
    ModelVersion,
    Notification,
    PipelineRun,
    RunState,
    Scores,
    Stage,
    StatusState,
    TimelineEntry,
)
from relaunch.domain.ports import (
    ArtifactSource,
    BlobStore,
    CommitHistory,
    Endpoint,
    ImageBuilder,
    ModelRegistry,
    Notifier,
    OrchestratorStore,
    RepoPermissions,
    TrainingBackend,
)
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.states import transition
from relaunch.service import ledger
from relaunch.service.approval_step import Approvals
from relaunch.service.artifact_pin import fetch_pinned
from relaunch.service.check_run_step import CheckRunUpdates, wired_buttons
from relaunch.service.coalesce_step import Coalescer, save_after_submit
from relaunch.service.environment_step import EnvironmentRollouts
from relaunch.service.evaluate_step import EvaluationInputs
from relaunch.service.gate_step import GateStep
from relaunch.service.notices import Notices, status_note
from relaunch.service.retry_step import Retrier, with_attempt_seconds
from relaunch.service.sweep_step import SweepStep
from relaunch.service.tracking_step import TrackingStep, TrackingSync

log = logging.getLogger(__name__)
S = RunState


class UnknownRun(Exception):
    """A command names a run that does not exist: permanent, dead-letter it."""


@dataclass
class Deps:
    """The ports the orchestrator works through."""

    store: OrchestratorStore
    builder: ImageBuilder
    backend: TrainingBackend
    blobs: BlobStore
    registry: ModelRegistry
    endpoint: Endpoint
    notifier: Notifier
    specs: Callable[[], Mapping[str, PipelineSpec]]
    artifact_root: str
    artifacts: Callable[[], ArtifactSource] | None = None  # built on first W&B run (a bad config fails that run)
    promote_alias: str = "production"  # moved to a W&B artifact once its run is promoted
    permissions: RepoPermissions | None = None  # who may approve a fork's run (None: nobody, only the CLI)
    history: CommitHistory | None = None  # commit ages; bootstrap always sets it (None: no age check, unit tests)
    clock: Callable[[], float] = time.time  # when state changes happen (the domain reads no clock)
    look_at: Callable[[str, float], bool] | None = None  # schedules a look at a waiting rollout (rollout_looks.py)
    check_runs: CheckRunUpdates | None = None  # the gate check run's buttons follow the run (None: no GitHub App)
    tracking: TrackingSync | None = None  # uploads the jobs' offline W&B runs (None: no W&B key configured)


Step = Callable[[PipelineRun, PipelineSpec], PipelineRun | None]


class Orchestrator:
    """Advances pipeline runs; each step returns the saved run, or None to wait for an outside event."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self._steps: dict[RunState, Step] = {
            S.RECEIVED: self._received,
            S.AWAITING_APPROVAL: self._awaiting,
            S.BUILDING: self._building,
            S.TRAINING: self._training,
            S.EVALUATING: self._evaluating,
            S.GATED: self._gated,
            S.ROLLING_OUT: self._rolling_out,
        }
        self.notices = Notices(deps.store, deps.notifier)
        self._coalescer = Coalescer(deps.store, deps.backend, self._notify, self._ended, deps.clock, deps.look_at)
        approving = (self.notices.send, self._coalescer.supersede, deps.clock, self._notify, self._ended, deps.look_at)
        self.approvals = Approvals(deps.store, deps.permissions, *approving)
        self._gate = GateStep(deps.store, deps.registry, self._notify, clock=deps.clock)
        self._retrier = Retrier(deps.store, deps.backend, self._fail, clock=deps.clock)
        self._sweeps = SweepStep(deps.store, deps.backend, deps.blobs, clock=deps.clock)  # a spec's `sweep:`
        self.rollout = EnvironmentRollouts(  # a pipeline with environments climbs them, one rollout in each
            deps.store,
            deps.registry,
            deps.endpoint,
            deps.notifier,
            deps.blobs,
            artifact_root=deps.artifact_root,
            clock=deps.clock,
            look_at=deps.look_at,
        )
        self._inputs = EvaluationInputs(deps.store, deps.builder, deps.blobs, deps.artifact_root)
        self._tracking = TrackingStep(deps.store, deps.tracking, self._paths, deps.promote_alias)
        self.buttons = wired_buttons(deps, self.handle, self.roll_back)  # the gate check run's buttons

    def handle(self, command: Command) -> PipelineRun | None:
        """Apply a command: load its run and advance it (a skip report has no run: None)."""
        if isinstance(command, ReportSkip):
            self.report_skip(command)
            return None
        if isinstance(command, LabelApproval):  # names a pull request, not a run: the runs waiting at its head
            advanced = [self.advance(run) for run in self.approvals.on_label(command)]
            return advanced[-1] if advanced else None
        if isinstance(command, CheckRunAction):  # a button pressed on a run's gate check run
            return self.buttons.pressed(command)
        if (run := self.d.store.get_run(command.run_id)) is None:
            raise UnknownRun(f"no run {command.run_id!r}")
        return self.advance(run)

    def advance(self, run: PipelineRun) -> PipelineRun:
        """Move the run as far as the facts allow."""
        logs.bind(run_id=run.id, pipeline=run.pipeline)  # every line of this request says which run it is about
        while not run.state.terminal:
            spec = self.d.specs().get(run.pipeline)
            if spec is None:
                return self._fail(run, "build", f"pipeline {run.pipeline!r} has no spec any more")
            moved = self._steps[run.state](run, spec)
            if moved is None:  # waiting for an outside event; a step may have noted something on the run
                return self.buttons.follow(self.d.store.get_run(run.id) or run)
            run = moved
        self._ended(run)
        return self.buttons.follow(run)

    # -- steps -----------------------------------------------------------------------------------------------

    def report_skip(self, command: ReportSkip) -> None:
        """Post the "skipped" status of a commit no pipeline retrains, once."""
        note = Notification(
            run_id=command.run_id,
            pipeline=command.pipeline,
            repo=command.repo,
            sha=command.sha,
            stage="gate",  # the verdict a branch protection rule waits for
            state="success",
            description=command.description,
            ref=command.ref,
        )
        self.notices.send(note, effects.Effect.NOTIFY_SKIP)
        if (spec := self.d.specs().get(command.pipeline)) is not None:  # a training this push did not pay for
            ledger.record_skip(self.d.store, command.run_id, spec, at=self.d.clock())

    def _received(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        return self._admitted(run, spec) if self.approvals.may_build(run, spec) else None  # a fork's run waits

    def _awaiting(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        if (ended := self.approvals.decided(run, spec)) is not None or self.rollout.awaits(run, spec):
            return ended or self._rolling_out(run, spec)  # rejected or expired; or waits to enter an environment
        if not self.approvals.approved(run):
            return None  # still waiting (a verdict, or the deadline, nudges it)
        return self._gated(run, spec) if awaited(run) == "promotion" else self._admitted(run, spec)

    def _admitted(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        run, free = self._coalescer.admit(run, spec)
        if not free:  # superseded as redundant (terminal), or held for its lane or its debounce (None: wait)
            return run if run.state.terminal else None
        what = _short(run.trigger.sha) if run.trigger.sha else run.trigger.ref  # a ref-only run: its whole ref
        self._notify(run, "build", "pending", f"Building {what or 'unknown'}")
        return self._move(run, S.BUILDING)

    def _building(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        try:
            result = self.d.builder.build(run, key=effects.build(run.id))
        except ValueError as exc:  # permanent: bad clone URL, unknown commit, build config refused
            return self._fail(run, "build", f"build failed: {exc}")
        if result.image is None:
            if run.build_id != result.build_id:
                note = TimelineEntry(kind="info", message=f"build {result.build_id} started")
                self._save(run.model_copy(update={"build_id": result.build_id}), note)
            return None
        run = self._with_resolved_sha(run, result.sha)
        if told := result.environment_note:  # the jobs' Python environment: built, reused or none declared
            run = self._save(run, TimelineEntry(kind="info", message=told, data={"environment": result.environment}))
        self._notify(run, "build", "success", f"Built {_short(run.trigger.sha)}")
        built = run.model_copy(update={"image": result.image, "build_id": result.build_id})
        try:
            evaluated_by = self._inputs.with_evaluator(built, spec)
        except ValueError as exc:  # permanent: no base commit, a bad evaluate.ref, the evaluator's build refused
            return self._fail(run, "build", f"evaluator build failed: {exc}")
        if evaluated_by is None:
            return None  # the evaluator's build is still running
        return self._start_training(evaluated_by, spec)

    def _start_training(self, built: PipelineRun, spec: PipelineSpec) -> PipelineRun:
        """Submit the built run's training (or, for a W&B run, fetch its artifact and evaluate it)."""
        paths = self._paths(built)
        if built.trigger.artifact:
            return self._evaluate_artifact(built, spec, paths)
        job_id = self._sweeps.submit(built, spec, paths)  # one job, or the sweep of many
        moved = save_after_submit(
            self.d.store,
            self.d.backend,
            built.id,
            job_id,
            lambda: self._move(built, S.TRAINING, jobs={**built.jobs, "train": job_id}, model_uri=paths.model),
        )
        self._notify(moved, "train", "pending", f"Training job {job_id} queued")
        return moved

    def _with_resolved_sha(self, run: PipelineRun, sha: str | None) -> PipelineRun:
        """A run started without a commit (dispatch, schedule, drift, W&B) records the one its build checked out."""
        if run.trigger.sha or not sha:
            return run
        note = TimelineEntry(kind="info", message=f"{run.trigger.ref or 'HEAD'} resolved to {sha}")
        return self._save(run.model_copy(update={"trigger": run.trigger.model_copy(update={"sha": sha})}), note)

    def _evaluate_artifact(self, run: PipelineRun, spec: PipelineSpec, paths: RunPaths) -> PipelineRun:
        """W&B runs skip training: fetch the artifact as the candidate model, pin its version, then evaluate it."""
        if self.d.artifacts is None:
            return self._fail(run, "evaluate", "no artifact source is configured for W&B runs")
        try:  # an alias is resolved here, once; from now on the trigger names the concrete version fetched
            run = fetch_pinned(self.d.store, self.d.artifacts(), run, paths.model)
        except ValueError as exc:  # unknown artifact, or not the one routed: permanent
            return self._fail(run, "evaluate", f"fetch of {run.trigger.artifact} failed: {exc}")
        artifact = run.trigger.artifact
        champion = self.d.registry.champion(run.pipeline)
        fetched = run.model_copy(update={"model_uri": paths.model})
        staged = self._inputs.champion_input(fetched, champion)  # a read-only copy, never the registry's folder
        job_id = self.d.backend.submit(eval_request(fetched, spec, staged, paths))
        moved = self._move(
            fetched,
            S.EVALUATING,
            jobs={**run.jobs, "evaluate": job_id},
            champion_version=champion.version if champion else None,
        )
        self._notify(moved, "gate", "pending", f"Evaluating {artifact} against {_against(champion)}")
        return moved

    def _training(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        status, run = self._sweeps.status(run, spec, self._paths(run))  # the run as stored: trials saved with it
        if not status.done:
            return None
        if status.state != "succeeded":  # one policy for every backend: retry infrastructure, fail fast on code
            first = train_request(run, spec, run.image or "", self._paths(run))
            return self._retrier.failed(run, spec, status, first)
        durations = with_attempt_seconds(run, "train", status)
        self._notify(run, "train", "success", f"Trained in {durations['train']:.1f}s")
        champion = self.d.registry.champion(run.pipeline)
        try:
            request = eval_request(run, spec, self._inputs.champion_input(run, champion), self._paths(run))
        except ValueError as exc:  # no evaluator the candidate cannot change, or a champion that cannot be staged
            return self._fail(run, "evaluate", f"evaluation not started: {exc}")
        job_id = self.d.backend.submit(request)
        update: dict[str, object] = {
            "jobs": {**run.jobs, "evaluate": job_id},
            "stage_durations": durations,
            "retry_at": None,
            "champion_version": champion.version if champion else None,
        }
        moved = save_after_submit(
            self.d.store, self.d.backend, run.id, job_id, lambda: self._move(run, S.EVALUATING, "", **update)
        )
        self._notify(moved, "gate", "pending", f"Evaluating against {_against(champion)}")
        return moved

    def _evaluating(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        status = self.d.backend.status(run.jobs["evaluate"])
        if not status.done:
            return None
        if status.state != "succeeded":  # the same policy as training: retry infrastructure, fail fast on code
            held = self.d.registry.get(run.pipeline, run.champion_version) if run.champion_version else None
            first = eval_request(run, spec, self._inputs.champion_input(run, held), self._paths(run))
            return self._retrier.failed(run, spec, status, first, "evaluate")
        durations = with_attempt_seconds(run, "evaluate", status)
        try:
            candidate, champion, n_examples = self._read_scores(run)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return self._fail(run, "gate", f"evaluation output unusable: {exc}")
        decision = decide(candidate, champion, spec.gate, run.champion_version, n_examples=n_examples)
        moved = self._move(run, S.GATED, decision=decision, stage_durations=durations, retry_at=None)
        summary = gate_summary(decision.promote, decision.reasons, evaluate_only=run.trigger.evaluate_only)
        label = self._sweeps.label(run, _short(run.trigger.sha))  # a sweep's: which trial won, of how many
        report = report_markdown(decision, pipeline=run.pipeline, candidate_label=label, evaluator=run.evaluator_sha)
        self._notify(moved, "gate", "success" if decision.promote else "failure", summary, report)
        return moved

    def _gated(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        self._tracking.sync(run, spec)  # the jobs' W&B runs, uploaded once whatever the verdict (spec: online)
        if run.state is S.GATED and self.approvals.at_gate(run, spec):
            return None  # gate.approval: waits for a verdict, then the gate's checks run against the champion then
        return self._gate.run(run, spec, self.d.history)  # history read here: tests set it on the built Deps

    def _rolling_out(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        moved = self.rollout.run(run, spec)  # None: baking or in a rollback window, the reconcile tick re-plans
        self._tracking.follow(moved or run, spec, self.d.artifacts)  # W&B aliases follow environments and promotion
        return moved

    def roll_back(self, pipeline: str, env: str | None = None) -> PipelineRun:
        """`relaunch rollback [--env ENV]`: undo the latest rollout there (NothingToRollBack if there is none)."""
        ended = self.rollout.roll_back_named(pipeline, self.d.specs(), env)
        self._ended(ended)
        return self.buttons.follow(ended)

    def give_up(self, run: PipelineRun, spec: PipelineSpec, stage: Stage, reason: str) -> PipelineRun:
        """End a stuck run (the reconciler's timeouts): a rollout is rolled back first, anything else fails."""
        ended = self.rollout.abort(run, spec, reason) if run.state is S.ROLLING_OUT else self._fail(run, stage, reason)
        self._ended(ended)
        return ended

    # -- helpers ---------------------------------------------------------------------------------------------

    def _paths(self, run: PipelineRun) -> RunPaths:
        base = self.d.blobs.join(self.d.artifact_root, "runs", run.id)
        return RunPaths(output=base, evaluation=self.d.blobs.join(base, "evaluation"))

    def _read_scores(self, run: PipelineRun) -> tuple[Scores, Scores | None, int | None]:
        return self._inputs.read_scores(self._paths(run).evaluation, run.champion_version is not None)

    def _move(self, run: PipelineRun, target: RunState, reason: str = "", **updates: object) -> PipelineRun:
        moved, entry = transition(run, target, reason, now=self.d.clock())
        return self._save(moved.model_copy(update=updates) if updates else moved, entry)

    def _save(self, run: PipelineRun, *entries: TimelineEntry) -> PipelineRun:
        return self.d.store.save_run(run, entries)

    def _fail(
        self, run: PipelineRun, stage: Stage, reason: str, log_tail: str = "", report: str | None = None
    ) -> PipelineRun:
        moved, entry = transition(run, S.FAILED, reason, now=self.d.clock())
        extra = [TimelineEntry(kind="log", message="job log tail", data={"tail": log_tail})] if log_tail else []
        saved = self.d.store.save_run(moved, [entry, *extra])
        self._notify(saved, stage, "failure", reason, report)
        return saved

    def _ended(self, run: PipelineRun) -> None:
        """A run reached a terminal state: record its cost once, and let runs of its lane waiting for it go on."""
        ledger.record_run(self.d.store, run, self.d.specs().get(run.pipeline))
        for waiter in self.d.store.active_runs(run.pipeline):
            if waiter.waiting_for == run.id:
                try:
                    self.advance(waiter)
                except Exception:  # the reconcile tick nudges it again; this run's own outcome stands
                    log.exception("waking run %s after %s ended failed", waiter.id, run.id)

    def _notify(
        self, run: PipelineRun, stage: Stage, state: StatusState, description: str, report: str | None = None
    ) -> None:
        key = effects.notify_status(stage, state)
        self.notices.post(run.id, key, lambda: self._status(run, stage, state, description, report))

    def _status(
        self, run: PipelineRun, stage: Stage, state: StatusState, description: str, report: str | None
    ) -> Notification:
        spec = self.d.specs().get(run.pipeline)
        return status_note(
            run,
            stage,
            state,
            description,
            endpoint=spec.endpoint if spec else None,
            model_version=run.model_version,
            report=report,
            reasons=run.decision.reasons if run.decision else [],
        )


def gate_summary(passed: bool, reasons: list[str], *, evaluate_only: bool) -> str:
    """The gate status's description: a pull request's says it is never promoted, whatever the verdict."""
    verdict = "passed" if passed else "failed"
    if evaluate_only:
        verdict += " (evaluation only: not promoted)" if passed else " (evaluation only)"
    return f"Gate {verdict}: " + "; ".join(reasons)


def _short(sha: str | None) -> str:
    return (sha or "unknown")[:7]


def _against(champion: ModelVersion | None) -> str:
    """What the gate compares the candidate with, as an evaluation's pending status says."""
    return f"champion {champion.version}" if champion else "absolute limits (no champion yet)"
