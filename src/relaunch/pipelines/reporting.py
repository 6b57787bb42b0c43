"""How a notification looks on GitHub: status contexts, states and descriptions. Pure."""

from __future__ import annotations

from typing import Any

from relaunch.pipelines.model import Notification

GITHUB_DESCRIPTION_LIMIT = 140

CONTEXTS = {
    "build": "relaunch/build",
    "train": "relaunch/train",
    "evaluate": "relaunch/evaluate",
    "gate": "relaunch/gate",
    "deploy": "relaunch/deploy",
}


def truncate(text: str, limit: int = GITHUB_DESCRIPTION_LIMIT) -> str:
    """Fit text into GitHub's description limit, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def commit_status(n: Notification) -> dict[str, Any]:
    """The body of POST /repos/{owner}/{repo}/statuses/{sha} for this notification."""
    return {
        "state": n.state,
        "context": CONTEXTS[n.stage],
        "description": truncate(n.description),
    }


def check_run(n: Notification) -> dict[str, Any] | None:
    """The body of POST /repos/{owner}/{repo}/check-runs carrying the gate report, if the notification has one."""
    if n.report_markdown is None or n.sha is None:
        return None
    return {
        "name": CONTEXTS[n.stage],
        "head_sha": n.sha,
        "status": "completed",
        "conclusion": "success" if n.state == "success" else "failure",
        "output": {"title": truncate(n.description), "summary": n.report_markdown[:65535]},
    }
