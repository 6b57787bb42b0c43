"""How a notification looks outside: GitHub statuses, check runs and deployments, and which ones a chat hears. Pure.

The embedded TimelineNotifier and the GitHub notifier both render through these functions, so what the timeline
records is exactly what GitHub receives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relaunch.domain.model import Notification, PipelineRun, RunState, TimelineEntry

GITHUB_DESCRIPTION_LIMIT = 140
CHECK_OUTPUT_LIMIT = 65535  # output.summary and output.text of a check run

CONTEXTS = {
    "build": "relaunch/build",
    "train": "relaunch/train",
    "evaluate": "relaunch/evaluate",
    "gate": "relaunch/gate",
    "approval": "relaunch/approval",
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


# GitHub's requested_action buttons: label <= 20, description <= 40, identifier <= 20 characters, at most 3.
BUTTONS = {
    "promote": ("Promote", "Approve: roll this model out"),
    "override": ("Promote", "Override the gate: roll this model out"),
    "reject": ("Reject", "Refuse this model: the run ends"),
    "rollback": ("Rollback", "Put the previous model back in service"),
}
MAX_BUTTONS = 3
NOTE_MARK = "<!-- relaunch:note -->"  # opens the note relaunch puts on top of a check run's report


def check_run_actions(actions: Sequence[str], *, override: bool = False) -> list[dict[str, str]]:
    """A check run's `actions`: one button per action; Promote on a run its gate rejected says it overrides."""
    buttons = []
    for action in actions[:MAX_BUTTONS]:
        label, description = BUTTONS["override" if action == "promote" and override else action]
        buttons.append({"label": label, "description": description, "identifier": action})
    return buttons


def noted_output(note: str, summary: str, text: str | None = None) -> dict[str, Any]:
    """A check run's `output` with `note` as its title and on top of its summary, replacing an earlier note."""
    note = " ".join(note.split())  # one line: the note is the summary's first paragraph, and GitHub's title
    if summary.startswith(NOTE_MARK):  # the earlier note, replaced
        summary = summary.split("\n\n", 1)[1] if "\n\n" in summary else ""
    output = {"title": truncate(note), "summary": truncate(f"{NOTE_MARK}\n> {note}\n\n{summary}", CHECK_OUTPUT_LIMIT)}
    return {**output, "text": text} if text else output


def check_run_entry(check_run_id: int, actions: Sequence[str] = (), note: str = "") -> TimelineEntry:
    """The timeline's record of the gate check run relaunch made or updated (its buttons follow the run by it)."""
    shown = ", ".join(actions) or "no buttons"
    message = f"check run {check_run_id}: {shown}" + (f" ({note})" if note else "")
    return TimelineEntry(kind="check_run", message=message, data={"id": check_run_id, "actions": list(actions)})


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


def deployment_state(n: Notification, previous: str | None = None) -> str:
    """GitHub's deployment state for a deploy notification, given the deployment's last one (`previous`).

    A deployment that had succeeded and is now rolled back (by hand, or in a blue-green rollback window) no longer
    serves: GitHub calls that `inactive`, and a `failure` would misstate a rollout that did succeed.
    """
    if n.state == "failure" and previous == "success":
        return "inactive"
    return DEPLOYMENT_STATES[n.state]


def deployment_status(n: Notification, target_url: str | None = None, *, previous: str | None = None) -> dict[str, Any]:
    """The body of POST /repos/{owner}/{repo}/deployments/{id}/statuses (`previous`: see deployment_state)."""
    body: dict[str, Any] = {"state": deployment_state(n, previous), "description": truncate(n.description)}
    if url := n.target_url or target_url:
        body["target_url"] = url
    return body


def state_label(run: PipelineRun) -> str:
    """The run's state as a user reads it: an evaluated run carries its gate verdict ("evaluated (gate passed)").

    An evaluation-only run's outcome is the verdict itself, so the state alone would hide what the gate said.
    """
    if run.state is not RunState.EVALUATED or run.decision is None:
        return run.state.value
    return f"{run.state.value} (gate {'passed' if run.decision.promote else 'failed'})"


def deployment_entry(n: Notification, status: dict[str, Any], deployment_id: int | None) -> TimelineEntry:
    """The timeline's record of one deployment status (`deployment_id` None: the embedded profile sends none)."""
    environment, version = n.endpoint or "", n.model_version or "a model"
    where = f"deployment {deployment_id}" if deployment_id is not None else "deployment"
    data = {
        "id": deployment_id,
        "environment": environment,
        "status": status["state"],
        "ref": n.sha,
        "model_version": n.model_version,
        "description": status["description"],
    }
    message = f"{where} of {version} to {environment}: {status['state']}: {status['description']}"
    return TimelineEntry(kind="deployment", message=message, data=data)


def worth_announcing(n: Notification) -> bool:
    """Whether a chat channel should hear of this: gate verdicts, rollouts that finished, and any failure.

    Pending statuses and intermediate successes (built, trained) are progress, not news: they stay on GitHub.
    """
    if n.state == "pending":
        return False
    return n.stage in ("gate", "approval", "deploy") or n.state in ("failure", "error")


def verdict(n: Notification) -> str:
    """A short headline: "gate passed", "v3 promoted", "train failed"."""
    if n.stage == "gate" and n.state in ("success", "failure"):
        return "gate passed" if n.state == "success" else "gate failed"
    if n.stage == "deploy" and n.state == "success":
        return f"{n.model_version or 'model'} promoted"
    if n.stage == "approval" and n.state in ("success", "failure"):
        return "approved" if n.state == "success" else "not approved"
    word = {"pending": "in progress", "success": "succeeded", "failure": "failed", "error": "errored"}[n.state]
    return f"{n.stage} {word}"
