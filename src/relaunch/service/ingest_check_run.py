"""What a press of a button on relaunch's gate check run leads to: one command for the orchestrator. Pure.

The webhook does no network call, so the sender's permission is not asked here: the orchestrator asks GitHub before it
acts, and explains a refusal on the check run. This only routes the press to the run's pipeline, if one watches the
repository it came from.
"""

from __future__ import annotations

from collections.abc import Mapping

from relaunch.domain.commands import CheckRunAction
from relaunch.domain.routing import watching
from relaunch.domain.spec import PipelineSpec
from relaunch.service.plans import Plan, ignored
from relaunch.triggers.github_check_run import CheckRunActionEvent


def plan_check_run(event: CheckRunActionEvent, specs: Mapping[str, PipelineSpec], key: str) -> Plan:
    """202 with a CheckRunAction for the run the check run names, when its pipeline watches the repository."""
    pipeline = event.run_id.rsplit("-", 1)[0]
    if pipeline not in {spec.name for spec in watching(specs.values(), event.repo)}:
        return ignored(f"check run of run {event.run_id}: no pipeline {pipeline!r} watches {event.repo}")
    command = CheckRunAction(
        run_id=event.run_id,
        repo=event.repo,
        sha=event.head_sha,
        check_run_id=event.check_run_id,
        login=event.sender,
        action=event.identifier,
        delivery=key,
    )
    body = {"outcome": "action requested", "run": event.run_id, "action": event.identifier, "by": event.sender}
    return Plan(202, body, commands=[command])
