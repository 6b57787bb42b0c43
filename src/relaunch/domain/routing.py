"""Which pipelines an inbound event concerns, and why the others are skipped. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from relaunch.domain.spec import PipelineSpec

NO_PATH_CHANGED = "no watched path changed"


@dataclass(frozen=True)
class PushFacts:
    """The parts of a push that routing looks at."""

    repo: str
    branch: str | None
    tag: str | None
    deleted: bool
    changed_paths: frozenset[str] | None  # None: the payload's commit list cannot be trusted (truncated)


@dataclass(frozen=True)
class WandbFacts:
    """The parts of a W&B artifact event that routing looks at."""

    kind: str  # new_version | alias_added | linked
    entity: str
    project: str
    collection: str
    alias: str | None


@dataclass(frozen=True)
class Routing:
    """Pipelines to run, a reason for each concerned pipeline that was skipped, and which of those saw no change."""

    matched: list[PipelineSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)  # skipped because no watched path changed


def watching(specs: Iterable[PipelineSpec], repo: str) -> list[PipelineSpec]:
    """The specs whose source is this GitHub repository."""
    return [spec for spec in specs if spec.source.watches_repo(repo)]


def route_push(specs: Iterable[PipelineSpec], push: PushFacts) -> Routing:
    """Match a push against the specs' repo, branch, tag and path filters."""
    routing = Routing()
    for spec in watching(specs, push.repo):
        reason = _push_skip_reason(spec, push)
        if reason is None:
            routing.matched.append(spec)
            continue
        routing.skipped[spec.name] = reason
        if reason.startswith(NO_PATH_CHANGED):
            routing.unchanged.append(spec.name)
    return routing


def _push_skip_reason(spec: PipelineSpec, push: PushFacts) -> str | None:
    if push.deleted:
        return "ref deleted"
    if push.branch is None:
        if push.tag is None:
            return "neither a branch nor a tag"
        if not spec.source.tags:
            return f"tag {push.tag} (tags are not watched)"
        if not spec.source.watches_tag(push.tag):
            return f"tag {push.tag} not in {spec.source.tags}"
        return None  # a release tag is retrained whole: its commit list says nothing about what changed
    if not spec.source.watches_branch(push.branch):
        return f"branch {push.branch} not in {spec.source.branches}"
    if push.changed_paths is not None and not any(spec.source.watches_path(p) for p in push.changed_paths):
        return f"{NO_PATH_CHANGED} ({', '.join(spec.source.paths)})"
    return None


def route_pull_request(specs: Iterable[PipelineSpec], repo: str, base_branch: str) -> Routing:
    """Pipelines whose watched branches include the pull request's base."""
    routing = Routing()
    for spec in watching(specs, repo):
        if spec.source.watches_branch(base_branch):
            routing.matched.append(spec)
        else:
            routing.skipped[spec.name] = f"base branch {base_branch} not in {spec.source.branches}"
    return routing


def route_wandb(specs: Iterable[PipelineSpec], event: WandbFacts, promote_alias: str) -> Routing:
    """Pipelines watching this W&B collection for this kind of event."""
    routing = Routing()
    for spec in specs:
        source = spec.source.wandb
        if source is None or (source.entity, source.project, source.collection) != (
            event.entity,
            event.project,
            event.collection,
        ):
            continue
        reason = _wandb_skip_reason(spec, event, promote_alias)
        if reason:
            routing.skipped[spec.name] = reason
        else:
            routing.matched.append(spec)
    return routing


def _wandb_skip_reason(spec: PipelineSpec, event: WandbFacts, promote_alias: str) -> str | None:
    source = spec.source.wandb
    assert source is not None
    if event.kind not in source.events:
        return f"{event.kind} events are not watched ({', '.join(source.events)})"
    if event.kind == "alias_added":
        if event.alias == promote_alias:  # relaunch moved it itself: acting on it would loop
            return f"alias {promote_alias} is the one relaunch moves on promotion"
        if event.alias not in source.aliases:
            return f"alias {event.alias} not in {source.aliases}"
    return None


def route_drift(
    specs: Iterable[PipelineSpec], pipeline: str | None, endpoint: str | None, monitoring_job: str | None = None
) -> list[PipelineSpec]:
    """Pipelines an alert names: by pipeline name, by the endpoint they serve, or by their model-monitoring job."""
    return [
        s
        for s in specs
        if (pipeline and s.name == pipeline)
        or (endpoint and s.endpoint == endpoint)
        or (monitoring_job and s.drift.watches_monitoring_job(monitoring_job))
    ]


def run_id_for(pipeline: str, delivery_key: str) -> str:
    """A run id derived from the delivery, so a redelivered event can never create a second run."""
    digest = hashlib.sha256(f"{pipeline}\0{delivery_key}".encode()).hexdigest()[:10]
    return f"{pipeline}-{digest}"
