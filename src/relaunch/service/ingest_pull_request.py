"""What a pull_request delivery leads to: evaluation-only runs, none for an unapproved fork, approval requests. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from relaunch.domain.approval import fork_ignored
from relaunch.domain.commands import LabelApproval
from relaunch.domain.routing import route_pull_request, run_id_for
from relaunch.domain.spec import PipelineSpec
from relaunch.service.plans import Plan, ignored, new_run, routed
from relaunch.triggers.github_pull_request import PullRequestEvent

PR_ACTIONS = ("opened", "synchronize", "reopened")
LABEL_ACTION = "labeled"


def plan_pull_request(event: PullRequestEvent, specs: Mapping[str, PipelineSpec], key: str) -> Plan:
    """An evaluation-only run of the head commit for each pipeline watching the base branch (forks: by policy)."""
    if event.action == LABEL_ACTION:
        return plan_label(event, specs, key)
    if event.action not in PR_ACTIONS:
        acted_on = ", ".join((*PR_ACTIONS, LABEL_ACTION))
        return ignored(f"pull_request action {event.action[:40]!r} is not acted on ({acted_on} are)")
    routing = route_pull_request(specs.values(), event.repo, event.base_ref)
    runs, skipped = [], dict(routing.skipped)
    for spec in routing.matched:
        if event.from_fork and spec.pull_requests.forks == "ignore":
            skipped[spec.name] = fork_ignored(event.head_repo)
            continue
        # A fork's branch names mean nothing in the base repository: its head is fetched as GitHub's PR ref.
        ref = f"refs/pull/{event.number}/head" if event.from_fork else f"refs/heads/{event.head_ref}"
        runs.append(
            new_run(
                spec,
                key,
                "pull_request",
                repo=event.repo,
                ref=ref,
                sha=event.head_sha,
                clone_url=spec.source.repo_clone_url(),  # never the payload's: the spec says where the code lives
                actor=event.author,
                reason=f"pull request #{event.number}",
                evaluate_only=True,
                pr_number=event.number,
                base_sha=event.base_sha,
                head_repo=event.head_repo,
            )
        )
    return routed(runs, skipped, f"no pipeline watches {event.repo}")


def plan_label(event: PullRequestEvent, specs: Mapping[str, PipelineSpec], key: str) -> Plan:
    """A label on a fork's pull request: ask the orchestrator to approve its waiting runs, if it is the spec's."""
    if not event.from_fork:
        return ignored("label on a pull request from the same repository: it needs no approval")
    if event.sender is None:
        return ignored("label added by an unknown sender: no approval")
    routing = route_pull_request(specs.values(), event.repo, event.base_ref)
    commands = [
        LabelApproval(
            run_id=run_id_for(spec.name, key),
            pipeline=spec.name,
            repo=event.repo,
            pr_number=event.number,
            sha=event.head_sha,
            login=event.sender,
            label=spec.pull_requests.approval_label,
        )
        for spec in routing.matched
        if spec.pull_requests.forks == "on_approval" and event.label == spec.pull_requests.approval_label
    ]
    if not commands:
        return ignored("the label added is no watching pipeline's approval label (pull_requests.approval_label)")
    body = {"outcome": "approval requested", "pipelines": [c.pipeline for c in commands], "by": event.sender}
    return Plan(202, body, commands=commands)
