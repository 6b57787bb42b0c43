"""Service side of approvals: hold a fork's run or a gated one, check who labeled it, record verdicts, end waits.

A verdict is recorded once per run and kind of wait in the store's side-effect ledger (`approval` before a fork's
build, `approval:promotion` before a rollout: verdict, by, via, permission, sha, reason), next to a timeline entry;
the first one stands. The orchestrator lets a waiting run go on only when an approval covers its own commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relaunch.domain.approval import (
    APPROVABLE,
    APPROVING,
    WAITING,
    approval_deadline,
    approval_record,
    approves,
    awaited,
    awaited_environment,
    expired,
    expiry_reason,
    holds_for_approval,
    how_to_approve,
    may_approve,
    needs_approval,
    passed_to_roll_out,
    rejects,
    superseded_reason,
    superseded_waits,
    verdict_key,
    verdict_line,
    verdict_of,
    waiting_for_label,
    waiting_for_promotion,
    withdrawn_by,
)
from relaunch.domain.commands import LabelApproval
from relaunch.domain.effects import Effect
from relaunch.domain.environments import entry_timeout
from relaunch.domain.model import Notification, PipelineRun, RunState, StatusState, TimelineEntry
from relaunch.domain.ports import RepoPermissions, StepStore
from relaunch.domain.spec import PipelineSpec
from relaunch.domain.states import transition
from relaunch.service.notices import status_note

log = logging.getLogger(__name__)
S = RunState

Send = Callable[[Notification, str], None]
Supersede = Callable[..., object]  # Coalescer.supersede(run_id, reason, *, by=run)
Notify = Callable[[PipelineRun, Any, StatusState, str], None]  # the orchestrator's status post, once per key
Ended = Callable[[PipelineRun], None]
LookAt = Callable[[str, float], bool]


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
    notify: Notify | None = None  # None: statuses of gated waits are not posted (fork-only unit tests)
    ended: Ended | None = None  # a run this step ended on the side (superseded): its ledger
    look_at: LookAt | None = None  # schedules a look at a wait's deadline (the reconcile tick also finds it)

    def approved(self, run: PipelineRun) -> bool:
        """Whether an approval covers the run's commit, for what it waits for."""
        return approves(self.store.get_effect(run.id, verdict_key(run)), run)

    def may_build(self, run: PipelineRun, spec: PipelineSpec) -> bool:
        """A received run may build, unless it is a fork's code no approval covers yet (then it waits)."""
        if not needs_approval(run):
            return True
        self.withdraw_older(run)  # never built without an approval of this very head commit
        if self.approved(run):
            return True
        self.hold(run, spec)
        return False

    def at_gate(self, run: PipelineRun, spec: PipelineSpec) -> bool:
        """A passed gate supersedes the older waits of its lane; True if the run now waits for approval itself."""
        if not passed_to_roll_out(run):  # failed, or evaluation only: it supersedes no wait
            return False
        for older in superseded_waits(run, self.store.active_runs(run.pipeline)):
            self._end(older, S.SUPERSEDED, superseded_reason(run), "error")
        if not holds_for_approval(run, spec.gate.approval):
            return False
        now = self.clock()
        deadline = approval_deadline(now, spec.gate.approval_timeout)
        moved, entry = transition(run, S.AWAITING_APPROVAL, "gate.approval: required", now=now)
        saved = self.store.save_run(
            moved.model_copy(update={"awaiting": "promotion", "approval_deadline": deadline}), [entry]
        )
        self._status(saved, "pending", WAITING)
        if deadline is not None and self.look_at is not None:
            self.look_at(saved.id, deadline)
        return True

    def decided(self, run: PipelineRun, spec: PipelineSpec) -> PipelineRun | None:
        """A waiting run rejected or expired, ended (REJECTED); None while it waits or once approved."""
        record = self.store.get_effect(run.id, verdict_key(run))
        entering = awaited_environment(run)  # an environment's wait names it, and may have its own timeout
        if record is not None and rejects(record, run):
            return self._end(run, S.REJECTED, verdict_line(record, entering), "failure", record_end=False)
        if record is not None and approves(record, run):
            if awaited(run) == "promotion":
                self._status(run, "success", verdict_line(record))
            elif entering is not None:  # one status per environment entered, not one per run
                line = verdict_line(record, entering)
                note = status_note(run, "approval", "success", line, endpoint=None, model_version=run.model_version)
                self.send(note, f"{Effect.NOTIFY_APPROVAL}:environment:{entering}")
            return None
        if expired(run, self.clock()):
            timeout = spec.gate.approval_timeout
            timeout = timeout if entering is None else entry_timeout(spec.environments, entering, timeout)
            return self._end(run, S.REJECTED, expiry_reason(timeout, entering), "failure", record_end=False)
        return None

    def _end(
        self, run: PipelineRun, target: RunState, reason: str, state: StatusState, *, record_end: bool = True
    ) -> PipelineRun:
        moved, entry = transition(run, target, reason, now=self.clock())
        saved = self.store.save_run(moved, [entry])
        self._status(saved, state, reason)
        if record_end and self.ended is not None:
            self.ended(saved)
        return saved

    def _status(self, run: PipelineRun, state: StatusState, description: str) -> None:
        if self.notify is not None:
            self.notify(run, "approval", state, description)

    def withdraw_older(self, run: PipelineRun) -> None:
        """A new head of a fork's pull request: its older heads' runs stop, and their approvals with them."""
        for older in withdrawn_by(run, self.store.active_runs(run.pipeline)):
            sha = (run.trigger.sha or "")[:7]
            self.supersede(older.id, f"superseded by {sha}: a new push withdraws the approval", by=run)

    def hold(self, run: PipelineRun, spec: PipelineSpec) -> None:
        """Move the run to awaiting_approval and say on the pull request why, and how to approve."""
        moved, entry = transition(run, RunState.AWAITING_APPROVAL, "pull request from a fork", now=self.clock())
        saved = self.store.save_run(moved.model_copy(update={"awaiting": "build"}), [entry])
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
        """Record the label's verdict on the runs it names if its author may write; the runs to advance."""
        runs = self.store.active_runs(command.pipeline)
        waiting = waiting_for_label(runs, command.repo, command.pr_number, command.sha) if command.for_build else []
        if command.for_promotion:
            shas = {command.sha, *([command.merge_sha] if command.merge_sha else [])}
            waiting += waiting_for_promotion(runs, command.repo, shas)
        if not waiting:
            log.info(
                "label %s by %s: no run of %s #%d waits", command.label, command.login, command.repo, command.pr_number
            )
            return []
        permission, why = self._permission(command.repo, command.login)
        decided = []
        for run in waiting:
            if not may_approve(permission):
                self._refuse(run, f"label {command.label} by {command.login} refused: {why}", command.login)
                continue
            via = f"label {command.label}"
            sha = run.trigger.sha or ""
            record = approval_record(command.login, via, sha, permission, at=self.clock(), verdict=command.verdict)
            decided.append(_record(self.store, run, record))
        return decided

    def _refuse(self, run: PipelineRun, refusal: str, login: str) -> None:
        """A label by someone who may not decide: said on the timeline and on the commit; the run still waits."""
        self.store.append_timeline(run.id, TimelineEntry(kind="warning", message=refusal))
        note = status_note(run, "approval", "pending", refusal, endpoint=None, model_version=None)
        self.send(note, f"{Effect.NOTIFY_APPROVAL}:refused:{login}")

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


def approve_by_operator(
    store: StepStore, run_id: str, *, by: str, at: float, via: str = "cli", permission: str = "operator"
) -> PipelineRun:
    """`relaunch approve RUN` (or a button whose presser's permission was checked: `via`, `permission`): approve the
    run's wait; NotAwaiting if there is nothing to approve."""
    run = _waiting(store, run_id)
    return _record(store, run, approval_record(by, via, run.trigger.sha or "", permission, at=at))


def reject_by_operator(
    store: StepStore, run_id: str, *, by: str, reason: str, at: float, via: str = "cli", permission: str = "operator"
) -> PipelineRun:
    """`relaunch reject RUN --reason` (or a button, as approve_by_operator): refuse the run's wait; the orchestrator
    then ends it."""
    run = _waiting(store, run_id)
    record = approval_record(by, via, run.trigger.sha or "", permission, at=at, verdict="rejected", reason=reason)
    return _record(store, run, record)


def _waiting(store: StepStore, run_id: str) -> PipelineRun:
    run = store.get_run(run_id)
    if run is None:
        raise NotAwaiting(f"no run {run_id!r}")
    promotion = run.state is S.AWAITING_APPROVAL and awaited(run) != "build"  # after the gate, or into an environment
    if not promotion and run.state not in APPROVABLE:
        raise NotAwaiting(f"run {run_id} is {run.state.value}, not awaiting approval")
    if not promotion and not needs_approval(run):
        raise NotAwaiting(f"run {run_id} needs no approval (only forks' pull requests and gate.approval do)")
    if (kept := store.get_effect(run.id, verdict_key(run))) is not None and kept.get("sha") == run.trigger.sha:
        raise NotAwaiting(f"run {run_id} is already {verdict_of(kept)} by {kept.get('by')}")
    return run


def _record(store: StepStore, run: PipelineRun, record: dict[str, Any]) -> PipelineRun:
    store.put_effect(run.id, verdict_key(run), record)  # first write wins: a repeated verdict changes nothing
    kept = store.get_effect(run.id, verdict_key(run)) or record
    message = f"{verdict_line(kept, awaited_environment(run))} ({kept['permission']}) for {str(kept['sha'])[:12]}"
    store.append_timeline(run.id, TimelineEntry(kind="approval", message=message, data=dict(kept)))
    return run
