"""The buttons on a run's gate check run: they follow the run, and a press is checked, then acted on or explained.

Why the check run is found through the run's timeline: the GitHub notifier records the id of the gate check run it
creates there (as it records each deployment's), so updating it needs no search of the commit's check runs, and a
press can be matched to the run's own check run. The buttons shown are recorded the same way, once GitHub took them:
the check run is updated only when they change (waiting → Promote and Reject; rejected by the gate → Promote, an
override; promoted → Rollback; anything else → none).

A press acts only after GitHub says the presser may write to the repository (write, maintain or admin); anyone else
gets the reason on the check run, and nothing changes. A delivery is handled once (GitHub's redelivery, or the nudge
the ingest resends), and a second press finds the run moved on and is told so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from relaunch.domain import effects
from relaunch.domain.approval import may_approve
from relaunch.domain.commands import CheckRunAction, StartRun
from relaunch.domain.effects import Effect
from relaunch.domain.model import PipelineRun, TimelineEntry
from relaunch.domain.ports import ModelRegistry, RepoPermissions, StepStore
from relaunch.domain.reporting import BUTTONS, check_run_actions, check_run_entry
from relaunch.domain.run_actions import buttons_note, gate_rejected, offered
from relaunch.service.run_actions import ActionRefused, RunActions

log = logging.getLogger(__name__)
VIA = "GitHub check run"


class CheckRunUpdates(Protocol):
    """Updates relaunch's check runs on GitHub (adapters/github/check_runs.py)."""

    def update(self, repo: str, check_run_id: int, note: str, buttons: list[dict[str, str]] | None) -> bool:
        """Put `note` on top of the check run's report and, unless `buttons` is None, replace its buttons.

        False when GitHub did not take it (logged); never raises: a check run is a notification.
        """
        ...


@dataclass
class CheckRunButtons:
    """Keeps the gate check run's buttons in step with the run, and handles their presses."""

    store: StepStore
    updates: CheckRunUpdates | None  # None: no GitHub App, so no check run to update
    permissions: RepoPermissions | None  # None: nobody's permission can be known, every press is refused
    actions: RunActions

    def follow(self, run: PipelineRun) -> PipelineRun:
        """Show the buttons the run offers now on its gate check run, if they changed; the run, unchanged."""
        if self.updates is None or not run.trigger.repo:
            return run
        shown = _recorded(self.store.timeline(run.id))
        if not shown:  # no check run of the gate (yet), or the notifier could not record it
            return run
        want = list(offered(run))
        if want == shown[-1].get("actions"):
            return run
        note = buttons_note(run, self.store.get_effect(run.id, Effect.OVERRIDE))
        check_run_id = int(shown[-1]["id"])
        buttons = check_run_actions(want, override=gate_rejected(run))
        if self.updates.update(run.trigger.repo, check_run_id, note, buttons):
            self.store.append_timeline(run.id, check_run_entry(check_run_id, want, note))
        return run

    def pressed(self, command: CheckRunAction) -> PipelineRun | None:
        """Act on the press if the check run is the run's own and the presser may write; else say why on it."""
        run = self.store.get_run(command.run_id)
        if run is None or not _same_check_run(run, command, _recorded(self.store.timeline(run.id))):
            log.warning(
                "check run %d names run %s, which it is not of: press ignored", command.check_run_id, command.run_id
            )
            return run
        key = effects.button_press(command.delivery)
        if self.store.get_effect(run.id, key) is not None:
            return run  # this delivery was handled
        label = BUTTONS[command.action][0]
        permission, unknown = self._permission(command.repo, command.login)
        if not may_approve(permission):
            has = unknown or f"you have {permission}"
            self._refuse(run, command, f"@{command.login}: {label} needs write access to {command.repo}; {has}")
        else:
            try:
                run = self._act(run, command, permission)
            except ActionRefused as exc:
                self._refuse(run, command, f"@{command.login}: {label} refused: {exc}")
        self.store.put_effect(run.id, key, {"by": command.login, "action": command.action, "permission": permission})
        return self.follow(self.store.get_run(run.id) or run)

    def _act(self, run: PipelineRun, command: CheckRunAction, permission: str) -> PipelineRun:
        who: dict[str, Any] = {"by": command.login, "via": VIA, "permission": permission}
        if command.action == "promote":
            return self.actions.promote(run.id, **who)
        if command.action == "reject":
            return self.actions.reject(run.id, reason="", **who)
        return self.actions.rollback(run.id, **who)

    def _refuse(self, run: PipelineRun, command: CheckRunAction, why: str) -> None:
        """Said on the run's timeline and on the check run (its buttons stay); the run does not change."""
        self.store.append_timeline(run.id, TimelineEntry(kind="warning", message=why))
        if self.updates is not None:
            self.updates.update(command.repo, command.check_run_id, why, None)

    def _permission(self, repo: str, login: str) -> tuple[str, str]:
        """(the permission, why it is unknown); TransientError propagates: the command is retried."""
        if self.permissions is None:
            return "none", "relaunch has no GitHub token to check permissions with"
        try:
            return self.permissions.permission(repo, login), ""
        except ValueError as exc:
            return "none", f"GitHub did not tell your permission ({exc})"


class Wiring(Protocol):
    """What the buttons take from the orchestrator's Deps."""

    @property
    def store(self) -> StepStore: ...
    @property
    def registry(self) -> ModelRegistry: ...
    @property
    def permissions(self) -> RepoPermissions | None: ...
    @property
    def check_runs(self) -> CheckRunUpdates | None: ...
    @property
    def clock(self) -> Callable[[], float]: ...


def wired_buttons(
    d: Wiring, handle: Callable[[StartRun], object], roll_back: Callable[[str], PipelineRun]
) -> CheckRunButtons:
    """The orchestrator's buttons: a press approves or rejects through the store, rolls back through the orchestrator
    (`roll_back`), and the run then goes on in this same invocation (`handle` of its StartRun)."""

    def champion(pipeline: str) -> str | None:
        held = d.registry.champion(pipeline)
        return held.version if held else None

    def go_on(run_id: str) -> None:
        handle(StartRun(run_id=run_id))

    actions = RunActions(d.store, go_on, roll_back, champion, clock=d.clock)
    return CheckRunButtons(d.store, d.check_runs, d.permissions, actions)


def _recorded(timeline: list[TimelineEntry]) -> list[dict[str, Any]]:
    """What the timeline says of the run's gate check runs (their ids, the buttons shown), oldest first."""
    return [e.data for e in timeline if e.kind == "check_run" and isinstance(e.data.get("id"), int)]


def _same_check_run(run: PipelineRun, command: CheckRunAction, recorded: list[dict[str, Any]]) -> bool:
    """Whether the pressed check run is the run's own: its repository and commit, and an id relaunch recorded."""
    if (run.trigger.repo or "").lower() != command.repo.lower() or run.trigger.sha != command.sha:
        return False
    return not recorded or command.check_run_id in {r["id"] for r in recorded}
