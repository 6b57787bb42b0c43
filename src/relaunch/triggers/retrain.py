"""Manual retrain requests published on the commands topic (the `retrain` GitHub Action's Pub/Sub mode); no I/O.

The message's data is a JSON object:

    {"type": "retrain", "repo": "owner/name", "ref": "refs/heads/main", "sha": "<40 hex>", "pipeline": "digits",
     "reason": "...", "priority": 50, "requested_by": "octocat", "request_id": "<run_id>-<attempt>-<pipeline>"}

Only `type` and `repo` are required. With `sha` that exact commit is trained (the one the Action smoke-tested),
otherwise the head of `ref`. Who may publish is decided by IAM (publisher on the topic), so there is no
signature; `request_id` is the idempotency key, so a re-run of the same workflow attempt starts nothing new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from relaunch.triggers.errors import Unprocessable, optional
from relaunch.triggers.pubsub import PubSubMessage

RETRAIN_TYPE = "retrain"
FIELDS = frozenset(
    {"type", "repo", "ref", "sha", "pipeline", "reason", "priority", "requested_by", "request_id", "force"}
)
REPO = re.compile(r"^[\w.-]{1,100}/[\w.-]{1,100}$")
REQUEST_ID = re.compile(r"^[\w.:@-]{1,200}$")
MAX_TEXT = 300


@dataclass(frozen=True)
class RetrainRequest:
    """A manual retrain of a repository's pipeline, as the dispatch inputs would carry it."""

    repo: str
    ref: str | None
    inputs: dict[str, str]  # pipeline, reason, priority, sha: checked by the same rules as workflow_dispatch inputs
    requested_by: str | None
    request_id: str | None  # the idempotency key when given (else the Pub/Sub message id is)


def is_retrain(data: dict[str, Any]) -> bool:
    """Whether a decoded commands-topic message is a retrain request rather than a run command."""
    return data.get("type") == RETRAIN_TYPE


def parse_retrain(message: PubSubMessage) -> RetrainRequest:
    """Read a retrain request; bad input raises a TriggerError naming the field."""
    data = message.json()
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise Unprocessable(f"unknown field {unknown[0][:40]!r} in a retrain request", field=unknown[0][:40])
    repo = _text(data, "repo")
    if not repo:
        raise Unprocessable("repo is required (owner/name)", field="repo")
    if not REPO.match(repo):
        raise Unprocessable(f"repo must be owner/name, got {repo[:80]!r}", field="repo")
    request_id = _text(data, "request_id") or None
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise Unprocessable("request_id must be 1-200 of [A-Za-z0-9_.:@-]", field="request_id")
    ref = _text(data, "ref") or None
    if ref is not None and not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"  # a bare branch name, as `github.ref_name` gives it
    return RetrainRequest(
        repo=repo,
        ref=ref,
        inputs={
            "pipeline": _text(data, "pipeline"),
            "reason": _text(data, "reason"),
            "priority": _priority(data),
            "sha": _text(data, "sha"),
            "force": _force(data),
        },
        requested_by=_text(data, "requested_by") or None,
        request_id=request_id,
    )


def _force(data: dict[str, Any]) -> str:
    value = optional(data, "force", bool)
    return "true" if value else "false"


def _priority(data: dict[str, Any]) -> str:
    value = data.get("priority")
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Unprocessable("priority must be an integer from 0 to 100", field="priority")
    return str(value)


def _text(data: dict[str, Any], key: str) -> str:
    value = (optional(data, key, str) or "").strip()
    if len(value) > MAX_TEXT:
        raise Unprocessable(f"{key} is longer than {MAX_TEXT} characters", field=key)
    return value
