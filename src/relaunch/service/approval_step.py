"""Service side of approvals: hold a fork's run, check who labeled it, record approvals, withdraw older heads.

An approval is recorded once per run in the store's side-effect ledger (`approval`: by, via, permission, sha), next to
a timeline entry; the orchestrator lets a run that needs one build only when it covers the run's own head commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from relaunch.domain.approval import (
    APPROVABLE,
    APPROVING,
    approval_record,
    approves,
    how_to_approve,
    may_approve,
    needs_approval,
    waiting_for_label,
    withdrawn_by,
)
from relaunch.domain.commands import LabelApproval
from relaunch.domain.effects import Effect
from relaunch.domain.model import Notification, PipelineRun, RunState, TimelineEntry
from relaunch.domain.ports import RepoPermissions, StepStore
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.states import transition

log = logging.getLogger(__name__)

Send = Callable[[Notification, str], None]
Supersede = Callable[..., object]  # Coalescer.supersede(run_id, reason, *, by=run)


class NotAwaiting(LookupError):
    """`relaunch approve` named a run that does not exist or does not wait for an approval."""


@dataclass
class Approvals:
    """Holds runs that need an approval, and gives or refuses approvals through the store and the permissions."""

    store: StepStore
    permissions: RepoPermissions | None  # None: nobody is known, only the CLI approves (the embedded profile)
    send: Send
    supersede: Supersede
    clock: Callable[[], float] = time.time

    def approved(self, run: PipelineRun) -> bool:
        """Whether an approval covers the run's head commit."""
        return approves(self.store.get_effect(run.id, Effect.APPROVAL), run)

    def withdraw_older(self, run: PipelineRun) -> None:
        """A new head of a fork's pull request: its older heads' runs stop, and their approvals with them."""
        for older in withdrawn_by(run, self.store.active_runs(run.pipeline)):
            sha = (run.trigger.sha or "")[:7]
            self.supersede(older.id, f"superseded by {sha}: a new push withdraws the approval", by=run)

    def hold(self, run: PipelineRun, spec: PipelineSpec) -> None:
        """Move the run to awaiting_approval and say on the pull request why, and how to approve."""
        moved, entry = transition(run, RunState.AWAITING_APPROVAL, "pull request from a fork", now=self.clock())
        saved = self.store.save_run(moved, [entry])
        note = Notification(
            run_id=saved.id,
            pipeline=saved.pipeline,
            repo=saved.trigger.repo,
            sha=saved.trigger.sha,
            stage="gate",  # the verdict branch protection waits for: pending, with a neutral check run
            state="pending",
            conclusion="neutral",
            description="Awaiting approval: a fork's code runs once someone with write access approves",
            report_markdown=how_to_approve(saved, spec.pull_requests.approval_label),
            trigger_kind=saved.trigger.kind,
            ref=saved.trigger.ref,
            evaluate_only=saved.trigger.evaluate_only,
        )
        self.send(note, Effect.NOTIFY_APPROVAL)

    def on_label(self, command: LabelApproval) -> list[PipelineRun]:
        """Approve the runs the label names if its author may write; the runs approved (to advance)."""
        waiting = waiting_for_label(
            self.store.active_runs(command.pipeline), command.repo, command.pr_number, command.sha
        )
        if not waiting:
            log.info(
                "label approval by %s: no run of %s #%d waits at that head",
                command.login,
                command.repo,
                command.pr_number,
            )
            return []
        permission, why = self._permission(command.repo, command.login)
        approved = []
        for run in waiting:
            if not may_approve(permission):
                refusal = f"approval by {command.login} (label {command.label}) refused: {why}"
                self.store.append_timeline(run.id, TimelineEntry(kind="warning", message=refusal))
                continue
            record = approval_record(command.login, f"label {command.label}", command.sha, permission, at=self.clock())
            approved.append(_record(self.store, run, record))
        return approved

    def _permission(self, repo: str, login: str) -> tuple[str, str]:
        """(the permission, the reason it does not approve); TransientError propagates: the command is retried."""
        if self.permissions is None:
            return "none", "no GitHub token is configured to check permissions (use `relaunch approve RUN`)"
        try:
            permission = self.permissions.permission(repo, login)
        except ValueError as exc:
            return "none", f"GitHub did not tell their permission on {repo}: {exc}"
        needed = ", ".join(sorted(APPROVING))
        why = f"their permission on {repo} is {permission} ({needed} approve; or an operator: `relaunch approve`)"
        return permission, why


def approve_by_operator(store: StepStore, run_id: str, *, by: str, at: float) -> PipelineRun:
    """`relaunch approve RUN`: the operator approves the run's head commit; NotAwaiting if there is nothing to."""
    run = store.get_run(run_id)
    if run is None:
        raise NotAwaiting(f"no run {run_id!r}")
    if not needs_approval(run):
        raise NotAwaiting(f"run {run_id} needs no approval (only pull requests from forks do)")
    if run.state not in APPROVABLE:
        raise NotAwaiting(f"run {run_id} is {run.state.value}, not awaiting approval")
    return _record(store, run, approval_record(by, "cli", run.trigger.sha or "", "operator", at=at))


def _record(store: StepStore, run: PipelineRun, record: dict[str, object]) -> PipelineRun:
    store.put_effect(run.id, Effect.APPROVAL, record)  # first write wins: a repeated approval changes nothing
    kept = store.get_effect(run.id, Effect.APPROVAL) or record
    message = f"approved by {kept['by']} ({kept['via']}, {kept['permission']}) for {str(kept['sha'])[:12]}"
    store.append_timeline(run.id, TimelineEntry(kind="approval", message=message, data=dict(kept)))
    return run
