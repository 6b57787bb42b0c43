"""The dashboard's buttons, each the code path its CLI command runs, with who pressed it recorded as "dashboard".

Approve and reject are `relaunch approve` / `relaunch reject` (service/approval_step, then StartRun on the commands
topic); promote of a run the gate rejected is the recorded override of service/run_actions; rollback is
`relaunch rollback PIPELINE --env ENV` (the orchestrator's roll_back); replay is `relaunch replay KEY`. Every field
is checked before anything moves: a refusal is an ActionFailed with a status and one line for the person.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from relaunch.dashboard.readmodel import BadField
from relaunch.domain.commands import StartRun
from relaunch.textsafe import safe_line

if TYPE_CHECKING:
    from relaunch.bootstrap import App
    from relaunch.service.run_actions import RunActions

BY = "dashboard"
MAX_REASON = 500  # as `relaunch reject --reason`
MAX_FIELD = 300


class ActionFailed(Exception):
    """The action did not happen: a one-line message and the status to answer with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def field(form: Mapping[str, str], name: str) -> str:
    """A required, printable, bounded form field; BadField naming it otherwise."""
    value = (form.get(name) or "").strip()
    if not value or len(value) > MAX_FIELD or safe_line(value) != value:
        raise BadField(name, f"{name}: required, 1 to {MAX_FIELD} printable characters")
    return value


def approve(app: App, form: Mapping[str, str]) -> str:
    """Let a run awaiting approval go on, as `relaunch approve RUN`."""
    from relaunch.service.approval_step import NotAwaiting, approve_by_operator

    run_id = field(form, "run_id")
    try:
        run = approve_by_operator(app.store, run_id, by=BY, at=time.time())
    except NotAwaiting as exc:
        raise ActionFailed(safe_line(exc.args[0])) from None
    _nudge(app, run.id)
    return f"{run.id}: approved"


def reject(app: App, form: Mapping[str, str]) -> str:
    """Refuse a run awaiting approval with a reason, as `relaunch reject RUN --reason ...`."""
    from relaunch.service.approval_step import NotAwaiting, reject_by_operator

    run_id = field(form, "run_id")
    reason = " ".join((form.get("reason") or "").split())
    if not reason or len(reason) > MAX_REASON or safe_line(reason) != reason:
        raise BadField("reason", f"reason: required, 1 to {MAX_REASON} printable characters")
    try:
        run = reject_by_operator(app.store, run_id, by=BY, reason=reason, at=time.time())
    except NotAwaiting as exc:
        raise ActionFailed(safe_line(exc.args[0])) from None
    _nudge(app, run.id)
    return f"{run.id}: rejected: {reason}"


def promote(app: App, form: Mapping[str, str]) -> str:
    """Promote a run the gate rejected, as a recorded override (or approve one that waits to roll out)."""
    from relaunch.service.run_actions import ActionRefused

    run_id = field(form, "run_id")
    try:
        run = run_actions(app).promote(run_id, by=BY, via="dashboard")
    except ActionRefused as exc:
        raise ActionFailed(safe_line(exc)) from None
    return f"{run.id}: promoted by the dashboard ({run.state.value})"


def rollback(app: App, form: Mapping[str, str]) -> str:
    """Undo the latest rollout of a pipeline's environment, as `relaunch rollback PIPELINE --env ENV`."""
    pipeline, env = field(form, "pipeline"), field(form, "env")
    spec = app.specs().get(pipeline)
    if spec is None:
        raise BadField("pipeline", f"pipeline: no pipeline {pipeline!r}", status=404)
    names = [e.name for e in spec.environments] or [spec.endpoint]
    if env not in names:
        raise BadField("env", f"env: {pipeline} has no environment {env!r} ({', '.join(names)})", status=404)
    from relaunch.service.rollout_step import NothingToRollBack

    try:
        run = app.orchestrator.roll_back(pipeline, env if spec.environments else None)
    except NothingToRollBack as exc:
        raise ActionFailed(f"nothing to roll back: {safe_line(exc)}") from None
    except ValueError as exc:  # the endpoint or the registry refused
        raise ActionFailed(f"rollback of {pipeline} refused: {safe_line(exc)}") from None
    return f"{run.id}: {safe_line(run.reason)}"


def replay(app: App, form: Mapping[str, str]) -> str:
    """Re-drive one stored delivery, as `relaunch replay KEY`."""
    from relaunch.service.ingest import UnknownDelivery
    from relaunch.triggers.errors import TriggerError

    key = field(form, "key")
    try:
        reply = app.ingest.replay(key)
    except UnknownDelivery:
        raise BadField("key", f"key: no delivery {key!r}", status=404) from None
    except ValueError as exc:
        raise ActionFailed(safe_line(exc.args[0] if exc.args else exc)) from None
    except TriggerError as exc:
        raise ActionFailed(f"cannot replay {key}: {safe_line(exc.message)} (field {safe_line(exc.field)})") from None
    return f"replayed {key}: {reply.status} {safe_line(reply.body.get('outcome', ''))}"


def run_actions(app: App) -> RunActions:
    """The run actions wired to this app's store, bus, orchestrator and registry."""
    from relaunch.service.run_actions import RunActions

    def champion(pipeline: str) -> str | None:
        version = app.registry.champion(pipeline)
        return version.version if version else None

    return RunActions(app.store, lambda run_id: _nudge(app, run_id), app.orchestrator.roll_back, champion)


def _nudge(app: App, run_id: str) -> None:
    topic = app.settings.pubsub_commands_topic
    app.bus.publish(topic, StartRun(run_id=run_id).model_dump(), {"run_id": run_id})


ACTIONS = {"approve": approve, "reject": reject, "promote": promote, "rollback": rollback, "replay": replay}
