"""What a pull_request delivery leads to: evaluation-only runs, none for an unapproved fork, verdicts by label. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from relaunch.domain.approval import APPROVE_LABEL, REJECT_LABEL, fork_ignored
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
    """An approval label on a pull request: ask the orchestrator to decide the runs it names, if its sender may."""
    if event.sender is None:
        return ignored("label added by an unknown sender: no approval")
    routing = route_pull_request(specs.values(), event.repo, event.base_ref)
    commands = [c for spec in routing.matched if (c := _label_command(event, spec, key, event.sender)) is not None]
    if not commands:
        return ignored(
            f"the label added is neither {APPROVE_LABEL}, {REJECT_LABEL} nor a watching pipeline's fork approval label "
            "(pull_requests.approval_label)"
        )
    body = {"outcome": "approval requested", "pipelines": [c.pipeline for c in commands], "by": event.sender}
    return Plan(202, body, commands=commands)


def _label_command(event: PullRequestEvent, spec: PipelineSpec, key: str, sender: str) -> LabelApproval | None:
    """What the label decides for one pipeline: a fork's build (its approval label) or a gated run (approve/reject)."""
    fork_label = spec.pull_requests.approval_label
    for_build = (
        event.from_fork and spec.pull_requests.forks == "on_approval" and event.label in (fork_label, REJECT_LABEL)
    )
    for_promotion = event.label in (APPROVE_LABEL, REJECT_LABEL)
    if not (for_build or for_promotion) or event.label is None:
        return None
    return LabelApproval(
        run_id=run_id_for(spec.name, key),
        pipeline=spec.name,
        repo=event.repo,
        pr_number=event.number,
        sha=event.head_sha,
        login=sender,
        label=event.label,
        verdict="rejected" if event.label == REJECT_LABEL else "approved",
        for_build=for_build,
        for_promotion=for_promotion,
        merge_sha=event.merge_sha,
    )
