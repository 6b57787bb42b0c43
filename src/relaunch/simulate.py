"""Real-format, correctly signed events for a running stack (used by `relaunch simulate` and the demo)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from relaunch.triggers.cloudbuild import RUN_ID_SUBSTITUTION
from relaunch.triggers.signing import github_signature, wandb_signature

ZERO_SHA = "0" * 40


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout (raises on failure)."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def push_payload(repo: Path, *, full_name: str, branch: str = "main", before: str | None = None) -> dict[str, Any]:
    """A push payload for the repo's HEAD, shaped as GitHub sends it (see tests/samples/github/push.*.json)."""
    after = git(repo, "rev-parse", "HEAD")
    shas = git(repo, "rev-list", "--reverse", f"{before}..{after}" if before else after).split()
    commits = [_commit(repo, sha, full_name) for sha in shas[-20:]]  # GitHub lists at most 20 commits
    owner, name = full_name.split("/", 1)
    return {
        "ref": f"refs/heads/{branch}",
        "before": before or ZERO_SHA,
        "after": after,
        "created": before is None,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{full_name}/compare/{(before or ZERO_SHA)[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "repository": {
            "name": name,
            "full_name": full_name,
            "private": True,
            "owner": {"name": owner, "login": owner},
            "html_url": f"https://github.com/{full_name}",
            "clone_url": repo.resolve().as_uri(),
            "default_branch": branch,
        },
        "pusher": {"name": "relaunch-demo", "email": "demo@relaunch.invalid"},
        "sender": {"login": "relaunch-demo", "type": "User"},
    }


def _commit(repo: Path, sha: str, full_name: str) -> dict[str, Any]:
    message, timestamp, author, email = git(repo, "show", "-s", "--format=%s%x00%aI%x00%an%x00%ae", sha).split("\0")
    changes: dict[str, list[str]] = {"A": [], "M": [], "D": []}
    listing = git(repo, "show", "--format=", "--name-status", "--no-renames", "--root", sha)
    for line in filter(None, listing.splitlines()):
        status, path = line.split("\t", 1)
        changes.setdefault(status[0], []).append(path)
    person = {"name": author, "email": email, "username": author}
    return {
        "id": sha,
        "tree_id": git(repo, "rev-parse", f"{sha}^{{tree}}"),
        "distinct": True,
        "message": message,
        "timestamp": timestamp,
        "url": f"https://github.com/{full_name}/commit/{sha}",
        "author": person,
        "committer": person,
        "added": changes["A"],
        "removed": changes["D"],
        "modified": changes["M"],
    }


def github_headers(event: str, body: bytes, secret: str, delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery, signed with X-Hub-Signature-256."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/relaunch-simulate",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": github_signature(secret, body),
    }


def send_github(
    url: str, event: str, payload: dict[str, Any], secret: str, delivery: str | None = None
) -> requests.Response:
    """POST a signed GitHub delivery to a github_webhook URL."""
    body = json.dumps(payload).encode()
    return requests.post(url, data=body, headers=github_headers(event, body, secret, delivery), timeout=30)


def _repository(full_name: str, clone_url: str, branch: str = "main") -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    return {
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
        "clone_url": clone_url,
        "default_branch": branch,
    }


def pull_request_payload(
    repo: Path, *, full_name: str, base: str = "main", action: str = "opened", number: int = 1
) -> dict[str, Any]:
    """A pull_request payload whose head is the repo's HEAD (see tests/samples/github/pull_request.*.json)."""
    head_sha, head_ref = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    repository = _repository(full_name, repo.resolve().as_uri(), base)
    user = {"login": "relaunch-demo", "type": "User"}
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "state": "closed" if action == "closed" else "open",
            "title": git(repo, "show", "-s", "--format=%s", head_sha),
            "user": user,
            "head": {
                "label": f"{full_name.split('/')[0]}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "user": user,
                "repo": repository,
            },
            "base": {
                "label": f"{full_name.split('/')[0]}:{base}",
                "ref": base,
                "sha": git(repo, "rev-parse", base) if base != head_ref else head_sha,
                "user": user,
                "repo": repository,
            },
        },
        "repository": repository,
        "sender": user,
    }


def workflow_dispatch_payload(
    full_name: str, *, ref: str = "main", inputs: dict[str, str] | None = None
) -> dict[str, Any]:
    """A workflow_dispatch payload (see tests/samples/github/workflow_dispatch.1.json)."""
    return {
        "inputs": inputs or {},
        "ref": ref if ref.startswith("refs/") else f"refs/heads/{ref}",
        "repository": _repository(full_name, f"https://github.com/{full_name}.git"),
        "sender": {"login": "relaunch-demo", "type": "User"},
        "workflow": ".github/workflows/relaunch.yml",
    }


def wandb_payload(
    event_type: str, artifact: str, *, alias: str = "", author: str = "relaunch-demo", artifact_id: str | None = None
) -> dict[str, Any]:
    """The body W&B renders from the README's payload template for an artifact event (with the version's id)."""
    entity, project, rest = artifact.split("/", 2)
    payload = {
        "event_type": event_type,
        "artifact_version_string": artifact,
        "artifact_collection_name": rest.split(":", 1)[0],
        "alias": alias,
        "entity_name": entity,
        "project_name": project,
        "event_author": author,
    }
    if artifact_id is not None:  # ${artifact_version}: pins the version an alias named when the event was sent
        payload["artifact_version"] = f"wandb-artifact://_id/{artifact_id}"
    return payload


def send_wandb(url: str, payload: dict[str, Any], *, token: str | None, secret: str | None = None) -> requests.Response:
    """POST a W&B automation delivery with its bearer token and/or X-Wandb-Signature."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "W&B-Automations/relaunch-simulate"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if secret:
        headers["X-Wandb-Signature"] = wandb_signature(secret, body)
    return requests.post(url, data=body, headers=headers, timeout=30)


def monitoring_incident(
    *, pipeline: str | None, endpoint: str | None, severity: str = "warning", state: str = "open"
) -> dict[str, Any]:
    """A Cloud Monitoring alert notification (schema 1.2, see tests/samples/monitoring) naming a pipeline/endpoint."""
    now = int(time.time())
    labels = {"relaunch_pipeline": pipeline} if pipeline else {}
    resource_labels = {"endpoint_id": endpoint, "location": "us-central1"} if endpoint else {}
    summary = f"Prediction drift on {pipeline or endpoint} is above the threshold (0.42 > 0.3)."
    return {
        "incident": {
            "incident_id": f"0.{uuid.uuid4().hex[:12]}",
            "scoping_project_id": "local",
            "url": "https://console.cloud.google.com/monitoring/alerting/incidents",
            "severity": severity,
            "started_at": now,
            "ended_at": now if state == "closed" else None,
            "state": state,
            "resource": {"type": "aiplatform.googleapis.com/Endpoint", "labels": resource_labels},
            "metric": {
                "type": "custom.googleapis.com/relaunch/prediction_drift",
                "displayName": "Prediction drift",
                "labels": {"feature_name": "pixel_42"},
            },
            "policy_name": "relaunch drift",
            "policy_user_labels": labels,
            "condition_name": "Prediction drift above 0.3",
            "threshold_value": "0.3",
            "observed_value": "0.42",
            "documentation": {
                "content": "Retrain the model.",
                "mime_type": "text/markdown",
                "subject": f"[ALERT - {severity}] drift",
            },
            "summary": summary,
        },
        "version": "1.2",
    }


def schedule_data(pipeline: str, *, job: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """The JSON data a Cloud Scheduler job with a Pub/Sub target publishes for a pipeline."""
    data: dict[str, Any] = {"pipeline": pipeline}
    if job:
        data["job"] = job
    if reason:
        data["reason"] = reason
    return data


def retrain_data(
    repo: str, ref: str, pipeline: str, reason: str, priority: int | None, request_id: str | None
) -> dict[str, Any]:
    """The JSON a manual retrain request carries on relaunch-commands (see relaunch.triggers.retrain)."""
    data: dict[str, Any] = {"type": "retrain", "repo": repo, "ref": ref, "pipeline": pipeline, "reason": reason}
    if priority is not None:
        data["priority"] = priority
    if request_id:
        data["request_id"] = request_id
    return data


def cloud_build_message(
    run_id: str, *, status: str = "SUCCESS", build_id: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The data (a Build resource) and attributes Cloud Build publishes on `cloud-builds` for a run's build."""
    build_id = build_id or str(uuid.uuid4())
    build: dict[str, Any] = {
        "id": build_id,
        "projectId": "local",
        "status": status,
        "substitutions": {RUN_ID_SUBSTITUTION: run_id},
        "tags": [f"relaunch-run-{run_id}"],
        "logUrl": f"https://console.cloud.google.com/cloud-build/builds/{build_id}?project=local",
        "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if status == "SUCCESS":
        build["results"] = {"images": [{"name": f"local/relaunch/{run_id}", "digest": "sha256:" + "0" * 64}]}
    return build, {"buildId": build_id, "status": status}
