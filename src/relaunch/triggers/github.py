"""GitHub webhook deliveries to typed events: validate and parse what triggers.verify let through; no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

from relaunch.triggers.errors import Malformed, Unprocessable, check, decode_json_object, optional, require
from relaunch.triggers.gitfields import check_name, check_ref, check_sha
from relaunch.triggers.github_check_run import CheckRunActionEvent, OtherCheckRunEvent, parse_check_run
from relaunch.triggers.github_pull_request import PullRequestEvent, parse_pull_request
from relaunch.triggers.verify import FORM, VerifiedDelivery, verify_github

MAX_BODY = 5 * 1024 * 1024
# GitHub documents a 20-commit cap on `commits` (timeline events); a list this long may be cut short,
# and a path filter fed a partial list would skip a run it should start.
COMMITS_CAP = 20
MAX_DELIVERY_ID = 200
REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {"x-hub-signature", "x-hub-signature-256", "authorization", "proxy-authorization", "x-wandb-signature", "cookie"}
)


@dataclass(frozen=True)
class PushEvent:
    """A push of a branch or tag; `changed_paths` is None when the payload cannot tell.

    There is no clone URL: a run clones the URL its pipeline's spec names, never one a payload chose.
    """

    event: ClassVar[str] = "push"
    delivery_id: str
    repo: str
    ref: str
    branch: str | None
    tag: str | None
    sha: str
    before: str
    created: bool
    deleted: bool
    forced: bool
    pusher: str | None
    head_message: str | None
    changed_paths: frozenset[str] | None
    commit_count: int


@dataclass(frozen=True)
class PingEvent:
    """GitHub's hello when a hook is created; `repo` is None for organization hooks."""

    event: ClassVar[str] = "ping"
    delivery_id: str
    hook_id: int
    zen: str | None
    repo: str | None


@dataclass(frozen=True)
class WorkflowDispatchEvent:
    """A manual "Run workflow" with its inputs (scalars rendered as strings)."""

    event: ClassVar[str] = "workflow_dispatch"
    delivery_id: str
    repo: str
    ref: str
    inputs: dict[str, str]
    sender: str | None
    workflow: str | None = None  # the workflow file, e.g. ".github/workflows/retrain.yml"


@dataclass(frozen=True)
class RepositoryDispatchEvent:
    """A `POST /repos/{owner}/{repo}/dispatches` (W&B automations send these too); scalars rendered as strings.

    `ref` and `sha` are client_payload's, checked: a full ref (a bare branch name becomes refs/heads/NAME), a SHA.
    """

    event: ClassVar[str] = "repository_dispatch"
    delivery_id: str
    repo: str
    action: str
    client_payload: dict[str, str]
    sender: str | None
    ref: str | None = None
    sha: str | None = None


@dataclass(frozen=True)
class IgnoredEvent:
    """A verified delivery of an event type relaunch does not act on."""

    delivery_id: str
    event: str
    reason: str


GitHubEvent = (
    PushEvent
    | PingEvent
    | PullRequestEvent
    | WorkflowDispatchEvent
    | RepositoryDispatchEvent
    | CheckRunActionEvent
    | OtherCheckRunEvent
    | IgnoredEvent
)


def parse_github(
    headers: Mapping[str, str], body: bytes, *, secret: str | bytes | None, max_body: int = MAX_BODY
) -> GitHubEvent:
    """Verify and parse one delivery in one call (gidgethub's `from_http`); any bad input raises a TriggerError."""
    return parse_verified_github(verify_github(headers, body, secret, max_body=max_body))


def parse_verified_github(delivery: VerifiedDelivery) -> GitHubEvent:
    """The event a verified delivery (or one whose verification was skipped on purpose) carries."""
    event = _header(delivery.headers, "X-GitHub-Event")
    delivery_id = _header(delivery.headers, "X-GitHub-Delivery")
    if len(delivery_id) > MAX_DELIVERY_ID:
        raise Malformed(f"X-GitHub-Delivery is longer than {MAX_DELIVERY_ID} characters", field="X-GitHub-Delivery")
    body = delivery.body
    data = decode_json_object(_form_payload(body) if delivery.media_type == FORM else body)
    parse = _PARSERS.get(event)
    if parse is None:
        return IgnoredEvent(delivery_id=delivery_id, event=event, reason=f"event {event!r} is not acted on")
    return parse(data, delivery_id)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` safe to store: signature, auth and cookie values masked."""
    return {str(k): REDACTED if str(k).lower() in SECRET_HEADERS else str(v) for k, v in headers.items()}


def _header(lowered: Mapping[str, str], name: str) -> str:
    value = (lowered.get(name.lower()) or "").strip()
    if not value:
        raise Malformed(f"{name} header is missing", field=name)
    return value


def _form_payload(body: bytes) -> bytes:
    """The `payload` field of a form-encoded delivery, as UTF-8 bytes."""
    try:
        fields = parse_qs(body.decode("ascii"), errors="strict", max_num_fields=64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed("form body cannot be decoded", field="payload") from exc
    values = fields.get("payload")
    if not values:
        raise Malformed("form body has no payload field", field="payload")
    return values[0].encode("utf-8")


def _push(data: dict[str, Any], delivery_id: str) -> PushEvent:
    # A deletion's `after` and a creation's `before` are forty zeros: well formed, and a deleted ref starts no run.
    ref = check_ref(require(data, "ref", str), "ref")
    created, deleted = require(data, "created", bool), require(data, "deleted", bool)
    commits = require(data, "commits", list)
    return PushEvent(
        delivery_id=delivery_id,
        repo=require(data, "repository.full_name", str),
        ref=ref,
        branch=ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None,
        tag=ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None,
        sha=check_sha(require(data, "after", str), "after"),
        before=check_sha(require(data, "before", str), "before"),
        created=created,
        deleted=deleted,
        forced=require(data, "forced", bool),
        pusher=optional(data, "pusher.name", str),
        head_message=optional(data, "head_commit.message", str),
        changed_paths=_changed_paths(commits, created=created, deleted=deleted),
        commit_count=len(commits),
    )


def _changed_paths(commits: list[Any], *, created: bool, deleted: bool) -> frozenset[str] | None:
    """Union of added/modified/removed over `commits`, or None when that union may be incomplete."""
    paths: set[str] = set()
    complete = True
    for i, commit in enumerate(commits):
        check(commit, dict, f"commits[{i}]")
        for key in ("added", "modified", "removed"):
            field = f"commits[{i}].{key}"
            if commit.get(key) is None:
                complete = False  # e.g. the push payload GitHub Actions sees omits these lists
                continue
            paths.update(check(path, str, f"{field}[{j}]") for j, path in enumerate(check(commit[key], list, field)))
    # A new ref pointing at commits GitHub already knows lists no commits at all: unknown, not "nothing changed".
    if deleted or len(commits) >= COMMITS_CAP or not complete or (created and not commits):
        return None
    return frozenset(paths)


def _ping(data: dict[str, Any], delivery_id: str) -> PingEvent:
    return PingEvent(
        delivery_id=delivery_id,
        hook_id=require(data, "hook_id", int),
        zen=optional(data, "zen", str),
        repo=optional(data, "repository.full_name", str),
    )


def _workflow_dispatch(data: dict[str, Any], delivery_id: str) -> WorkflowDispatchEvent:
    return WorkflowDispatchEvent(
        delivery_id=delivery_id,
        repo=require(data, "repository.full_name", str),
        ref=check_ref(require(data, "ref", str), "ref"),
        inputs=_inputs(optional(data, "inputs", dict) or {}),
        sender=optional(data, "sender.login", str),
        workflow=optional(data, "workflow", str),
    )


def _repository_dispatch(data: dict[str, Any], delivery_id: str) -> RepositoryDispatchEvent:
    action = require(data, "action", str)
    if not action.strip():
        raise Unprocessable("action (the dispatch's event_type) must not be empty", field="action")
    client_payload = _inputs(optional(data, "client_payload", dict) or {}, "client_payload")
    sha = client_payload.get("sha", "").strip().lower()
    return RepositoryDispatchEvent(
        delivery_id=delivery_id,
        repo=require(data, "repository.full_name", str),
        action=action,
        client_payload=client_payload,
        sender=optional(data, "sender.login", str),
        ref=_dispatch_ref(client_payload.get("ref"), "client_payload.ref"),
        sha=check_sha(sha, "client_payload.sha") if sha else None,
    )


def _dispatch_ref(raw: str | None, field: str) -> str | None:
    """A dispatch's optional ref: a full ref, or a branch name as `github.ref_name` gives it."""
    value = (raw or "").strip()
    if not value:
        return None
    if value.startswith("refs/"):
        return check_ref(value, field)
    return "refs/heads/" + check_name(value, field)


def _inputs(raw: dict[str, Any], field: str = "inputs") -> dict[str, str]:
    """Workflow inputs or a dispatch's client_payload as strings, the way Actions renders `github.event.inputs`."""
    inputs: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            inputs[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            inputs[key] = str(value)
        else:
            raise Unprocessable(f"{field}.{key} must be a string, number or boolean", field=f"{field}.{key}")
    return inputs


_PARSERS: dict[str, Callable[[dict[str, Any], str], GitHubEvent]] = {
    "push": _push,
    "ping": _ping,
    "pull_request": parse_pull_request,
    "workflow_dispatch": _workflow_dispatch,
    "repository_dispatch": _repository_dispatch,
    "check_run": parse_check_run,
}
