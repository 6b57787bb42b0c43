"""Approvals of runs that execute someone else's code (a fork's pull request). Pure.

The policy, decided here:
- A pull request from a fork builds nothing until someone with write permission on the base repository approves it
  (`pull_requests.forks: on_approval`; with `ignore`, the default, it starts no run at all).
- Write, maintain and admin approve; triage, read and none do not. The permission comes from GitHub's API for the
  login GitHub says acted, never from the payload (its `author_association` included).
- An approval names the head commit it was given for and applies to that commit only: a new push to the fork
  starts a new run that waits for a new approval, and withdraws the older head's runs that have not reached the
  gate (waiting, building, training or evaluating).
- The operator at the CLI (`relaunch approve RUN`) is trusted: they already hold the store.
- With `gate.approval: required`, a run that passed the gate waits too, before it rolls out ("promotion"). The
  labels relaunch:approve and relaunch:reject on the pull request of its commit (its head, or its merge commit once
  merged) decide it, under the same permission rule; `relaunch reject RUN --reason` refuses either wait. The first
  verdict recorded stands. A wait may expire (`gate.approval_timeout`): the run is rejected. A newer run of the
  same lane that passes the gate supersedes a run waiting to roll out; a newer push alone does not (it may fail).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Literal

from relaunch.domain.coalescing import lane
from relaunch.domain.effects import Effect
from relaunch.domain.environments import approval_key
from relaunch.domain.model import PipelineRun, RunState

Awaited = Literal["build", "promotion", "environment"]
Verdict = Literal["approved", "rejected"]
APPROVE_LABEL = "relaunch:approve"  # on a pull request: let its commit's gated run roll out
REJECT_LABEL = "relaunch:reject"  # on a pull request: refuse its waiting runs (a gated run, or a fork's build)
WAITING = "waiting for approval by a maintainer"

APPROVING = frozenset({"admin", "maintain", "write"})
# States an approval can still be given in, and those a new head's run withdraws (nothing past the gate).
APPROVABLE = frozenset({RunState.RECEIVED, RunState.AWAITING_APPROVAL})
WITHDRAWABLE = APPROVABLE | {RunState.BUILDING, RunState.TRAINING, RunState.EVALUATING}


def needs_approval(run: PipelineRun) -> bool:
    """Whether the run executes code from outside the base repository (a fork's pull request)."""
    return run.trigger.from_fork


def may_approve(permission: str) -> bool:
    """Whether a permission on the base repository is enough to approve (write, maintain or admin)."""
    return permission in APPROVING


def approval_record(
    by: str, via: str, sha: str, permission: str, *, at: float, verdict: Verdict = "approved", reason: str = ""
) -> dict[str, Any]:
    """What is kept of a verdict: approved or rejected, who, how, with which permission, for which commit, when, why."""
    record = {"by": by, "via": via, "sha": sha, "permission": permission, "at": at, "verdict": verdict}
    return {**record, "reason": reason} if reason else record


def verdict_of(record: dict[str, Any]) -> Verdict:
    """A record's verdict (the fork policy's records, older than rejections, are approvals)."""
    return "rejected" if record.get("verdict") == "rejected" else "approved"


def approves(record: dict[str, Any] | None, run: PipelineRun) -> bool:
    """Whether a recorded approval covers the run's own head commit."""
    return _covers(record, run) and verdict_of(record or {}) == "approved"


def rejects(record: dict[str, Any] | None, run: PipelineRun) -> bool:
    """Whether a recorded rejection covers the run's own commit."""
    return _covers(record, run) and verdict_of(record or {}) == "rejected"


def _covers(record: dict[str, Any] | None, run: PipelineRun) -> bool:
    return record is not None and bool(run.trigger.sha) and record.get("sha") == run.trigger.sha


def verdict_line(record: dict[str, Any], environment: str | None = None) -> str:
    """Who decided, how, and why: "rejected by bob (cli): not before the demo" ("approved into production by ...")."""
    verb: str = verdict_of(record)
    if environment is not None:
        verb = f"approved into {environment}" if verb == "approved" else f"entry into {environment} rejected"
    said = f"{verb} by {record.get('by')} ({record.get('via')})"
    return f"{said}: {record['reason']}" if record.get("reason") else said


def awaited(run: PipelineRun) -> Awaited:
    """What an approval lets the waiting run do: build (a fork's PR), roll out (a gated run), enter an environment."""
    if (run.awaiting or "").startswith("environment:"):
        return "environment"
    return "promotion" if run.awaiting == "promotion" else "build"


def awaited_environment(run: PipelineRun) -> str | None:
    """The environment a run waits to enter (`awaiting: environment:production`), if that is what it waits for."""
    return (run.awaiting or "").removeprefix("environment:") if awaited(run) == "environment" else None


def verdict_key(run: PipelineRun) -> str:
    """The ledger step a verdict on the run's current wait is kept under (one per wait: each environment its own)."""
    if (environment := awaited_environment(run)) is not None:
        return approval_key(environment)
    return Effect.PROMOTION_APPROVAL if awaited(run) == "promotion" else Effect.APPROVAL


def passed_to_roll_out(run: PipelineRun) -> bool:
    """Whether the run passed its gate and may be promoted (an evaluation-only run never is)."""
    return run.decision is not None and run.decision.promote and not run.trigger.evaluate_only


def holds_for_approval(run: PipelineRun, rule: str) -> bool:
    """Whether a gated run waits for a person before rolling out, under `rule` (a gate's or an environment's)."""
    return rule == "required" and passed_to_roll_out(run)


def approval_deadline(now: float, timeout_s: float | None) -> float | None:
    """When a wait that begins `now` expires (None: it never does)."""
    return None if timeout_s is None else now + timeout_s


def expired(run: PipelineRun, now: float) -> bool:
    """Whether the run's wait for approval has run out."""
    return run.approval_deadline is not None and now >= run.approval_deadline


def expiry_reason(timeout_s: float | None, environment: str | None = None) -> str:
    """Why an expired wait was rejected: "approval expired after 72 h" ("approval to enter production expired ...")."""
    said = "approval expired" if environment is None else f"approval to enter {environment} expired"
    if timeout_s is None:
        return said
    if timeout_s % 3600 == 0:
        return f"{said} after {timeout_s / 3600:g} h"
    if timeout_s % 60 == 0:
        return f"{said} after {timeout_s / 60:g} min"
    return f"{said} after {timeout_s:g} s"


def waiting_for_promotion(runs: Iterable[PipelineRun], repo: str, shas: Collection[str]) -> list[PipelineRun]:
    """The gated runs of `repo` at one of `shas` (a pull request's head or merge commit) that wait to roll out."""
    return [
        r
        for r in runs
        if r.state is RunState.AWAITING_APPROVAL
        and awaited(r) != "build"  # waits to roll out: after the gate, or into its next environment
        and (r.trigger.repo or "").lower() == repo.lower()
        and r.trigger.sha in shas
    ]


def superseded_waits(new: PipelineRun, active: Iterable[PipelineRun]) -> list[PipelineRun]:
    """Older runs of the new run's lane waiting to roll out: its passed gate makes them pointless."""
    key = lane(new)
    return [
        r
        for r in active
        if key is not None
        and r.id != new.id
        and r.state is RunState.AWAITING_APPROVAL
        and awaited(r) != "build"  # waits to roll out: after the gate, or into its next environment
        and lane(r) == key
        and (r.created_at, r.id) < (new.created_at, new.id)
    ]


def superseded_reason(new: PipelineRun) -> str:
    """Why a waiting run was superseded by a newer one that passed the gate."""
    return f"superseded by {(new.trigger.sha or 'unknown')[:7]}: a newer run passed the gate ({new.id})"


def waiting_for_label(runs: Iterable[PipelineRun], repo: str, pr_number: int, sha: str) -> list[PipelineRun]:
    """The runs of this pull request at this head commit that an approval would move on."""
    return [
        r
        for r in runs
        if r.state in APPROVABLE
        and needs_approval(r)
        and r.trigger.pr_number == pr_number
        and (r.trigger.repo or "").lower() == repo.lower()
        and r.trigger.sha == sha
    ]


def withdrawn_by(new: PipelineRun, active: Iterable[PipelineRun]) -> list[PipelineRun]:
    """Older runs of the same fork's pull request at another head: the new push withdraws them."""
    if not needs_approval(new) or new.trigger.pr_number is None:
        return []
    return [
        r
        for r in active
        if r.id != new.id
        and r.state in WITHDRAWABLE
        and needs_approval(r)
        and r.trigger.pr_number == new.trigger.pr_number
        and (r.trigger.repo or "").lower() == (new.trigger.repo or "").lower()
        and r.trigger.sha != new.trigger.sha
        and (r.created_at, r.id) < (new.created_at, new.id)
    ]


def how_to_approve(run: PipelineRun, label: str) -> str:
    """The check run's text: why the run waits and the two ways to let it go on."""
    head = run.trigger.head_repo or "a deleted fork"
    sha = (run.trigger.sha or "")[:12]
    return (
        f"Pull request #{run.trigger.pr_number} comes from {head}: relaunch builds and trains a fork's code only "
        f"once someone with write permission on {run.trigger.repo} has reviewed it and approves commit {sha}.\n\n"
        f"To approve, either add the label `{label}` to the pull request, or run `relaunch approve {run.id}`.\n\n"
        "A new push to the pull request withdraws the approval: its new head waits for a new one "
        "(remove and add the label again)."
    )


def fork_ignored(head_repo: str | None) -> str:
    """Why a fork's pull request started no run, and how a team would enable it."""
    return (
        f"pull request from the fork {head_repo or '(deleted)'}: forks are not built "
        "(set pull_requests.forks: on_approval to build them once someone with write access approves)"
    )
