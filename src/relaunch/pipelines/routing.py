"""Which pipelines a push concerns, and why the others are skipped. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from relaunch.pipelines.spec import PipelineSpec


@dataclass(frozen=True)
class PushFacts:
    """The parts of a push that routing looks at."""

    repo: str
    branch: str | None
    tag: str | None
    deleted: bool
    changed_paths: frozenset[str] | None  # None: the payload's commit list cannot be trusted (truncated)


@dataclass(frozen=True)
class Routing:
    """Pipelines to run, and a reason for each watching pipeline that was skipped."""

    matched: list[PipelineSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def route_push(specs: Iterable[PipelineSpec], push: PushFacts) -> Routing:
    """Match a push against the specs' repo, branch and path filters."""
    routing = Routing()
    for spec in specs:
        if not spec.source.watches_repo(push.repo):
            continue
        reason = _skip_reason(spec, push)
        if reason:
            routing.skipped[spec.name] = reason
        else:
            routing.matched.append(spec)
    return routing


def _skip_reason(spec: PipelineSpec, push: PushFacts) -> str | None:
    if push.deleted:
        return "ref deleted"
    if push.branch is None:
        return f"tag {push.tag} (tags are not watched)"
    if not spec.source.watches_branch(push.branch):
        return f"branch {push.branch} not in {spec.source.branches}"
    if push.changed_paths is not None and not any(spec.source.watches_path(p) for p in push.changed_paths):
        return f"no watched path changed ({', '.join(spec.source.paths)})"
    return None


def run_id_for(pipeline: str, delivery_key: str) -> str:
    """A run id derived from the delivery, so a redelivered event can never create a second run."""
    digest = hashlib.sha256(f"{pipeline}\0{delivery_key}".encode()).hexdigest()[:10]
    return f"{pipeline}-{digest}"
