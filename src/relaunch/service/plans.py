"""What an inbound event leads to (runs to start, commands to send, the answer), and the runs it starts. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from relaunch.domain.commands import Command
from relaunch.domain.gitnames import ref_problem
from relaunch.domain.model import PipelineRun, Trigger, TriggerKind
from relaunch.domain.routing import run_id_for
from relaunch.domain.spec import PipelineSpec


@dataclass(frozen=True)
class Plan:
    """The decision on one delivery: the answer, the runs to write with it, and the commands to publish."""

    status: int
    body: dict[str, Any]
    runs: list[PipelineRun] = field(default_factory=list)
    commands: Sequence[Command] = field(default_factory=list)  # nudges, published besides one StartRun per run

    @property
    def outcome(self) -> str:
        """The inbox's line for it: the outcome, with the reason when there is one and every pipeline skipped."""
        outcome = str(self.body.get("outcome", "accepted"))
        reason = self.body.get("reason")
        skipped = "; ".join(f"{name}: {why}" for name, why in self.body.get("skipped", {}).items())
        if not reason and outcome == "skipped":
            reason = skipped
        elif skipped:  # runs started for some pipelines: the row still says why the others were not
            return f"{outcome}; skipped: {skipped}"
        return f"{outcome}: {reason}" if reason else outcome


def ignored(reason: str, status: int = 202) -> Plan:
    """A delivery that is kept in the inbox and does nothing else."""
    return Plan(status, {"outcome": "ignored", "reason": reason})


def routed(runs: list[PipelineRun], skipped: dict[str, str], nobody: str) -> Plan:
    """202 with the runs started and the reason each other concerned pipeline was skipped."""
    body: dict[str, Any] = {"outcome": "accepted" if runs else "skipped", "runs": [r.id for r in runs]}
    body["skipped"] = skipped
    if not runs and not skipped:
        body["reason"] = nobody
    return Plan(202, body, runs)


def new_run(spec: PipelineSpec, delivery_key: str, kind: TriggerKind, **trigger: Any) -> PipelineRun:
    """A run of `spec` whose id derives from the delivery, and whose content key from what it would do."""
    made = Trigger(kind=kind, delivery_key=delivery_key, **trigger)
    return PipelineRun(
        id=run_id_for(spec.name, delivery_key),
        pipeline=spec.name,
        trigger=made,
        content_key=content_key(spec.name, made),
    )


def content_key(pipeline: str, trigger: Trigger) -> str | None:
    """What a run would do, for the store to keep one run of each: a push's commit, a PR's head; else None.

    Manual, schedule, drift and W&B runs carry their own reason to run again (their deliveries are deduped on their
    own keys), and a forced run was asked for on purpose: none of them has a content key.
    """
    if trigger.force or not trigger.sha:
        return None
    if trigger.kind == "push":
        return f"{pipeline}|push|{trigger.sha}"
    if trigger.kind == "pull_request" and trigger.pr_number is not None:
        return f"{pipeline}|pull_request|{(trigger.repo or '').lower()}#{trigger.pr_number}|{trigger.sha}"
    return None


def forced(plan: Plan, why: str) -> Plan:
    """The same plan with every run marked as asked for on purpose (no content key; the reason says why)."""
    runs = [
        run.model_copy(
            update={
                "trigger": run.trigger.model_copy(
                    update={"force": True, "reason": f"{why}; {run.trigger.reason}".strip("; ")[:200]}
                ),
                "content_key": None,
            }
        )
        for run in plan.runs
    ]
    return Plan(plan.status, plan.body, runs, plan.commands)


def head_run(
    spec: PipelineSpec, delivery_key: str, kind: TriggerKind, *, ref: str | None = None, **trigger: Any
) -> PipelineRun | str:
    """A run of the head of the spec's branch (or of `ref`): the builder resolves the commit; or why it cannot be."""
    if ref is None:
        branch = spec.source.head_branch()
        if branch is None:
            return f"no literal branch to retrain in {spec.source.branches}"
        ref = f"refs/heads/{branch}"
    if problem := ref_problem(ref):
        return f"ref {ref[:80]!r} {problem}"
    clone_url = spec.source.repo_clone_url()  # the spec's, never a payload's
    return new_run(spec, delivery_key, kind, repo=spec.source.repo, ref=ref, clone_url=clone_url, **trigger)
