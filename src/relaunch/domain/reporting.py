"""How a notification looks outside: GitHub statuses, check runs and deployments, and which ones a chat hears. Pure.

The embedded TimelineNotifier and the GitHub notifier both render through these functions, so what the timeline
records is exactly what GitHub receives.
"""

from __future__ import annotations

from typing import Any

from relaunch.domain.model import Notification

GITHUB_DESCRIPTION_LIMIT = 140
CHECK_OUTPUT_LIMIT = 65535  # output.summary and output.text of a check run

CONTEXTS = {
    "build": "relaunch/build",
    "train": "relaunch/train",
    "evaluate": "relaunch/evaluate",
    "gate": "relaunch/gate",
    "deploy": "relaunch/deploy",
}

# A commit status state -> the deployment status it means (a pending rollout is in progress).
DEPLOYMENT_STATES = {"pending": "in_progress", "success": "success", "failure": "failure", "error": "error"}


def truncate(text: str, limit: int = GITHUB_DESCRIPTION_LIMIT) -> str:
    """Fit text into GitHub's description limit, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_url(public_url: str | None, run_id: str) -> str | None:
    """Where a run can be seen, when relaunch has a public URL."""
    return f"{public_url.rstrip('/')}/runs/{run_id}" if public_url else None


def commit_status(n: Notification, target_url: str | None = None) -> dict[str, Any]:
    """The body of POST /repos/{owner}/{repo}/statuses/{sha} for this notification."""
    body: dict[str, Any] = {
        "state": n.state,
        "context": CONTEXTS[n.stage],
        "description": truncate(n.description),
    }
    if url := n.target_url or target_url:
        body["target_url"] = url
    return body


def check_run(n: Notification, target_url: str | None = None) -> dict[str, Any] | None:
    """The body of POST /repos/{owner}/{repo}/check-runs carrying the gate report, if the notification has one.

    The report goes in output.summary; a report longer than GitHub's 65535 characters continues in output.text.
    """
    if n.report_markdown is None or n.sha is None:
        return None
    report = n.report_markdown
    output = {"title": truncate(n.description), "summary": truncate(report, CHECK_OUTPUT_LIMIT)}
    if len(report) > CHECK_OUTPUT_LIMIT:
        output["text"] = truncate(report[CHECK_OUTPUT_LIMIT - 1 :], CHECK_OUTPUT_LIMIT)
    body: dict[str, Any] = {
        "name": CONTEXTS[n.stage],
        "head_sha": n.sha,
        "external_id": n.run_id,
        "status": "completed",
        "conclusion": n.conclusion or ("success" if n.state == "success" else "failure"),
        "output": output,
    }
    if url := n.target_url or target_url:
        body["details_url"] = url
    return body


def deployment(n: Notification) -> dict[str, Any] | None:
    """The body of POST /repos/{owner}/{repo}/deployments for a rollout, or None if this is not one.

    Evaluation-only runs (pull requests) never deploy. `required_contexts` is empty because relaunch's own
    statuses on the commit are still pending while it deploys; `auto_merge` is off because the ref is a commit.
    """
    if n.stage != "deploy" or n.evaluate_only or n.endpoint is None or n.sha is None:
        return None
    payload: dict[str, Any] = {"run_id": n.run_id, "pipeline": n.pipeline, "model_version": n.model_version}
    return {
        "ref": n.sha,
        "environment": n.endpoint,
        "auto_merge": False,
        "required_contexts": [],
        "payload": payload,
        "description": truncate(f"relaunch {n.pipeline} run {n.run_id}"),
        "production_environment": True,
    }


def deployment_status(n: Notification, target_url: str | None = None) -> dict[str, Any]:
    """The body of POST /repos/{owner}/{repo}/deployments/{id}/statuses for this notification."""
    body: dict[str, Any] = {"state": DEPLOYMENT_STATES[n.state], "description": truncate(n.description)}
    if url := n.target_url or target_url:
        body["target_url"] = url
    return body


def worth_announcing(n: Notification) -> bool:
    """Whether a chat channel should hear of this: gate verdicts, rollouts that finished, and any failure.

    Pending statuses and intermediate successes (built, trained) are progress, not news: they stay on GitHub.
    """
    if n.state == "pending":
        return False
    return n.stage in ("gate", "deploy") or n.state in ("failure", "error")


def verdict(n: Notification) -> str:
    """A short headline: "gate passed", "v3 promoted", "train failed"."""
    if n.stage == "gate" and n.state in ("success", "failure"):
        return "gate passed" if n.state == "success" else "gate failed"
    if n.stage == "deploy" and n.state == "success":
        return f"{n.model_version or 'model'} promoted"
    word = {"pending": "in progress", "success": "succeeded", "failure": "failed", "error": "errored"}[n.state]
    return f"{n.stage} {word}"
