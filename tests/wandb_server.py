"""A local stand-in for the W&B API: GraphQL at POST /graphql plus file downloads, with the state behind them.

It records every GraphQL operation (name and variables) and answers the minimal valid response for the operations
the wandb SDK sends for Launch queues, runs and artifacts. Unknown operations get a GraphQL error, so a test
notices when the SDK starts asking something new; so does a query selecting a field no query of the installed wandb
SDK selects (`tests/wandb_graphql.py` reads them from the SDK), unless relaunch's W&B Launch adapter names it in
`BEYOND_SDK` (the README says why each is safe).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from relaunch.adapters.wandb.launch import BEYOND_SDK
from tests.loopback import loopback_server
from tests.wandb_graphql import GraphQLSyntaxError, refused, sdk_paths

_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
_NOW = "2026-01-01T00:00:00"


@dataclass
class Call:
    """One GraphQL operation as received."""

    operation: str
    query: str
    variables: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeArtifact:
    """An artifact version: its files, metadata, aliases and the run that logged it."""

    entity: str
    project: str
    collection: str
    version: int
    files: dict[str, bytes]
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    type: str = "model"
    created_by: str | None = None  # run name in the same project

    @property
    def id(self) -> str:
        return base64.b64encode(f"Artifact:{self.collection}:{self.version}".encode()).decode()


@dataclass
class FakeWandb:
    """Queue items, runs and artifacts of one W&B entity, plus everything the SDK asked."""

    url: str = ""
    api_key: str = ""
    calls: list[Call] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[FakeArtifact] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    queues: set[tuple[str, str]] = field(default_factory=set)  # (entity, name) of the Launch queues that exist
    queue_configs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # what upsertRunQueue set
    projects: set[tuple[str, str]] = field(default_factory=set)  # (entity, name) created through the API
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what tests read ---------------------------------------------------------------------------------------

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]

    def called(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    # -- what tests set up --------------------------------------------------------------------------------------

    def add_run(self, name: str, state: str, summary: dict[str, Any] | None = None, **attrs: Any) -> None:
        """A run in the project (storage id `Run:<name>`)."""
        with self.lock:
            self.runs[name] = {
                "id": base64.b64encode(f"Run:{name}".encode()).decode(),
                "name": name,
                "state": state,
                "summaryMetrics": json.dumps(summary or {}),
                "createdAt": attrs.pop("createdAt", _NOW),
                "heartbeatAt": attrs.pop("heartbeatAt", _NOW),
                **attrs,
            }

    def claim(self, item_id: str, run_name: str, run_state: str = "running") -> None:
        """What a launch agent does: claim the item and start its run."""
        with self.lock:
            self.items[item_id].update(state="CLAIMED", associatedRunId=run_name)
            self.add_run(run_name, run_state)

    # -- HTTP --------------------------------------------------------------------------------------------------

    def graphql(self, payload: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        query = payload.get("query", "")
        match = _OPERATION.search(query)
        operation = payload.get("operationName") or (match.group(1) if match else "")
        variables = payload.get("variables") or {}
        with self.lock:
            self.calls.append(Call(operation, query, variables, headers))
            if self.errors:
                status = self.errors.pop(0)
                return status, {"errors": [{"message": f"scripted HTTP {status}"}]}
            if self.api_key and headers.get("authorization") != _basic(self.api_key):
                return 401, {"errors": [{"message": "unauthorized"}]}
            unknown = _unknown_fields(query)
            if unknown:
                return 200, {"errors": [{"message": message} for message in unknown]}
            handler = _HANDLERS.get(operation)
            if handler is None:
                return 200, {"errors": [{"message": f"fake W&B does not know operation {operation!r}"}]}
            try:
                return 200, {"data": handler(self, variables)}
            except LookupError as exc:
                return 200, {"errors": [{"message": str(exc)}], "data": None}

    def download(self, path: str) -> tuple[int, bytes]:
        with self.lock:
            self.downloads.append(path)
            parts = path.strip("/").split("/", 2)
            for artifact in self.artifacts:
                if parts[:2] == ["manifests", artifact.id.rstrip("=")]:
                    return 200, json.dumps(_manifest(artifact)).encode()
                if parts[:2] == ["files", artifact.id.rstrip("=")] and len(parts) == 3:
                    body = artifact.files.get(parts[2])
                    return (200, body) if body is not None else (404, b"")
        return 404, b""

    def artifact_named(self, entity: str, project: str, name: str) -> FakeArtifact:
        collection, _, alias = name.partition(":")
        for artifact in self.artifacts:
            same = (artifact.entity, artifact.project, artifact.collection) == (entity, project, collection)
            if same and (alias == f"v{artifact.version}" or alias in artifact.aliases):
                return artifact
        raise LookupError(f"artifact {entity}/{project}/{name} not found")

    def artifact_by_id(self, artifact_id: str) -> FakeArtifact:
        for artifact in self.artifacts:
            if artifact.id == artifact_id:
                return artifact
        raise LookupError(f"artifact {artifact_id} not found")


def _unknown_fields(query: str) -> list[str]:
    """W&B-style errors for each field of `query` no wandb SDK query selects (or for a document it cannot read)."""
    allowed = sdk_paths() | {tuple(path.split(".")) for path in BEYOND_SDK}
    try:
        paths = refused(query, allowed)
    except GraphQLSyntaxError as exc:
        return [f"Syntax Error: {exc}"]
    return [f'Cannot query field "{p[-1]}" at {".".join(p[:-1])}: no wandb SDK query selects it' for p in paths]


def _basic(api_key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()


# -- GraphQL operations ----------------------------------------------------------------------------------------

Handler = Callable[[FakeWandb, dict[str, Any]], dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}


def _op(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            _HANDLERS[name] = fn
        return fn

    return register


@_op("Viewer")
def _viewer(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    viewer: dict[str, Any] = {
        "id": "VXNlcjox",
        "entity": "team",
        "username": "ci",
        "email": None,
        "flags": "{}",
        "teams": {"edges": []},
    }
    return {"viewer": viewer}


@_op("GetDefaultEntity")
def _default_entity(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    return {"viewer": {"__typename": "User", "id": "VXNlcjox", "entity": "team"}}


@_op("ServerFeaturesQuery")
def _features(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    return {"serverInfo": {"features": []}}


@_op("pushToRunQueueByName")
def _push(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    if (variables["entityName"], variables["queueName"]) not in fake.queues:
        raise LookupError(f"run queue {variables['queueName']!r} not found")
    item_id = base64.b64encode(f"RunQueueItem:{len(fake.items) + 1}".encode()).decode()
    spec = json.loads(variables["runSpec"])
    fake.items[item_id] = {
        "id": item_id,
        "state": "PENDING",
        "associatedRunId": None,
        "runSpec": json.dumps(spec),
        "priority": variables.get("priority"),
        "error": None,
        "queue": (variables["entityName"], variables["projectName"], variables["queueName"]),
    }
    return {"pushToRunQueueByName": {"runQueueItemId": item_id, "runSpec": json.dumps(spec)}}


def _queue(fake: FakeWandb, variables: dict[str, Any], name_key: str) -> list[dict[str, Any]]:
    wanted = (variables["entityName"], variables["projectName"], variables[name_key])
    return [item for item in fake.items.values() if item["queue"] == wanted]


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "queue"}


@_op("RelaunchQueueItems")
def _items(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    if (variables["entityName"], variables["runQueue"]) not in fake.queues:
        return {"project": {"runQueue": None}}
    edges = [{"node": _public(item)} for item in _queue(fake, variables, "runQueue")]
    return {"project": {"runQueue": {"runQueueItems": {"edges": edges}}}}


@_op("GetRunQueueItem")
def _item(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    """The SDK's QueuedRun asks for one item by id, or (its fallback) lists them all."""
    items = _queue(fake, variables, "runQueue")
    if "itemId" not in variables:
        return {"project": {"runQueue": {"runQueueItems": {"edges": [{"node": _public(i)} for i in items]}}}}
    found = [i for i in items if i["id"] == variables["itemId"]]
    return {"project": {"runQueue": {"runQueueItem": _public(found[0]) if found else None}}}


@_op("fetchRunQueuesFromProject")
def _queue_id(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    queue_id = base64.b64encode(f"RunQueue:{variables['runQueueName']}".encode()).decode()
    return {"project": {"runQueue": {"id": queue_id}}}


@_op("CreateProject")
def _create_project(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    wanted = (variables["input"]["entityName"], variables["input"]["name"])
    inserted = wanted not in fake.projects
    fake.projects.add(wanted)
    project = {"id": "UHJvamVjdDox", "name": wanted[1], "entityName": wanted[0], "description": None}
    project |= {"access": "PROJECT", "views": "{}"}
    return {"result": {"project": project, "model": project, "inserted": inserted}}


@_op("UpsertRunQueue")
def _upsert_queue(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    if (variables["entityName"], variables["projectName"]) not in fake.projects:
        raise LookupError(f"project {variables['projectName']!r} not found")
    key = (variables["entityName"], variables["queueName"])
    fake.queues.add(key)
    fake.queue_configs[key] = {
        "resource": variables["resourceType"],
        "config": variables["resourceConfig"],
        "prioritizationMode": variables.get("prioritizationMode"),
        "configID": str(len(fake.queue_configs) + 1),
    }
    return {"upsertRunQueue": {"success": True, "configSchemaValidationErrors": []}}


@_op("GetRunQueueMetadata")
def _queue_metadata(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    key = (variables["entityName"], variables["runQueue"])
    if key not in fake.queues:
        return {"project": {"runQueue": None}}
    config = fake.queue_configs.get(key, {})
    queue: dict[str, Any] = {"id": base64.b64encode(f"RunQueue:{key[1]}".encode()).decode(), "access": "PROJECT"}
    queue |= {"defaultResourceConfigID": config.get("configID"), "externalLinks": {"links": []}}
    return {"project": {"runQueue": {**queue, "prioritizationMode": config.get("prioritizationMode", "DISABLED")}}}


@_op("GetDefaultResourceConfig")
def _resource_config(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    found = [c for (entity, _), c in fake.queue_configs.items() if c["configID"] == variables["id"]]
    if variables["entityName"] not in {e for e, _ in fake.queue_configs} or not found:
        return {"entity": {"defaultResourceConfig": None}}
    config = {"config": found[0]["config"], "resource": found[0]["resource"], "templateVariables": []}
    return {"entity": {"defaultResourceConfig": config}}


@_op("DeleteFromRunQueue")
def _delete_item(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    found = fake.items.pop(variables["runQueueItemId"], None)
    return {"deleteFromRunQueue": {"success": found is not None, "clientMutationId": None}}


@_op("Run")
def _run(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    run = fake.runs.get(variables["name"])
    if run is None:
        return {"project": {"run": None}}
    full = {
        "projectId": "1",
        "tags": [],
        "displayName": run["name"],
        "sweepName": None,
        "config": "{}",
        "group": None,
        "jobType": None,
        "commit": None,
        "readOnly": False,
        "description": None,
        "notes": None,
        "systemMetrics": "{}",
        "historyLineCount": 0,
        "user": {"name": "ci", "username": "ci"},
        "historyKeys": {},
        **run,
    }
    return {"project": {"run": full}}


@_op("StopRun")
def _stop(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    fake.stopped.append(variables["id"])
    return {"stopRun": {"success": True}}


@_op("ArtifactMembershipByName")
def _membership(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    try:
        artifact = fake.artifact_named(variables["entity"], variables["project"], variables["name"])
    except LookupError:
        return {"project": {"artifactCollectionMembership": None}}
    collection = {"__typename": "ArtifactSequence", "name": artifact.collection, "project": _project(artifact)}
    membership = {
        "__typename": "ArtifactCollectionMembership",
        "id": "membership-" + artifact.id,
        "versionIndex": artifact.version,
        "createdAt": _NOW,
        "aliases": _aliases(artifact),
        "artifactCollection": collection,
        "artifact": _artifact_fragment(artifact),
    }
    return {"project": {"artifactCollectionMembership": membership}}


@_op("FetchArtifactManifest")
def _manifest_url(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["id"])
    url = f"{fake.url}/manifests/{artifact.id.rstrip('=')}"
    return {"artifact": {"currentManifest": {"file": {"directUrl": url}}}}


@_op("GetArtifactMembershipFileUrls")
def _file_urls(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
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


@_op("ArtifactCreatedBy")
def _created_by(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["id"])
    if artifact.created_by is None:
        return {"artifact": {"createdBy": None}}
    run = fake.runs[artifact.created_by]
    info = {"__typename": "Run", "id": run["id"], "name": run["name"], "project": _project(artifact)}
    return {"artifact": {"createdBy": info}}


@_op("AddAliases")
def _add_aliases(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    target = fake.artifact_by_id(variables["input"]["artifactID"])
    for alias in variables["input"]["aliases"]:
        for other in fake.artifacts:  # an alias names one version of a collection: it moves
            if other.collection == target.collection and alias["alias"] in other.aliases:
                other.aliases.remove(alias["alias"])
        target.aliases.append(alias["alias"])
    return {"result": {"success": True}}


@_op("UpdateArtifact")
def _update_artifact(fake: FakeWandb, variables: dict[str, Any]) -> dict[str, Any]:
    artifact = fake.artifact_by_id(variables["input"]["artifactID"])
    return {"result": {"artifact": _artifact_fragment(artifact, with_aliases=True)}}


def _project(artifact: FakeArtifact) -> dict[str, Any]:
    return {"id": "UHJvamVjdDox", "internalId": "1", "name": artifact.project, "entity": {"name": artifact.entity}}


def _aliases(artifact: FakeArtifact) -> list[dict[str, Any]]:
    names = [f"v{artifact.version}", *artifact.aliases]
    return [{"__typename": "ArtifactAlias", "id": f"alias-{n}", "alias": n} for n in names]


def _artifact_fragment(artifact: FakeArtifact, with_aliases: bool = False) -> dict[str, Any]:
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
        "state": "COMMITTED",
        "size": sum(len(b) for b in artifact.files.values()),
        "digest": hashlib.md5(b"".join(artifact.files.values())).hexdigest(),
        "digestAlgorithm": "MANIFEST_MD5",
        "commitHash": "0" * 12,
        "fileCount": len(artifact.files),
        "createdAt": _NOW,
        "updatedAt": _NOW,
    }
    if with_aliases:
        collection = {"__typename": "ArtifactSequence", "name": artifact.collection, "project": _project(artifact)}
        fragment["aliases"] = [{**a, "artifactCollection": collection} for a in _aliases(artifact)]
    return fragment


def _manifest(artifact: FakeArtifact) -> dict[str, Any]:
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


# -- server ------------------------------------------------------------------------------------------------------


def _handler(fake: FakeWandb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if self.path.split("?")[0] != "/graphql":
                self._send(404, b"")
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.graphql(json.loads(body or b"{}"), headers)
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802
            status, body = fake.download(self.path.split("?")[0])
            self._send(status, body)

        def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(api_key: str = "") -> Iterator[FakeWandb]:
    """Run a FakeWandb on a free loopback port; with `api_key`, requests must carry it (HTTP basic, as W&B's)."""
    fake = FakeWandb(api_key=api_key)
    with loopback_server(_handler(fake)) as url:
        fake.url = url
        yield fake
