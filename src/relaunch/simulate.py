"""Real-format, correctly signed events for a running stack (used by `relaunch simulate` and the demo)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import requests

from relaunch.triggers.cloudbuild import RUN_ID_SUBSTITUTION
from relaunch.triggers.signing import github_signature, wandb_signature

ZERO_SHA = "0" * 40


class SimulateError(ValueError):
    """What a user asked to send cannot be built (not a repository, no such branch): said in one line."""


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout (raises on failure)."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit_or_none(repo: Path, name: str) -> str | None:
    """The commit `name` names in `repo`, or None (`--end-of-options`: a name is never read as an option)."""
    argv = ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def repository_head(repo: Path) -> str:
    """The commit HEAD names in the local repository `repo`; SimulateError saying why there is none."""
    if not repo.is_dir():
        raise SimulateError(f"--repo-dir {repo} does not exist or is not a folder")
    inside = subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True, text=True)
    if inside.returncode != 0:
        raise SimulateError(f"--repo-dir {repo} is not a git repository (run `git init` and commit there first)")
    head = _commit_or_none(repo, "HEAD")
    if head is None:
        raise SimulateError(f"--repo-dir {repo} has no commit yet: commit something first")
    return head


def branch_commit(repo: Path, branch: str, flag: str) -> str:
    """The commit a local branch of `repo` points at; SimulateError naming the branches there are."""
    found = _commit_or_none(repo, f"refs/heads/{branch}")
    if found is None:
        names = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
        raise SimulateError(f"{flag} {branch!r}: no such branch in {repo} (branches: {', '.join(names) or 'none'})")
    return found


def push_payload(repo: Path, *, full_name: str, branch: str = "main", before: str | None = None) -> dict[str, Any]:
    """A push payload for the repo's HEAD, shaped as GitHub sends it (see tests/samples/github/push.*.json)."""
    after = repository_head(repo)
    if before is not None:  # any name git resolves (HEAD~1, a tag): the payload carries its full SHA
        resolved = _commit_or_none(repo, before)
        if resolved is None:
            raise SimulateError(f"--before {before[:80]!r} is not a commit in {repo}")
        before = resolved
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
    head_sha, head_ref = repository_head(repo), git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    base_sha = branch_commit(repo, base, "--base") if base != head_ref else head_sha
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
                "sha": base_sha,
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
    if artifact.count("/") != 2 or not artifact.partition(":")[2]:
        raise SimulateError(f"--artifact {artifact[:120]!r} is not entity/project/name:version")
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


@runtime_checkable
class LocalWandb(Protocol):
    """What simulate does to the local artifact store before it sends an event, as W&B does before its automation."""

    def log(self, collection: str, source: Path) -> str: ...

    def resolve(self, ref: str) -> str: ...

    def set_alias(self, ref: str, alias: str) -> None: ...

    def version_id(self, ref: str) -> str: ...


def local_wandb_event(
    store: object, event_type: str, artifact: str, *, alias: str = "", model_dir: Path | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The payload W&B would send for `event_type` on `artifact`, after doing on the store what the event says.

    `--model-dir` logs a new version first; an alias event sets the alias on the version first, so the alias the
    event names exists. The payload names the version's id (`artifact_version`), as the README's template does:
    that id tells the alias moving to another version from the same event sent again. Also the notes to print.
    """
    collection, _, version = artifact.partition(":")
    if collection.count("/") != 2:
        raise SimulateError(f"--artifact {artifact[:120]!r} is not entity/project/name[:vN]")
    if not isinstance(store, LocalWandb):
        raise SimulateError("--model-dir and alias events need the local artifact store (RELAUNCH_ARTIFACTS=local)")
    notes: list[str] = []
    try:
        ref = _local_version(store, collection, version, model_dir, notes)
        if event_type != "ADD_ARTIFACT_ALIAS":
            return wandb_payload(event_type, ref, artifact_id=store.version_id(ref)), notes
        store.set_alias(ref, alias)
    except ValueError as exc:  # no such version, an invalid alias: the store says which, in one line
        raise SimulateError(str(exc)) from None
    notes.append(f"alias {alias} -> {ref}")
    named = f"{collection}:{alias}"  # W&B renders an alias event's version string with the alias
    return wandb_payload(event_type, named, alias=alias, artifact_id=store.version_id(ref)), notes


def _local_version(store: LocalWandb, collection: str, version: str, model_dir: Path | None, notes: list[str]) -> str:
    """The concrete version the event is about: a new one logged from `model_dir`, or the one `version` names."""
    if model_dir is None:
        if not version:
            raise SimulateError(f"--artifact {collection!r} needs :vN (or --model-dir to log a new version)")
        return store.resolve(f"{collection}:{version}")
    if not model_dir.is_dir():
        raise SimulateError(f"--model-dir {model_dir} is not a folder")
    ref = store.log(collection, model_dir)
    notes.append(f"logged {model_dir} as {ref}")
    return ref


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
