"""GitHub `check_run` deliveries: a button pressed on one of relaunch's check runs (`requested_action`). No I/O.

GitHub sends `requested_action` only to the App that created the check run, and the delivery's signature says GitHub
sent it; every field is still read as hostile. A check run that is not relaunch's (another name, an external_id
that is no run id) or another action is ignored; a button relaunch never shows, a sender that is no GitHub login,
or a malformed id is a 422 naming the field. Who may press is GitHub's answer to a permission query, asked later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from relaunch.domain.run_actions import ACTIONS, Action
from relaunch.triggers.errors import Unprocessable, optional, require
from relaunch.triggers.gitfields import FULL_NAME, LOGIN, check_sha

REQUESTED_ACTION = "requested_action"
GATE_CHECK = "relaunch/gate"  # the one check run relaunch puts buttons on (domain/reporting's gate context)
# A run id as domain/routing.run_id_for makes it: the pipeline's name (spec: ^[a-z][a-z0-9-]{0,62}$) and 10 hex digits.
_RUN_ID = re.compile(r"\A[a-z][a-z0-9-]{0,62}-[0-9a-f]{10}\Z")


@dataclass(frozen=True)
class CheckRunActionEvent:
    """A press of `identifier` by `sender` on relaunch's check run `check_run_id` of run `run_id`."""

    event: ClassVar[str] = "check_run"
    delivery_id: str
    repo: str
    check_run_id: int
    head_sha: str
    run_id: str
    identifier: Action
    sender: str
    app_id: int | None


@dataclass(frozen=True)
class OtherCheckRunEvent:
    """A check_run delivery relaunch does not act on: another action, or another App's check run."""

    event: ClassVar[str] = "check_run"
    delivery_id: str
    reason: str


def parse_check_run(data: dict[str, Any], delivery_id: str) -> CheckRunActionEvent | OtherCheckRunEvent:
    """The event of a verified `check_run` delivery; only a press on relaunch's gate check run is acted on."""
    action = require(data, "action", str)
    if action != REQUESTED_ACTION:
        return OtherCheckRunEvent(delivery_id, f"check_run action {action[:40]!r} is not acted on")
    name = require(data, "check_run.name", str)
    external_id = optional(data, "check_run.external_id", str) or ""
    if name != GATE_CHECK or not _RUN_ID.match(external_id):
        return OtherCheckRunEvent(delivery_id, f"check run {name[:60]!r} is not relaunch's gate check run")
    check_run_id = require(data, "check_run.id", int)
    if check_run_id < 1:
        raise Unprocessable("check_run.id must be a positive integer", field="check_run.id")
    return CheckRunActionEvent(
        delivery_id=delivery_id,
        repo=_matching(FULL_NAME, require(data, "repository.full_name", str), "repository.full_name", "owner/name"),
        check_run_id=check_run_id,
        head_sha=check_sha(require(data, "check_run.head_sha", str), "check_run.head_sha"),
        run_id=external_id,
        identifier=_identifier(require(data, "requested_action.identifier", str)),
        sender=_matching(LOGIN, require(data, "sender.login", str), "sender.login", "login"),
        app_id=optional(data, "check_run.app.id", int),
    )


def _identifier(value: str) -> Action:
    if value not in ACTIONS:
        known = ", ".join(ACTIONS)
        raise Unprocessable(
            f"requested_action.identifier must be one of relaunch's buttons ({known})", field="requested_action"
        )
    return cast(Action, value)


def _matching(pattern: re.Pattern[str], value: str, field: str, what: str) -> str:
    if not pattern.match(value):
        raise Unprocessable(f"{field} must be a GitHub {what}", field=field)
    return value
