"""What each GitHub event leads to: pushes, pull requests, dispatches, pings. Pure, given the specs."""

from __future__ import annotations

from collections.abc import Mapping

from relaunch.domain.commands import ReportSkip
from relaunch.domain.routing import PushFacts, route_push, run_id_for, watching
from relaunch.domain.spec import PipelineSpec
from relaunch.service.ingest_check_run import plan_check_run
from relaunch.service.ingest_pull_request import plan_pull_request
from relaunch.service.plans import Plan, head_run, ignored, new_run, routed
from relaunch.triggers.errors import Unprocessable
from relaunch.triggers.gitfields import check_ref, check_sha
from relaunch.triggers.github import (
    CheckRunActionEvent,
    GitHubEvent,
    PingEvent,
    PullRequestEvent,
    PushEvent,
    RepositoryDispatchEvent,
    WorkflowDispatchEvent,
)

SKIPPED_STATUS = "skipped: no watched path changed"
MAX_PRIORITY = 100


def plan_github(event: GitHubEvent, specs: Mapping[str, PipelineSpec], key: str) -> Plan:
    """The plan for a verified GitHub delivery; bad dispatch inputs raise Unprocessable (422)."""
    if isinstance(event, PushEvent):
        return plan_push(event, specs, key)
    if isinstance(event, PullRequestEvent):
        return plan_pull_request(event, specs, key)
    if isinstance(event, WorkflowDispatchEvent):
        if "pipeline" not in event.inputs and not _relaunch_name(event.workflow or ""):
            return ignored(
                f"workflow_dispatch of {event.workflow or 'a workflow'} is not for relaunch: it has no `pipeline` "
                "input and its file name does not say relaunch or retrain"
            )
        return plan_dispatch(event.repo, event.inputs, specs, key, where="inputs", ref=event.ref, actor=event.sender)
    if isinstance(event, RepositoryDispatchEvent):
        if "pipeline" not in event.client_payload and not _relaunch_name(event.action):
            return ignored(
                f"repository_dispatch {event.action[:80]!r} is not for relaunch: its event_type does not say "
                "relaunch or retrain and its client_payload names no pipeline"
            )
        payload = event.client_payload
        return plan_dispatch(event.repo, payload, specs, key, where="client_payload", ref=event.ref, actor=event.sender)
    if isinstance(event, CheckRunActionEvent):  # a button pressed on relaunch's gate check run
        return plan_check_run(event, specs, key)
    if isinstance(event, PingEvent):
        return ping_plan(event.repo, specs)
    return ignored(event.reason)


def _relaunch_name(name: str) -> bool:
    """Whether a workflow file or dispatch event type is meant for relaunch (mentions relaunch or retrain)."""
    base = name.rsplit("/", 1)[-1].lower()
    return "relaunch" in base or "retrain" in base


def plan_push(event: PushEvent, specs: Mapping[str, PipelineSpec], key: str) -> Plan:
    """One run per pipeline watching the pushed branch (or tag) and paths; a "skipped" status for the others."""
    facts = PushFacts(event.repo, event.branch, event.tag, event.deleted, event.changed_paths)
    routing = route_push(specs.values(), facts)
    runs = [
        new_run(
            spec,
            key,
            "push",
            repo=event.repo,
            ref=event.ref,
            sha=event.sha,
            clone_url=spec.source.repo_clone_url(),  # the spec's, never the payload's
            actor=event.pusher,
            reason=(event.head_message or "")[:200],
        )
        for spec in routing.matched
    ]
    plan = routed(runs, routing.skipped, f"no pipeline watches {event.repo}")
    skips = [
        ReportSkip(
            run_id=run_id_for(name, key),
            pipeline=name,
            repo=event.repo,
            sha=event.sha,
            ref=event.ref,
            description=SKIPPED_STATUS,
        )
        for name in routing.unchanged
    ]
    return Plan(plan.status, plan.body, plan.runs, skips)


def plan_dispatch(
    repo: str,
    inputs: Mapping[str, str],
    specs: Mapping[str, PipelineSpec],
    key: str,
    *,
    where: str,
    ref: str | None,
    actor: str | None,
) -> Plan:
    """A manual run of the ref's head (the builder resolves it), or of the exact commit `inputs.sha` names."""
    candidates = watching(specs.values(), repo)
    if not candidates:
        return ignored(f"no pipeline watches {repo}")
    spec = _chosen(candidates, (inputs.get("pipeline") or "").strip(), repo, where)
    priority = _priority(inputs.get("priority"), f"{where}.priority")
    sha = _sha(inputs.get("sha"), f"{where}.sha")
    if ref is not None:
        check_ref(ref, "ref" if where == "inputs" else f"{where}.ref")  # parsers check theirs; this guards every caller
    force = _flag(inputs.get("force"), f"{where}.force")
    reason = (inputs.get("reason") or "").strip() or f"manual run by {actor or 'someone'}"
    if force:
        reason = f"forced by {actor or 'someone'}: {reason}"
    run = head_run(
        spec, key, "manual", ref=ref, actor=actor, reason=reason[:200], priority=priority, sha=sha, force=force
    )
    if isinstance(run, str):
        return routed([], {spec.name: run}, "")
    return routed([run], {}, "")


def _chosen(candidates: list[PipelineSpec], name: str, repo: str, where: str) -> PipelineSpec:
    names = ", ".join(s.name for s in candidates)
    if name:
        for spec in candidates:
            if spec.name == name:
                return spec
        raise Unprocessable(
            f"{where}.pipeline {name[:80]!r} does not watch {repo} (these do: {names})", field=f"{where}.pipeline"
        )
    if len(candidates) > 1:
        raise Unprocessable(
            f"{where}.pipeline is required: several pipelines watch {repo} ({names})", field=f"{where}.pipeline"
        )
    return candidates[0]


def _sha(raw: str | None, field: str) -> str | None:
    """An optional exact commit to train (e.g. the one a smoke test passed on) instead of the ref's head."""
    value = (raw or "").strip().lower()
    return check_sha(value, field) if value else None


def _flag(raw: str | None, field: str) -> bool:
    """An optional boolean input, as Actions renders one ("true"/"false"); anything else is a 422."""
    value = (raw or "").strip().lower()
    if value in ("", "false"):
        return False
    if value == "true":
        return True
    raise Unprocessable(f"{field} must be true or false, got {(raw or '')[:40]!r}", field=field)


def _priority(raw: str | None, field: str) -> int:
    if raw is None or not raw.strip():
        return 0
    try:
        value = int(raw.strip())
    except ValueError:
        raise Unprocessable(
            f"{field} must be an integer from 0 to {MAX_PRIORITY}, got {raw[:40]!r}", field=field
        ) from None
    if not 0 <= value <= MAX_PRIORITY:
        raise Unprocessable(f"{field} must be from 0 to {MAX_PRIORITY}, got {value}", field=field)
    return value


def ping_plan(repo: str | None, specs: Mapping[str, PipelineSpec]) -> Plan:
    """200 with a short summary of what this hook will act on."""
    summary = {
        s.name: {"branches": s.source.branches, "tags": s.source.tags, "paths": s.source.paths}
        for s in (watching(specs.values(), repo) if repo else [])
    }
    events = ["push", "pull_request", "workflow_dispatch", "repository_dispatch", "check_run"]
    return Plan(200, {"outcome": "pong", "repo": repo, "pipelines": summary, "events": events})
