"""Which commit's evaluator scores a run: never code the candidate can change. Pure.

A pull request is evaluated by its base commit's evaluator, never its head's (GitHub's `pull_request_target`
rule): the head could otherwise grade itself. Any other run (push, schedule, drift, W&B, dispatch) runs code that is
already on a branch the team protects, so its own commit evaluates it, unless the spec pins `evaluate.ref`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from relaunch.domain.gitnames import is_sha, name_problem
from relaunch.domain.model import PipelineRun, Trigger

if TYPE_CHECKING:  # a signature's: the store names SUFFIX, and need not load the spec models for it
    from relaunch.domain.spec import PipelineSpec

SUFFIX = ".evaluator"  # a separate evaluator is built as the derived run `<run id>.evaluator`


class NoEvaluator(ValueError):
    """The run's evaluator cannot be chosen (a pull request without a valid base commit): permanent."""


@dataclass(frozen=True)
class EvaluatorChoice:
    """The evaluator's commit (or the ref whose head it is), and whether it is built apart from the candidate."""

    sha: str | None
    ref: str | None
    separate: bool

    @property
    def label(self) -> str:
        """How reports name it before its commit is known."""
        return self.sha or self.ref or "unknown"


def choose(run: PipelineRun, spec: PipelineSpec) -> EvaluatorChoice:
    """The evaluator of `run` under `spec` (NoEvaluator when a pull request names no usable base commit)."""
    trigger = run.trigger
    if trigger.kind == "pull_request":
        if not is_sha(trigger.base_sha):
            got = _shown(trigger.base_sha)
            raise NoEvaluator(f"trigger.base_sha: a pull request is evaluated at its base commit, got {got}")
        return EvaluatorChoice(sha=trigger.base_sha, ref=None, separate=trigger.base_sha != trigger.sha)
    pinned = spec.evaluate.ref
    if pinned is not None:
        if problem := name_problem(pinned):  # the spec validates it; a stale cached spec must not reach git
            raise NoEvaluator(f"evaluate.ref {problem}")
        return EvaluatorChoice(sha=None, ref=_full_ref(pinned), separate=True)
    return EvaluatorChoice(sha=trigger.sha, ref=trigger.ref, separate=False)


def evaluator_run(run: PipelineRun, choice: EvaluatorChoice) -> PipelineRun:
    """The derived run the ImageBuilder builds the evaluator from: its own id (its own checkout and image)."""
    trigger = Trigger(
        kind="push",  # a commit of a protected branch, not the pull request: no fork, no PR number
        delivery_key=f"{run.trigger.delivery_key}{SUFFIX}",
        repo=run.trigger.repo,
        ref=choice.ref,
        sha=choice.sha,
        clone_url=run.trigger.clone_url,
        reason=f"evaluator of {run.id}",
        evaluate_only=True,
        head_repo=run.trigger.repo,
    )
    return PipelineRun(id=f"{run.id}{SUFFIX}", pipeline=run.pipeline, trigger=trigger, build_id=run.evaluator_build_id)


def _full_ref(name: str) -> str:
    return name if name.startswith("refs/") else f"refs/heads/{name}"


def _shown(value: object) -> str:
    return "nothing" if value is None else repr(str(value)[:80])
