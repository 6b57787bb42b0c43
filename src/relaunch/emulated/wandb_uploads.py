"""The W&B stand-in's answers to what `wandb sync` sends (wandb-core, the SDK's Go service): runs, their files and
history, artifacts with their files and manifest, and a run's use of an artifact.

The GraphQL operations are wandb-core's own (their text is compiled into its binary; the field check of
wandb_graphql.py holds requests to it). Files and manifests go to the upload URLs this stand-in hands out, with a
PUT; history and summary to the run's `file_stream` endpoint, with a POST of JSON: both answered by `receive`.
"""

from __future__ import annotations

import json
from typing import Any

from relaunch.emulated.wandb_artifacts import artifact_fragment
from relaunch.emulated.wandb_state import FakeArtifact, WandbState, operation


@operation("UpsertBucket")
def _upsert_bucket(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    name, entity, project = variables["name"], variables.get("entity") or "team", variables["project"]
    fake.projects.add((entity, project))
    run = fake.runs.get(name)
    inserted = run is None
    if run is None:
        fake.add_run(name, "running")
        run = fake.runs[name]
        fake.synced[name] = {"entity": entity, "project": project, "files": {}, "history": [], "used": []}
    updates = {
        "displayName": variables.get("displayName"),
        "group": variables.get("groupName"),
        "jobType": variables.get("jobType"),
        "config": variables.get("config"),
        "summaryMetrics": variables.get("summaryMetrics"),
    }
    run.update({k: v for k, v in updates.items() if v is not None})
    bucket = {
        "id": run["id"],
        "name": name,
        "displayName": run.get("displayName"),
        "description": None,
        "config": run.get("config", "{}"),
        "sweepName": None,
        "project": {"id": "UHJvamVjdDox", "name": project, "entity": {"id": "RW50aXR5OjE=", "name": entity}},
        "historyLineCount": len(fake.synced[name]["history"]),
    }
    return {"upsertBucket": {"bucket": bucket, "inserted": inserted}}


@operation("CreateRunFiles")
def _run_files(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    run = fake.runs[variables["run"]]
    base = f"{fake.url}/uploads/runs/{variables['run']}"
    files = [{"name": name, "uploadUrl": f"{base}/{name}"} for name in variables["files"]]
    return {"createRunFiles": {"runID": run["id"], "uploadHeaders": [], "files": files}}


@operation("CreateArtifact")
def _create_artifact(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    spec = variables["input"]
    entity, project = spec["entityName"], spec["projectName"]
    collection = spec["artifactCollectionName"]
    same = (entity, project, collection)
    versions = [a.version for a in fake.artifacts if (a.entity, a.project, a.collection) == same]
    artifact = FakeArtifact(
        entity,
        project,
        collection,
        max(versions, default=-1) + 1,
        files={},
        metadata=json.loads(spec.get("metadata") or "{}"),
        aliases=[a["alias"] for a in spec.get("aliases") or [] if a["alias"] != "latest"],
        type=spec["artifactTypeName"],
        created_by=spec.get("runName"),
        digest=spec["digest"],
        state="PENDING",
    )
    for other in fake.artifacts:  # an alias names one version of a collection: it moves
        if other.collection == collection:
            other.aliases = [a for a in other.aliases if a not in artifact.aliases]
    fake.artifacts.append(artifact)
    created = {"id": artifact.id, "state": "PENDING", "artifactSequence": {"latestArtifact": {"id": artifact.id}}}
    return {"createArtifact": {"artifact": created}}


@operation("CreateArtifactFiles")
def _artifact_files(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    edges: list[dict[str, Any]] = []
    for entry in variables["input"]["artifactFiles"]:
        artifact = fake.artifact_by_id(entry["artifactID"])
        path = f"artifacts/{artifact.id.rstrip('=')}/{entry['name']}"
        node: dict[str, Any] = {
            "storagePath": path,
            "uploadUrl": f"{fake.url}/uploads/{path}",
            "uploadHeaders": [],
            "uploadMultipartUrls": None,
            "artifact": {"id": artifact.id},
        }
        edges.append({"node": node})
    return {"createArtifactFiles": {"files": {"edges": edges}}}


@operation("CreateArtifactManifest")
def _create_manifest(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["artifactID"])
    file: dict[str, Any] = {"id": f"manifest-{artifact.id}"}
    if variables.get("includeUpload"):  # the fields under `@include(if: $includeUpload)`
        file.update(uploadUrl=f"{fake.url}/uploads/manifests/{artifact.id.rstrip('=')}", uploadHeaders=[])
    return {"createArtifactManifest": {"artifactManifest": {"id": f"manifest-{artifact.id}", "file": file}}}


@operation("CommitArtifact")
def _commit_artifact(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["artifactID"])
    artifact.state = "COMMITTED"
    return {"commitArtifact": {"artifact": {"id": artifact.id, "digest": artifact.digest}}}


@operation("UseArtifact")
def _use_artifact(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    spec = variables.get("input") or variables  # wandb-core sends an input object; the public API, its fields
    artifact = fake.artifact_by_id(spec["artifactID"])
    fake.synced[spec["runName"]]["used"].append(artifact.id)
    fields = ("id", "digest", "description", "state", "createdAt", "metadata")  # what either one selects
    return {"useArtifact": {"artifact": {k: v for k, v in artifact_fragment(artifact).items() if k in fields}}}


def receive(fake: WandbState, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """A PUT of an uploaded file or manifest, or a POST to a run's file_stream: the HTTP status and body."""
    parts = path.strip("/").split("/")
    with fake.lock:
        if method == "PUT" and parts[:2] == ["uploads", "artifacts"] and len(parts) >= 4:
            artifact = next((a for a in fake.artifacts if a.id.rstrip("=") == parts[2]), None)
            if artifact is None:
                return 404, b""
            artifact.files["/".join(parts[3:])] = body
            return 200, b""
        if method == "PUT" and parts[:2] == ["uploads", "manifests"] and len(parts) == 3:
            return 200, b""  # the manifest: this stand-in rebuilds it from the files it holds
        if method == "PUT" and parts[:2] == ["uploads", "runs"] and len(parts) >= 4 and parts[2] in fake.synced:
            fake.synced[parts[2]]["files"]["/".join(parts[3:])] = body
            return 200, b""
        if method == "POST" and len(parts) == 5 and parts[0] == "files" and parts[4] == "file_stream":
            return _file_stream(fake, parts[3], body)
    return 404, b""


def _file_stream(fake: WandbState, run_name: str, body: bytes) -> tuple[int, bytes]:
    """History lines and the summary of a run, as wandb-core streams them."""
    run, synced = fake.runs.get(run_name), fake.synced.get(run_name)
    if run is None or synced is None:
        return 404, b""
    payload = json.loads(body or b"{}")
    files = payload.get("files") or {}
    for line in (files.get("wandb-history.jsonl") or {}).get("content") or []:
        synced["history"].append(json.loads(line))
    for line in (files.get("wandb-summary.json") or {}).get("content") or []:
        run["summaryMetrics"] = line
    if payload.get("complete"):
        run["state"] = "finished" if not payload.get("exitcode") else "failed"
    return 200, json.dumps({"exitcode": None, "limits": {}}).encode()


def used_by(fake: WandbState, run_name: str) -> list[FakeArtifact]:
    """The artifact versions a synced run used (UseArtifact)."""
    return [fake.artifact_by_id(i) for i in fake.synced.get(run_name, {}).get("used", [])]
