"""GitHub `pull_request` deliveries to typed events: every name checked before it can reach git or GitHub's API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from relaunch.triggers.errors import Unprocessable, optional, require
from relaunch.triggers.gitfields import FULL_NAME, LOGIN, check_name, check_sha

MAX_LABEL = 100  # GitHub allows 50 characters; a longer one cannot be the spec's, and is not echoed


@dataclass(frozen=True)
class PullRequestEvent:
    """A pull request opened, synchronized, labeled…; `head_repo` is None when the fork was deleted.

    No clone URL is kept: a run clones the URL its spec names and fetches `refs/pull/<number>/head` there.
    """

    event: ClassVar[str] = "pull_request"
    delivery_id: str
    action: str
    number: int
    repo: str  # the base repository (repository.full_name)
    head_repo: str | None
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    author: str | None
    sender: str | None  # who acted (e.g. added the label): GitHub's word, covered by its signature
    label: str | None = None  # the label added or removed, for `labeled` and `unlabeled`
    merge_sha: str | None = None  # the merged pull request's commit on its base (None until it is merged)

    @property
    def from_fork(self) -> bool:
        """Whether the head lives in another repository than the base (or in one that was deleted)."""
        return (self.head_repo or "").lower() != self.repo.lower()


def parse_pull_request(data: dict[str, Any], delivery_id: str) -> PullRequestEvent:
    """The event of a verified `pull_request` delivery; a bad name is a 422 naming its field."""
    action = require(data, "action", str)
    number = require(data, "number", int)
    if number < 1:
        raise Unprocessable("number must be a positive integer", field="number")
    head, base = "pull_request.head", "pull_request.base"
    return PullRequestEvent(
        delivery_id=delivery_id,
        action=action,
        number=number,
        repo=_full_name(require(data, "repository.full_name", str), "repository.full_name"),
        head_repo=_head_repo(data),
        head_sha=check_sha(require(data, f"{head}.sha", str), f"{head}.sha"),
        head_ref=check_name(require(data, f"{head}.ref", str), f"{head}.ref"),
        base_sha=check_sha(require(data, f"{base}.sha", str), f"{base}.sha"),
        base_ref=check_name(require(data, f"{base}.ref", str), f"{base}.ref"),
        author=optional(data, "pull_request.user.login", str),
        sender=_login(optional(data, "sender.login", str), "sender.login"),
        label=_label(data) if action in ("labeled", "unlabeled") else None,
        merge_sha=_merge_sha(data),
    )


def _merge_sha(data: dict[str, Any]) -> str | None:
    """The merge commit, only once merged: before, GitHub's merge_commit_sha is a test merge nobody pushed."""
    field = "pull_request.merge_commit_sha"
    value = optional(data, field, str)
    return check_sha(value, field) if value is not None and optional(data, "pull_request.merged", bool) else None


def _full_name(value: str, field: str) -> str:
    if not FULL_NAME.match(value):
        raise Unprocessable(f"{field} must be a GitHub owner/name", field=field)
    return value


def _head_repo(data: dict[str, Any]) -> str | None:
    field = "pull_request.head.repo.full_name"
    value = optional(data, field, str)  # null once the fork is deleted
    return None if value is None else _full_name(value, field)


def _login(value: str | None, field: str) -> str | None:
    if value is not None and not LOGIN.match(value):
        raise Unprocessable(f"{field} must be a GitHub login", field=field)
    return value


def _label(data: dict[str, Any]) -> str | None:
    name = optional(data, "label.name", str)
    if name is not None and not 0 < len(name) <= MAX_LABEL:
        raise Unprocessable(f"label.name must be 1 to {MAX_LABEL} characters", field="label.name")
    return name
