"""The orchestrator's rolling_out step: plan -> apply through the ports -> advance -> save, until wait or done.

Every action is reported (the `relaunch/deploy` commit status, the GitHub deployment status and Slack, all through
the Notifier) once, keyed by (run, action kind): a re-run after a crash re-applies an idempotent action and repeats
no report. Rollbacks by hand (`relaunch rollback`) and the reconciler's aborts go through the same code.

A deployment or undeployment may outlive the function applying it (minutes on Vertex AI): the endpoint hands back
the running operation's name, recorded in the effect ledger under `endpoint-op:<action>:<version>`; the run waits,
and the next command or reconcile tick re-plans the same action, which polls that operation instead of starting one.

A wait ends at a time the plan knows (a bake's or a window's end, a hold's max): the step asks `look_at` to bring a
`look_at_rollout` command at that time, once per (run, time), so the decision is taken at its deadline rather than
on the next reconcile tick (which stays the backstop, and still sees health fail before the deadline).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from relaunch.domain import effects
from relaunch.domain import rollout as policy
from relaunch.domain.model import (
    EndpointHealth,
    ModelVersion,
    PipelineRun,
    RolloutProgress,
    RunState,
    StatusState,
    TimelineEntry,
)
from relaunch.domain.ports import BlobStore, Endpoint, ModelRegistry, Notifier, StepStore, TransientError
from relaunch.domain.provenance import built_environment, version_metadata
from relaunch.domain.rollout import BlueGreenRollout, RolloutAction
from relaunch.domain.smoke import smoke_instances, smoke_verdict
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.states import can_transition, transition
from relaunch.service.notices import Notices, status_note

log = logging.getLogger(__name__)
S = RunState
ENDS: dict[str, RunState] = {"promoted": S.PROMOTED, "rolled_back": S.ROLLED_BACK, "failed": S.FAILED}


def registry_folder(blobs: BlobStore, artifact_root: str, pipeline: str, run_id: str) -> str:
    """Where a run's registered model is copied: under `registry/`, which training jobs may read but never write."""
    if any(not part or "/" in part or part in (".", "..") for part in (pipeline, run_id)):
        raise ValueError(f"pipeline/run id: {pipeline!r}/{run_id!r} is no folder name")
    return blobs.join(artifact_root, "registry", pipeline, run_id, "model")


class _Pending(Exception):
    """An endpoint operation is still running: the run waits for the next command or reconcile tick."""


class NothingToRollBack(ValueError):
    """`relaunch rollback` found no rollout to undo, or no earlier version to go back to."""


def forced_roll_back(progress: RolloutProgress, reason: str, deployed: Collection[str]) -> RolloutAction:
    """A roll_back action whatever the plan says: traffic back to the previous version if it is still deployed."""
    return policy.roll_back(progress, reason, set(deployed) - {progress.new_version})  # never "back" to the new one


def report_for(action: RolloutAction, phase: str, endpoint: str) -> tuple[StatusState, str] | None:
    """The status an applied action posts (None: a note on the timeline only). Pure."""
    v = action.version or next(iter(action.traffic), "model")
    if action.kind == "deploy":
        return "pending", f"Deploying {v} to {endpoint}"
    if action.kind == "set_traffic":
        return "pending", action.reason
    if action.kind == "smoke_test":
        return "pending", f"Smoke test of {v}: {action.reason}"
    if action.kind == "promote":
        state: StatusState = "success" if action.next_phase == "promoted" else "pending"
        return state, f"{v} serves 100% of {endpoint}: {action.reason}"
    if action.kind == "roll_back":
        return "failure", f"Rolled back: {action.reason}"
    if phase == "holding":  # blue-green: the rollback window closed, the promotion is final
        return "success", f"{action.reason or 'rollback window closed'}; serves 100% of {endpoint}"
    return None  # undeploy/done after a promotion already reported as success


class RolloutStep:
    """Drives a run's rollout through the ports; `clock` is replaceable so tests can end a bake."""

    def __init__(
        self,
        store: StepStore,
        registry: ModelRegistry,
        endpoint: Endpoint,
        notifier: Notifier,
        blobs: BlobStore,
        clock: Callable[[], float] = time.time,
        *,
        artifact_root: str,
        look_at: Callable[[str, float], bool] | None = None,
    ) -> None:
        """`look_at(run_id, at)` schedules a look at the run's rollout at `at`; False: too far ahead, ask later."""
        self.store, self.registry, self.endpoint, self.notifier, self.blobs = store, registry, endpoint, notifier, blobs
        self.clock, self.artifact_root, self.look_at = clock, artifact_root, look_at
        self.notices = Notices(store, notifier)

    def run(self, run: PipelineRun, spec: PipelineSpec, *, final: bool = True) -> PipelineRun | None:
        """Advance the rollout as far as it goes now: the run once terminal, None while it waits.

        Not `final` (an environment before the last): a promotion ends the rollout but not the run, which climbs on.
        """
        if run.rollout is None:
            begun = self._begin(run, spec)
            if begun is None or begun.state.terminal:
                return begun
            run = begun
        while True:
            assert run.rollout is not None
            action = self._plan(run.rollout, spec)
            if action.kind in policy.WAITS:
                self._wait(run, spec, action)
                return None
            if action.kind == "done":
                return self._end(run, spec, action, final=final)
            phase = run.rollout.phase
            try:
                run = self._apply_and_save(run, spec, action)
            except _Pending as pending:
                self._note_once(run, effects.rollout_wait(phase), f"waiting: {pending}")
                return None

    def _wait(self, run: PipelineRun, spec: PipelineSpec, action: RolloutAction) -> None:
        """Say once why the rollout waits (a hold on GitHub too: it is a decision), and look again at its end."""
        assert run.rollout is not None
        data = {"until": action.until}
        if action.kind == "hold":
            self._note_once(run, effects.rollout_wait(f"{run.rollout.phase}:held"), action.reason, data)
            key, version = effects.notify_rollout("hold"), run.rollout.new_version
            self._send(run, spec.endpoint, "pending", action.reason, key, version)
        else:
            self._note_once(run, effects.rollout_wait(run.rollout.phase), f"waiting: {action.reason}", data)
        if action.until is None or self.look_at is None:
            return
        key = effects.rollout_look(action.until)
        if self.store.get_effect(run.id, key) is None and self.look_at(run.id, action.until):
            self.store.put_effect(run.id, key, {"not_before": action.until})

    def abort(self, run: PipelineRun, spec: PipelineSpec, reason: str) -> PipelineRun:
        """Roll a rolling-out run back now (stuck past its timeout, or by hand) and end it."""
        if run.rollout is None:
            return self._end_with(run, spec, S.FAILED, reason)
        if run.rollout.phase not in policy.TERMINAL_PHASES:
            try:
                run = self._apply_and_save(run, spec, forced_roll_back(run.rollout, reason, self._deployed(spec)))
            except _Pending:  # the new version is still being undeployed: the next tick aborts again and polls it
                return run
            if run.state.terminal:
                return run
        return self.run(run, spec) or run

    def roll_back_by_hand(self, pipeline: str, spec: PipelineSpec) -> PipelineRun:
        """Undo the pipeline's latest rollout: abort one in progress, or put the previous champion back."""
        runs = [r for r in self.store.list_runs(pipeline=pipeline, limit=200) if r.rollout is not None]
        rolling = next((r for r in runs if r.state is S.ROLLING_OUT), None)
        if rolling is not None:
            return self.abort(rolling, spec, "rolled back by hand")
        promoted = next((r for r in runs if r.state is S.PROMOTED and r.rollout and r.rollout.phase == "done"), None)
        if promoted is None or promoted.rollout is None:
            raise NothingToRollBack(f"{pipeline}: no promoted rollout to roll back")
        try:
            return self._restore_previous(promoted, spec, promoted.rollout)
        except _Pending as pending:  # recorded: running the rollback again polls the operation, starts nothing
            raise TransientError(f"{pending}; run the rollback again to finish it") from None

    # -- steps -----------------------------------------------------------------------------------------------

    def _begin(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        """Register the model and record what serves now; one rollout per pipeline at a time."""
        assert run.decision is not None and run.model_uri is not None
        refused = policy.unsupported(spec.rollout, self.endpoint.can_address_versions)
        if refused is not None:  # fail before registering or deploying anything
            return self._end_with(run, spec, S.FAILED, refused)
        busy = [r.id for r in self.store.active_runs(run.pipeline) if r.id != run.id and r.state is S.ROLLING_OUT]
        if busy:
            self._note_once(run, effects.Effect.ROLLOUT_QUEUED, f"waiting for the rollout of {busy[0]} to end")
            return None
        champion = self.registry.champion(run.pipeline)
        if (champion.version if champion else None) != run.champion_version:
            why = f"champion changed since evaluation ({run.champion_version} -> {champion and champion.version})"
            return self._end_with(run, spec, S.FAILED, why + "; re-run to evaluate against the new champion")
        try:  # training jobs may write runs/ (a later push could overwrite it): register a copy they cannot write
            dest = registry_folder(self.blobs, self.artifact_root, run.pipeline, run.id)
            model = self.blobs.copy_tree(run.model_uri, dest)
        except ValueError as exc:
            return self._end_with(run, spec, S.FAILED, f"model not copied to the registry: {exc}")
        built = built_environment(self.store.timeline(run.id))  # the endpoint serves it with the same packages
        provenance = version_metadata(run, champion, at=self.clock(), python_environment=built)  # what is new
        version = self.registry.register(run.pipeline, run.id, model, run.decision.candidate, provenance)
        serving = {v: p for v, p in self.endpoint.traffic(spec.endpoint).items() if p > 0 and v != version.version}
        previous = champion.version if champion and champion.version in serving else None
        if previous is None and serving:
            previous = max(serving, key=lambda v: serving[v])
        progress = policy.start(version.version, previous, self.clock())
        note = TimelineEntry(kind="rollout", message=f"{spec.rollout.strategy} rollout of {version.version}")
        return self.store.save_run(run.model_copy(update={"rollout": progress}), [note])

    def _plan(self, progress: RolloutProgress, spec: PipelineSpec) -> RolloutAction:
        health = self._health(progress, spec) if progress.phase in ("baking", "holding") else None
        deployed = None if progress.phase == "pending" else self._deployed(spec)
        return policy.plan(spec.rollout, progress, self.clock(), health, deployed=deployed)

    def _health(self, progress: RolloutProgress, spec: PipelineSpec) -> EndpointHealth | None:
        try:
            return self.endpoint.health(spec.endpoint, progress.new_version, policy.health_since(progress))
        except ValueError as exc:  # the version is gone or the endpoint refuses: health unknown, never healthy
            log.warning("health of %s on %s unavailable: %s", progress.new_version, spec.endpoint, exc)
            return None

    def _apply_and_save(self, run: PipelineRun, spec: PipelineSpec, action: RolloutAction) -> PipelineRun:
        assert run.rollout is not None
        try:
            smoke = self._apply(run, spec, action)
        except ValueError as exc:  # the endpoint refused: undo what this rollout did, or fail if that is refused
            if action.kind == "roll_back":
                return self._end_with(run, spec, S.FAILED, f"roll back of {run.rollout.new_version} refused: {exc}")
            undo = forced_roll_back(run.rollout, f"{action.kind} refused: {exc}", self._deployed(spec))
            return self._apply_and_save(run, spec, undo)
        self._report(run, spec.endpoint, action, run.rollout.phase, smoke)
        progress = policy.advance(run.rollout, action, self.clock(), smoke)
        why = smoke[1] if smoke else action.reason
        note = TimelineEntry(kind="rollout", message=f"{action.kind}: {why}", data={"traffic": action.traffic})
        return self.store.save_run(run.model_copy(update={"rollout": progress}), [note])

    def _apply(self, run: PipelineRun, spec: PipelineSpec, action: RolloutAction) -> tuple[bool, str] | None:
        """Do the action on the endpoint (and the champion alias); every call is idempotent to repeat."""
        ep, pipeline = spec.endpoint, run.pipeline
        if action.kind == "deploy":
            model = self._version(pipeline, action.version)
            self._await(run, "deploy", model.version, lambda op: self.endpoint.deploy(ep, model, operation=op))
        elif action.kind in ("set_traffic", "promote"):
            self.endpoint.set_traffic(ep, action.traffic)
            if action.kind == "promote":
                self.registry.set_champion(pipeline, self._version(pipeline, action.version).version)
        elif action.kind == "smoke_test":
            return self._smoke(run, spec, action.version or "")
        elif action.kind in ("undeploy_previous", "roll_back") and action.version:
            if action.kind == "roll_back" and action.traffic:
                self.endpoint.set_traffic(ep, action.traffic)
                self.registry.set_champion(pipeline, next(iter(action.traffic)))
            gone = action.version
            self._await(run, "undeploy", gone, lambda op: self.endpoint.undeploy(ep, gone, operation=op))
        return None

    def _await(self, run: PipelineRun, action: str, version: str, step: Callable[[str | None], str | None]) -> None:
        """Start or poll the endpoint operation `action` of `version`; _Pending while it runs, its name recorded."""
        key = effects.endpoint_operation(action, version)
        recorded = self.store.get_effect(run.id, key)
        running = step(str(recorded["operation"]) if recorded else None)
        if running is not None:
            self.store.put_effect(run.id, key, {"operation": running})  # before anything else can fail
            raise _Pending(f"{action} of {version} still running on the endpoint ({running})")

    def _smoke(self, run: PipelineRun, spec: PipelineSpec, version: str) -> tuple[bool, str]:
        assert isinstance(spec.rollout, BlueGreenRollout)
        try:
            instances = smoke_instances(spec.rollout, lambda path: self._read_repo(run, path))
        except (OSError, ValueError) as exc:
            return False, f"no smoke instances: {exc}"
        try:
            answer = self.endpoint.predict(spec.endpoint, instances, version=version)
        except (ValueError, TransientError) as exc:  # a 5xx from the new version is what a smoke test is for
            return smoke_verdict(len(instances), None, str(exc))
        return smoke_verdict(len(instances), answer)

    def _read_repo(self, run: PipelineRun, path: str) -> str:
        if not run.image:
            raise ValueError(f"run {run.id} has no checked-out source to read {path} from")
        return self.blobs.read_text(self.blobs.join(run.image, path))

    def _restore_previous(self, run: PipelineRun, spec: PipelineSpec, progress: RolloutProgress) -> PipelineRun:
        """Put a promoted run's previous version back (redeployed if it was undeployed) with the champion alias."""
        old, new = progress.previous_version, progress.new_version
        if old is None:
            raise NothingToRollBack(f"{run.pipeline}: {new} was its first model, there is nothing to roll back to")
        champion = self.registry.champion(run.pipeline)
        if champion is None or champion.version not in (new, old):  # old: an earlier attempt moved it, then waited
            now = champion.version if champion else "none"
            raise NothingToRollBack(f"{run.pipeline}: the champion is {now}, not {new} (run {run.id}): nothing to undo")
        model = self._version(run.pipeline, old)
        self._await(run, "deploy", old, lambda op: self.endpoint.deploy(spec.endpoint, model, operation=op))
        reason = f"rolled back by hand to {old}"
        action = RolloutAction(
            kind="roll_back", next_phase="rolled_back", traffic={old: 100}, version=new, reason=reason
        )
        run = self._apply_and_save(run, spec, action)
        return run if run.state is S.FAILED else self._end_with(run, spec, S.ROLLED_BACK, reason)

    def _end(self, run: PipelineRun, spec: PipelineSpec, action: RolloutAction, *, final: bool = True) -> PipelineRun:
        assert run.rollout is not None and action.outcome is not None
        self._report(run, spec.endpoint, action, run.rollout.phase, None)
        target = ENDS[action.outcome]
        # The version was registered before the rollout began: the run keeps it whether it was promoted or rolled back.
        updates: dict[str, Any] = {"rollout": policy.advance(run.rollout, action, self.clock())}
        updates["model_version"] = run.rollout.new_version
        if target is S.PROMOTED and not final:  # promoted in this environment: the run goes on to the next one
            note = TimelineEntry(kind="rollout", message=f"{action.reason or 'promoted'} on {spec.endpoint}")
            return self.store.save_run(run.model_copy(update=updates), [note])
        return self._end_with(run, spec, target, action.reason, **updates)

    def _end_with(
        self, run: PipelineRun, spec: PipelineSpec, target: RunState, reason: str, **updates: Any
    ) -> PipelineRun:
        if not can_transition(run.state, target):  # a promoted run rolled back by hand keeps its state (and says so)
            note = TimelineEntry(kind="rollout", message=f"{target.value}: {reason}")
            return self.store.save_run(run.model_copy(update={"reason": reason, **updates}), [note])
        moved, entry = transition(run, target, reason, now=self.clock())
        saved = self.store.save_run(moved.model_copy(update=updates) if updates else moved, [entry])
        if target is S.FAILED and saved.rollout is None:  # failed before any action: nothing else reported it
            self._send(saved, spec.endpoint, "failure", reason, effects.Effect.NOTIFY_ROLLOUT_FAILED)
        return saved

    # -- reports ---------------------------------------------------------------------------------------------

    def _report(
        self, run: PipelineRun, endpoint: str, action: RolloutAction, phase: str, smoke: tuple[bool, str] | None
    ) -> None:
        assert run.rollout is not None
        shown = action.model_copy(update={"reason": smoke[1]}) if smoke else action
        report = report_for(shown, phase, endpoint)
        if report is not None:
            self._send(
                run, endpoint, report[0], report[1], effects.notify_rollout(action.kind), run.rollout.new_version
            )

    def _send(
        self, run: PipelineRun, endpoint: str, state: StatusState, text: str, key: str, version: str | None = None
    ) -> None:
        shown = version or run.model_version
        self.notices.post(
            run.id, key, lambda: status_note(run, "deploy", state, text, endpoint=endpoint, model_version=shown)
        )

    def _note_once(self, run: PipelineRun, key: str, message: str, data: dict[str, Any] | None = None) -> None:
        if self.store.get_effect(run.id, key) is None:
            self.store.append_timeline(run.id, TimelineEntry(kind="rollout", message=message, data=data or {}))
            self.store.put_effect(run.id, key, {"message": message})

    def _deployed(self, spec: PipelineSpec) -> Collection[str]:
        return set(self.endpoint.traffic(spec.endpoint))

    def _version(self, pipeline: str, version: str | None) -> ModelVersion:
        found = self.registry.get(pipeline, version or "")
        if found is None:
            raise ValueError(f"{pipeline} has no registered version {version!r}")
        return found
