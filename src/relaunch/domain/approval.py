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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from relaunch.domain.model import PipelineRun, RunState

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


def approval_record(by: str, via: str, sha: str, permission: str, *, at: float) -> dict[str, Any]:
    """What is kept of an approval: who, how, with which permission, for which head commit, when."""
    return {"by": by, "via": via, "sha": sha, "permission": permission, "at": at}


def approves(record: dict[str, Any] | None, run: PipelineRun) -> bool:
    """Whether a recorded approval covers the run's own head commit."""
    return record is not None and bool(run.trigger.sha) and record.get("sha") == run.trigger.sha


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
