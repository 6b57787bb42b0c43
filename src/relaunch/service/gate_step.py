"""The orchestrator's gated step: a passed gate rolls out, unless the champion moved or would get older by accident.

The gate's decision was taken against the champion of its evaluation: if another run was promoted meanwhile, the
verdict no longer holds and the run is rejected with how to re-run it. A commit behind the champion's (or off its line
of history) is placed by domain/champion_age, which says whether it may roll out anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from relaunch.domain.champion_age import Relation, as_relation, judge
from relaunch.domain.model import ModelVersion, PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import CommitHistory, ModelRegistry, Runs
from relaunch.domain.provenance import same_commit_as
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.states import transition
from relaunch.service.coalesce_step import Notify

S = RunState


@dataclass
class GateStep:
    """Moves a gated run to rolling_out, rejected or evaluated through the store, the registry and the history."""

    store: Runs
    registry: ModelRegistry
    notify: Notify
    clock: Callable[[], float] = time.time

    def run(self, run: PipelineRun, spec: PipelineSpec, history: CommitHistory | None) -> PipelineRun:
        """The gated run, moved on (`history` None: no age check, as in unit tests without commits)."""
        assert run.decision is not None
        if run.trigger.evaluate_only:  # the verdict is the outcome: neither "rejected" nor a rollout
            return self._move(run, S.EVALUATED, evaluated_reason(run.decision.promote, run.decision.reasons))
        if not run.decision.promote:
            return self._move(run, S.REJECTED, "; ".join(run.decision.reasons))
        current = self.registry.champion(run.pipeline)
        if (current.version if current else None) != run.champion_version:
            why = f"champion changed since evaluation ({run.champion_version} -> {current and current.version})"
            rejected = self._move(run, S.REJECTED, why + "; re-run to evaluate against the new champion")
            self.notify(rejected, "deploy", "failure", f"Not rolled out: {why}")  # the gate had said "passed"
            return rejected
        digest = self.registry.content_digest(run.model_uri) if run.model_uri else None
        if current is not None and digest is not None and current.metadata.get("content_digest") == digest:
            return self._identical(run, spec, current)
        return self._unless_older(run.model_copy(update={"model_digest": digest}), spec, current, history)

    def _identical(self, run: PipelineRun, spec: PipelineSpec, champion: ModelVersion) -> PipelineRun:
        """A model whose files are the champion's: registering it again would add a version that changes nothing."""
        why = f"identical to champion {champion.version} (same model files): nothing to roll out"
        rejected = self._move(run, S.REJECTED, why)
        serves = f"Not rolled out: identical to champion {champion.version}, which serves {spec.endpoint}"
        self.notify(rejected, "deploy", "success", serves)  # the commit's model does serve: its twin is the champion
        return rejected

    def _unless_older(
        self, run: PipelineRun, spec: PipelineSpec, champion: ModelVersion | None, history: CommitHistory | None
    ) -> PipelineRun:
        """Roll out, unless the commit would make the champion older by accident (see domain/champion_age)."""
        held = self.store.get_run(champion.run_id) if champion else None
        if history is None or not run.trigger.sha or held is None or not held.trigger.sha:
            return self._move(run, S.ROLLING_OUT)  # no commits to compare (a W&B artifact champion, a first model)
        relation, detail = _relation(history, run, held)
        verdict = judge(
            run.trigger.sha,
            held.trigger.sha,
            relation,
            force=run.trigger.force,
            on_force_push=spec.gate.on_force_push,
            detail=detail,
        )
        if not verdict.allowed:
            rejected = self._move(run, S.REJECTED, verdict.reason)
            self.notify(rejected, "deploy", "failure", f"Not rolled out: {verdict.reason}")  # the gate said "passed"
            return rejected
        notes = [TimelineEntry(kind="warning", message=verdict.note)] if verdict.note else []
        return self._move(run, S.ROLLING_OUT, "", *notes)  # the rollout step reports its first action

    def _move(self, run: PipelineRun, target: RunState, reason: str = "", *notes: TimelineEntry) -> PipelineRun:
        moved, entry = transition(run, target, reason, now=self.clock())
        if target is S.ROLLING_OUT and (same := same_commit_as(run, self.registry.champion(run.pipeline))):
            what = (
                f"same commit as champion {same} ({(run.trigger.sha or '')[:7]}): new data or a new training, not code"
            )
            notes = (*notes, TimelineEntry(kind="info", message=what))
        return self.store.save_run(moved, (entry, *notes))


def evaluated_reason(passed: bool, reasons: list[str]) -> str:
    """Why an evaluation-only run ended: its verdict, and what failed when it did."""
    return "gate passed (evaluation only: not promoted)" if passed else "gate failed: " + "; ".join(reasons)


def _relation(history: CommitHistory, run: PipelineRun, champion: PipelineRun) -> tuple[Relation, str]:
    """How the run's commit stands to the champion's; TransientError propagates (the command is retried)."""
    repo = run.trigger.repo or ""
    if not repo or repo.lower() != (champion.trigger.repo or "").lower():
        return "unknown", f"the champion was built from another repository ({str(champion.trigger.repo)[:100]!r})"
    assert run.trigger.sha and champion.trigger.sha
    try:
        answer = history.relation(repo, run.trigger.clone_url, champion.trigger.sha, run.trigger.sha)
    except ValueError as exc:  # the host refused (no access, bad token): nothing shows the commit is not older
        return "unknown", str(exc)[:200]
    return as_relation(answer), ""
