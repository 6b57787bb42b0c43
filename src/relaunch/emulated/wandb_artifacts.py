"""The W&B stand-in's answers about artifact versions: lookups by name, manifests, file URLs, aliases."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from relaunch.emulated.wandb_state import NOW, FakeArtifact, WandbState, operation


@operation("ArtifactMembershipByName")
def _membership(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    try:
        artifact = fake.artifact_named(variables["entity"], variables["project"], variables["name"])
    except LookupError:
        return {"project": {"artifactCollectionMembership": None}}
    collection = {"__typename": "ArtifactSequence", "name": artifact.collection, "project": _project(artifact)}
    membership = {
        "__typename": "ArtifactCollectionMembership",
        "id": "membership-" + artifact.id,
        "versionIndex": artifact.version,
        "createdAt": NOW,
        "aliases": _aliases(artifact),
        "artifactCollection": collection,
        "artifact": artifact_fragment(artifact),
    }
    return {"project": {"artifactCollectionMembership": membership}}


@operation("FetchArtifactManifest")
def _manifest_url(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["id"])
    url = f"{fake.url}/manifests/{artifact.id.rstrip('=')}"
    return {"artifact": {"currentManifest": {"file": {"directUrl": url}}}}


@operation("GetArtifactMembershipFileUrls")
def _file_urls(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_named(
        variables["entity"], variables["project"], f"{variables['collection']}:{variables['alias']}"
    )
    base = f"{fake.url}/files/{artifact.id.rstrip('=')}"
    edges = [
        {"node": {"__typename": "File", "name": name, "directUrl": f"{base}/{name}"}} for name in sorted(artifact.files)
    ]
    page = {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}
    membership = {"files": {"pageInfo": page, "edges": edges}}
    collection = {"__typename": "ArtifactSequence", "artifactMembership": membership}
    return {"project": {"artifactCollection": collection}}


@operation("ArtifactCreatedBy")
def _created_by(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["id"])
    if artifact.created_by is None:
        return {"artifact": {"createdBy": None}}
    run = fake.runs[artifact.created_by]
    info = {"__typename": "Run", "id": run["id"], "name": run["name"], "project": _project(artifact)}
    return {"artifact": {"createdBy": info}}


@operation("AddAliases")
def _add_aliases(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    target = fake.artifact_by_id(variables["input"]["artifactID"])
    for alias in variables["input"]["aliases"]:
        for other in fake.artifacts:  # an alias names one version of a collection: it moves
            if other.collection == target.collection and alias["alias"] in other.aliases:
                other.aliases.remove(alias["alias"])
        target.aliases.append(alias["alias"])
    return {"result": {"success": True}}


@operation("UpdateArtifact")
def _update_artifact(fake: WandbState, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["input"]["artifactID"])
    return {"result": {"artifact": artifact_fragment(artifact, with_aliases=True)}}


def _project(artifact: FakeArtifact) -> dict[str, Any]:
    return {"id": "UHJvamVjdDox", "internalId": "1", "name": artifact.project, "entity": {"name": artifact.entity}}


def _aliases(artifact: FakeArtifact) -> list[dict[str, Any]]:
    names = [f"v{artifact.version}", *artifact.aliases]
    return [{"__typename": "ArtifactAlias", "id": f"alias-{n}", "alias": n} for n in names]


def artifact_fragment(artifact: FakeArtifact, with_aliases: bool = False) -> dict[str, Any]:
    sequence = {"__typename": "ArtifactSequence", "name": artifact.collection, "project": _project(artifact)}
    fragment: dict[str, Any] = {
        "__typename": "Artifact",
        "id": artifact.id,
        "artifactSequence": sequence,
        "versionIndex": artifact.version,
        "artifactType": {"name": artifact.type},
        "description": None,
        "metadata": json.dumps(artifact.metadata),
        "ttlDurationSeconds": -2,
        "ttlIsInherited": True,
        "tags": [],
        "historyStep": None,
        "state": artifact.state,
        "size": sum(len(b) for b in artifact.files.values()),
        "digest": artifact.digest or hashlib.md5(b"".join(artifact.files.values())).hexdigest(),
        "digestAlgorithm": "MANIFEST_MD5",
        "commitHash": "0" * 12,
        "fileCount": len(artifact.files),
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    if with_aliases:
        collection = {"__typename": "ArtifactSequence", "name": artifact.collection, "project": _project(artifact)}
        fragment["aliases"] = [{**a, "artifactCollection": collection} for a in _aliases(artifact)]
    return fragment


def manifest(artifact: FakeArtifact) -> dict[str, Any]:
    contents = {
        name: {"digest": base64.b64encode(hashlib.md5(body).digest()).decode(), "size": len(body)}
        for name, body in artifact.files.items()
    }
    policy = {"storageLayout": "V2"}
    return {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": policy,
        "contents": contents,
    }
